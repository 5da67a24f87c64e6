"""Lowering of the layout ops: data movement by DMA addressing, no arithmetic.

Nearest-neighbour upsampling by integer factors ``(fh, fw)`` (:class:`accel.graph.Upsample`)
is an identity pass of the vector unit (a 1x1 VMAX and a PASS POST: each output word is its
input word) whose results are STOREd ``fh * fw`` times, once into each *phase* of the output
(:class:`~accel.compiler.emit.Phase`, the placement of a transposed convolution's phases):
output pixel ``(i*fh + a, j*fw + b)`` is input pixel ``(i, j)`` for every ``a < fh``,
``b < fw``. So the input is read once, no MAC runs, and the DMA writes every output byte
once. The pass has the output quantisation of its input (the int8 golden is a copy), and a
STORE with a row stride of ``fh`` rows and a pixel stride of ``fw`` pixels places each copy.

A channel slice (:class:`accel.graph.ChannelSlice`) is a view where the plan allows one
(:func:`accel.compiler.plan.channel_views`): its readers load channels ``start .. stop`` of
its source in place, like a concat's inputs are stored in place, and nothing runs. Where it
cannot be a view (it feeds a concat, a flatten or a linear layer, or is an output) it is the
same identity pass with factor 1, loading only those channels.

Depth to space with block ``b`` in DCR order (:class:`accel.graph.DepthToSpace`: output
pixel ``(h*b + i, w*b + j)``, channel ``c`` is input channel ``(i*b + j)*C + c`` of pixel
``(h, w)``) is ``b * b`` identity passes, pass ``(i, j)`` loading channel block ``i*b + j``
of the input and STOREing into phase ``(i, j)`` of the output. Space to depth, its
inverse (:class:`accel.graph.SpaceToDepth`), is the same passes the other way: pass
``(i, j)`` loads phase ``(i, j)`` of the input (the DMA's row and pixel strides, as a
strided 1x1 convolution loads) and STOREs into channel block ``i*b + j`` of the output.

A channel shuffle with ``g`` groups (:class:`accel.graph.ChannelShuffle`: output channel
``k*g + i`` is input channel ``i*m + k``, ``m = C/g``) reads every ``g``-th channel, which no
run of contiguous channels addresses; but each group is contiguous in the input and strided
in the output. So it is ``g`` identity passes, pass ``i`` loading channels ``i*m .. i*m + m``
(in lane tiles) and STOREing them with ``lane_stride`` ``g`` (a scatter STORE,
:class:`accel.isa.Store`: lane ``k`` to byte ``k*g`` from channel ``i``, byte strobes leaving
the other groups' bytes alone). Every byte is read once and written once; a STORE run of
``n`` lanes spans ``(n - 1)*g + 1`` bytes and costs the bus blocks it touches.

Depth to space in CRD order (:class:`accel.graph.PixelShuffle`: output pixel ``(h*b + i,
w*b + j)``, channel ``c`` is input channel ``c*b*b + i*b + j``) keeps, of the input's
contiguous channels, only the ``b`` of one ``(c, i)`` together in one output row: input
channels ``c*b*b + i*b + j`` for ``j < b`` go to the ``b`` pixels ``w*b + j`` of output row
``h*b + i``, channel ``c``, i.e. to every ``pixel_stride``-th byte. So it is ``C * b``
identity passes of ``b`` lanes, pass ``(c, i)`` STOREing into phase ``(i, 0)`` of the output
(every ``b``-th row and pixel) with ``lane_stride`` = the output's pixel stride. Exact, but
``b`` of the lanes do work, and a run touches about ``(b - 1) * C`` bytes of bus blocks:
cheap for the few channels super-resolution heads have, slow for wide tensors.
"""

from __future__ import annotations

from dataclasses import replace

from accel import graph as g
from accel.compiler.emit import Emitter, Phase
from accel.compiler.lower_vector import vector_block
from accel.compiler.tiling import TilingError, Window, choose_tiling
from accel.isa import ComputeMode, Post, PostMode
from accel.program import TensorLayout
from accel.timing import ceil_div


def lower_channel_slice(
    em: Emitter, node: str, op: g.ChannelSlice, x: TensorLayout, y: TensorLayout
) -> dict:
    """Lower a channel slice of ``x`` into ``y``: nothing for a view, else a copy of its
    channels (module docstring); returns the layer's mapping."""
    # Stored elsewhere and read by no concat: a view (a copy stored elsewhere is a concat
    # input).
    if em.plan.root[node] != node and not any(
        isinstance(em.net.op(c), g.Concat) for c in em.net.consumers(node)
    ):
        return {"unit": f"none (view of channels {op.start}..{op.stop} of {x.name!r})"}
    channels = replace(x, channels=op.stop - op.start, channel_offset=x.channel_offset + op.start)
    mapping = copy_pass(em, node, channels, y, [Phase()])
    return {**mapping, "unit": f"vector (identity pass: a copy of channels {op.start}..{op.stop})"}


def lower_upsample(
    em: Emitter, node: str, factor: tuple[int, int], x: TensorLayout, y: TensorLayout
) -> dict:
    """Lower an integer-factor nearest upsampling of ``x`` into ``y`` (module docstring; a
    copy for factor 1); returns the layer's mapping."""
    fh, fw = factor
    phases = [Phase(a, b, (fh, fw)) for a in range(fh) for b in range(fw)]
    mapping = copy_pass(em, node, x, y, phases)
    return {**mapping, "stores per tile": fh * fw}


def lower_depth_to_space(
    em: Emitter, node: str, op: g.DepthToSpace, x: TensorLayout, y: TensorLayout
) -> dict:
    """Lower a DCR depth-to-space of ``x`` into ``y``: channel block ``i*b + j`` of the
    input, copied by an identity pass, is STOREd into phase ``(i, j)`` of the output
    (module docstring); returns the layer's mapping."""
    b = op.block
    c = y.channels
    mappings = [
        copy_pass(
            em,
            node,
            replace(x, channels=c, channel_offset=x.channel_offset + (i * b + j) * c),
            y,
            [Phase(i, j, (b, b))],
        )
        for i in range(b)
        for j in range(b)
    ]
    return merged(mappings, phases=b * b)


def lower_space_to_depth(
    em: Emitter, node: str, op: g.SpaceToDepth, x: TensorLayout, y: TensorLayout
) -> dict:
    """Lower a space-to-depth of ``x`` into ``y``: phase ``(i, j)`` of the input (every
    ``b``-th row and column from ``(i, j)``, loaded with the DMA's row and pixel strides),
    copied by an identity pass, is STOREd into channel block ``i*b + j`` of the output
    (module docstring); returns the layer's mapping."""
    b = op.block
    c = x.channels
    mappings = [
        copy_pass(
            em,
            node,
            # The phase's first pixel as the layout's origin: rows and columns then step by b.
            replace(x, addr=x.addr + (i * x.width + j) * x.pixel_stride),
            replace(y, channels=c, channel_offset=y.channel_offset + (i * b + j) * c),
            [Phase()],
            step=(b, b),
        )
        for i in range(b)
        for j in range(b)
    ]
    return merged(mappings, phases=b * b)


def lower_channel_shuffle(
    em: Emitter, node: str, op: g.ChannelShuffle, x: TensorLayout, y: TensorLayout
) -> dict:
    """Lower a channel shuffle of ``x`` into ``y``: group ``i`` of the input, copied by an
    identity pass, is scattered to every ``g``-th channel of the output from channel ``i``
    (module docstring); returns the layer's mapping."""
    groups = op.groups
    m = x.channels // groups
    mappings = [
        copy_pass(
            em,
            node,
            replace(x, channels=m, channel_offset=x.channel_offset + i * m),
            replace(y, channels=m, channel_offset=y.channel_offset + i),
            [Phase(lane_stride=groups)],
        )
        for i in range(groups)
    ]
    return merged(mappings, unit="vector (identity pass) + scatter STORE", groups=groups)


def lower_pixel_shuffle(
    em: Emitter, node: str, op: g.PixelShuffle, x: TensorLayout, y: TensorLayout
) -> dict:
    """Lower a CRD depth-to-space of ``x`` into ``y``: input channels ``c*b*b + i*b ..
    c*b*b + i*b + b``, copied by an identity pass, are scattered to the ``b`` pixels of phase
    ``(i, 0)`` of the output, channel ``c`` (module docstring); returns the layer's mapping."""
    b = op.block
    mappings = [
        copy_pass(
            em,
            node,
            replace(x, channels=b, channel_offset=x.channel_offset + c * b * b + i * b),
            replace(y, channels=b, channel_offset=y.channel_offset + c),
            [Phase(i, 0, (b, b), lane_stride=y.pixel_stride)],
        )
        for c in range(y.channels)
        for i in range(b)
    ]
    return merged(mappings, unit="vector (identity pass) + scatter STORE", passes=len(mappings))


def merged(mappings: list[dict], **fields) -> dict:
    """The mapping of a layer made of several copy passes (:func:`copy_pass`): the first one's, with
    ``fields`` and the tiles of them all."""
    return {**mappings[0], **fields, "tiles": sum(m["tiles"] for m in mappings)}


def copy_pass(
    em: Emitter,
    node: str,
    x: TensorLayout,
    y: TensorLayout,
    phases: list[Phase],
    step: tuple[int, int] = (1, 1),
) -> dict:
    """An identity pass of the vector unit over ``x`` (subsampled by ``step`` on load; tiled
    over its pixels and channel tiles), each POSTed tile STOREd into every phase of
    ``phases`` of ``y``; the mapping."""
    if em.quant(node) != em.quant(em.net.inputs(node)[0]):
        raise em.fail(node, "its input is quantised differently from its output")
    lanes = em.config.vector_lanes
    n_ct = ceil_div(x.channels, lanes)
    window = Window()
    height, width = ceil_div(x.height, step[0]), ceil_div(x.width, step[1])
    try:
        tiling = choose_tiling(em.hardware, (height, width), window, 1, n_ct, 1, vector=True)
    except TilingError as err:
        raise em.fail(node, str(err)) from None
    em.tile_pixels = tiling.tile_h * tiling.tile_w
    out_tiles = tiling.output_tiles(height, width)
    chunk = max(1, min(n_ct, tiling.in_slot_words // em.tile_pixels))
    in_slots = 2 if len(out_tiles) * ceil_div(n_ct, chunk) > 1 else 1
    slot_words = em.in_ring.capacity // in_slots
    chunk = max(1, min(n_ct, slot_words // em.tile_pixels))
    block = vector_block(em, x, window, ComputeMode.VMAX, {"pad_value": -128})
    post = Post(mode=PostMode.PASS)
    index = em.log.index
    for tile in out_tiles:
        p0, q0, th, tw = tile
        for ct_lo in range(0, n_ct, chunk):
            cts = range(ct_lo, min(n_ct, ct_lo + chunk))
            slot = em.next_in_slot(in_slots, slot_words)
            in_range = (slot, slot + len(cts) * th * tw)
            ct_stride = em.load_input_tile(x, (p0, q0), (th, tw), slot, cts, lanes, step)
            for i, ct in enumerate(cts):
                acc_base = em.next_acc_slot()
                base = slot + i * ct_stride
                block.rows.extend((base, 0, ct_stride, tw, th, tw, p0, q0, acc_base))
                block.rows.extend((*in_range, index()))
                k0 = ct * lanes
                out_base = em.post_and_store(acc_base, None, post, y, tile, k0, lanes, phases[0])
                for phase in phases[1:]:
                    em.store(out_base, y, tile, k0, lanes, phase)
    return {
        "unit": "vector (identity pass) + DMA",
        "mode": "VMAX 1x1",
        "tile": [tiling.tile_h, tiling.tile_w],
        "tiles": len(out_tiles),
        "c_tiles": n_ct,
    }
