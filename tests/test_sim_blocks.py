"""Blocks of the cycle model against straightforward references."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from accel.isa import Compute, ComputeMode
from accel.window import feed_addresses, valid_reads
from sim.window import read_windows


@st.composite
def computes(draw):
    mode = draw(st.sampled_from(list(ComputeMode)))
    vadd = mode == ComputeMode.VADD
    return Compute(
        mode=mode,
        in_base=draw(st.integers(0, 20)),
        in_base_b=draw(st.integers(0, 20)),
        ct_count=draw(st.integers(1, 3)),
        ct_stride=draw(st.integers(0, 50)),
        tile_w=draw(st.integers(1, 12)),
        out_h=draw(st.integers(1, 5)),
        out_w=draw(st.integers(1, 5)),
        origin_h=draw(st.integers(-4, 4)),
        origin_w=draw(st.integers(-4, 4)),
        image_h=draw(st.integers(1, 9)),
        image_w=draw(st.integers(1, 9)),
        stride_h=draw(st.integers(1, 3)),
        stride_w=draw(st.integers(1, 3)),
        dil_h=draw(st.integers(1, 2)),
        dil_w=draw(st.integers(1, 2)),
        kernel_h=1 if vadd else draw(st.integers(1, 4)),
        kernel_w=1 if vadd else draw(st.integers(1, 4)),
        pad_value=draw(st.integers(-128, 127)),
    )


def loop_windows(instr: Compute, buffer: np.ndarray) -> np.ndarray:
    """The window generator as the nested loops of its docstring."""
    out = []
    bases = (
        [instr.in_base, instr.in_base_b]
        if instr.mode == ComputeMode.VADD
        else [instr.in_base + ct * instr.ct_stride for ct in range(instr.ct_count)]
    )
    for base in bases:
        for r in range(instr.kernel_h):
            for s in range(instr.kernel_w):
                words = []
                for p in range(instr.out_h):
                    for q in range(instr.out_w):
                        h = p * instr.stride_h + r * instr.dil_h
                        w = q * instr.stride_w + s * instr.dil_w
                        inside = (
                            0 <= instr.origin_h + h < instr.image_h
                            and 0 <= instr.origin_w + w < instr.image_w
                        )
                        if inside:
                            words.append(buffer[base + h * instr.tile_w + w])
                        else:
                            words.append(np.full(buffer.shape[1], instr.pad_value, np.int8))
                out.append(words)
    return np.array(out, dtype=np.int8)


@settings(max_examples=200, deadline=None)
@given(computes())
def test_window_generator_matches_its_loops(instr):
    buffer = np.random.default_rng(0).integers(-128, 128, size=(1000, 3), dtype=np.int8)
    np.testing.assert_array_equal(read_windows(instr, buffer), loop_windows(instr, buffer))
    assert valid_reads(instr) == int(feed_addresses(instr)[1].sum())


def test_overlapping_store_runs_land_in_program_order():
    from sim.dram import Dram

    dram = Dram(np.zeros(8, dtype=np.uint8))
    runs = np.arange(1, 13, dtype=np.uint8).reshape(3, 2, 2)
    dram.write_runs(0, 1, 2, runs)
    expected = np.zeros(8, dtype=np.uint8)
    for i in range(3):
        for j in range(2):
            expected[i + 2 * j : i + 2 * j + 2] = runs[i, j]
    np.testing.assert_array_equal(dram.data, expected)
