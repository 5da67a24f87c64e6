"""Post-training quantisation: a float :class:`~accel.graph.Network` in, a
:class:`~accel.quantized.QuantizedNetwork` out (:func:`quantize`).

The step between a frontend and the compiler: ``frontend -> Network -> graph.fuse_activations
-> ptq.quantize -> QuantizedNetwork -> compiler.compile -> Program -> backend``.

1. Missing weights are filled by :func:`accel.synthetic.random_weights` (He-normal,
   deterministic per seed).
2. The float network runs once on a calibration input (default:
   :func:`accel.synthetic.random_inputs`, one N(0, 1) sample per input) and every tensor's
   min/max is recorded, widened to include 0.
3. **Shared quantisation.** MaxPool2d, AvgPool2d, GlobalAvgPool, Flatten, Activation and
   Concat do not rescale: their output has the same :class:`TensorQuant` as their inputs.
   The tensors linked by such ops form one group; the group's range is the union of its
   members' ranges and every member gets the group's :class:`TensorQuant`. For a Concat this
   *forces* all inputs onto the output's quantisation (the concat is then a plain copy of
   int8 channels): the producers of the inputs requantise straight to it.
4. Per range ``[lo, hi]`` (``lo <= 0 <= hi``): ``scale = (hi - lo) / 255``, ``zero_point =
   round(-128 - lo / scale)`` clamped to int8 (asymmetric int8; a ReLU output has ``lo = 0``,
   hence ``zero_point = -128``). A range that is identically 0 is taken as ``[0, 1]``.
5. Conv2d/Linear: weights symmetric per output channel, ``scale_k = max|w_k| / 127``,
   ``w_q = round(w / scale_k)``; ``bias_q = round(b / (s_in * scale_k))`` (int32);
   ``multiplier, shift = quantize_multiplier(s_in * scale_k / s_out)``; clamp bounds from
   :func:`accel.numerics.activation_range`. An all-zero channel (its output is its bias)
   gets ``scale_k = s_out / (2 * s_in)``: the rescale factor is then exactly 0.5 and the
   bias keeps half an output LSB of precision. (A fixed scale 1 would make the factor
   ``s_in / s_out``, which is rejected whenever the input range is wider than the output's.)
6. AvgPool2d/GlobalAvgPool: ``multiplier, shift = quantize_multiplier(1 / count)``, ``count``
   the kernel area (``H * W`` for the global pool). Rejected: ``count == 1``, padding with
   ``count_include_pad=False`` and ``ceil_mode`` windows that overhang the padded input (the
   divisor would not be one constant), asymmetric padding.
7. Add (TFLite ``ADD``): ``left_shift = 20`` (:data:`accel.numerics.ADD_LEFT_SHIFT`),
   ``twice_max = 2 * max(s_i)``, input ``i`` real multiplier ``s_i / twice_max``, output real
   multiplier ``twice_max / (2**20 * s_out)``.

Rounding is half to even (``numpy.rint``) for weights, biases, zero points and
:meth:`TensorQuant.quantize`; :func:`accel.numerics.quantize_multiplier` has its own (ties
away from zero, as TFLite). Every scale that cannot be represented (a rescale factor outside
``[2**-32, 1)``, a bias outside int32) raises ``ValueError`` naming the node.
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
    Concat,
    Conv2d,
    Flatten,
    GlobalAvgPool,
    Linear,
    MaxPool2d,
    Network,
)
from accel.quantized import (
    AddQuant,
    ConvQuant,
    PoolQuant,
    QuantizedNetwork,
    TensorQuant,
    avg_pool_count,
    multiplier_for,
    node_error,
)

__all__ = ["SHARED_QUANT_OPS", "quantize"]

#: Ops whose output shares the quantisation of their inputs (no rescaling).
SHARED_QUANT_OPS = (MaxPool2d, AvgPool2d, GlobalAvgPool, Flatten, Activation, Concat)


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


def _tensor_quants(network: Network, values: Mapping[str, np.ndarray]) -> dict[str, TensorQuant]:
    ranges: dict[str, tuple[float, float]] = {}
    groups = _shared_groups(network)
    for name, root in groups.items():
        lo, hi = ranges.get(root, (0.0, 0.0))
        ranges[root] = (min(lo, float(values[name].min())), max(hi, float(values[name].max())))
    quants: dict[str, TensorQuant] = {}
    for name, root in groups.items():
        try:
            quants[name] = TensorQuant.from_range(*ranges[root])
        except ValueError as exc:
            raise node_error(network, name, f"output {exc}") from None
    return quants


def _conv_quant(network: Network, name: str, t_in: TensorQuant, t_out: TensorQuant) -> ConvQuant:
    op = network.op(name)
    weights = network.weights(name)
    w = np.asarray(weights["weight"], dtype=np.float64)
    k = w.shape[0]
    w_max = np.abs(w.reshape(k, -1)).max(axis=1)
    # An all-zero channel's scale is free: pick the one whose rescale factor is exactly 0.5.
    w_scale = np.where(w_max > 0, w_max / 127, t_out.scale / (2 * t_in.scale))
    w_q = np.rint(w / w_scale.reshape(k, *[1] * (w.ndim - 1)))
    w_q = np.clip(w_q, -numerics.INT8_MAX, numerics.INT8_MAX).astype(np.int8)
    b = np.asarray(weights.get("bias", np.zeros(k)), dtype=np.float64)
    b_q = np.rint(b / (t_in.scale * w_scale))
    if np.abs(b_q).max() > numerics.INT32_MAX:
        channel = int(np.argmax(np.abs(b_q)))
        raise node_error(
            network,
            name,
            f"quantised bias of output channel {channel} is {b_q[channel]:.0f}, outside int32",
        )
    multiplier, shift = _multiplier(
        network, name, t_in.scale * w_scale / t_out.scale, "requantisation scale"
    )
    act = numerics.activation_range(op.activation, t_out.zero_point, t_out.scale)
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
        Naming the node: a rescale factor :func:`~accel.numerics.quantize_multiplier` rejects,
        a bias outside int32, an unsupported pool (:func:`avg_pool_count`); or a calibration
        input with a wrong name or shape.
    """
    float_net = synthetic.random_weights(network, seed)
    if calibration is None:
        calibration = synthetic.random_inputs(float_net, seed)
    values = executor.trace_network(float_net, calibration)
    tensors = _tensor_quants(float_net, values)
    layers: dict[str, ConvQuant | PoolQuant | AddQuant] = {}
    for name in float_net.layers():
        op = float_net.op(name)
        t_ins = [tensors[src] for src in float_net.inputs(name)]
        if isinstance(op, (Conv2d, Linear)):
            layers[name] = _conv_quant(float_net, name, t_ins[0], tensors[name])
        elif isinstance(op, (AvgPool2d, GlobalAvgPool)):
            count = avg_pool_count(float_net, name)
            layers[name] = PoolQuant(*_multiplier(float_net, name, 1 / count, "divisor"))
        elif isinstance(op, Add):
            try:
                layers[name] = AddQuant.for_scales(t_ins, tensors[name], op.activation)
            except ValueError as exc:
                raise node_error(float_net, name, str(exc)) from None
    return QuantizedNetwork(float_net, tensors, layers)
