# amaranth: UnusedElaboratable=no
"""hdl.vector: the vector unit, bit-exact to accel.numerics, latency exact (against
sim.vector: tests/test_equivalence_vector.py).

Words stream in with random idle cycles between them; every word carries its own mode and
operands, so one simulation checks many unrelated words. The testbench plays the
accumulator: the row of a word presented in cycle ``t`` is on ``acc`` in ``t + 1``, and the
result must be on ``o`` in ``t + VECTOR_LATENCY``.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accel import numerics, timing
from accel.isa import ComputeMode
from hdl.vector import VectorUnit
from tests.hdl_support import simulate, small_config
from tests.references import INT32_MAX, INT32_MIN, wrap32

SHAPES = [(2, 2), (3, 4), (4, 3)]  # lanes = min(rows, cols); rows > cols and rows < cols


def word(x, mode, *, overwrite=0, zp=0, multiplier=0, shift=0, mul=0) -> dict:
    return {
        "x": [int(v) for v in x],
        "mode": mode,
        "overwrite": overwrite,
        "mul": mul,
        "zero_point": zp,
        "multiplier": multiplier,
        "shift": shift,
    }


def reference(w: dict, acc: list[int], cols: int) -> list[int]:
    """One word by accel.numerics' primitives (any int32 multiplier, shift read as
    min(shift, 31))."""
    lanes = min(len(w["x"]), cols)
    out = []
    for k in range(cols):
        if k >= lanes:
            out.append(0)
            continue
        x, zp = w["x"][k], w["zero_point"]
        vmul = w["mode"] == ComputeMode.VADD and w["mul"]
        if w["mode"] == ComputeMode.VMAX:
            term = x
        elif w["mode"] == ComputeMode.VSUM or vmul:
            term = x - zp
        else:
            high = numerics.saturating_rounding_doubling_high_mul((x - zp) << 20, w["multiplier"])
            term = int(numerics.rounding_divide_by_pot(high, min(w["shift"], 31)))
        if w["overwrite"]:
            out.append(int(term))
        elif w["mode"] == ComputeMode.VMAX:
            out.append(max(acc[k], int(term)))
        elif vmul:  # the row's low 9 bits, signed (x_a - za after VMUL's first pass)
            low = (acc[k] + 256) % 512 - 256
            out.append(low * int(term))
        else:
            out.append(wrap32(acc[k] + int(term)))
    return out


def run_words(config, words: list[dict], accs: list[list[int]], gaps: list[int]):
    """Present the words (``gaps[k]`` idle cycles before word k) and their rows; returns
    (cycle, row) of every output and checks each leaves exactly VECTOR_LATENCY after its
    word."""
    dut = VectorUnit(config)
    rows, cols = config.array.rows, config.array.cols
    junk = word([-1] * rows, ComputeMode.VADD, zp=-128, multiplier=INT32_MIN, shift=63)
    plan: list[tuple[dict, list[int]] | None] = []
    for gap, w, a in zip(gaps, words, accs, strict=True):
        plan += [None] * gap + [(w, a)]
    plan += [None] * (dut.latency + 1)
    fed: list[int] = []
    out: list[tuple[int, list[int]]] = []

    async def bench(ctx):
        previous = None
        for cycle, item in enumerate(plan):
            ctx.set(dut.i.valid, item is not None)
            ctx.set(dut.i.payload, item[0] if item else junk)
            # The row of the word presented in the previous cycle (garbage otherwise).
            ctx.set(dut.acc, previous[1] if previous else [INT32_MIN + cycle] * cols)
            if item is not None:
                fed.append(cycle)
            if ctx.get(dut.o.valid):
                out.append((cycle, [int(v) for v in ctx.get(dut.o.payload)]))
            previous = item
            await ctx.tick()

    simulate(dut, bench)
    assert [t for t, _ in out] == [t + timing.VECTOR_LATENCY for t in fed]
    return [row for _, row in out]


# --- single words ---------------------------------------------------------------------------

EDGES = [
    # (x, mode, overwrite, zp, multiplier, shift, acc)
    (-128, ComputeMode.VADD, 0, 127, INT32_MAX, 0, INT32_MAX),  # largest |x - zp|, wraps
    (127, ComputeMode.VADD, 1, -128, INT32_MAX, 0, 0),
    (127, ComputeMode.VADD, 0, -128, INT32_MIN, 0, INT32_MIN),  # negative multiplier field
    (3, ComputeMode.VADD, 1, 1, 1 << 30, 21, 0),  # 2**20 * 2**29 / 2**31 / 2**21: a tie
    (-3, ComputeMode.VADD, 1, -1, 1 << 30, 21, 0),  # the same tie, negative
    (5, ComputeMode.VADD, 1, 0, 1518500250, 31, 0),
    (-128, ComputeMode.VADD, 1, 127, INT32_MAX, 40, 0),  # shift > 31 reads as 31
    (0, ComputeMode.VADD, 0, 0, 0, 0, 12345),
    (-128, ComputeMode.VMAX, 0, 0, 0, 0, INT32_MIN),
    (-128, ComputeMode.VMAX, 0, 0, 0, 0, -129),
    (127, ComputeMode.VMAX, 0, 0, 0, 0, INT32_MAX),
    (-5, ComputeMode.VMAX, 1, 0, 0, 0, INT32_MAX),  # overwrite: max is not taken
    (127, ComputeMode.VSUM, 0, -128, 0, 0, INT32_MAX),  # wraps
    (-128, ComputeMode.VSUM, 0, 127, 0, 0, INT32_MIN),  # wraps the other way
    (-128, ComputeMode.VSUM, 1, 127, 0, 0, 99),
]
#: VMUL words (VADD with mul): (x, overwrite, zp, acc); the row holds x_a - za.
MUL_EDGES = [
    (-128, 0, 127, -255),  # (-255) * (-255) = 65025, the largest product
    (127, 0, -128, -255),  # 255 * (-255)
    (127, 0, -128, 255),
    (0, 0, 0, 0),
    (-128, 1, 127, 77),  # the first pass: x - za overwrites
    (5, 0, 5, -200),  # a zero factor
]


@pytest.mark.parametrize(("rows", "cols"), SHAPES)
def test_vector_edge_cases_equal_the_numerics(rows, cols):
    config = small_config(rows, cols)
    lanes = min(rows, cols)
    words, accs = [], []
    for x, mode, overwrite, zp, m, sh, acc in EDGES:
        # Lane k gets x shifted by k (clamped), so lanes differ.
        xs = [int(np.clip(x - k if x > 0 else x + k, -128, 127)) for k in range(rows)]
        words.append(word(xs, mode, overwrite=overwrite, zp=zp, multiplier=m, shift=sh))
        accs.append([acc] * cols)
    for x, overwrite, zp, acc in MUL_EDGES:
        xs = [int(np.clip(x - k if x > 0 else x + k, -128, 127)) for k in range(rows)]
        words.append(word(xs, ComputeMode.VADD, overwrite=overwrite, zp=zp, mul=1))
        accs.append([acc] * cols)
    got = run_words(config, words, accs, [0] * len(words))
    for w, a, g in zip(words, accs, got, strict=True):
        assert g == reference(w, a, cols), w
        if w["mul"] and not w["overwrite"] and w["x"][0] == -128 and a[0] == -255:
            assert g[0] == 65025
        assert g[lanes:] == [0] * (cols - lanes)


def edge_biased(low, high, edges):
    return st.sampled_from([e for e in edges if low <= e <= high]) | st.integers(low, high)


@st.composite
def words_and_rows(draw, rows: int, cols: int):
    mode = draw(st.sampled_from([ComputeMode.VMAX, ComputeMode.VSUM, ComputeMode.VADD]))
    x = draw(st.lists(edge_biased(-128, 127, [-128, -1, 0, 127]), min_size=rows, max_size=rows))
    acc = draw(
        st.lists(
            edge_biased(INT32_MIN, INT32_MAX, [INT32_MIN, -1, 0, INT32_MAX]),
            min_size=cols,
            max_size=cols,
        )
    )
    w = word(
        x,
        mode,
        overwrite=draw(st.integers(0, 1)),
        zp=draw(edge_biased(-128, 127, [-128, 0, 127])),
        multiplier=draw(edge_biased(INT32_MIN, INT32_MAX, [INT32_MIN, 0, 1 << 30, INT32_MAX])),
        shift=draw(edge_biased(0, 63, [0, 1, 31, 32, 63])),
        mul=draw(st.integers(0, 1)),  # ignored outside VADD
    )
    return w, acc, draw(st.integers(0, 2))


@settings(max_examples=15, deadline=None)
@given(st.data())
def test_vector_random_words_equal_the_numerics(data):
    rows, cols = data.draw(st.sampled_from(SHAPES))
    config = small_config(rows, cols)
    items = data.draw(st.lists(words_and_rows(rows, cols), min_size=1, max_size=20))
    words, accs, gaps = zip(*items, strict=True)
    got = run_words(config, list(words), list(accs), list(gaps))
    assert got == [reference(w, a, cols) for w, a in zip(words, accs, strict=True)]


# --- whole instructions ---------------------------------------------------------------------


# --- construction ---------------------------------------------------------------------------


def test_vector_reports_lanes_and_latency():
    dut = VectorUnit(small_config(4, 3))
    assert (dut.lanes, dut.latency) == (3, timing.VECTOR_LATENCY)
    assert VectorUnit(small_config(2, 4)).lanes == 2


def test_vector_rejects_a_config_that_is_not_an_accel_config():
    with pytest.raises(TypeError, match=re.escape("config must be an AccelConfig, not 'tiny'")):
        VectorUnit("tiny")


def test_vector_rejects_a_contract_with_another_latency(monkeypatch):
    monkeypatch.setattr(timing, "VECTOR_LATENCY", 3)
    with pytest.raises(
        ValueError, match=r"accel\.timing\.VECTOR_LATENCY = 3, but the vector unit has 5 stages"
    ):
        VectorUnit(small_config(2, 2))
