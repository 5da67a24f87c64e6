"""Streamed weight chunks (``accel.compiler.lower_conv``): a layer's first chunks ramp up from
one channel tile, and a layer whose array reads each weight word once, as fast as the DMA
brings it, streams small chunks that share their ring slots."""

from __future__ import annotations

import numpy as np
import pytest

import sim
from accel.compiler import compile
from accel.compiler.lower_conv import chunk_ranges, weight_runs
from accel.config import preset as config_preset
from accel.isa import Buffer, Engine
from tests.layers import conv_qnet, conv_reference, random_input
from tests.test_equivalence_dataflow_rtl import MACHINES


@pytest.mark.parametrize(
    ("n", "per_chunk", "ramp", "sizes"),
    [
        (64, 32, False, [32, 32]),
        (10, 4, False, [4, 4, 2]),
        (100, 32, True, [1, 2, 3, 5, 8, 13, 21, 24, 23]),
        (64, 64, True, [1, 2, 3, 5, 8, 13, 32]),
        (3, 2, True, [1, 2]),
        (2, 2, True, [2]),
    ],
)
def test_chunks_cover_the_channel_tiles_once_ramped_from_one(n, per_chunk, ramp, sizes):
    chunks = chunk_ranges(range(5, 5 + n), per_chunk, ramp)
    assert [b - a for a, b, _ in chunks] == sizes
    assert [a for a, _, _ in chunks[1:]] == [b for _, b, _ in chunks[:-1]]
    assert chunks[0][0] == 5 and chunks[-1][1] == 5 + n
    assert all(b - a <= per_chunk for a, b, _ in chunks)
    ramped = [r for _, _, r in chunks]
    assert ramped == sorted(ramped, reverse=True)  # the ramp, then the even chunks
    assert any(ramped) == (ramp and sizes[0] == 1)


def test_a_paced_layer_streams_small_chunks_that_share_slots_and_stays_exact():
    config = MACHINES["is"]["8x8-is"]
    rng = np.random.default_rng(3)
    qnet = conv_qnet(rng, c=256, k=16, hw=(1, 1), kernel=(1, 1))
    program = compile(qnet, config)
    weights = [i for i in program.streams[Engine.LOAD] if i.buffer == Buffer.WEIGHT]
    slot = config.buffers.weight_bytes // config.array.cols // 3
    # Chunks of two channel tiles (16 words), five to a slot of 85 words.
    cols = config.array.cols
    assert [i.inner_count * i.run_bytes // cols for i in weights[:6]] == [16] * 6
    assert [i.sram_addr for i in weights[:6]] == [0, 16, 32, 48, 64, slot]
    x = random_input(rng, qnet)
    result = sim.run(program, program.make_image({"input": x}))
    np.testing.assert_array_equal(result.outputs["conv"], conv_reference(qnet, x))


def test_weight_loads_are_few_runs_of_whole_units():
    """One DRAM request per run: a weight LOAD is as few equal runs as the 16-bit run_bytes
    allows, each a whole number of LOAD units."""
    server = config_preset("server")  # 32 columns: 2,047 words fit a run
    assert weight_runs(server, 16) == 1
    assert weight_runs(server, 2048) == 2
    assert weight_runs(server, 4096) == 4  # at least 3, and 3 runs do not divide 4,096 words
    banked = config_preset("tiny").replace(dram={"bandwidth": 8}, buffers={"weight_banks": 2})
    assert weight_runs(banked, 512) == 1
    np.testing.assert_array_equal(weight_runs(server, np.array([16, 4096, 16])), [1, 4, 1])
