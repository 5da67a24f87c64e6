"""Lowering of a whole network: each layer, in topological order, to abstract instructions.

``lower_network(qnet, config, plan) -> Lowered``: every layer becomes a sequence of abstract
instructions in one sequential *program order*, each recording the buffer word ranges and
DRAM byte ranges it reads and writes. Convolutions (all kinds, and fully connected layers as
convolutions) run on the systolic array (:mod:`~accel.compiler.lower_conv`), transposed ones
as one convolution per output phase (:mod:`~accel.compiler.lower_transpose`); pooling and
residual adds run on the vector unit (:mod:`~accel.compiler.lower_vector`), layout ops by
DMA addressing (:mod:`~accel.compiler.lower_layout`); a concat costs
nothing (its inputs were stored into it) and a flatten is a view. A Pointwise activation is
its table, applied by the POSTs of its producer (:func:`~accel.compiler.plan.fusions`) or,
on its own, by the POSTs of an identity pass of the vector unit (a 1x1 VMAX). :func:`lower_layer` is
the dispatch by layer kind, and where a layer the hardware cannot run is rejected.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from accel import graph as g
from accel import numerics
from accel.compiler.emit import Emitter
from accel.compiler.errors import layer_error
from accel.compiler.lower_conv import lower_conv
from accel.compiler.lower_layout import (
    lower_channel_shuffle,
    lower_channel_slice,
    lower_depth_to_space,
    lower_pixel_shuffle,
    lower_space_to_depth,
    lower_upsample,
)
from accel.compiler.lower_transpose import lower_conv_transpose
from accel.compiler.lower_vector import lower_vector
from accel.compiler.ops import OpLog
from accel.compiler.plan import DramPlan, chw
from accel.compiler.tiling import Window
from accel.config import AccelConfig
from accel.isa import ComputeMode, Post, PostMode
from accel.program import LayerInfo
from accel.quantized import (
    AddQuant,
    ConvQuant,
    MulQuant,
    PoolQuant,
    PReluQuant,
    QuantizedNetwork,
    TableQuant,
)


@dataclass(frozen=True)
class Lowered:
    """A network in program order, before synchronisation."""

    ops: OpLog
    constants: np.ndarray  # weights and parameters from DRAM address 0 (uint8), zero-padded
    constants_size: int  # bytes of them (the array is at least this long)
    layers: list[LayerInfo]


def check_activations_fused(net: g.Network) -> None:
    """Reject a standalone activation: the hardware applies it in its producer's POST."""
    for node in net.order():
        if isinstance(net.op(node), g.Activation):
            raise layer_error(
                net,
                node,
                "a standalone activation must be fused into its producer "
                "(Conv2d, ConvTranspose2d, Linear or Add): use accel.graph.fuse_activations",
            )


def lower_network(qnet: QuantizedNetwork, config: AccelConfig, plan: DramPlan) -> Lowered:
    """Every layer but the inputs, in topological order, with its :class:`LayerInfo`."""
    net = qnet.network
    em = Emitter(qnet, config, plan)
    layers: list[LayerInfo] = []
    fused_into = set(plan.fused.values())
    for index, node in enumerate(n for n in net.order() if not isinstance(net.op(n), g.Input)):
        em.start_layer(index)
        table = plan.fused.get(node)  # the Pointwise whose table this layer's POSTs apply
        if table is None and isinstance(net.op(node), g.Pointwise) and node not in fused_into:
            table = node
        if table is not None:
            em.load_table(layer_quant(em, table, TableQuant).table)
        mapping = lower_layer(em, node)
        if node in plan.fused:
            mapping["activation"] = f"{plan.fused[node]} (table in POST)"
        srcs = net.inputs(node)
        layers.append(
            LayerInfo(
                index=index,
                name=node,
                kind=type(net.op(node)).__name__,
                in_shape=tuple(net.shape(srcs[0])) if srcs else (),
                out_shape=tuple(net.shape(node)),
                macs=net.macs(node) * plan.images,
                mapping=mapping,
            )
        )
    em.log.seal()
    constants = em.constants(plan.const_bound)
    return Lowered(em.log, constants, em.constants_size, layers)


def layer_quant(em: Emitter, node: str, cls: type):
    lq = em.qnet.layers.get(node)
    if not isinstance(lq, cls):
        raise em.fail(node, f"missing {cls.__name__} quantisation parameters")
    return lq


def pixelwise(net: g.Network, node: str) -> bool:
    """Whether ``node`` maps 1x1 inputs to a 1x1 output pixel by pixel (a fully connected
    layer after global pooling, a 1x1 convolution, an add or a table on 1x1 maps): it then
    runs a batch as the pixels of one 1 x images map (:meth:`DramPlan.pixels`)."""
    op = net.op(node)
    # A Flatten is a view: the maps it flattens are what the layer reads.
    srcs = [net.inputs(s)[0] if isinstance(net.op(s), g.Flatten) else s for s in net.inputs(node)]
    if not srcs or any(chw(net, n)[1:] != (1, 1) for n in (node, *srcs)):
        return False
    if isinstance(op, g.Linear | g.Add | g.Mul | g.Pointwise | g.GlobalAvgPool):
        return True
    if isinstance(op, g.Conv2d | g.MaxPool2d | g.AvgPool2d):
        return op.kernel == (1, 1) and op.stride == (1, 1) and not any(op.padding)
    return False


def lower_layer(em: Emitter, node: str) -> dict:
    """Lower one layer; returns its mapping (how it runs, for :class:`LayerInfo`).

    A batch runs layer by layer: a :func:`pixelwise` layer once, on the images as pixels;
    a layer on the array once, looping over the images inside (its resident weights load
    once; streamed weight chunks serve every image where the buffers hold a tile of each,
    :func:`~accel.compiler.lower_conv.lower_conv`); any other layer once per image."""
    net = em.net
    op = net.op(node)
    plan = em.plan
    if plan.images > 1 and pixelwise(net, node):
        views = [plan.pixels]
    else:
        views = [functools.partial(plan.layout, image=i) for i in range(plan.images)]
    if isinstance(op, g.Conv2d | g.ConvTranspose2d | g.Linear | g.PRelu):
        mapping = lower_array_layer(em, node, views)
    else:
        for view in views:
            mapping = lower_other_layer(em, node, view)
    if plan.images > 1:
        mapping["images"] = plan.images
        mapping.setdefault("batch", "images as pixels" if len(views) == 1 else "image by image")
    return mapping


def lower_array_layer(em: Emitter, node: str, views: list) -> dict:
    """A convolution, transposed convolution, fully connected layer or PRelu (an identity
    depthwise pass), every image of ``views`` (functions from a tensor name to its layout,
    one per image or one for the batch as pixels)."""
    net = em.net
    op = net.op(node)
    srcs = net.inputs(node)
    ys = [view(node) for view in views]
    if isinstance(op, g.Conv2d):
        xs = [view(srcs[0]) for view in views]
        cq = layer_quant(em, node, ConvQuant)
        window = Window(op.kernel, op.stride, op.dilation, op.padding)
        if node in em.plan.im2col:
            w = cq.weight.transpose(0, 2, 3, 1).reshape(op.out_channels, -1, 1, 1)
            targets = [em.plan.im2col_target(node, i) for i in range(len(views))]
            mapping = lower_conv(em, node, targets, ys, w, Window(), 1, cq)
            mapping["unit"] = "array (host im2col)"
            return mapping
        (sh, sw), (top, _, left, _) = op.stride, op.padding
        if op.kernel == (1, 1) and op.stride != (1, 1) and top % sh == 0 and left % sw == 0:
            # Strided 1x1 (ResNet downsample): load only the pixels it reads.
            sub = Window(padding=(top // sh, 0, left // sw, 0))
            mapping = lower_conv(em, node, xs, ys, cq.weight, sub, op.groups, cq, step=op.stride)
            mapping["input"] = f"subsampled by {op.stride[0]}x{op.stride[1]} on load"
            return mapping
        return lower_conv(em, node, xs, ys, cq.weight, window, op.groups, cq)
    if isinstance(op, g.PRelu):
        # An identity depthwise 1x1 pass (weight PRELU_GAIN; the folded bias makes acc =
        # PRELU_GAIN * (x - zp_in)) whose POSTs take the negative side for negative values.
        pq = layer_quant(em, node, PReluQuant)
        c = op.channels
        gain = np.full((c, 1, 1, 1), numerics.PRELU_GAIN, np.int8)
        identity = ConvQuant(gain, np.zeros(c, np.int32), pq.multiplier, pq.shift)
        negative = (pq.multiplier_neg, pq.shift_neg)
        xs = [view(srcs[0]) for view in views]
        return lower_conv(
            em, node, xs, ys, identity.weight, Window(), c, identity, negative=negative
        )
    cq = layer_quant(em, node, ConvQuant)
    if isinstance(op, g.ConvTranspose2d):
        return lower_conv_transpose(em, node, op, cq, [view(srcs[0]) for view in views], ys)
    src = srcs[0]
    if isinstance(net.op(src), g.Flatten):
        src = net.inputs(src)[0]
    c, h, w = chw(net, src)
    weight = cq.weight.reshape(op.out_features, c, h, w)
    xs = [view(src) for view in views]
    return lower_conv(em, node, xs, ys, weight, Window((h, w)), 1, cq)


def requant_post(y, quant) -> tuple[Post, np.ndarray]:
    """The POST of a vector-unit layer that requantises to ``y``'s zero point and the clamp
    of ``quant`` (a pool's, add's or mul's), and its parameter row ``[0, multiplier,
    shift]``."""
    post = Post(
        mode=PostMode.REQUANT,
        out_zero_point=y.zero_point,
        act_min=quant.act_min,
        act_max=quant.act_max,
    )
    return post, np.array([0, quant.multiplier, quant.shift])


def lower_other_layer(em: Emitter, node: str, layout) -> dict:
    """A layer not on the array, on the tensors ``layout`` gives (one image's, or the
    batch's as pixels)."""
    net = em.net
    op = net.op(node)
    y = layout(node)
    srcs = net.inputs(node)
    if isinstance(op, g.MaxPool2d | g.AvgPool2d | g.GlobalAvgPool):
        x = layout(srcs[0])
        if isinstance(op, g.GlobalAvgPool):
            window = Window(chw(net, srcs[0])[1:])  # the image's, not a batch's as pixels
        else:
            window = Window(op.kernel, op.stride, getattr(op, "dilation", (1, 1)), op.padding)
        if isinstance(op, g.MaxPool2d):
            post = Post(mode=PostMode.PASS)
            return lower_vector(
                em, node, [x], y, window, ComputeMode.VMAX, post, None, {"pad_value": -128}
            )
        if isinstance(op, g.AvgPool2d):
            if not op.count_include_pad and any(op.padding):
                raise em.fail(node, "count_include_pad=False with padding is not supported")
            if op.ceil_mode:
                floor_out = g.conv_output_size(
                    x.height, op.kernel[0], op.stride[0], op.padding[0] + op.padding[1], 1
                )
                if floor_out != y.height:
                    raise em.fail(node, "ceil_mode windows past the padding not supported")
        pq = layer_quant(em, node, PoolQuant)
        post, params = requant_post(y, pq)
        extra = {"pad_value": x.zero_point, "zero_point_a": x.zero_point}
        return lower_vector(em, node, [x], y, window, ComputeMode.VSUM, post, params, extra)
    if isinstance(op, g.Add):
        if len(srcs) != 2:
            raise em.fail(node, f"{len(srcs)} inputs (the vector unit adds two)")
        aq = layer_quant(em, node, AddQuant)
        if aq.left_shift != numerics.ADD_LEFT_SHIFT:
            raise em.fail(node, f"left_shift {aq.left_shift} (hardware: {numerics.ADD_LEFT_SHIFT})")
        a, b = (layout(s) for s in srcs)
        post, params = requant_post(y, aq)
        extra = {
            "zero_point_a": a.zero_point,
            "zero_point_b": b.zero_point,
            "multiplier_a": aq.input_multipliers[0],
            "shift_a": aq.input_shifts[0],
            "multiplier_b": aq.input_multipliers[1],
            "shift_b": aq.input_shifts[1],
        }
        return lower_vector(em, node, [a, b], y, Window(), ComputeMode.VADD, post, params, extra)
    if isinstance(op, g.Mul):
        mq = layer_quant(em, node, MulQuant)
        a, b = (layout(s) for s in srcs)
        post, params = requant_post(y, mq)
        extra = {
            "mul": 1,
            "broadcast_b": int((b.height, b.width) != (a.height, a.width)),
            "zero_point_a": a.zero_point,
            "zero_point_b": b.zero_point,
        }
        return lower_vector(em, node, [a, b], y, Window(), ComputeMode.VADD, post, params, extra)
    if isinstance(op, g.Pointwise):
        if node in em.plan.fused.values():
            return {"unit": "none (its table applied by its producer's POST)"}
        window = Window()
        post = Post(mode=PostMode.PASS)  # the identity; the table follows the clamp
        return lower_vector(
            em,
            node,
            [layout(srcs[0])],
            y,
            window,
            ComputeMode.VMAX,
            post,
            None,
            {"pad_value": -128},
        )
    if isinstance(op, g.Upsample):
        return lower_upsample(em, node, op.factor, layout(srcs[0]), y)
    if isinstance(op, g.ChannelSlice):
        return lower_channel_slice(em, node, op, layout(srcs[0]), y)
    if isinstance(op, g.DepthToSpace):
        return lower_depth_to_space(em, node, op, layout(srcs[0]), y)
    if isinstance(op, g.SpaceToDepth):
        return lower_space_to_depth(em, node, op, layout(srcs[0]), y)
    if isinstance(op, g.ChannelShuffle):
        return lower_channel_shuffle(em, node, op, layout(srcs[0]), y)
    if isinstance(op, g.PixelShuffle):
        return lower_pixel_shuffle(em, node, op, layout(srcs[0]), y)
    if isinstance(op, g.Concat):
        for src in srcs:
            if em.quant(src) != em.quant(node):
                raise em.fail(node, f"input {src!r} is quantised differently from the output")
        return {"unit": "none (inputs written in place)"}
    if isinstance(op, g.Flatten):
        _, h, w = chw(net, srcs[0])
        consumers = [net.op(u) for u in net.consumers(node)]
        if h * w > 1 and (
            node in net.output_names or any(not isinstance(u, g.Linear) for u in consumers)
        ):
            raise em.fail(node, "flattening a HxW map is only supported in front of a Linear")
        return {"unit": "none (view)"}
    raise em.fail(node, f"{type(op).__name__} is not supported by the hardware")
