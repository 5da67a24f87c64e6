"""Quantised networks: the int8 parameters of every tensor and layer.

A :class:`QuantizedNetwork` is what :func:`accel.compiler.compile` maps onto the hardware and
what :func:`accel.executor.run_network` executes in int8; :func:`accel.ptq.quantize` makes
one from a float network, and the ONNX frontend reads one from a QDQ/QOperator model. Every
tensor (the output of a node) has a :class:`TensorQuant` (per-tensor scale and zero point,
int8). Layers carry the integer parameters of their arithmetic (``docs/numerics.md``):

- Conv2d / ConvTranspose2d / Linear: :class:`ConvQuant` (int8 symmetric per-channel
  weights, int32 bias not yet folded with the input zero point, per-channel requantisation
  multiplier and shift, activation clamp bounds).
- AvgPool2d / GlobalAvgPool: :class:`PoolQuant` (``acc = sum(x - zp_in)`` over the window,
  divisor = kernel area (:func:`avg_pool_count`), then requantize with multiplier/shift, out
  zero point, clamp).
- Add: :class:`AddQuant` (gemmlowp/TFLite: each input ``(x - zp) << left_shift`` scaled by
  its multiplier/shift, summed, then requantised with the output multiplier/shift).
- Mul: :class:`MulQuant` (TFLite ``MUL``: ``(a - zp_a) * (b - zp_b)``, exact, requantised by
  ``s_a * s_b / s_y``).
- Pointwise: :class:`TableQuant` (the 256-entry int8 table of the function from the input's
  quantisation to the output's, :meth:`TableQuant.for_function`).
- PRelu: :class:`PReluQuant` (per channel, the requantisation of ``64 * (x - zp_in)`` for
  ``x >= zp_in`` and, with the negative-side multiplier of
  :func:`~accel.numerics.prelu_multiplier`, for ``x < zp_in``).
- MaxPool2d, Concat, Flatten, Activation: no parameters; output quantisation equals the
  input's.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from accel import golden, numerics
from accel.graph import GlobalAvgPool, Network, Pointwise, pool_padding

__all__ = [
    "IDENTITY_MULTIPLIER",
    "AddQuant",
    "ConvQuant",
    "MulQuant",
    "PReluQuant",
    "PoolQuant",
    "QuantizedNetwork",
    "TableQuant",
    "TensorQuant",
    "avg_pool_count",
    "multiplier_for",
    "node_error",
]


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
    # int8, (K, C/groups, R, S) for conv, (C, K/groups, R, S) for a transposed conv (the
    # float layout), (out, in) for linear
    weight: np.ndarray
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


@dataclass(frozen=True, eq=False)
class PReluQuant:
    """int8 PRelu (:func:`accel.numerics.qprelu`): per channel ``(multiplier, shift)`` of
    ``s_in / (s_out * PRELU_GAIN)`` and ``(multiplier_neg, shift_neg)`` of ``slope[c] * s_in
    / (s_out * PRELU_GAIN)`` (int64 ``(C,)`` arrays; :data:`accel.numerics.PRELU_GAIN`)."""

    multiplier: np.ndarray
    shift: np.ndarray
    multiplier_neg: np.ndarray
    shift_neg: np.ndarray

    @classmethod
    def for_slopes(cls, slope: ArrayLike, t_in: TensorQuant, t_out: TensorQuant) -> PReluQuant:
        """The parameters of a PRelu with ``slope`` from ``t_in`` to ``t_out``.

        Raises
        ------
        ValueError
            If a rescale is not representable (``accel.ptq`` widens the output range until
            ``s_in / s_out`` and ``|slope| * s_in / s_out`` are below 1).
        """
        slope = np.asarray(slope, dtype=np.float64)
        ratio = t_in.scale / (t_out.scale * numerics.PRELU_GAIN)
        multiplier, shift = multiplier_for(np.full(slope.shape, ratio), "PRelu rescale")
        multiplier_neg, shift_neg = numerics.prelu_multiplier(slope * ratio)
        return cls(*(np.asarray(v, dtype=np.int64) for v in (multiplier, shift)),
                   multiplier_neg, shift_neg)  # fmt: skip


@dataclass(frozen=True)
class AddQuant:
    input_multipliers: tuple[int, ...]
    input_shifts: tuple[int, ...]
    multiplier: int
    shift: int
    left_shift: int = numerics.ADD_LEFT_SHIFT
    act_min: int = -128
    act_max: int = 127

    @classmethod
    def for_scales(
        cls, inputs: list[TensorQuant], output: TensorQuant, activation: str | None
    ) -> AddQuant:
        """TFLite's int8 ``ADD``: ``left_shift = ADD_LEFT_SHIFT``, every input rescaled to
        ``twice_max = 2 * max(s_i)`` (real multiplier ``s_i / twice_max``), the sum by
        ``twice_max / (2**left_shift * s_out)``; ``ValueError`` if a factor is not
        representable."""
        twice_max = 2 * max(t.scale for t in inputs)
        ins = [multiplier_for(t.scale / twice_max, "input scale") for t in inputs]
        left_shift = numerics.ADD_LEFT_SHIFT
        multiplier, shift = multiplier_for(
            twice_max / ((1 << left_shift) * output.scale), "output scale"
        )
        act = numerics.activation_range(activation, output.zero_point, output.scale)
        return cls(
            tuple(m for m, _ in ins), tuple(s for _, s in ins), multiplier, shift, left_shift, *act
        )


@dataclass(frozen=True)
class MulQuant:
    """TFLite's int8 ``MUL``: ``acc = (a - zp_a) * (b - zp_b)``, then requantised with
    ``multiplier``/``shift`` of ``s_a * s_b / s_y`` (:func:`accel.numerics.qmul`)."""

    multiplier: int
    shift: int
    act_min: int = -128
    act_max: int = 127

    @classmethod
    def for_scales(cls, inputs: list[TensorQuant], output: TensorQuant) -> MulQuant:
        """``ValueError`` if ``s_a * s_b / s_y`` is not representable (``[2**-31, 1)``)."""
        a, b = inputs
        multiplier, shift = multiplier_for(a.scale * b.scale / output.scale, "output scale")
        return cls(multiplier, shift)


@dataclass(frozen=True, eq=False)
class TableQuant:
    """An int8 -> int8 function as its table: ``y_q = table[x_q + 128]``
    (:func:`accel.numerics.table_lookup`), ``table`` int8 of shape ``(256,)``."""

    table: np.ndarray

    def __post_init__(self) -> None:
        table = np.asarray(self.table)
        if table.dtype != np.int8 or table.shape != (numerics.TABLE_ENTRIES,):
            raise ValueError(
                f"TableQuant.table must be int8 of shape ({numerics.TABLE_ENTRIES},), got "
                f"{table.dtype} {table.shape}"
            )

    @classmethod
    def for_function(cls, op: Pointwise, t_in: TensorQuant, t_out: TensorQuant) -> TableQuant:
        """The table of ``op``'s function: entry ``i`` is ``t_out.quantize(f(t_in.dequantize(i
        - 128)))``, so the int8 layer equals the float function on every dequantised input,
        rounded once (half to even) into the output quantisation."""
        x = t_in.dequantize(np.arange(numerics.INT8_MIN, numerics.INT8_MAX + 1))
        return cls(t_out.quantize(golden.pointwise(x, op.function, op.params)))


@dataclass
class QuantizedNetwork:
    """A network with int8 quantisation of every tensor and layer.

    ``network`` holds the float weights the quantisation was derived from (so it is also the
    float reference), ``tensors`` the :class:`TensorQuant` of every node's output, ``layers``
    the integer parameters of every Conv2d, Linear, AvgPool2d, GlobalAvgPool, Add and
    Pointwise.
    """

    network: Network
    tensors: dict[str, TensorQuant] = field(default_factory=dict)
    layers: dict[str, ConvQuant | PoolQuant | AddQuant | MulQuant | TableQuant] = field(
        default_factory=dict
    )

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

    @property
    def digest(self) -> str:
        """A hash (32 hex digits) of everything the compiler reads from this network.

        It covers the graph (the network's name; every node's name, op and op attributes,
        inputs in operand order, output shape; so the edges too), every weight and bias
        array (float and int8, with dtype and shape), every tensor's scale and zero point, and
        every layer's integer parameters (multipliers, shifts, biases, clamp bounds, weight
        scales). Floats are hashed exactly (``float.hex``). Node metadata (free-form notes of
        the frontends, which the compiler does not read) is not part of it. Computed afresh on
        every access: the network is mutable, and hashing a large one takes a moment.
        """
        h = hashlib.sha256(b"accel.QuantizedNetwork\0")
        net = self.network
        _feed(h, net.name)
        for name in net.order():
            op = net.op(name)
            _feed(h, ("node", name, type(op).__name__, _fields(op)))
            _feed(h, (net.inputs(name), net.shape(name)))
            weights = net.weights(name)
            _feed(h, [(key, weights[key]) for key in sorted(weights)])
        _feed(h, sorted((name, (t.scale, t.zero_point)) for name, t in self.tensors.items()))
        for name in sorted(self.layers):
            layer = self.layers[name]
            _feed(h, ("layer", name, type(layer).__name__, _fields(layer)))
        return h.hexdigest()[:32]


def _fields(instance: Any) -> list[tuple[str, Any]]:
    return [(f.name, getattr(instance, f.name)) for f in dataclasses.fields(instance)]


def _feed(h: Any, value: Any) -> None:
    """Hash ``value`` unambiguously: every item tagged with its kind, lengths before
    contents, numbers as Python numbers (an ``np.int64(3)`` hashes as ``3``)."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None:
        h.update(b"N")
    elif isinstance(value, bool):
        h.update(b"T" if value else b"F")
    elif isinstance(value, int):
        h.update(b"i%d;" % value)
    elif isinstance(value, float):
        h.update(b"f" + value.hex().encode() + b";")
    elif isinstance(value, str):
        data = value.encode()
        h.update(b"s%d:" % len(data) + data)
    elif isinstance(value, np.ndarray):
        data = np.ascontiguousarray(value)
        header = f"a{data.dtype.str}{list(data.shape)}{data.nbytes}:".encode()
        h.update(header)
        h.update(data.view(np.uint8).reshape(-1) if data.nbytes else b"")
    elif isinstance(value, list | tuple):
        h.update(b"l%d:" % len(value))
        for item in value:
            _feed(h, item)
    elif isinstance(value, dict):
        h.update(b"d%d:" % len(value))
        for key in sorted(value, key=repr):
            _feed(h, key)
            _feed(h, value[key])
    else:
        raise TypeError(f"cannot hash a {type(value).__name__} into a network digest")


def node_error(network: Network, name: str, message: str) -> ValueError:
    """A ``ValueError`` whose message starts with the node's name and op."""
    return ValueError(f"node {name!r} ({type(network.op(name)).__name__}): {message}")


def avg_pool_count(network: Network, name: str) -> int:
    """The constant divisor (window area) of an AvgPool2d or GlobalAvgPool node in int8.

    A count of 1 (a 1x1 window, or a global pool of a 1x1 map) is the identity: its
    rescale factor 1 is :func:`multiplier_for`'s exact identity multiplier.

    Raises
    ------
    ValueError
        Naming the node, when one constant divisor is not the PyTorch semantics:
        ``count_include_pad=False`` with padding, a ``ceil_mode`` window overhanging the
        padded input, asymmetric padding.
    """
    op = network.op(name)
    (src,) = network.inputs(name)
    _, *in_hw = network.shape(src)
    if isinstance(op, GlobalAvgPool):
        kernel = in_hw
    else:
        pads = pool_padding(name, op)
        if not op.count_include_pad and any(pads):
            raise node_error(
                network,
                name,
                f"count_include_pad=False with padding={op.padding} is not supported in int8 "
                "(the divisor varies along the border)",
            )
        out_hw = network.shape(name)[1:]
        for size, out, k, s, p in zip(in_hw, out_hw, op.kernel, op.stride, pads, strict=True):
            if (out - 1) * s + k > size + 2 * p:
                raise node_error(
                    network,
                    name,
                    f"ceil_mode={op.ceil_mode} makes the last window overhang the padded input "
                    "(a smaller divisor there), not supported in int8",
                )
        kernel = op.kernel
    return math.prod(kernel)


#: The multiplier and shift of the rescale factor exactly 1 (see :func:`multiplier_for`).
IDENTITY_MULTIPLIER = (numerics.MULTIPLIER_MAX, 0)


def multiplier_for(real_scale: ArrayLike, what: str) -> tuple[int, int] | tuple[NDArray, NDArray]:
    """:func:`~accel.numerics.quantize_multiplier`, its error naming ``what``; except that a
    factor of exactly 1 (an identity pool, or equal scales) is :data:`IDENTITY_MULTIPLIER`,
    ``M = 2**31 - 1``, ``shift = 0``, which is exact for every accumulator ``|acc| < 2**30``:
    ``SRDHM(acc, 2**31 - 1) = acc`` there (``docs/numerics.md``)."""
    try:
        scale = np.asarray(real_scale, dtype=np.float64)
    except (TypeError, ValueError):
        scale = None  # quantize_multiplier raises its TypeError
    one = scale is not None and scale == 1.0
    try:
        if not np.any(one):
            return numerics.quantize_multiplier(real_scale)
        multiplier, shift = numerics.quantize_multiplier(np.where(one, 0.5, scale))
    except ValueError as exc:
        raise ValueError(f"{what} is not representable: {exc}") from None
    multiplier = np.where(one, IDENTITY_MULTIPLIER[0], multiplier).astype(np.int64)
    shift = np.where(one, IDENTITY_MULTIPLIER[1], shift).astype(np.int64)
    if scale.ndim == 0:
        return int(multiplier), int(shift)
    return multiplier, shift
