"""Lowering of the vector-unit layers: pooling (VMAX, VSUM), the residual add (VADD) and the
elementwise product (VMUL: VADD with ``mul``).

``lower_vector(em, node, sources, y, window, mode, post, params, extra) -> mapping`` appends
one layer's instructions to the :class:`~accel.compiler.emit.Emitter`: for each output tile
and each group of channel tiles, load the input windows of every operand, then per channel
tile COMPUTE (through the same window generator as the array), POST and STORE. Channel
tiles are independent here (no reduction across them). ``params`` is the one parameter word
(bias, multiplier, shift) every channel shares, or ``None`` (max pooling). A per-channel
broadcast operand b (``extra["broadcast_b"]``, an ``(C, 1, 1)`` tensor) loads its one pixel
per channel tile at the start of its operand slot, where the COMPUTE reads it for every pixel.

A sum over the whole image (a global average pool) whose window does not fit the input
buffer (the whole of it, or half per channel tile when several are loaded at once), or is
wider or taller than the largest kernel a COMPUTE encodes, is summed in blocks
(:func:`lower_sum_in_blocks`): VSUM of one block, then VSUMs that accumulate the next blocks
into the same accumulator row; the int32 sum, hence the result, is the one a single window
gives.
"""

from __future__ import annotations

import numpy as np

from accel.compiler.emit import VECTOR_MIN, Emitter, Params, input_window
from accel.compiler.ops import READ, WRITE, Access, Block, runs, starts
from accel.compiler.tiling import TilingError, Window, choose_tiling, split
from accel.isa import Buffer, Compute, ComputeMode, Load, Post
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
    whole = (
        mode == ComputeMode.VSUM
        and window.kernel == (x.height, x.width)
        and not any(window.padding)
        and (y.height, y.width) == (1, 1)
    )
    if whole and max(window.kernel) > MAX_KERNEL:
        return lower_sum_in_blocks(em, x, y, post, layer_params, extra)
    try:
        tiling = choose_tiling(
            em.hardware, (y.height, y.width), window, operands, n_ct, taps, vector=True
        )
    except TilingError as err:
        if whole:
            return lower_sum_in_blocks(em, x, y, post, layer_params, extra)
        raise em.fail(node, str(err)) from None
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
    block = vector_block(em, x, window, mode, extra)
    broadcast = bool(extra.get("broadcast_b"))
    groups = [
        (tile, range(lo, min(n_ct, lo + chunk)))
        for tile in out_tiles
        for lo in range(0, n_ct, chunk)
    ]
    if len(out_tiles) * n_ct >= VECTOR_MIN:
        lower_columns(
            em, sources, y, window, groups, (in_slots, slot_words), layer_params, post, block,
            broadcast,
        )  # fmt: skip
        out_tiles_left = []
    else:
        out_tiles_left = out_tiles
    compute_rows = block.rows
    index = em.log.index
    for tile in out_tiles_left:
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
                bases.append(base)
                if i == 1 and broadcast:  # one pixel per channel tile, at a's channel stride
                    for j, ct in enumerate(cts):
                        em.load_input_tile(
                            src, (0, 0), (1, 1), base + j * ih * iw, range(ct, ct + 1), lanes
                        )
                    continue
                ct_stride = em.load_input_tile(src, origin, (ih, iw), base, cts, lanes)
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
        "mode": "VMUL" if extra.get("mul") else mode.name,
        "tile": [tiling.tile_h, tiling.tile_w],
        "tiles": len(out_tiles),
        "c_tiles": n_ct,
    }


#: The largest kernel a COMPUTE encodes (its ``kernel_h``, ``kernel_w`` fields: 8 bits).
MAX_KERNEL = 255


def lower_sum_in_blocks(
    em: Emitter,
    x: TensorLayout,
    y: TensorLayout,
    post: Post,
    params: Params,
    extra: dict,
) -> dict:
    """Sum the whole ``x`` into the ``1 x 1`` ``y`` block by block, for a window the input
    buffer or a COMPUTE's kernel fields cannot hold (``params``: the layer's parameter word,
    placed). Per channel tile: load a block of whole rows (of as many columns as fit, when
    one row does not), VSUM it over its whole extent (kernel = the block, origin = its
    corner) into the tile's accumulator row, the first block overwriting and the others
    accumulating; then one POST and STORE. The blocks are double-buffered: the next one
    loads while the vector unit sums this one. Consecutive VSUMs into one row meet the
    accumulator contract on their own (a one-pixel pass holds the feed slot
    ``VECTOR_MIN_PASS > VECTOR_LATENCY`` cycles)."""
    lanes = em.config.vector_lanes
    n_ct = ceil_div(x.channels, lanes)
    em.tile_pixels = 1
    slot_words = em.in_ring.capacity // 2
    block_w = min(x.width, slot_words, MAX_KERNEL)
    block_h = min(x.height, slot_words // block_w, MAX_KERNEL)
    blocks = [
        (r0, rh, c0, cw)
        for r0, rh in split(x.height, block_h)
        for c0, cw in split(x.width, block_w)
    ]
    template = Compute(
        mode=ComputeMode.VSUM, ct_count=1, image_h=x.height, image_w=x.width, **extra
    )

    def accesses(c: dict[str, np.ndarray]) -> list[Access]:
        acc = c["acc_base"]
        return [("in", READ, c["in_lo"], c["in_hi"]), ("acc", WRITE, acc, acc + 1)]

    names = (
        *("accumulate", "in_base", "ct_stride", "tile_w", "kernel_h", "kernel_w"),
        *("origin_h", "origin_w", "acc_base"),
    )
    block = em.block(("vector sum",), template, names, ("in_lo", "in_hi"), accesses)
    index = em.log.index
    for ct in range(n_ct):
        acc_base = em.next_acc_slot()
        for i, (r0, rh, c0, cw) in enumerate(blocks):
            slot = em.next_in_slot(2, slot_words)
            in_range = (slot, slot + rh * cw)
            stride = em.load_input_tile(x, (r0, c0), (rh, cw), slot, range(ct, ct + 1), lanes)
            block.rows.extend(
                (int(i > 0), slot, stride, cw, rh, cw, r0, c0, acc_base, *in_range, index())
            )
        pw = em.param_word(params, 0)
        em.post_and_store(acc_base, pw, post, y, (0, 0, 1, 1), ct * lanes, lanes)
    return {
        "unit": "vector",
        "mode": ComputeMode.VSUM.name,
        "tile": [1, 1],
        "tiles": 1,
        "c_tiles": n_ct,
        "input": f"summed in {len(blocks)} blocks of up to {blocks[0][1]}x{blocks[0][3]}",
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


def lower_columns(
    em: Emitter,
    sources: list[TensorLayout],
    y: TensorLayout,
    window: Window,
    groups: list[tuple[tuple[int, int, int, int], range]],
    slots: tuple[int, int],
    params: Params | None,
    post: Post,
    block: Block,
    broadcast: bool = False,
) -> None:
    """The whole layer in numpy columns: the same instructions, in the same program order,
    as the loop of :func:`lower_vector` over the ``groups`` (an output tile and the
    channel tiles loaded at once; ``broadcast``: operand b is one pixel, read for all)."""
    lanes, operands = em.config.vector_lanes, len(sources)
    (sh, sw), (top, _, left, _) = window.stride, window.padding

    # Per group (in Python): its window, slot and the input loads of every operand.
    rows, loads = [], []
    for g, ((p0, q0, th, tw), cts) in enumerate(groups):
        ih, iw = window.input_extent(th, tw)
        origin = (p0 * sh - top, q0 * sw - left)
        slot = em.next_in_slot(*slots)
        per_operand = len(cts) * ih * iw
        rows.append((p0, q0, th, tw, *origin, iw, ih * iw, slot, slot + operands * per_operand))
        for i, src in enumerate(sources):
            if i == 1 and broadcast:
                found = input_window(src, (0, 0), (1, 1), slot + i * per_operand)
            else:
                found = input_window(src, origin, (ih, iw), slot + i * per_operand)
            if found is not None:
                loads.append((g, i, *found))
    p0, q0, th, tw, h0, w0, width, ct_stride, in_lo, in_hi = np.array(rows, dtype=np.int64).T
    n_g = len(groups)
    g_cts = np.array([len(cts) for _, cts in groups], dtype=np.int64)
    g_ct0 = np.array([cts.start for _, cts in groups], dtype=np.int64)
    load_g, load_i, dram0, sram0, load_rows, load_cols = (
        np.array(loads, dtype=np.int64).reshape(-1, 6).T
    )
    g_loads = np.bincount(load_g, weights=g_cts[load_g], minlength=n_g).astype(np.int64)

    # Units: one per channel tile of each group (COMPUTE, its parameter word if streamed,
    # the layer's resident parameter load before the first POST, POST, STORE).
    u_g, u_i = runs(g_cts)  # per unit: its group, its channel tile among the group's
    u_ct = g_ct0[u_g] + u_i
    streamed = params is not None and params.resident is None
    pending = np.zeros(len(u_g), dtype=np.int64)
    pending[0] = em.pending_param_load is not None
    unit_ops = 3 + int(streamed) + pending
    group_ops = g_loads + np.bincount(u_g, weights=unit_ops, minlength=n_g).astype(np.int64)
    first = em.log.take(int(group_ops.sum()))
    group_base = first + starts(group_ops)
    unit_start = starts(unit_ops)  # then relative to the group's first unit
    unit_base = (group_base + g_loads)[u_g] + unit_start - unit_start[starts(g_cts)][u_g]

    # Input loads, operand after operand, every channel tile of the group.
    if len(load_g):
        n = g_cts[load_g]
        # The loads of the group's earlier operands come first.
        before = starts(n) - starts(n)[np.searchsorted(load_g, load_g)]
        l_k, l_i = runs(n)
        for i, src in enumerate(sources):
            mine = load_i[l_k] == i
            k, j = l_k[mine], l_i[mine]
            if not len(k):
                continue
            g = load_g[k]
            c0 = (g_ct0[g] + j) * lanes
            # The words of its channel tile: a plane of the operand's part of the slot, one
            # word for a broadcast operand.
            plane = in_lo[g] + (i * g_cts[g] + j) * ct_stride[g]
            size = 1 if i == 1 and broadcast else ct_stride[g]
            em.input_block(src, (1, 1)).append_columns(
                dram0[k] + c0,
                sram0[k] + j * ct_stride[g],
                load_rows[k],
                width[g],
                load_cols[k],
                np.minimum(lanes, src.channels - c0),
                plane,
                plane + size,
                group_base[g] + before[k] + j,
            )

    # COMPUTE per unit, on the group's slot and the next accumulator slot.
    n_u = len(u_g)
    step = np.arange(n_u)
    acc = em.acc_ring
    acc_base = (acc.count + step) % em.acc_slots * (acc.capacity // em.acc_slots)
    acc.count += n_u
    per_operand = (in_hi - in_lo) // operands
    base_a = in_lo[u_g] + u_i * ct_stride[u_g]
    base_b = (
        in_lo[u_g] + per_operand[u_g] + u_i * ct_stride[u_g]
        if operands > 1
        else u_i * ct_stride[u_g]
    )
    block.append_columns(
        base_a,
        base_b,
        ct_stride[u_g],
        width[u_g],
        th[u_g],
        tw[u_g],
        h0[u_g],
        w0[u_g],
        acc_base,
        in_lo[u_g],
        in_hi[u_g],
        unit_base,
    )
    after = unit_base + 1
    if params is None:
        param_base = 0
    elif streamed:
        p = em.p_ring
        words = (p.count + step) % 2
        p.count += n_u
        size = em.config.param_word_bytes
        em.param_block(Load(buffer=Buffer.PARAM, run_bytes=size), resident=False).append_columns(
            params.addr, words, after
        )
        param_base = words
        after = after + 1
    else:
        param_base = params.resident[0]
    if em.pending_param_load is not None:
        load, lo, hi = em.pending_param_load
        em.param_block(load, resident=True).rows.extend(
            (load.dram_addr, load.sram_addr, hi - lo, int(after[0]))
        )
        em.pending_param_load = None
    after = after + pending
    out = em.out_ring
    out_base = (out.count + step) % em.out_slots * (out.capacity // em.out_slots)
    out.count += n_u
    em.post_and_store_columns(
        post, params is not None, y, acc_base=acc_base, param_base=param_base,
        out_base=out_base, p0=p0[u_g], q0=q0[u_g], th=th[u_g], tw=tw[u_g], k0=u_ct * lanes,
        lanes=lanes, after=after,
    )  # fmt: skip
