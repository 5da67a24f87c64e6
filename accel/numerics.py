"""Integer arithmetic of the accelerator: int8 quantisation with TFLite/gemmlowp semantics.

The pipeline of one output element (see ``docs/numerics.md`` for the derivation and a worked
example)::

    acc  = sum x_q * w_q  (padding = x_zero_point)  +  bias_q - x_zero_point * sum w_q   # int32
    y    = RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(acc, multiplier), shift)
    out  = clamp(y + out_zero_point, act_min, act_max)                                   # int8

Conventions
-----------
* Activations and weights are int8, weights symmetric (zero point 0), bias and accumulator
  int32.
* ``real_scale = multiplier * 2**-(31 + shift)`` with ``multiplier`` in ``[2**30, 2**31)`` and
  ``shift`` a **right** shift in ``[0, 31]``: the hardware has no left shift, so only
  ``real_scale`` in ``[2**-32, 1)`` (after rounding) is representable.
* Integer helpers take any integer arrays (or Python ints) holding int32 values and return
  ``int64`` arrays holding int32 values; they broadcast like NumPy.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from accel import golden

__all__ = [
    "ADD_LEFT_SHIFT",
    "INT8_MAX",
    "INT8_MIN",
    "INT32_MAX",
    "INT32_MIN",
    "PRELU_GAIN",
    "PRELU_MULTIPLIER_BITS",
    "TABLE_ENTRIES",
    "activation_range",
    "fold_zero_point_into_bias",
    "pack_prelu_shift",
    "prelu_multiplier",
    "qadd",
    "qavg_pool2d",
    "qconv2d",
    "qconv_transpose2d",
    "qlinear",
    "qmul",
    "qprelu",
    "quantize_multiplier",
    "requantize",
    "requantize_two_slope",
    "rounding_divide_by_pot",
    "saturating_rounding_doubling_high_mul",
    "table_lookup",
]

INT8_MIN, INT8_MAX = -(2**7), 2**7 - 1
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
MULTIPLIER_MIN, MULTIPLIER_MAX = 2**30, 2**31 - 1
SHIFT_MAX = 31
#: The left shift of every int8 Add before its inputs are rescaled (TFLite's value for int8;
#: the vector unit shifts by exactly this).
ADD_LEFT_SHIFT = 20
ACTIVATIONS = (None, "relu", "relu6")
#: Entries of an activation table: one output per int8 input value.
TABLE_ENTRIES = 256


# --------------------------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------------------------


def _int_array(value: ArrayLike, name: str, low: int, high: int) -> NDArray[np.int64]:
    """``value`` as an int64 array, checking its dtype is integer and its range [low, high]."""
    a = np.asarray(value)
    if a.dtype.kind not in "iu":
        raise TypeError(f"{name} must be an integer array or int, got dtype {a.dtype}")
    if a.size:
        lo, hi = int(a.min()), int(a.max())
        if lo < low or hi > high:
            bad = lo if lo < low else hi
            raise ValueError(f"{name} must be in [{low}, {high}], got {bad}")
    return a.astype(np.int64)


def _int_scalar(value: object, name: str, low: int, high: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be in [{low}, {high}], got {value!r}")
    return int(value)


def _check_dtype(a: object, name: str, dtype: type[np.generic]) -> NDArray:
    if not isinstance(a, np.ndarray) or a.dtype != dtype:
        got = a.dtype if isinstance(a, np.ndarray) else type(a).__name__
        raise TypeError(f"{name} must be a numpy array of dtype {np.dtype(dtype)}, got {got}")
    return a


def _round_half_away(v: NDArray | float) -> NDArray | float:
    """C ``std::round`` (ties away from zero), as TFLite uses when computing parameters."""
    return np.sign(v) * np.floor(np.abs(v) + 0.5)


# --------------------------------------------------------------------------------------------
# fixed-point primitives (gemmlowp/fixedpoint.h)
# --------------------------------------------------------------------------------------------


def quantize_multiplier(real_scale: ArrayLike) -> tuple[int, int] | tuple[NDArray, NDArray]:
    """Split a real rescale factor into an int32 multiplier and a right shift.

    ``real_scale ~= multiplier * 2**-(31 + shift)`` with ``multiplier`` in ``[2**30, 2**31)``
    and ``shift`` in ``[0, 31]`` (a right shift; the hardware has no left shift).

    The mantissa is rounded half away from zero as TFLite's ``QuantizeMultiplier``; a mantissa
    that rounds up to ``2**31`` becomes ``2**30`` with one less shift. For ``real_scale`` in
    ``[1 - 2**-32, 1)`` that would need a left shift, so the multiplier saturates to
    ``2**31 - 1`` with shift 0 instead. The relative error is below ``2**-30`` everywhere.

    Parameters
    ----------
    real_scale : float or array_like of float
        Typically ``input_scale * weight_scale / output_scale``; one per output channel for
        per-channel quantisation. Must be finite and in ``(0, 1)``.

    Returns
    -------
    (int, int) or (ndarray, ndarray)
        ``(multiplier, shift)``: Python ints for a scalar input, ``int64`` arrays of the input's
        shape otherwise.

    Raises
    ------
    TypeError
        If ``real_scale`` is not numeric.
    ValueError
        If a value is not finite, ``<= 0`` or ``>= 1``, or so small (below ``2**-32`` after
        rounding) that it needs a right shift above 31. TFLite would return multiplier 0 for
        the latter; we reject it, since such a layer would output only its zero point.
    """
    scale = np.asarray(real_scale)
    if scale.dtype.kind not in "iuf":
        raise TypeError(f"real_scale must be a float or an array of floats, got {real_scale!r}")
    scale = scale.astype(np.float64)

    def reject(mask: NDArray, why: str) -> None:
        if mask.any():
            index = tuple(int(i) for i in np.argwhere(mask)[0])
            where = f"real_scale[{', '.join(map(str, index))}]" if index else "real_scale"
            raise ValueError(f"{where} must be {why}, got {float(scale[index])!r}")

    reject(~(np.isfinite(scale) & (scale > 0) & (scale < 1)), "finite and in (0, 1)")
    mantissa, exponent = np.frexp(scale)  # scale = mantissa * 2**exponent, mantissa in [0.5, 1)
    multiplier = _round_half_away(mantissa * 2.0**31).astype(np.int64)
    carry = multiplier == 2**31
    multiplier = np.where(carry, 2**30, multiplier)
    shift = -(exponent.astype(np.int64) + carry)
    needs_left = shift < 0  # only real_scale in [1 - 2**-32, 1)
    multiplier = np.where(needs_left, MULTIPLIER_MAX, multiplier)
    shift = np.where(needs_left, 0, shift)
    reject(shift > SHIFT_MAX, f">= 2**-32 (a right shift <= {SHIFT_MAX})")
    if scale.ndim == 0:
        return int(multiplier), int(shift)
    return multiplier, shift


def saturating_rounding_doubling_high_mul(a: ArrayLike, b: ArrayLike) -> NDArray[np.int64]:
    """gemmlowp ``SaturatingRoundingDoublingHighMul``: ``round(a * b / 2**31)`` in int32.

    Exactly::

        if a == b == INT32_MIN: return INT32_MAX        # the only overflow
        ab = a * b                                     # exact in 64 bits
        nudge = 2**30 if ab >= 0 else 1 - 2**30
        return trunc((ab + nudge) / 2**31)             # C division, toward zero

    Rounding is to nearest with ties toward +infinity (``-1.5 -> -1``, ``1.5 -> 2``), because of
    the asymmetric negative nudge.

    Parameters
    ----------
    a, b : array_like of int
        int32 values; broadcast together.

    Returns
    -------
    ndarray of int64
        int32 values.

    Raises
    ------
    TypeError
        Non-integer dtype.
    ValueError
        A value outside int32.
    """
    a = _int_array(a, "a", INT32_MIN, INT32_MAX)
    b = _int_array(b, "b", INT32_MIN, INT32_MAX)
    return srdhm_unchecked(a, b)


def srdhm_unchecked(a: NDArray[np.int64], b: NDArray[np.int64]) -> NDArray[np.int64]:
    """:func:`saturating_rounding_doubling_high_mul` without argument checks (int64 arrays
    holding int32 values), for the hardware models' inner loops.

    gemmlowp truncates ``ab + nudge`` towards zero, with ``nudge = 2**30`` for ``ab >= 0``
    and ``1 - 2**30`` below; ``nudge`` has the sign of ``ab`` (or is positive at 0), so for
    ``ab < 0`` truncation is the floor of ``(ab + 1 - 2**30 + 2**31 - 1) / 2**31``: both
    cases are ``(ab + 2**30) >> 31``. ``|ab| <= 2**62`` (no int64 overflow) and the result
    exceeds ``INT32_MAX`` only for ``ab = 2**62``, ``INT32_MIN * INT32_MIN``, which
    saturates."""
    return np.minimum((a * b + (1 << 30)) >> 31, INT32_MAX)


def rounding_divide_by_pot(x: ArrayLike, exponent: ArrayLike) -> NDArray[np.int64]:
    """gemmlowp ``RoundingDivideByPOT``: ``x / 2**exponent`` rounded half away from zero.

    Exactly::

        mask = 2**exponent - 1
        remainder = x & mask                           # two's complement bits
        threshold = (mask >> 1) + (1 if x < 0 else 0)
        return (x >> exponent) + (1 if remainder > threshold else 0)   # arithmetic shift

    Parameters
    ----------
    x : array_like of int
        int32 values.
    exponent : array_like of int
        In ``[0, 31]``; broadcast against ``x``.

    Returns
    -------
    ndarray of int64
        int32 values.

    Raises
    ------
    TypeError
        Non-integer dtype.
    ValueError
        ``x`` outside int32 or ``exponent`` outside ``[0, 31]``.
    """
    x = _int_array(x, "x", INT32_MIN, INT32_MAX)
    exponent = _int_array(exponent, "exponent", 0, SHIFT_MAX)
    return rdbpot_unchecked(x, exponent)


def rdbpot_unchecked(x: NDArray[np.int64], exponent: NDArray[np.int64]) -> NDArray[np.int64]:
    """:func:`rounding_divide_by_pot` without argument checks (int64 arrays).

    The same value as the mask and threshold of its definition, in fewer array operations
    (this is on the models' hot path): ``(x + half - nudge) >> exponent`` with ``half =
    2**(exponent-1)`` (0 for exponent 0) and ``nudge = 1`` for ``x < 0`` and ``exponent > 0``.
    For ``x >= 0`` that is ``floor(x / 2**e + 1/2)``, ties up; for ``x < 0`` it rounds up
    exactly when the remainder ``x & mask`` is at least ``half + 1``, i.e. above the
    definition's ``threshold = half``: ties away from zero."""
    exponent = np.asarray(exponent)
    rounded = (x >> 63) & -(exponent > 0).astype(np.int64)  # -nudge: x >> 63 is -1 or 0
    rounded += (np.int64(1) << exponent) >> 1
    rounded += x
    rounded >>= exponent
    return rounded


def _per_channel(value: NDArray, name: str, shape: tuple[int, ...], axis: int | None) -> NDArray:
    """Reshape a scalar or 1-D per-channel vector to broadcast along ``axis`` of ``shape``."""
    if value.ndim == 0:
        return value
    if value.ndim != 1:
        raise ValueError(f"{name} must be a scalar or 1-D, got shape {value.shape}")
    if axis is None:
        if len(shape) not in (1, 2, 4):
            raise ValueError(f"axis must be given for a {len(shape)}-D acc with per-channel {name}")
        axis = 1 if len(shape) == 4 else len(shape) - 1
    if not -len(shape) <= axis < len(shape):
        raise ValueError(f"axis must be a valid axis of acc with shape {shape}, got {axis!r}")
    if value.shape[0] != shape[axis]:
        raise ValueError(
            f"{name} has {value.shape[0]} channels but acc has {shape[axis]} along axis {axis}"
        )
    target = [1] * len(shape)
    target[axis] = value.shape[0]
    return value.reshape(target)


def requantize(
    acc: ArrayLike,
    multiplier: ArrayLike,
    shift: ArrayLike,
    out_zero_point: int,
    act_min: int = INT8_MIN,
    act_max: int = INT8_MAX,
    *,
    axis: int | None = None,
) -> NDArray[np.int8]:
    """Rescale int32 accumulators to int8 (TFLite ``MultiplyByQuantizedMultiplier``).

    ``clamp(RoundingDivideByPOT(SRDHM(acc, multiplier), shift) + out_zero_point, act_min,
    act_max)``. The zero-point addition is exact (it cannot wrap), then clamped: hardware must
    saturate or widen that adder.

    Parameters
    ----------
    acc : array_like of int
        int32 accumulators (bias already added).
    multiplier : int or 1-D array_like of int
        In ``[2**30, 2**31)``; a vector is per channel.
    shift : int or 1-D array_like of int
        Right shift in ``[0, 31]``; a vector is per channel.
    out_zero_point : int
        In ``[-128, 127]``.
    act_min, act_max : int
        Clamp bounds in ``[-128, 127]``, ``act_min <= act_max``; see :func:`activation_range`.
    axis : int, optional
        Channel axis of per-channel vectors. Default: 1 for 4-D ``acc`` (NCHW), the last axis
        for 1-D and 2-D ``acc`` ((N, K)); must be given for other ranks.

    Returns
    -------
    ndarray of int8
        Same shape as ``acc``.

    Raises
    ------
    TypeError
        Non-integer arguments.
    ValueError
        Any value out of its range, or a per-channel vector whose length is not the size of
        the channel axis.
    """
    acc = _int_array(acc, "acc", INT32_MIN, INT32_MAX)
    multiplier = _int_array(multiplier, "multiplier", MULTIPLIER_MIN, MULTIPLIER_MAX)
    shift = _int_array(shift, "shift", 0, SHIFT_MAX)
    out_zero_point = _int_scalar(out_zero_point, "out_zero_point", INT8_MIN, INT8_MAX)
    act_min = _int_scalar(act_min, "act_min", INT8_MIN, INT8_MAX)
    act_max = _int_scalar(act_max, "act_max", INT8_MIN, INT8_MAX)
    if act_min > act_max:
        raise ValueError(f"act_min must be <= act_max, got act_min={act_min}, act_max={act_max}")
    multiplier = _per_channel(multiplier, "multiplier", acc.shape, axis)
    shift = _per_channel(shift, "shift", acc.shape, axis)
    return requantize_unchecked(acc, multiplier, shift, out_zero_point, act_min, act_max)


def requantize_unchecked(
    acc: NDArray[np.int64],
    multiplier: NDArray[np.int64],
    shift: NDArray[np.int64],
    out_zero_point: int,
    act_min: int,
    act_max: int,
) -> NDArray[np.int8]:
    """:func:`requantize` without argument checks; parameters already broadcastable."""
    scaled = rdbpot_unchecked(srdhm_unchecked(acc, multiplier), shift)
    return np.minimum(np.maximum(scaled + out_zero_point, act_min), act_max).astype(np.int8)


def activation_range(
    activation: str | None, out_zero_point: int, scale: float | None = None
) -> tuple[int, int]:
    """Quantised clamp bounds ``(act_min, act_max)`` of a fused activation.

    * ``None``: ``(-128, 127)``
    * ``"relu"``: ``(out_zero_point, 127)``
    * ``"relu6"``: ``(out_zero_point, min(127, out_zero_point + round(6 / scale)))``, the
      rounding half away from zero (TFLite ``CalculateActivationRangeQuantized``).

    Parameters
    ----------
    activation : {None, "relu", "relu6"}
    out_zero_point : int
        In ``[-128, 127]``.
    scale : float, optional
        Output scale, required (finite, > 0) for ``"relu6"``.

    Raises
    ------
    ValueError
        Unknown activation, zero point out of range, or a missing/invalid scale for relu6.
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    zp = _int_scalar(out_zero_point, "out_zero_point", INT8_MIN, INT8_MAX)
    if activation is None:
        return INT8_MIN, INT8_MAX
    if activation == "relu":
        return zp, INT8_MAX
    if scale is None or not np.isfinite(scale) or scale <= 0:
        raise ValueError(f"activation='relu6' needs a finite output scale > 0, got {scale!r}")
    six = _round_half_away(6.0 / scale)
    return zp, int(min(INT8_MAX, zp + six))


# --------------------------------------------------------------------------------------------
# quantised layers
# --------------------------------------------------------------------------------------------


def fold_zero_point_into_bias(
    w_q: NDArray[np.int8], bias_q: NDArray[np.int32] | None, x_zero_point: int
) -> NDArray[np.int32]:
    """Fold the input zero point into the bias: ``bias - x_zero_point * sum(w[k])``.

    ``sum(w[k])`` is over every axis but the first (``(C/groups, R, S)`` of a conv filter,
    ``in`` of a linear weight), so ``conv(x_q, w) + folded == conv(x_q - x_zero_point, w) + bias``
    provided the padding of ``x_q`` holds ``x_zero_point`` (see :func:`qconv2d`).

    Parameters
    ----------
    w_q : ndarray of int8, shape (K, ...)
    bias_q : ndarray of int32, shape (K,), or None (zeros)
    x_zero_point : int
        In ``[-128, 127]``.

    Returns
    -------
    ndarray of int32, shape (K,)

    Raises
    ------
    TypeError
        Wrong dtypes.
    ValueError
        Wrong bias shape, zero point out of range, or a folded value outside int32.
    """
    w_q = _check_dtype(w_q, "w_q", np.int8)
    x_zero_point = _int_scalar(x_zero_point, "x_zero_point", INT8_MIN, INT8_MAX)
    k = w_q.shape[0] if w_q.ndim else 0
    if bias_q is None:
        bias = np.zeros(k, dtype=np.int64)
    else:
        bias = _check_dtype(bias_q, "bias_q", np.int32).astype(np.int64)
        if bias.shape != (k,):
            raise ValueError(f"bias_q must have shape ({k},), got shape {bias.shape}")
    folded = bias - x_zero_point * w_q.reshape(k, -1).sum(axis=1, dtype=np.int64)
    outside = (folded < INT32_MIN) | (folded > INT32_MAX)
    if outside.any():
        channel = int(np.argmax(outside))
        raise ValueError(
            f"folded bias of output channel {channel} is {int(folded[channel])}, outside int32"
        )
    return folded.astype(np.int32)


def _check_int32_accumulators(acc: NDArray) -> None:
    """Raise ValueError naming the first value of ``acc`` outside int32 (the accumulator)."""
    if acc.size and (acc.min() < INT32_MIN or acc.max() > INT32_MAX):
        bad = int(acc.min()) if acc.min() < INT32_MIN else int(acc.max())
        raise ValueError(f"accumulator value {bad} overflows int32")


def qconv2d(
    x_q: NDArray[np.int8],
    w_q: NDArray[np.int8],
    bias_q: NDArray[np.int32] | None = None,
    *,
    x_zero_point: int,
    multiplier: ArrayLike,
    shift: ArrayLike,
    out_zero_point: int,
    activation: str | None = None,
    out_scale: float | None = None,
    stride: golden.PairLike = 1,
    padding: golden.PaddingLike = 0,
    dilation: golden.PairLike = 1,
    groups: int = 1,
) -> NDArray[np.int8]:
    """Quantised 2-D convolution as the accelerator computes it, NCHW, int8 out.

    ``acc = conv2d(x_q padded with x_zero_point, w_q) + fold_zero_point_into_bias(w_q, bias_q,
    x_zero_point)`` then ``requantize(acc, multiplier, shift, out_zero_point, *activation_range(
    activation, out_zero_point, out_scale))`` per output channel.

    The padded border holds ``x_zero_point`` (the quantised real 0), not 0: the folded bias
    subtracts ``x_zero_point * w`` for every tap, padded taps included, so only then does
    ``acc`` equal ``conv2d(x_q - x_zero_point, w_q) + bias_q`` with real-zero padding
    everywhere, borders included. The hardware line buffer generates the same pad value.

    Parameters
    ----------
    x_q : ndarray of int8, shape (N, C, H, W)
    w_q : ndarray of int8, shape (K, C / groups, R, S)
        Symmetric weights (zero point 0).
    bias_q : ndarray of int32, shape (K,), or None
        Bias in accumulator units (``input_scale * weight_scale``).
    x_zero_point, out_zero_point : int
        In ``[-128, 127]``.
    multiplier, shift : int or array_like of shape (K,)
        From :func:`quantize_multiplier`; vectors are per output channel.
    activation : {None, "relu", "relu6"}
    out_scale : float, optional
        Output scale; required for ``"relu6"``.
    stride, padding, dilation, groups
        As in :func:`accel.golden.conv2d`.

    Returns
    -------
    ndarray of int8, shape (N, K, P, Q)

    Raises
    ------
    TypeError
        ``x_q``/``w_q`` not int8, ``bias_q`` not int32 (the message names the dtype).
    ValueError
        Any error of :func:`accel.golden.conv2d`, :func:`fold_zero_point_into_bias`,
        :func:`requantize` or :func:`activation_range`, or an accumulator outside int32.
    """
    x_q = _check_dtype(x_q, "x_q", np.int8)
    w_q = _check_dtype(w_q, "w_q", np.int8)
    bias = fold_zero_point_into_bias(w_q, bias_q, x_zero_point)
    act_min, act_max = activation_range(activation, out_zero_point, out_scale)
    acc = golden.conv2d(
        x_q,
        w_q,
        bias,
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
        pad_value=x_zero_point,
    )
    _check_int32_accumulators(acc)
    return requantize(acc, multiplier, shift, out_zero_point, act_min, act_max, axis=1)


def qconv_transpose2d(
    x_q: NDArray[np.int8],
    w_q: NDArray[np.int8],
    bias_q: NDArray[np.int32] | None = None,
    *,
    x_zero_point: int,
    multiplier: ArrayLike,
    shift: ArrayLike,
    out_zero_point: int,
    activation: str | None = None,
    out_scale: float | None = None,
    stride: golden.PairLike = 1,
    padding: int | Sequence[int] = 0,
    output_padding: golden.PairLike = 0,
    dilation: golden.PairLike = 1,
    groups: int = 1,
) -> NDArray[np.int8]:
    """Quantised transposed 2-D convolution, NCHW, int8 out.

    ``acc = conv_transpose2d(x_q - x_zero_point, w_q) + bias_q`` (exact, in integers; the
    output positions no input reaches hold ``bias_q``), then ``requantize(acc, multiplier,
    shift, out_zero_point, *activation_range(activation, out_zero_point, out_scale))`` per
    output channel. The accelerator computes the same ``acc`` as one ordinary convolution
    per output phase with the zero point folded into the bias
    (:mod:`accel.compiler.lower_transpose`).

    Parameters
    ----------
    x_q : ndarray of int8, shape (N, C, H, W)
    w_q : ndarray of int8, shape (C, K / groups, R, S)
        PyTorch/ONNX layout; symmetric (zero point 0), scaled per output channel.
    bias_q : ndarray of int32, shape (K,), or None
    x_zero_point, out_zero_point, multiplier, shift, activation, out_scale
        As in :func:`qconv2d`.
    stride, padding, output_padding, dilation, groups
        As in :func:`accel.golden.conv_transpose2d`.

    Raises
    ------
    TypeError
        ``x_q``/``w_q`` not int8, ``bias_q`` not int32.
    ValueError
        Any error of :func:`accel.golden.conv_transpose2d` or :func:`requantize`, or an
        accumulator outside int32.
    """
    x_q = _check_dtype(x_q, "x_q", np.int8)
    w_q = _check_dtype(w_q, "w_q", np.int8)
    if bias_q is not None:
        bias_q = _check_dtype(bias_q, "bias_q", np.int32)
    x_zero_point = _int_scalar(x_zero_point, "x_zero_point", INT8_MIN, INT8_MAX)
    act_min, act_max = activation_range(activation, out_zero_point, out_scale)
    acc = golden.conv_transpose2d(
        x_q.astype(np.int64) - x_zero_point,
        w_q,
        bias_q,
        stride=stride,
        padding=padding,
        output_padding=output_padding,
        dilation=dilation,
        groups=groups,
    )
    _check_int32_accumulators(acc)
    return requantize(acc, multiplier, shift, out_zero_point, act_min, act_max, axis=1)


def qlinear(
    x_q: NDArray[np.int8],
    w_q: NDArray[np.int8],
    bias_q: NDArray[np.int32] | None = None,
    *,
    x_zero_point: int,
    multiplier: ArrayLike,
    shift: ArrayLike,
    out_zero_point: int,
    activation: str | None = None,
    out_scale: float | None = None,
) -> NDArray[np.int8]:
    """Quantised fully connected layer: :func:`qconv2d` of a 1x1 image.

    Parameters
    ----------
    x_q : ndarray of int8, shape (N, in)
    w_q : ndarray of int8, shape (out, in)
    bias_q, x_zero_point, multiplier, shift, out_zero_point, activation, out_scale
        As in :func:`qconv2d`; vectors are per output feature.

    Returns
    -------
    ndarray of int8, shape (N, out)

    Raises
    ------
    ValueError
        ``x_q`` or ``w_q`` not 2-D, plus the errors of :func:`qconv2d`.
    """
    for name, a in (("x_q", x_q), ("w_q", w_q)):
        if np.ndim(a) != 2:
            raise ValueError(f"{name} must be 2-D, got shape {np.shape(a)}")
    out = qconv2d(
        np.asarray(x_q)[:, :, None, None],
        np.asarray(w_q)[:, :, None, None],
        bias_q,
        x_zero_point=x_zero_point,
        multiplier=multiplier,
        shift=shift,
        out_zero_point=out_zero_point,
        activation=activation,
        out_scale=out_scale,
    )
    return out[:, :, 0, 0]


# --------------------------------------------------------------------------------------------
# int8 pooling and element-wise add
# --------------------------------------------------------------------------------------------


def _int8(x: object, name: str) -> NDArray[np.int8]:
    if not isinstance(x, np.ndarray) or x.dtype != np.int8:
        got = x.dtype if isinstance(x, np.ndarray) else type(x).__name__
        raise TypeError(f"{name} must be a numpy array of dtype int8, got {got}")
    return x


def qavg_pool2d(
    x_q: NDArray[np.int8],
    kernel: golden.PairLike,
    stride: golden.PairLike | None = None,
    padding: golden.PairLike = 0,
    ceil_mode: bool = False,
    *,
    x_zero_point: int,
    multiplier: int,
    shift: int,
    out_zero_point: int,
    act_min: int = -128,
    act_max: int = 127,
) -> NDArray[np.int8]:
    """Quantised average pooling: window sum of ``x_q - x_zero_point``, then requantize.

    ``acc[n, c, p, q] = sum over the window of (x_q - x_zero_point)``, padded positions (and
    positions of a ``ceil_mode`` window past the padding) contributing 0, i.e. real 0; then
    ``requantize(acc, multiplier, shift, out_zero_point, act_min, act_max)``. The divisor is
    folded into ``multiplier``/``shift`` (``quantize_multiplier(1 / kernel area)``), so this is
    PyTorch's ``count_include_pad=True`` whenever no window overhangs the padded input.

    Parameters
    ----------
    x_q : ndarray of int8, shape (N, C, H, W)
    kernel, stride, padding, ceil_mode
        As in :func:`accel.golden.max_pool2d`.
    x_zero_point, out_zero_point : int
        Zero points of input and output.
    multiplier, shift, act_min, act_max : int
        As in :func:`requantize`.

    Returns
    -------
    ndarray of int8, shape (N, C, P, Q)
    """
    x = _int8(x_q, "x_q").astype(np.int64) - x_zero_point
    win, _, _ = golden.pool_windows(x, kernel, stride, padding, ceil_mode, 0)
    acc = win.sum(axis=(4, 5))
    return requantize(acc, multiplier, shift, out_zero_point, act_min, act_max)


def qadd(
    inputs: Sequence[NDArray[np.int8]],
    zero_points: Sequence[int],
    input_multipliers: Sequence[int],
    input_shifts: Sequence[int],
    *,
    left_shift: int = ADD_LEFT_SHIFT,
    multiplier: int,
    shift: int,
    out_zero_point: int,
    act_min: int = -128,
    act_max: int = 127,
) -> NDArray[np.int8]:
    """Quantised element-wise sum (TFLite/gemmlowp int8 ``ADD``), all int32 arithmetic.

    For each input ``i``::

        scaled_i = RoundingDivideByPOT(SRDHM((x_i - zp_i) << left_shift, M_i), shift_i)

    then ``out = clamp(RoundingDivideByPOT(SRDHM(sum_i scaled_i, multiplier), shift) +
    out_zero_point, act_min, act_max)``, i.e. :func:`requantize` of the sum.

    Parameters
    ----------
    inputs : sequence of int8 arrays of one shape
    zero_points, input_multipliers, input_shifts : sequences of int, one per input
    left_shift, multiplier, shift, out_zero_point, act_min, act_max : int

    Returns
    -------
    ndarray of int8

    Raises
    ------
    ValueError
        Sequences of different lengths, shapes that differ, or an intermediate outside int32.
    """
    if not len(inputs) == len(zero_points) == len(input_multipliers) == len(input_shifts):
        raise ValueError(
            f"qadd needs one zero point, multiplier and shift per input, got {len(inputs)} "
            f"inputs, {len(zero_points)} zero points, {len(input_multipliers)} multipliers, "
            f"{len(input_shifts)} shifts"
        )
    if len({np.shape(x) for x in inputs}) != 1:
        raise ValueError(f"qadd inputs must have one shape, got {[np.shape(x) for x in inputs]}")
    total = np.zeros(np.shape(inputs[0]), dtype=np.int64)
    for i, (x, zp, m, sh) in enumerate(
        zip(inputs, zero_points, input_multipliers, input_shifts, strict=True)
    ):
        shifted = (_int8(x, f"inputs[{i}]").astype(np.int64) - zp) << left_shift
        high = saturating_rounding_doubling_high_mul(shifted, m)
        total += rounding_divide_by_pot(high, sh)
    return requantize(total, multiplier, shift, out_zero_point, act_min, act_max)


def qmul(
    a_q: NDArray[np.int8],
    b_q: NDArray[np.int8],
    a_zero_point: int,
    b_zero_point: int,
    *,
    multiplier: int,
    shift: int,
    out_zero_point: int,
    act_min: int = INT8_MIN,
    act_max: int = INT8_MAX,
) -> NDArray[np.int8]:
    """Quantised element-wise product (TFLite int8 ``MUL``), all integer arithmetic.

    ``acc = (a - a_zero_point) * (b - b_zero_point)`` (exact: ``|acc| <= 255**2 < 2**16``),
    then ``out = requantize(acc, multiplier, shift, out_zero_point, act_min, act_max)`` with
    ``(multiplier, shift) = quantize_multiplier(s_a * s_b / s_y)``.

    Parameters
    ----------
    a_q : int8 array
    b_q : int8 array
        ``a_q``'s shape, or ``(N, C, 1, 1)`` against a 4-D ``a_q`` (per-channel broadcast, see
        :func:`accel.golden.mul_broadcast_ok`).
    a_zero_point, b_zero_point : int
        In ``[-128, 127]``.
    multiplier, shift, out_zero_point, act_min, act_max : int
        As :func:`requantize`.

    Returns
    -------
    ndarray of int8, ``a_q``'s shape

    Raises
    ------
    TypeError
        If an operand is not an int8 array.
    ValueError
        If the shapes are neither equal nor a per-channel broadcast, or a value is out of range.
    """
    a = _int8(a_q, "a_q").astype(np.int64)
    b = _int8(b_q, "b_q").astype(np.int64)
    if not golden.mul_broadcast_ok(a.shape, b.shape):
        raise ValueError(
            f"qmul operands must have one shape or b of shape (N, C, 1, 1) against a of "
            f"shape (N, C, H, W), got {a.shape} and {b.shape}"
        )
    za = _int_scalar(a_zero_point, "a_zero_point", INT8_MIN, INT8_MAX)
    zb = _int_scalar(b_zero_point, "b_zero_point", INT8_MIN, INT8_MAX)
    acc = (a - za) * (b - zb)
    return requantize(acc, multiplier, shift, out_zero_point, act_min, act_max)


def table_lookup(x_q: NDArray[np.int8], table: NDArray[np.int8]) -> NDArray[np.int8]:
    """An int8 -> int8 function given by its table: ``table[x_q + 128]`` elementwise.

    Entry ``i`` of ``table`` (``TABLE_ENTRIES`` int8 values) is the output for the input
    value ``i - 128`` (``docs/numerics.md``, "Activation tables").

    Raises
    ------
    TypeError
        If ``x_q`` or ``table`` is not an int8 array.
    ValueError
        If ``table`` does not hold exactly ``TABLE_ENTRIES`` entries.
    """
    _int8(x_q, "x_q")
    _int8(table, "table")
    if table.shape != (TABLE_ENTRIES,):
        raise ValueError(f"table must have shape ({TABLE_ENTRIES},), got {table.shape}")
    return table[x_q.astype(np.int64) - INT8_MIN]


# ---------------------------------------------------------------------------------------
# PRelu: a second, negative-side requantisation (``docs/numerics.md``, "PRelu")

#: Width of the negative-side multiplier of a PRelu POST: the signed high bits 10..31 of a
#: parameter lane's ``shift`` word (bits 5..9 hold its shift, bits 0..4 the positive shift).
PRELU_MULTIPLIER_BITS = 22
#: The weight of a PRelu's identity pass: ``acc = PRELU_GAIN * (x - zp_in)`` carries 6 more
#: bits into the requantisation, so its two roundings (SRDHM, then the shift) round once
#: except within 1/128 of a step of a tie (with weight 1 a small ``acc`` would often round
#: twice: 46 * 1/3 = 15.33 -> 30.67 -> 31 -> 15.5 -> 16).
PRELU_GAIN = 64
_PRELU_LOW = 32 - PRELU_MULTIPLIER_BITS  # the multiplier's low bits, always 0


def prelu_multiplier(real_scale: ArrayLike) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """The negative-side ``(multiplier, shift)`` of :func:`requantize_two_slope` for real
    factors of either sign (``slope * s_in / s_out``), ``|real_scale| < 1``.

    ``multiplier = m * 2**10`` with ``m`` a signed :data:`PRELU_MULTIPLIER_BITS`-bit integer,
    ``|m|`` in ``[2**20, 2**21)`` (the mantissa rounded half away from zero, a carry to
    ``2**21`` taken as ``2**20`` with one less shift, ``|real| >= 1 - 2**-22`` saturated to
    ``2**21 - 1`` with shift 0), the sign of ``real_scale``; ``real_scale`` 0, or below
    ``2**-32`` in magnitude (a right shift over 31), gives ``(0, 0)``: the negative side
    outputs the zero point. Relative error below ``2**-21``.

    Raises
    ------
    ValueError
        If a value is not finite or ``|real_scale| >= 1``.
    """
    real = np.asarray(real_scale, dtype=np.float64)
    bad = ~np.isfinite(real) | (np.abs(real) >= 1)
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"negative-side scale {float(real[index])!r} must be finite with |.| < 1")
    mantissa, exponent = np.frexp(np.abs(real))
    m = _round_half_away(mantissa * 2.0 ** (PRELU_MULTIPLIER_BITS - 1)).astype(np.int64)
    carry = m == 2 ** (PRELU_MULTIPLIER_BITS - 1)
    m = np.where(carry, 2 ** (PRELU_MULTIPLIER_BITS - 2), m)
    shift = -(exponent.astype(np.int64) + carry)
    needs_left = shift < 0
    m = np.where(needs_left, 2 ** (PRELU_MULTIPLIER_BITS - 1) - 1, m)
    shift = np.where(needs_left, 0, shift)
    zero = (real == 0) | (shift > SHIFT_MAX)
    m = np.where(zero, 0, m * np.sign(real).astype(np.int64))
    shift = np.where(zero, 0, shift)
    return m << _PRELU_LOW, shift


def pack_prelu_shift(
    shift: ArrayLike, multiplier_neg: ArrayLike, shift_neg: ArrayLike
) -> NDArray[np.int64]:
    """A parameter lane's ``shift`` word of a PRelu POST (an int32 value): bits 0..4
    ``shift``, 5..9 ``shift_neg``, 10..31 ``multiplier_neg >> 10`` (two's complement).
    A POST without PRelu reads bits 0..4 only, so its words keep their meaning."""
    shift = np.asarray(shift, dtype=np.int64)
    multiplier_neg = np.asarray(multiplier_neg, dtype=np.int64)
    shift_neg = np.asarray(shift_neg, dtype=np.int64)
    low = (1 << _PRELU_LOW) - 1
    if np.any(multiplier_neg & low) or np.any(multiplier_neg < INT32_MIN):
        raise ValueError("multiplier_neg must be a multiple of 2**10 in int32 (prelu_multiplier)")
    for name, value in (("shift", shift), ("shift_neg", shift_neg)):
        if np.any((value < 0) | (value > SHIFT_MAX)):
            raise ValueError(f"{name} must be in [0, {SHIFT_MAX}]")
    return shift | (shift_neg << 5) | multiplier_neg  # multiplier_neg's low 10 bits are 0


def requantize_two_slope(
    acc: NDArray[np.int64],
    multiplier: NDArray[np.int64],
    shift: NDArray[np.int64],
    multiplier_neg: NDArray[np.int64],
    shift_neg: NDArray[np.int64],
    out_zero_point: int,
    act_min: int,
    act_max: int,
) -> NDArray[np.int8]:
    """:func:`requantize` with ``(multiplier_neg, shift_neg)`` where ``acc < 0`` (the PRelu
    POST), without argument checks; parameters already broadcastable."""
    pos = rdbpot_unchecked(srdhm_unchecked(acc, multiplier), shift)
    neg = rdbpot_unchecked(srdhm_unchecked(acc, multiplier_neg), shift_neg)
    scaled = np.where(acc < 0, neg, pos)
    return np.minimum(np.maximum(scaled + out_zero_point, act_min), act_max).astype(np.int8)


def qprelu(
    x_q: NDArray[np.int8],
    x_zero_point: int,
    multiplier: ArrayLike,
    shift: ArrayLike,
    multiplier_neg: ArrayLike,
    shift_neg: ArrayLike,
    out_zero_point: int,
) -> NDArray[np.int8]:
    """int8 PRelu of an ``(N, C, ...)`` tensor with per-channel parameters: ``acc =
    PRELU_GAIN * (x_q - x_zero_point)``, then :func:`requantize_two_slope` (the identity
    depthwise pass the accelerator runs it as: weight :data:`PRELU_GAIN`, folded bias
    ``-PRELU_GAIN * x_zero_point``); the multipliers include the ``1 / PRELU_GAIN``."""
    x = _int8(x_q, "x_q").astype(np.int64)
    c = x.shape[1]
    shape = (1, c) + (1,) * (x.ndim - 2)

    def lane(value: ArrayLike) -> NDArray[np.int64]:
        return np.broadcast_to(np.asarray(value, dtype=np.int64), (c,)).reshape(shape)

    return requantize_two_slope(
        PRELU_GAIN * (x - int(x_zero_point)),
        lane(multiplier),
        lane(shift),
        lane(multiplier_neg),
        lane(shift_neg),
        int(out_zero_point),
        INT8_MIN,
        INT8_MAX,
    )
