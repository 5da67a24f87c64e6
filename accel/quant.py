"""Quantised networks: the int8 parameters of every tensor and layer.

A :class:`QuantizedNetwork` is what the compiler maps onto the hardware and what
:func:`accel.golden.run_network` executes in int8. Every tensor (the output of a node) has a
:class:`TensorQuant` (per-tensor scale and zero point, int8). Layers carry the integer
parameters of their arithmetic (``docs/numerics.md``):

- Conv2d / Linear: :class:`ConvQuant` (int8 symmetric per-channel weights, int32 bias not yet
  folded with the input zero point, per-channel requantisation multiplier and shift,
  activation clamp bounds).
- AvgPool2d / GlobalAvgPool: :class:`PoolQuant` (``acc = sum(x - zp_in)`` over the window,
  divisor = kernel area, then requantize with multiplier/shift, out zero point, clamp).
- Add: :class:`AddQuant` (gemmlowp/TFLite: each input ``(x - zp) << left_shift`` scaled by
  its multiplier/shift, summed, then requantised with the output multiplier/shift).
- MaxPool2d, Concat, Flatten, Activation: no parameters; output quantisation equals the
  input's.

Post-training quantisation (:func:`quantize`)
---------------------------------------------
1. Missing weights are filled by :func:`random_weights` (He-normal, deterministic per seed).
2. The float network runs once on a calibration input (default: :func:`random_inputs`, one
   N(0, 1) sample per input) and every tensor's min/max is recorded, widened to include 0.
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
7. Add (TFLite ``ADD``): ``left_shift = 20``, ``twice_max = 2 * max(s_i)``, input ``i`` real
   multiplier ``s_i / twice_max``, output real multiplier ``twice_max / (2**20 * s_out)``.

Rounding is half to even (``numpy.rint``) for weights, biases, zero points and
:meth:`TensorQuant.quantize`; :func:`accel.numerics.quantize_multiplier` has its own (ties
away from zero, as TFLite). Every scale that cannot be represented (a rescale factor outside
``[2**-32, 1)``, a bias outside int32) raises ``ValueError`` naming the node.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

from accel import golden, numerics
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

__all__ = [
    "ADD_LEFT_SHIFT",
    "AddQuant",
    "ConvQuant",
    "PoolQuant",
    "QuantizedNetwork",
    "TensorQuant",
    "avg_pool_count",
    "quantize",
    "random_inputs",
    "random_weights",
    "weight_std",
]

#: ``left_shift`` of every quantised Add (TFLite's value for int8).
ADD_LEFT_SHIFT = 20
#: Standard deviation of random biases.
BIAS_STD = 0.01
#: Ops whose output shares the quantisation of their inputs (no rescaling).
SHARED_QUANT_OPS = (MaxPool2d, AvgPool2d, GlobalAvgPool, Flatten, Activation, Concat)


@dataclass(frozen=True)
class TensorQuant:
    """real = scale * (q - zero_point), q int8."""

    scale: float
    zero_point: int

    @classmethod
    def from_range(cls, lo: float, hi: float) -> TensorQuant:
        """Asymmetric int8 quantisation of ``[min(lo, 0), max(hi, 0)]``.

        ``scale = (hi - lo) / 255`` and ``zero_point = round(-128 - lo / scale)`` clamped to
        ``[-128, 127]``; a range that is identically 0 is taken as ``[0, 1]``.
        """
        lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise ValueError(f"range [{lo}, {hi}] is not finite")
        if hi == lo:
            hi = 1.0
        scale = (hi - lo) / 255
        zero_point = int(np.clip(np.rint(-128 - lo / scale), numerics.INT8_MIN, numerics.INT8_MAX))
        return cls(scale, zero_point)

    def quantize(self, x: ArrayLike) -> NDArray[np.int8]:
        """``clamp(round_half_even(x / scale) + zero_point, -128, 127)`` as int8."""
        q = np.rint(np.asarray(x, dtype=np.float64) / self.scale) + self.zero_point
        return np.clip(q, numerics.INT8_MIN, numerics.INT8_MAX).astype(np.int8)

    def dequantize(self, q: ArrayLike) -> NDArray[np.float64]:
        """``scale * (q - zero_point)`` as float64."""
        return self.scale * (np.asarray(q, dtype=np.float64) - self.zero_point)


@dataclass(frozen=True, eq=False)
class ConvQuant:
    weight: np.ndarray  # int8, (K, C/groups, R, S) for conv, (out, in) for linear
    bias: np.ndarray  # int32, (K,), real bias / (in_scale * weight_scale[k])
    multiplier: np.ndarray  # int64 (K,), in [2^30, 2^31)
    shift: np.ndarray  # int64 (K,), right shift >= 0
    act_min: int = -128
    act_max: int = 127
    weight_scale: np.ndarray | None = None  # float64 (K,): real w[k] = weight_scale[k] * weight[k]


@dataclass(frozen=True)
class PoolQuant:
    multiplier: int
    shift: int
    act_min: int = -128
    act_max: int = 127


@dataclass(frozen=True)
class AddQuant:
    input_multipliers: tuple[int, ...]
    input_shifts: tuple[int, ...]
    multiplier: int
    shift: int
    left_shift: int = 20
    act_min: int = -128
    act_max: int = 127


@dataclass
class QuantizedNetwork:
    """A network with int8 quantisation of every tensor and layer.

    ``network`` holds the float weights the quantisation was derived from (so it is also the
    float reference), ``tensors`` the :class:`TensorQuant` of every node's output, ``layers``
    the integer parameters of every Conv2d, Linear, AvgPool2d, GlobalAvgPool and Add.
    """

    network: Network
    tensors: dict[str, TensorQuant] = field(default_factory=dict)
    layers: dict[str, ConvQuant | PoolQuant | AddQuant] = field(default_factory=dict)

    def _tensor(self, name: str) -> TensorQuant:
        if name not in self.tensors:
            raise ValueError(
                f"network {self.network.name!r} has no quantised tensor named {name!r}"
            )
        return self.tensors[name]

    def quantize_input(self, name: str, x: ArrayLike) -> NDArray[np.int8]:
        """Quantise the float array ``x`` with the :class:`TensorQuant` of tensor ``name``.

        ``clamp(round_half_even(x / scale) + zero_point, -128, 127)``; values outside the
        calibrated range saturate. Any tensor name is accepted, not only inputs.
        """
        return self._tensor(name).quantize(x)

    def dequantize(self, name: str, q: ArrayLike) -> NDArray[np.float64]:
        """Real values ``scale * (q - zero_point)`` (float64) of int8 tensor ``name``."""
        return self._tensor(name).dequantize(q)


# ---------------------------------------------------------------------------------------
# Random weights and inputs


def _rng(seed: int, *key: str) -> np.random.Generator:
    """A generator that depends only on ``seed`` and ``key`` (not on the other nodes)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be an int >= 0, got {seed!r}")
    return np.random.default_rng([int(seed), *(zlib.crc32(k.encode()) for k in key)])


def random_weights(network: Network, seed: int = 0) -> Network:
    """Return a copy of ``network`` in which every Conv2d/Linear has float weights.

    Weights already set are kept. Missing ones are normal with mean 0 and the standard
    deviation of :func:`weight_std` (He-normal ``sqrt(2 / fan_in)`` for layers with a ReLU,
    scaled down for linear layers and residual branches), and the bias (when the op has one)
    ``N(0, 0.01**2)``. Each node's normal draws depend only on ``seed`` and the node name,
    so they are reproducible and do not change when other layers are added or changed.
    Node metadata is copied (shallowly); ``network`` is not modified.

    Raises
    ------
    ValueError
        If ``seed`` is not an int >= 0.
    """
    _rng(seed)  # validate the seed even for a network without weights
    copy = Network(network.name)
    for name in network.order():
        op = network.op(name)
        copy.add(name, op, network.inputs(name))
        copy.meta(name).update(network.meta(name))
        weights = network.weights(name)
        if weights:
            copy.set_weights(name, weights["weight"], weights.get("bias"))
        elif op.weight_shape is not None:
            rng = _rng(seed, "weights", name)
            weight = rng.standard_normal(op.weight_shape) * weight_std(network, name)
            bias = None if op.bias_shape is None else rng.standard_normal(op.bias_shape) * BIAS_STD
            copy.set_weights(name, weight, bias)
    return copy


def weight_std(network: Network, name: str) -> float:
    """Standard deviation of the random weights of Conv2d/Linear node ``name``.

    ``sqrt(gain**2 / fan_in)``, ``fan_in = C / groups * R * S`` (``in_features``):

    * ``gain**2 = 2`` (He) when the op applies relu/relu6, which halves the second moment;
    * ``gain**2 = 1`` when it has no activation (variance-preserving for a linear layer);
    * divided by ``k`` more when the node is an input of an Add of ``k`` inputs, so a
      residual sum does not grow by the branch's full variance at every block.

    Plain He (``2 / fan_in`` everywhere) makes the activations of residual networks grow
    with depth (RMS at the output of ResNet-34/50 about 350x/530x the input's at 64x64);
    this keeps every tensor of the zoo models within about 0.2x..5x of the input RMS.
    """
    op = network.op(name)
    fan_in = math.prod(op.weight_shape[1:])
    gain2 = 1.0 if op.activation is None else 2.0
    for consumer in network.consumers(name):
        if isinstance(network.op(consumer), Add):
            gain2 /= len(network.inputs(consumer))
            break
    return math.sqrt(gain2 / fan_in)


def random_inputs(network: Network, seed: int = 0, batch: int = 1) -> dict[str, np.ndarray]:
    """One ``N(0, 1)`` float64 array of shape ``(batch, *shape)`` per network input.

    Deterministic in ``seed`` and the input name; the default calibration of :func:`quantize`.
    """
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be an int >= 1, got {batch!r}")
    return {
        name: _rng(seed, "input", name).standard_normal((batch, *network.shape(name)))
        for name in network.input_names
    }


def random_int8_inputs(network: Network | QuantizedNetwork, seed: int = 0) -> dict[str, np.ndarray]:
    """One uniform int8 array of shape ``(1, *shape)`` per network input, drawn in input
    order from ``np.random.default_rng(seed)``: what ``accel simulate`` and ``accel verify``
    feed a network."""
    network = getattr(network, "network", network)
    rng = np.random.default_rng(seed)
    return {
        name: rng.integers(-128, 128, size=(1, *network.shape(name)), dtype=np.int8)
        for name in network.input_names
    }


# ---------------------------------------------------------------------------------------
# Post-training quantisation


def _node_error(network: Network, name: str, message: str) -> ValueError:
    return ValueError(f"node {name!r} ({type(network.op(name)).__name__}): {message}")


def _multiplier(
    network: Network, name: str, real_scale: ArrayLike, what: str
) -> tuple[int, int] | tuple[NDArray, NDArray]:
    """:func:`~accel.numerics.quantize_multiplier`, its errors naming the node."""
    try:
        return numerics.quantize_multiplier(real_scale)
    except ValueError as exc:
        raise _node_error(network, name, f"{what} is not representable: {exc}") from None


def avg_pool_count(network: Network, name: str) -> int:
    """The constant divisor (window area) of an AvgPool2d or GlobalAvgPool node in int8.

    Raises
    ------
    ValueError
        Naming the node, when one constant divisor is not the PyTorch semantics:
        ``count_include_pad=False`` with padding, a ``ceil_mode`` window overhanging the
        padded input, asymmetric padding; or when the count is 1 (the rescale factor 1 is not
        representable by a right shift).
    """
    op = network.op(name)
    (src,) = network.inputs(name)
    _, *in_hw = network.shape(src)
    if isinstance(op, GlobalAvgPool):
        kernel = in_hw
    else:
        pads = golden.pool_padding(name, op)
        if not op.count_include_pad and any(pads):
            raise _node_error(
                network,
                name,
                f"count_include_pad=False with padding={op.padding} is not supported in int8 "
                "(the divisor varies along the border)",
            )
        out_hw = network.shape(name)[1:]
        for size, out, k, s, p in zip(in_hw, out_hw, op.kernel, op.stride, pads, strict=True):
            if (out - 1) * s + k > size + 2 * p:
                raise _node_error(
                    network,
                    name,
                    f"ceil_mode={op.ceil_mode} makes the last window overhang the padded input "
                    "(a smaller divisor there), not supported in int8",
                )
        kernel = op.kernel
    count = math.prod(kernel)
    if count == 1:
        raise _node_error(
            network,
            name,
            f"averaging over a window of 1 element (kernel {tuple(kernel)}) needs the rescale "
            "factor 1, which the multiplier/right shift cannot represent",
        )
    return count


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
            raise _node_error(network, name, f"output {exc}") from None
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
        raise _node_error(
            network,
            name,
            f"quantised bias of output channel {channel} is {b_q[channel]:.0f}, outside int32",
        )
    multiplier, shift = _multiplier(
        network, name, t_in.scale * w_scale / t_out.scale, "requantisation scale"
    )
    act = numerics.activation_range(op.activation, t_out.zero_point, t_out.scale)
    return ConvQuant(w_q, b_q.astype(np.int32), multiplier, shift, *act, weight_scale=w_scale)


def _add_quant(
    network: Network, name: str, t_ins: list[TensorQuant], t_out: TensorQuant
) -> AddQuant:
    twice_max = 2 * max(t.scale for t in t_ins)
    ins = [_multiplier(network, name, t.scale / twice_max, "input scale") for t in t_ins]
    multiplier, shift = _multiplier(
        network, name, twice_max / ((1 << ADD_LEFT_SHIFT) * t_out.scale), "output scale"
    )
    act = numerics.activation_range(network.op(name).activation, t_out.zero_point, t_out.scale)
    return AddQuant(
        tuple(m for m, _ in ins), tuple(s for _, s in ins), multiplier, shift, ADD_LEFT_SHIFT, *act
    )


def quantize(
    network: Network, *, seed: int = 0, calibration: Mapping[str, ArrayLike] | None = None
) -> QuantizedNetwork:
    """Post-training int8 quantisation of ``network`` (see the module docstring).

    Parameters
    ----------
    network : Network
        Not modified. Conv2d/Linear nodes without weights get :func:`random_weights`.
    seed : int
        Seed of the random weights and of the default calibration input.
    calibration : mapping of str to array_like, optional
        Float inputs ``(N, C, H, W)`` by input name; default :func:`random_inputs` (one
        ``N(0, 1)`` sample per input).

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
    float_net = random_weights(network, seed)
    if calibration is None:
        calibration = random_inputs(float_net, seed)
    values = golden.trace_network(float_net, calibration)
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
            layers[name] = _add_quant(float_net, name, t_ins, tensors[name])
    return QuantizedNetwork(float_net, tensors, layers)
