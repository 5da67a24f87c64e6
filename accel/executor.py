"""The golden model of a whole network: execute it in float64 or in int8, node by node.

:func:`run_network` (and :func:`trace_network`, every node's output) executes an
:class:`accel.graph.Network` in float64 with the ops of :mod:`accel.golden`, or an
:class:`accel.quantized.QuantizedNetwork` in int8 with the ops of :mod:`accel.numerics`;
:func:`run_network`'s docstring is the int8 contract the hardware is held to.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from numpy.typing import ArrayLike, NDArray

from accel import golden, graph, host, numerics, synthetic
from accel.graph import Network
from accel.quantized import (
    AddQuant,
    ConvQuant,
    MulQuant,
    PoolQuant,
    PReluQuant,
    QuantizedNetwork,
    TableQuant,
    avg_pool_count,
)

__all__ = ["int8_node", "run_network", "trace_network"]


def _activate(x: NDArray, activation: str | None) -> NDArray:
    return {None: lambda v: v, "relu": golden.relu, "relu6": golden.relu6}[activation](x)


def _moved(op: graph.Op, xs: list[NDArray]) -> NDArray | None:
    """A layout op's output (values moved, none computed: the same in float and in int8),
    or ``None`` for any other op."""
    x = xs[0]
    if isinstance(op, graph.Concat):
        return np.concatenate(xs, axis=1)
    if isinstance(op, graph.Upsample):
        return golden.upsample_nearest(x, op.factor)
    if isinstance(op, graph.ChannelSlice):
        return x[:, op.start : op.stop]
    if isinstance(op, graph.DepthToSpace):
        return golden.depth_to_space(x, op.block)
    if isinstance(op, graph.SpaceToDepth):
        return golden.space_to_depth(x, op.block)
    if isinstance(op, graph.PixelShuffle):
        return golden.pixel_shuffle(x, op.block)
    if isinstance(op, graph.ChannelShuffle):
        return golden.channel_shuffle(x, op.groups)
    if isinstance(op, graph.Flatten):
        return x.reshape(len(x), -1)
    return None


def _float_node(network: Network, name: str, xs: list[NDArray]) -> NDArray:
    """Output of node ``name`` in float64 from its input values ``xs``."""
    op = network.op(name)
    weights = network.weights(name)
    x = xs[0]
    if isinstance(op, graph.Conv2d):
        out = golden.conv2d(
            x,
            weights["weight"],
            weights.get("bias"),
            stride=op.stride,
            padding=op.padding,
            dilation=op.dilation,
            groups=op.groups,
        )
        return _activate(out, op.activation)
    if isinstance(op, graph.ConvTranspose2d):
        out = golden.conv_transpose2d(
            x,
            weights["weight"],
            weights.get("bias"),
            stride=op.stride,
            padding=op.padding,
            output_padding=op.output_padding,
            dilation=op.dilation,
            groups=op.groups,
        )
        return _activate(out, op.activation)
    if isinstance(op, graph.Linear):
        out = golden.linear(x.reshape(len(x), -1), weights["weight"], weights.get("bias"))
        return _activate(out, op.activation)
    if isinstance(op, graph.MaxPool2d):
        pads = graph.pool_padding(name, op)
        return golden.max_pool2d(x, op.kernel, op.stride, pads, op.ceil_mode, op.dilation)
    if isinstance(op, graph.AvgPool2d):
        pads = graph.pool_padding(name, op)
        return golden.avg_pool2d(x, op.kernel, op.stride, pads, op.ceil_mode, op.count_include_pad)
    if isinstance(op, graph.GlobalAvgPool):
        return golden.global_avg_pool2d(x)
    if isinstance(op, graph.Add):
        total = xs[0]
        for other in xs[1:]:
            total = golden.add(total, other)
        return _activate(total, op.activation)
    if isinstance(op, graph.Mul):
        return golden.mul(xs[0], xs[1])
    moved = _moved(op, xs)
    if moved is not None:
        return moved
    if isinstance(op, graph.Activation):
        return _activate(x, op.kind)
    if isinstance(op, graph.Pointwise):
        return golden.pointwise(x, op.function, op.params)
    if isinstance(op, graph.PRelu):
        return golden.prelu(x, weights["weight"])
    if isinstance(op, graph.HostOp):
        return host.run_float(op, xs)
    raise ValueError(f"node {name!r}: no executor for op {type(op).__name__}")


def _clamp(q: NDArray[np.int8], act_min: int, act_max: int) -> NDArray[np.int8]:
    """``clip(q, act_min, act_max)`` for bounds inside int8.

    Applied to the output of ``requantize(..., -128, 127)`` it equals ``requantize(...,
    act_min, act_max)``, since ``clip(clip(v, -128, 127), lo, hi) == clip(v, lo, hi)``.
    """
    if not -128 <= act_min <= act_max <= 127:
        raise ValueError(f"need -128 <= act_min <= act_max <= 127, got {act_min}, {act_max}")
    return np.clip(q, int(act_min), int(act_max)).astype(np.int8)


def int8_node(qnet: QuantizedNetwork, name: str, xs: list[NDArray[np.int8]]) -> NDArray[np.int8]:
    """Output of node ``name`` of a QuantizedNetwork in int8 (see :func:`run_network`)."""
    network = qnet.network
    op = network.op(name)
    kind = type(op).__name__
    t_out = qnet.tensors[name]
    t_ins = [qnet.tensors[src] for src in network.inputs(name)]
    layer = qnet.layers.get(name)
    expected = {
        graph.Conv2d: ConvQuant,
        graph.ConvTranspose2d: ConvQuant,
        graph.Linear: ConvQuant,
        graph.AvgPool2d: PoolQuant,
        graph.GlobalAvgPool: PoolQuant,
        graph.Add: AddQuant,
        graph.Mul: MulQuant,
        graph.Pointwise: TableQuant,
        graph.PRelu: PReluQuant,
    }.get(type(op), type(None))
    if not isinstance(layer, expected):
        raise ValueError(
            f"node {name!r} ({kind}): layer parameters must be {expected.__name__}, got {layer!r}"
        )
    shares_quant = isinstance(
        op,
        graph.MaxPool2d
        | graph.Flatten
        | graph.Concat
        | graph.Activation
        | graph.Upsample
        | graph.ChannelSlice
        | graph.DepthToSpace
        | graph.PixelShuffle
        | graph.ChannelShuffle
        | graph.SpaceToDepth,
    )
    if shares_quant and any(t != t_out for t in t_ins):
        raise ValueError(
            f"node {name!r} ({kind}): int8 execution needs the inputs' quantisation "
            f"{t_ins} to equal the output's {t_out}"
        )
    x = xs[0]
    if isinstance(op, graph.Conv2d | graph.ConvTranspose2d | graph.Linear):
        common = {
            "x_zero_point": t_ins[0].zero_point,
            "multiplier": layer.multiplier,
            "shift": layer.shift,
            "out_zero_point": t_out.zero_point,
        }
        if isinstance(op, graph.Linear):
            out = numerics.qlinear(x.reshape(len(x), -1), layer.weight, layer.bias, **common)
        elif isinstance(op, graph.ConvTranspose2d):
            out = numerics.qconv_transpose2d(
                x,
                layer.weight,
                layer.bias,
                stride=op.stride,
                padding=op.padding,
                output_padding=op.output_padding,
                dilation=op.dilation,
                groups=op.groups,
                **common,
            )
        else:
            out = numerics.qconv2d(
                x,
                layer.weight,
                layer.bias,
                stride=op.stride,
                padding=op.padding,
                dilation=op.dilation,
                groups=op.groups,
                **common,
            )
        return _clamp(out, layer.act_min, layer.act_max)
    if isinstance(op, graph.MaxPool2d):
        pads = graph.pool_padding(name, op)
        return golden.max_pool2d(x, op.kernel, op.stride, pads, op.ceil_mode, op.dilation).astype(
            np.int8
        )
    if isinstance(op, graph.AvgPool2d | graph.GlobalAvgPool):
        avg_pool_count(network, name)  # rejects what one divisor cannot express
        if isinstance(op, graph.GlobalAvgPool):
            window = {"kernel": x.shape[2:]}
        else:
            window = {
                "kernel": op.kernel,
                "stride": op.stride,
                "padding": graph.pool_padding(name, op),
                "ceil_mode": op.ceil_mode,
            }
        return numerics.qavg_pool2d(
            x,
            **window,
            x_zero_point=t_ins[0].zero_point,
            multiplier=layer.multiplier,
            shift=layer.shift,
            out_zero_point=t_out.zero_point,
            act_min=layer.act_min,
            act_max=layer.act_max,
        )
    if isinstance(op, graph.Mul):
        return numerics.qmul(
            xs[0],
            xs[1],
            t_ins[0].zero_point,
            t_ins[1].zero_point,
            multiplier=layer.multiplier,
            shift=layer.shift,
            out_zero_point=t_out.zero_point,
            act_min=layer.act_min,
            act_max=layer.act_max,
        )
    if isinstance(op, graph.Add):
        return numerics.qadd(
            xs,
            [t.zero_point for t in t_ins],
            layer.input_multipliers,
            layer.input_shifts,
            left_shift=layer.left_shift,
            multiplier=layer.multiplier,
            shift=layer.shift,
            out_zero_point=t_out.zero_point,
            act_min=layer.act_min,
            act_max=layer.act_max,
        )
    moved = _moved(op, xs)
    if moved is not None:
        return moved
    if isinstance(op, graph.Activation):
        return _clamp(x, *numerics.activation_range(op.kind, t_out.zero_point, t_out.scale))
    if isinstance(op, graph.Pointwise):
        return numerics.table_lookup(x, layer.table)
    if isinstance(op, graph.PRelu):
        return numerics.qprelu(
            x,
            t_ins[0].zero_point,
            layer.multiplier,
            layer.shift,
            layer.multiplier_neg,
            layer.shift_neg,
            t_out.zero_point,
        )
    if isinstance(op, graph.HostOp):
        return host.run_int8(op, xs, t_ins, t_out)
    raise ValueError(f"node {name!r}: no int8 executor for op {kind}")


def _network_inputs(
    network: Network, inputs: Mapping[str, ArrayLike], qnet: QuantizedNetwork | None
) -> dict[str, NDArray]:
    """Check ``inputs`` against the network's Input nodes; float64 (float network) or int8."""
    if not isinstance(inputs, Mapping):
        raise TypeError(f"inputs must be a mapping of input name -> array, got {inputs!r}")
    expected = network.input_names
    unknown = [n for n in inputs if n not in expected]
    missing = [n for n in expected if n not in inputs]
    if unknown or missing:
        raise ValueError(
            f"network {network.name!r} has inputs {expected}: "
            f"unknown input names {unknown}, missing input names {missing}"
        )
    values = {}
    for name in expected:
        x = np.asarray(inputs[name])
        shape = network.shape(name)
        if x.ndim != 4 or x.shape[1:] != shape or len(x) < 1:
            raise ValueError(
                f"input {name!r} must have shape (N, {', '.join(map(str, shape))}) with "
                f"N >= 1, got shape {x.shape}"
            )
        if qnet is None and x.dtype.kind in "iuf":
            values[name] = x.astype(np.float64)
        elif qnet is not None and x.dtype == np.int8:
            values[name] = x
        elif qnet is not None and x.dtype.kind == "f":
            values[name] = qnet.quantize_input(name, x)
        else:
            wanted = "a float array" if qnet is None else "an int8 or a float array"
            raise TypeError(f"input {name!r} must be {wanted}, got dtype {x.dtype}")
    if len({len(x) for x in values.values()}) > 1:
        sizes = {n: len(x) for n, x in values.items()}
        raise ValueError(f"inputs must share the batch size N, got {sizes}")
    return values


def trace_network(
    network_or_qnet: Network | QuantizedNetwork, inputs: Mapping[str, ArrayLike], *, seed: int = 0
) -> dict[str, NDArray]:
    """Execute a network and return the output of **every** node, in topological order.

    Same arguments and semantics as :func:`run_network`, which returns the subset of the
    network's output nodes. Useful to compare a hardware run layer by layer.
    """
    if isinstance(network_or_qnet, QuantizedNetwork):
        qnet, network = network_or_qnet, network_or_qnet.network
    elif isinstance(network_or_qnet, Network):
        qnet, network = None, network_or_qnet
        if any(network.op(n).weight_shape and not network.weights(n) for n in network.order()):
            network = synthetic.random_weights(network, seed)
    else:
        raise TypeError(
            f"expected an accel.graph.Network or accel.quantized.QuantizedNetwork, "
            f"got {network_or_qnet!r}"
        )
    values = _network_inputs(network, inputs, qnet)
    for name in network.layers():
        xs = [values[src] for src in network.inputs(name)]
        if qnet is None:
            values[name] = _float_node(network, name, xs)
        else:
            values[name] = int8_node(qnet, name, xs)
    return {name: values[name] for name in network.order()}


def run_network(
    network_or_qnet: Network | QuantizedNetwork, inputs: Mapping[str, ArrayLike], *, seed: int = 0
) -> dict[str, NDArray]:
    """Execute a whole network, float64 or int8, and return its outputs.

    Nodes run in :meth:`accel.graph.Network.order`. Values carry the batch axis: ``(N, C, H,
    W)`` images, ``(N, F)`` vectors.

    **Float** (an :class:`accel.graph.Network`): float64, with the functions of
    :mod:`accel.golden` (``conv2d``, ``conv_transpose2d``, ``linear``, ``max_pool2d``,
    ``avg_pool2d``, ``global_avg_pool2d``, ``add``, ``relu``/``relu6``, ``pointwise``,
    concatenation, flatten in C, H, W order). Weights that are missing are
    :func:`accel.synthetic.random_weights` of ``seed``.

    **int8** (an :class:`accel.quantized.QuantizedNetwork`, ``seed`` unused): the contract the
    hardware is held to, bit for bit. ``zp_in``/``zp_out``/``s_out`` are the zero points and
    scale of the :class:`~accel.quantized.TensorQuant` of the input and output tensors; SRDHM is
    ``saturating_rounding_doubling_high_mul``, RDBPOT ``rounding_divide_by_pot``, all in
    :mod:`accel.numerics`; every intermediate is int32 (``ValueError`` if one is not).

    * Conv2d: ``numerics.qconv2d(x, weight, bias, x_zero_point=zp_in, multiplier, shift,
      out_zero_point=zp_out, stride, padding, dilation, groups)`` (padding holds ``zp_in``,
      zero point folded into the bias), clamped to ``[act_min, act_max]`` of the
      :class:`~accel.quantized.ConvQuant`: ``clamp(RDBPOT(SRDHM(acc, M[k]), shift[k]) + zp_out,
      act_min, act_max)``.
    * ConvTranspose2d: ``numerics.qconv_transpose2d(x, weight, bias, x_zero_point=zp_in,
      multiplier, shift, out_zero_point=zp_out, stride, padding, output_padding, dilation,
      groups)``: ``acc = conv_transpose2d(x - zp_in, weight) + bias`` exactly (weight in
      ``(C, K/groups, R, S)`` layout), then requantised and clamped as a Conv2d.
    * Linear: the same as a 1x1 conv (``numerics.qlinear``) on the input flattened in C, H, W
      order.
    * MaxPool2d: :func:`~accel.golden.max_pool2d` of the int8 values (padding never wins).
    * AvgPool2d, GlobalAvgPool: :func:`~accel.numerics.qavg_pool2d`: ``acc = sum over the
      window of (x - zp_in)``, padded positions contributing 0 (``count_include_pad=True``),
      then ``requantize(acc, multiplier, shift, zp_out, act_min, act_max)`` of the
      :class:`~accel.quantized.PoolQuant` (the divisor is folded into the multiplier).
      ``count_include_pad=False`` with padding, and ``ceil_mode`` windows that overhang the
      padded input, are rejected (:func:`accel.quantized.avg_pool_count`).
    * Add: :func:`~accel.numerics.qadd`: ``scaled_i = RDBPOT(SRDHM((x_i - zp_i) << left_shift,
      M_i), shift_i)``; ``out = clamp(RDBPOT(SRDHM(sum_i scaled_i, M), shift) + zp_out, act_min,
      act_max)`` with the :class:`~accel.quantized.AddQuant` parameters.
    * Mul: :func:`~accel.numerics.qmul`: ``acc = (a - zp_a) * (b - zp_b)`` (exact; ``b`` may be
      ``(C, 1, 1)`` against a ``(C, H, W)`` ``a``), then requantised with the
      :class:`~accel.quantized.MulQuant` parameters.
    * Concat: channel concatenation of the int8 inputs. Flatten: reshape in C, H, W order.
      Upsample: :func:`~accel.golden.upsample_nearest` of the int8 values. ChannelSlice:
      the int8 channels ``start:stop``. DepthToSpace, PixelShuffle, ChannelShuffle,
      SpaceToDepth: :func:`~accel.golden.depth_to_space`, :func:`~accel.golden.pixel_shuffle`,
      :func:`~accel.golden.channel_shuffle`, :func:`~accel.golden.space_to_depth`. Concat,
      Flatten, MaxPool2d, Upsample, ChannelSlice, DepthToSpace, PixelShuffle, ChannelShuffle,
      SpaceToDepth and Activation require the inputs' TensorQuant to equal the output's
      (``ValueError`` naming the node otherwise).
    * Activation: ``clamp(x, *numerics.activation_range(kind, zp_out, s_out))``.
    * PRelu: :func:`~accel.numerics.qprelu` with the :class:`~accel.quantized.PReluQuant`
      (``x - zp_in`` requantised by the positive or, below the zero point, the negative-side
      multiplier of its channel).
    * Pointwise: :func:`~accel.numerics.table_lookup`, ``table[x + 128]`` with the
      :class:`~accel.quantized.TableQuant` table (float: :func:`accel.golden.pointwise`).
    * HostOp: :func:`accel.host.run_int8` (dequantise, ONNX reference in float, quantise).

    Parameters
    ----------
    network_or_qnet : Network or QuantizedNetwork
    inputs : mapping of str to array_like
        One array ``(N, C, H, W)`` (``N >= 1``, shared) per Input node. A float network takes
        float (or integer) arrays. A QuantizedNetwork takes int8 arrays as they are and
        quantises float arrays with :meth:`~accel.quantized.QuantizedNetwork.quantize_input`.
    seed : int
        Seed of the random weights of a float network.

    Returns
    -------
    dict of str to ndarray
        Output node name -> float64 or int8 array.

    Raises
    ------
    ValueError
        Unknown or missing input names (named), wrong input shapes, an unsupported layer
        attribute (naming the node), int8 parameters of the wrong kind.
    TypeError
        Wrong argument types or input dtypes.
    """
    values = trace_network(network_or_qnet, inputs, seed=seed)
    network = getattr(network_or_qnet, "network", network_or_qnet)
    return {name: values[name] for name in network.output_names}
