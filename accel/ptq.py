"""Post-training quantisation: a float :class:`~accel.graph.Network` in, a
:class:`~accel.quantized.QuantizedNetwork` out (:func:`quantize`).

The step between a frontend and the compiler: ``frontend -> Network -> graph.fuse_activations
-> ptq.quantize -> QuantizedNetwork -> compiler.compile -> Program -> backend``.

1. Missing weights are filled by :func:`accel.synthetic.random_weights` (He-normal,
   deterministic per seed).
2. The float network runs once on a calibration input (default:
   :func:`accel.synthetic.random_inputs`, one N(0, 1) sample per input) and every tensor's
   min/max is recorded, widened to include 0 and rounded outward to float32 precision (24
   significant bits): the float64 BLAS of the calibration run sums in an order of its own on
   each CPU, and its last bits must not reach the program (the same network and seed give
   the same program byte for byte on every machine).
3. **Shared quantisation.** MaxPool2d, AvgPool2d, GlobalAvgPool, Flatten, Activation,
   Upsample, ChannelSlice, DepthToSpace, PixelShuffle, ChannelShuffle, SpaceToDepth and Concat
   do not rescale: their output has the same :class:`TensorQuant` as their inputs. The
   tensors linked by such ops form one group; the group's range is the union of its
   members' ranges and every member gets the group's :class:`TensorQuant`. For a Concat
   this *forces* all inputs onto the output's quantisation (the concat is then a plain copy
   of int8 channels): the producers of the inputs requantise straight to it.
4. Per range ``[lo, hi]`` (``lo <= 0 <= hi``): ``scale = (hi - lo) / 255``, ``zero_point =
   round(-128 - lo / scale)`` clamped to int8 (asymmetric int8; a ReLU output has ``lo = 0``,
   hence ``zero_point = -128``). A range that is identically 0 is taken as ``[0, 1]``.
5. **Representable rescales.** Ranges are then widened (``lo`` and ``hi`` multiplied by one
   factor, which keeps the zero point) until every rescale factor the hardware computes
   with a right shift lies in ``[2**-31, 1)``, repeating until nothing changes: a Conv2d /
   Linear output scale is at least ``s_in * max|w| / 127 * (1 + 2**-20)`` (a rescale below 1
   for the widest channel); an Add input scale at least ``2**-30 * max(s_i)``; an Add output
   scale at least ``2 * max(s_i) * 2**-20 * (1 + 2**-20)``, and when it exceeds
   ``2 * max(s_i) * 2**11`` the largest input is widened to ``s_out * 2**-12``. A tensor that
   needs none of this keeps its calibrated range (none of the zoo models needs any).
6. Conv2d/ConvTranspose2d/Linear, channel ``k`` (weights symmetric, per output channel; a
   ConvTranspose2d's weights ``(C, K/groups, R, S)`` are grouped by output channel for this):
   ``s_w[k] = max|w_k| / 127``; an all-zero channel takes ``s_out / (2 s_in)`` (rescale
   exactly 0.5); **TFLite's bias rule** (``AdjustWeightsForBiasScale``): if
   ``|b_k| >= 0.5 * s_in * s_w[k] * (2**31 - 1)``, ``s_w[k] = 2 |b_k| / (s_in * (2**31 - 1))``
   (the bias then takes half of int32), capped at ``s_out / (2 s_in)``; **rescale floor**:
   ``s_w[k] >= 2**-31 * s_out / s_in``. Then ``w_q = clamp(round(w / s_w[k]), -127, 127)``,
   ``bias_q = clamp(round(b / (s_in * s_w[k])), -2**30, 2**30)`` (saturated to the middle
   half of int32, so the input zero point fold and the accumulation keep the other half),
   ``multiplier, shift = quantize_multiplier(s_in * s_w[k] / s_out)``, clamp bounds from
   :func:`accel.numerics.activation_range`. A near-zero channel (GoogLeNet's) thus gets a
   larger scale, weights that round to 0 (their contribution is below one output step) and
   its bias; a bias the cap saturates drives the output to its clamp either way.
7. AvgPool2d/GlobalAvgPool: ``multiplier, shift = quantize_multiplier(1 / count)``, ``count``
   the kernel area (``H * W`` for the global pool); ``count == 1`` (an identity pool) is the
   exact identity multiplier ``2**31 - 1``, shift 0 (:func:`accel.quantized.multiplier_for`).
   Rejected: padding with ``count_include_pad=False`` and ``ceil_mode`` windows that overhang
   the padded input (the divisor would not be one constant), asymmetric padding.
8. Add (TFLite ``ADD``): ``left_shift = 20`` (:data:`accel.numerics.ADD_LEFT_SHIFT`),
   ``twice_max = 2 * max(s_i)``, input ``i`` real multiplier ``s_i / twice_max``, output real
   multiplier ``twice_max / (2**20 * s_out)``.
   Mul (TFLite ``MUL``): its output gets its own calibrated TensorQuant, widened until
   ``s_out >= s_a * s_b * (1 + 2**-20)``; real multiplier ``s_a * s_b / s_out``
   (:class:`accel.quantized.MulQuant`).
9. Pointwise (Sigmoid, Tanh, GELU, ...): its output gets its own calibrated TensorQuant and
   the layer the table ``table[i] = quantize_out(f(dequantize_in(i - 128)))``
   (:meth:`accel.quantized.TableQuant.for_function`): exact by construction in int8, one
   rounding of the float function of every int8 input.
10. PRelu (per-channel slopes): its output gets its own calibrated TensorQuant, widened until
   ``s_out >= s_in * max(1, max|slope|) * (1 + 2**-20)`` (both sides' rescales below 1);
   :meth:`accel.quantized.PReluQuant.for_slopes`: ``quantize_multiplier(s_in / (64 s_out))``
   and :func:`accel.numerics.prelu_multiplier` of ``slope[c] * s_in / (64 s_out)`` (the
   identity pass has weight :data:`accel.numerics.PRELU_GAIN` = 64).
11. HostOp: its output gets its own calibrated TensorQuant; it has no layer parameters (the
   host dequantises, runs the op in float and quantises: :func:`accel.host.run_int8`).

Rounding is half to even (``numpy.rint``) for weights, biases, zero points and
:meth:`TensorQuant.quantize`; :func:`accel.numerics.quantize_multiplier` has its own (ties
away from zero, as TFLite). ``docs/numerics.md`` states the same rules. A valid network
quantises without an int32 overflow or an unrepresentable scale; what is left to raise
``ValueError`` naming the node is a non-finite calibration range, an unsupported pool, or a
rescale no widening can fix (a Conv2d whose input and output share one quantisation group
and whose weights reach 127).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from numpy.typing import ArrayLike, NDArray

from accel import executor, numerics, synthetic
from accel.graph import (
    Activation,
    Add,
    AvgPool2d,
    ChannelShuffle,
    ChannelSlice,
    Concat,
    Conv2d,
    ConvTranspose2d,
    DepthToSpace,
    Flatten,
    GlobalAvgPool,
    Linear,
    MaxPool2d,
    Mul,
    Network,
    PixelShuffle,
    Pointwise,
    PRelu,
    SpaceToDepth,
    Upsample,
)
from accel.quantized import (
    AddQuant,
    ConvQuant,
    MulQuant,
    PoolQuant,
    PReluQuant,
    QuantizedNetwork,
    TableQuant,
    TensorQuant,
    avg_pool_count,
    multiplier_for,
    node_error,
)

__all__ = ["SHARED_QUANT_OPS", "quantize"]

#: Ops whose output shares the quantisation of their inputs (no rescaling).
SHARED_QUANT_OPS = (
    MaxPool2d,
    AvgPool2d,
    GlobalAvgPool,
    Flatten,
    Activation,
    Concat,
    Upsample,
    ChannelSlice,
    DepthToSpace,
    PixelShuffle,
    ChannelShuffle,
    SpaceToDepth,
)


def _multiplier(
    network: Network, name: str, real_scale: ArrayLike, what: str
) -> tuple[int, int] | tuple[NDArray, NDArray]:
    """:func:`~accel.quantized.multiplier_for`, its error naming the node."""
    try:
        return multiplier_for(real_scale, what)
    except ValueError as exc:
        raise node_error(network, name, str(exc)) from None


def _shared_groups(network: Network) -> dict[str, str]:
    """Map each node to the representative of its shared-quantisation group (union-find)."""
    parent = {name: name for name in network.order()}

    def find(name: str) -> str:
        while parent[name] != name:
            parent[name] = parent[parent[name]]
            name = parent[name]
        return name

    for name in network.order():
        if isinstance(network.op(name), SHARED_QUANT_OPS):
            for src in network.inputs(name):
                parent[find(src)] = find(name)
    return {name: find(name) for name in parent}


#: Largest magnitude of a quantised bias: the middle half of int32.
BIAS_LIMIT = 2**30
#: Smallest rescale factor ptq gives a layer (``quantize_multiplier`` takes ``>= 2**-32``).
MIN_RESCALE = 2.0**-31
#: Relative margin by which a widened scale clears its bound.
_MARGIN = 1 + 2.0**-20
#: Widening rounds before giving up (each round only widens; real networks need 0 or 1).
_ROUNDS = 32


def _outward_float32(lo: float, hi: float) -> tuple[float, float]:
    """``[lo, hi]`` widened to the nearest float32 values outside it (module docstring, step
    2): a last-bit difference in the calibration run moves them with probability about
    ``2**-29``. Ranges beyond float32 (or not finite) are left as they are."""
    if not max(abs(lo), abs(hi)) < float(np.finfo(np.float32).max):
        return float(lo), float(hi)
    low, high = np.float32(lo), np.float32(hi)
    if float(low) > lo:  # in float64: against a Python float, numpy compares in float32
        low = np.nextafter(low, np.float32(-np.inf))
    if float(high) < hi:
        high = np.nextafter(high, np.float32(np.inf))
    return float(low), float(high)


def _tensor_quants(network: Network, values: Mapping[str, np.ndarray]) -> dict[str, TensorQuant]:
    ranges: dict[str, tuple[float, float]] = {}
    groups = _shared_groups(network)
    for name, root in groups.items():
        lo, hi = ranges.get(root, (0.0, 0.0))
        low, high = _outward_float32(values[name].min(), values[name].max())
        ranges[root] = (min(lo, low), max(hi, high))
    for name, root in groups.items():
        lo, hi = ranges[root]
        if not (np.isfinite(lo) and np.isfinite(hi)):
            raise node_error(network, name, f"output range [{lo}, {hi}] is not finite")
        if lo == hi == 0.0:
            ranges[root] = (0.0, 1.0)
    _fit_ranges(network, groups, ranges)
    quants: dict[str, TensorQuant] = {}
    for name, root in groups.items():
        try:
            quants[name] = TensorQuant.from_range(*ranges[root])
        except ValueError as exc:
            raise node_error(network, name, f"output {exc}") from None
    return quants


def _fit_ranges(
    network: Network, groups: Mapping[str, str], ranges: dict[str, tuple[float, float]]
) -> None:
    """Widen ranges until every rescale factor is representable (module docstring, step 5)."""

    def scale(name: str) -> float:
        lo, hi = ranges[groups[name]]
        return (hi - lo) / 255

    def widen(name: str, needed: float) -> bool:
        """Make the scale of ``name`` at least ``needed`` (times the margin)."""
        current = scale(name)
        if current >= needed:
            return False
        factor = needed * _MARGIN / current
        lo, hi = ranges[groups[name]]
        ranges[groups[name]] = (lo * factor, hi * factor)
        return True

    w_max = {
        name: float(np.abs(network.weights(name)["weight"]).max())
        for name in network.layers()
        if isinstance(network.op(name), (Conv2d, ConvTranspose2d, Linear))
    }
    for _ in range(_ROUNDS):
        changed = False
        for name in network.layers():
            op = network.op(name)
            srcs = network.inputs(name)
            if isinstance(op, (Conv2d, ConvTranspose2d, Linear)) and w_max[name] > 0:
                changed |= widen(name, scale(srcs[0]) * w_max[name] / 127 * _MARGIN)
            elif isinstance(op, PRelu):
                slope = float(np.abs(network.weights(name)["weight"]).max())
                changed |= widen(name, scale(srcs[0]) * max(1.0, slope) * _MARGIN)
            elif isinstance(op, Add):
                top = max(scale(src) for src in srcs)
                for src in srcs:
                    changed |= widen(src, top * 2.0**-30)
                twice_max = 2 * max(scale(src) for src in srcs)
                changed |= widen(name, twice_max * 2.0**-20 * _MARGIN)
                if scale(name) > twice_max * 2.0**11:
                    largest = max(srcs, key=scale)
                    changed |= widen(largest, scale(name) * 2.0**-12)
            elif isinstance(op, Mul):  # the factor s_a * s_b / s_y in [2**-30, 1)
                changed |= widen(name, scale(srcs[0]) * scale(srcs[1]) * _MARGIN)
                if scale(name) > scale(srcs[0]) * scale(srcs[1]) * 2.0**30:
                    a, b = sorted(srcs, key=scale)
                    changed |= widen(b, scale(name) * 2.0**-30 / scale(a) * _MARGIN)
        if not changed:
            return


def _conv_quant(network: Network, name: str, t_in: TensorQuant, t_out: TensorQuant) -> ConvQuant:
    op = network.op(name)
    weights = network.weights(name)
    w = np.asarray(weights["weight"], dtype=np.float64)
    if isinstance(op, ConvTranspose2d):
        w = op.output_channel_major(w)  # scales per output channel
    k = w.shape[0]
    b = np.asarray(weights.get("bias", np.zeros(k)), dtype=np.float64)
    s_in, s_out = t_in.scale, t_out.scale
    w_max = np.abs(w.reshape(k, -1)).max(axis=1)
    half = s_out / (2 * s_in)  # the weight scale of rescale factor 0.5
    # An all-zero channel's scale is free: pick the one whose rescale factor is exactly 0.5.
    w_scale = np.where(w_max > 0, w_max / 127, half)
    # TFLite's AdjustWeightsForBiasScale: the bias must fit half of int32.
    bias_floor = 2 * np.abs(b) / (s_in * numerics.INT32_MAX)
    w_scale = np.maximum(w_scale, np.minimum(bias_floor, half))
    w_scale = np.maximum(w_scale, MIN_RESCALE * s_out / s_in)
    w_q = np.rint(w / w_scale.reshape(k, *[1] * (w.ndim - 1)))
    w_q = np.clip(w_q, -numerics.INT8_MAX, numerics.INT8_MAX).astype(np.int8)
    b_q = np.clip(np.rint(b / (s_in * w_scale)), -BIAS_LIMIT, BIAS_LIMIT)
    multiplier, shift = _multiplier(network, name, s_in * w_scale / s_out, "requantisation scale")
    act = numerics.activation_range(op.activation, t_out.zero_point, t_out.scale)
    if isinstance(op, ConvTranspose2d):
        w_q = np.ascontiguousarray(op.input_channel_major(w_q))
    return ConvQuant(w_q, b_q.astype(np.int32), multiplier, shift, *act, weight_scale=w_scale)


def quantize(
    network: Network, *, seed: int = 0, calibration: Mapping[str, ArrayLike] | None = None
) -> QuantizedNetwork:
    """Post-training int8 quantisation of ``network`` (see the module docstring).

    Parameters
    ----------
    network : Network
        Not modified. Conv2d/Linear nodes without weights get
        :func:`accel.synthetic.random_weights`.
    seed : int
        Seed of the random weights and of the default calibration input.
    calibration : mapping of str to array_like, optional
        Float inputs ``(N, C, H, W)`` by input name; default
        :func:`accel.synthetic.random_inputs` (one ``N(0, 1)`` sample per input).

    Returns
    -------
    QuantizedNetwork
        Its ``network`` is the float network with the weights that were quantised.

    Raises
    ------
    ValueError
        Naming the node: a non-finite calibration range, an unsupported pool
        (:func:`avg_pool_count`), a rescale factor no widening makes representable; or a
        calibration input with a wrong name or shape.
    """
    float_net = synthetic.random_weights(network, seed)
    if calibration is None:
        calibration = synthetic.random_inputs(float_net, seed)
    values = executor.trace_network(float_net, calibration)
    tensors = _tensor_quants(float_net, values)
    layers: dict[str, ConvQuant | PoolQuant | AddQuant | MulQuant | TableQuant | PReluQuant] = {}
    for name in float_net.layers():
        op = float_net.op(name)
        t_ins = [tensors[src] for src in float_net.inputs(name)]
        if isinstance(op, (Conv2d, ConvTranspose2d, Linear)):
            layers[name] = _conv_quant(float_net, name, t_ins[0], tensors[name])
        elif isinstance(op, (AvgPool2d, GlobalAvgPool)):
            count = avg_pool_count(float_net, name)
            layers[name] = PoolQuant(*_multiplier(float_net, name, 1 / count, "divisor"))
        elif isinstance(op, Pointwise):
            layers[name] = TableQuant.for_function(op, t_ins[0], tensors[name])
        elif isinstance(op, PRelu):
            slope = float_net.weights(name)["weight"]
            try:
                layers[name] = PReluQuant.for_slopes(slope, t_ins[0], tensors[name])
            except ValueError as exc:
                raise node_error(float_net, name, str(exc)) from None
        elif isinstance(op, Add):
            try:
                layers[name] = AddQuant.for_scales(t_ins, tensors[name], op.activation)
            except ValueError as exc:
                raise node_error(float_net, name, str(exc)) from None
        elif isinstance(op, Mul):
            try:
                layers[name] = MulQuant.for_scales(t_ins, tensors[name])
            except ValueError as exc:
                raise node_error(float_net, name, str(exc)) from None
    return QuantizedNetwork(float_net, tensors, layers)
