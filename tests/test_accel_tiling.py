"""The tiling cost model alone (``accel.compiler.tiling``), on a small hand-checked machine.

A 4x4 array, 256 input words (so 128 per half), 64 accumulator rows and 64 output words
(so at most 32 pixels per tile, with two slots each), DRAM 4 bytes/cycle (one beat per input
word) and 100 cycles of latency. The estimate of a tile (``choose_tiling``'s docstring) is
``load + tiles * max(compute, load) + drain + 0.1 * instructions`` with
``load = 100 + c_tiles * ih * iw``, ``compute = k_tiles * passes * max(pixels, 4)``,
``drain = 4 + 4 + 2 * pixels + POST_LATENCY (4) + 100`` and
``instructions = tiles * (3 * k_tiles + c_tiles)``.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from accel import config
from accel.compiler.tiling import Hardware, Tiling, TilingError, Window, choose_tiling, split

HW = Hardware(
    rows=4,
    cols=4,
    input_words=256,
    acc_rows=64,
    output_words=64,
    dram_bandwidth=4,
    dram_latency=100,
    input_bytes=1024,
)


def test_whole_output_in_one_tile():
    # 3x3 conv, 2x2 output, one channel tile, one k tile (9 passes). Candidates:
    #   2x2: 1 tile,  load 100 + 4*4 = 116, compute 9*4 = 36: 116 + 116 + 120 + 0.4 = 352.4
    #   1x2: 2 tiles, load 100 + 3*4 = 112:                   112 + 224 + 116 + 0.8 = 452.8
    #   1x1: 4 tiles, load 100 + 3*3 = 109:                   109 + 436 + 114 + 1.6 = 660.6
    tiling = choose_tiling(HW, (2, 2), Window((3, 3)), c_tiles=1, k_tiles=1, passes=9)
    assert tiling == Tiling(2, 2, in_slots=2, in_slot_words=128, channel_chunk=1)
    assert tiling.output_tiles(2, 2) == [(0, 0, 2, 2)]


def test_output_split_into_whole_rows():
    # 1x1 conv, 8x8 output: the accumulator and output halves hold 32 pixels, so at most 4
    # rows of 8. Load-bound (each tile pays the 100-cycle latency), so the fewest tiles win:
    #   4x8: 2 tiles, load 132: 132 + 2*132 + 176 + 0.8 = 572.8
    #   3x8: 3 tiles, load 124: 124 + 3*124 + 160 + 1.2 = 657.2
    #   2x8: 4 tiles, load 116: 116 + 4*116 + 144 + 1.6 = 725.6  (1x8, 1x4, ...: more)
    tiling = choose_tiling(HW, (8, 8), Window(), c_tiles=1, k_tiles=1, passes=1)
    assert tiling == Tiling(4, 8, in_slots=2, in_slot_words=128, channel_chunk=1)
    assert tiling.output_tiles(8, 8) == [(0, 0, 4, 8), (4, 0, 4, 8)]


def test_one_slot_when_a_single_tile_needs_more_than_half():
    # 1x1 output of a 3x3 window over 20 channel tiles: 9 * 20 = 180 words > 128, but it is
    # the only tile, so it takes the whole buffer.
    tiling = choose_tiling(HW, (1, 1), Window((3, 3)), c_tiles=20, k_tiles=1, passes=180)
    assert tiling == Tiling(1, 1, in_slots=1, in_slot_words=256, channel_chunk=20)


def test_one_slot_for_several_tiles_when_the_wait_costs_less_than_reloads():
    # 1x1 conv, 8x8 output, 6 channel tiles, 1,000 weight words streamed per tile. 4x8 tiles
    # need 6 * 32 = 192 input words, more than a half: one slot, so each tile's inputs load
    # (100 + 192 = 292 cycles) after the tile before it, but the weights stream half as often:
    #   4x8: load 292 + 1000 = 1292: 1292 + 2*(1292 + 292) + 179 + 1.8 = 4640.8
    #   2x8: load 196 + 1000 = 1196, two slots: 1196 + 4*1196 + 147 + 3.6 = 6130.6
    # With 100 weight words the wait costs more than it saves and 2x8 in two slots wins.
    one = choose_tiling(HW, (8, 8), Window(), c_tiles=6, k_tiles=1, passes=6, streamed_words=1000)
    assert one == Tiling(4, 8, in_slots=1, in_slot_words=256, channel_chunk=6)
    two = choose_tiling(HW, (8, 8), Window(), c_tiles=6, k_tiles=1, passes=6, streamed_words=100)
    assert two == Tiling(2, 8, in_slots=2, in_slot_words=128, channel_chunk=6)


def test_channels_chunked_when_one_pixel_needs_more_than_half():
    # 2x2 output of a 3x3 window over 20 channel tiles: the whole tile (4*4*20 = 320 words)
    # exceeds the buffer and every smaller tile (1x2: 240, 1x1: 180) exceeds half of it,
    # so single pixels load 128 // 9 = 14 channel tiles at a time (a 1x1 tile in one slot
    # fits, but with no double-buffered tiling beside it chunking keeps the loads overlapped).
    tiling = choose_tiling(HW, (2, 2), Window((3, 3)), c_tiles=20, k_tiles=1, passes=180)
    assert tiling == Tiling(1, 1, in_slots=2, in_slot_words=128, channel_chunk=14)


def test_window_larger_than_half_the_input_buffer():
    # 16 input words (64 bytes): one 3x3 window (9 words, 36 bytes) exceeds the 8-word half,
    # and with 3x3 output pixels no tile is the only one.
    small = replace(HW, input_words=16, input_bytes=64)
    with pytest.raises(TilingError) as err:
        choose_tiling(small, (3, 3), Window((3, 3)), c_tiles=1, k_tiles=1, passes=9)
    assert str(err.value) == (
        "one output pixel needs a 3x3 input window of 36 bytes, more than half of "
        "buffers.input_bytes = 64"
    )


def test_accumulator_or_output_too_small_for_one_pixel_names_the_buffer():
    """AccelConfig's minimums make these unreachable from a config; the cost model still
    names the buffer if handed such a machine."""
    with pytest.raises(TilingError, match=r"^buffers.acc_bytes holds 1 accumulator row\(s\)"):
        choose_tiling(replace(HW, acc_rows=1), (3, 3), Window((3, 3)), 1, 1, 9)
    with pytest.raises(TilingError, match=r"^buffers.output_bytes holds 1 output word\(s\)"):
        choose_tiling(replace(HW, output_words=1), (3, 3), Window((3, 3)), 1, 1, 9)


def test_split_is_even():
    assert split(10, 4) == [(0, 4), (4, 4), (8, 2)]
    assert split(8, 3) == [(0, 3), (3, 3), (6, 2)]
    assert split(7, 7) == [(0, 7)]


def test_window_input_extent():
    window = Window(kernel=(3, 5), stride=(2, 1), dilation=(1, 2))
    assert window.input_extent(4, 6) == ((4 - 1) * 2 + 2 + 1, (6 - 1) + 4 * 2 + 1)


def test_hardware_of_a_config():
    edge = config.preset("edge")
    hw = Hardware.of(edge)
    assert (hw.rows, hw.cols) == (edge.array.rows, edge.array.cols)
    assert (hw.input_words, hw.acc_rows, hw.output_words) == (
        edge.input_words,
        edge.acc_rows,
        edge.output_words,
    )
    assert (hw.dram_bandwidth, hw.dram_latency) == (edge.dram.bandwidth, edge.dram.latency)
    assert hw.input_bytes == edge.buffers.input_bytes
