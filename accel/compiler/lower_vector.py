"""Lowering of the vector-unit layers: pooling (VMAX, VSUM) and the residual add (VADD).

``lower_vector(em, node, sources, y, window, mode, post, params, extra) -> mapping`` appends
one layer's instructions to the :class:`~accel.compiler.emit.Emitter`: for each output tile
and each group of channel tiles, load the input windows of every operand, then per channel
tile COMPUTE (through the same window generator as the array), POST and STORE. Channel
tiles are independent here (no reduction across them). ``params`` is the one parameter word
(bias, multiplier, shift) every channel shares, or ``None`` (max pooling).
"""

from __future__ import annotations

import numpy as np

from accel.compiler.emit import Emitter
from accel.compiler.ops import READ, WRITE, Access, Block
from accel.compiler.tiling import Window
from accel.isa import Compute, ComputeMode, Post
from accel.program import TensorLayout
from accel.timing import ceil_div


def lower_vector(
    em: Emitter,
    node: str,
    sources: list[TensorLayout],
    y: TensorLayout,
    window: Window,
    mode: ComputeMode,
    post: Post,
    params: np.ndarray | None,
    extra: dict,
) -> dict:
    """Lower one vector-unit layer of ``sources`` (one or two operands) into ``y``;
    ``extra`` holds the mode's COMPUTE fields (padding value, zero points, rescaling)."""
    lanes = em.config.vector_lanes
    x = sources[0]
    n_ct = ceil_div(x.channels, lanes)
    layer_params = None
    if params is not None:
        layer_params = em.load_params(np.broadcast_to(params, (1, em.cols, 3)).copy())
    operands = len(sources)
    # Channel tiles are independent here: pick the largest spatial tile for one channel
    # tile of every operand, then hold as many channel tiles as the slot has room for.
    taps = 2 if mode == ComputeMode.VADD else window.kernel[0] * window.kernel[1]
    tiling = em.choose_tiling(node, (y.height, y.width), window, operands, n_ct, taps, vector=True)
    if tiling.channel_chunk < operands:
        ih, iw = window.input_extent(1, 1)
        raise em.fail(
            node,
            f"the input windows of one output pixel of its {operands} operands need "
            f"{operands * ih * iw * em.rows} bytes, more than half of buffers.input_bytes = "
            f"{em.config.buffers.input_bytes}",
        )
    em.tile_pixels = tiling.tile_h * tiling.tile_w
    (sh, sw) = window.stride
    top, _, left, _ = window.padding
    out_tiles = tiling.output_tiles(y.height, y.width)
    ih_max, iw_max = window.input_extent(tiling.tile_h, tiling.tile_w)
    per_tile = operands * ih_max * iw_max  # words of one channel tile of every operand
    chunk = min(n_ct, tiling.in_slot_words // per_tile)
    in_slots = 2 if len(out_tiles) * ceil_div(n_ct, chunk) > 1 else 1
    slot_words = em.in_ring.capacity // in_slots
    chunk = min(n_ct, slot_words // per_tile)
    if chunk == 0:
        # One channel tile's windows fit only the whole buffer: no double buffering, each
        # load waits for the compute of the previous channel tile.
        in_slots, slot_words = 1, em.in_ring.capacity
        chunk = 1
    compute_rows = vector_block(em, x, window, mode, extra).rows
    index = em.log.index
    for tile in out_tiles:
        p0, q0, th, tw = tile
        ih, iw = window.input_extent(th, tw)
        origin = (p0 * sh - top, q0 * sw - left)
        for ct_lo in range(0, n_ct, chunk):
            cts = range(ct_lo, min(n_ct, ct_lo + chunk))
            slot_base = em.next_in_slot(in_slots, slot_words)
            per_operand = len(cts) * ih * iw
            in_range = (slot_base, slot_base + operands * per_operand)
            bases = []
            for i, src in enumerate(sources):
                base = slot_base + i * per_operand
                ct_stride = em.load_input_tile(src, origin, (ih, iw), base, cts, lanes, in_range)
                bases.append(base)
            base_b = bases[1] if operands > 1 else 0
            for i, ct in enumerate(cts):
                acc_base = em.next_acc_slot()
                compute_rows.extend(
                    (
                        bases[0] + i * ct_stride,
                        base_b + i * ct_stride,
                        ct_stride,
                        iw,
                        th,
                        tw,
                        origin[0],
                        origin[1],
                        acc_base,
                        *in_range,
                        index(),
                    )
                )
                pw = None if layer_params is None else em.param_word(layer_params, 0)
                em.post_and_store(acc_base, pw, post, y, tile, ct * lanes, lanes)
    return {
        "unit": "vector",
        "mode": mode.name,
        "tile": [tiling.tile_h, tiling.tile_w],
        "tiles": len(out_tiles),
        "c_tiles": n_ct,
    }


def vector_block(
    em: Emitter, x: TensorLayout, window: Window, mode: ComputeMode, extra: dict
) -> Block:
    """The layer's vector-unit COMPUTEs: read the input slot, write accumulators."""
    template = Compute(
        mode=mode,
        ct_count=1,
        image_h=x.height,
        image_w=x.width,
        stride_h=window.stride[0],
        stride_w=window.stride[1],
        dil_h=window.dilation[0],
        dil_w=window.dilation[1],
        kernel_h=window.kernel[0],
        kernel_w=window.kernel[1],
        **extra,
    )

    def accesses(c: dict[str, np.ndarray]) -> list[Access]:
        acc = c["acc_base"]
        return [
            ("in", READ, c["in_lo"], c["in_hi"]),
            ("acc", WRITE, acc, acc + c["out_h"] * c["out_w"]),
        ]

    names = (
        *("in_base", "in_base_b", "ct_stride", "tile_w", "out_h", "out_w"),
        *("origin_h", "origin_w", "acc_base"),
    )
    return em.block(("vector",), template, names, ("in_lo", "in_hi"), accesses)
