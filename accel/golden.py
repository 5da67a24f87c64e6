"""NumPy reference (golden model) of the float layers: the first rung of the reference ladder.

Every function here is plain math on NCHW arrays, written for clarity and checked against
naive loop implementations in ``tests/test_accel_golden.py``. The int8 layers built on them
are :mod:`accel.numerics`; :mod:`accel.executor` runs whole networks with both.

Dtype contract
--------------
All operands of one call are promoted together:

* if every operand has an integer dtype, the computation is exact and the result is ``int64``
  (an :class:`OverflowError` is raised when a dot product could leave ``int64``);
* otherwise (any operand floating) the computation is done in ``float64`` and the result is
  ``float64``.

Booleans, complex numbers, ``uint64`` and non-numeric dtypes are rejected with a
:class:`TypeError`. ``avg_pool2d`` and ``global_avg_pool2d`` always return ``float64``.

Argument conventions
--------------------
``stride``, ``dilation`` and pooling ``kernel`` are an int or an ``(h, w)`` pair (see
:func:`pair`). Convolution ``padding`` is an int, ``(h, w)``, ``(top, bottom, left, right)``,
``"valid"`` or ``"same"`` (see :func:`normalize_padding`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "add",
    "avg_pool2d",
    "conv2d",
    "conv_output_size",
    "conv_transpose2d",
    "depth_to_space",
    "global_avg_pool2d",
    "linear",
    "max_pool2d",
    "mul",
    "mul_broadcast_ok",
    "normalize_padding",
    "pair",
    "pointwise",
    "pool_windows",
    "prelu",
    "relu",
    "relu6",
    "space_to_depth",
    "upsample_nearest",
]

Pair = tuple[int, int]
Pads = tuple[int, int, int, int]
PairLike = int | Sequence[int]
PaddingLike = int | Sequence[int] | str

_FLOAT_EXACT_BOUND = 2**53  # every integer of magnitude below this is a float64
_INT64_BOUND = 2**63


# --------------------------------------------------------------------------------------------
# argument helpers (public: the compiler and the models reuse them)
# --------------------------------------------------------------------------------------------


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def pair(value: PairLike, name: str, *, minimum: int | None = None) -> Pair:
    """Normalise an int or an ``(h, w)`` pair of ints to a pair.

    Parameters
    ----------
    value : int or sequence of two ints
        ``v`` means ``(v, v)``.
    name : str
        Argument name used in error messages.
    minimum : int, optional
        If given, both entries must be ``>= minimum``.

    Returns
    -------
    tuple of int
        ``(h, w)`` as Python ints.

    Raises
    ------
    TypeError
        If ``value`` is not an int or a length-2 sequence of ints (bools are not ints here).
    ValueError
        If an entry is below ``minimum``.
    """
    if _is_int(value):
        items = (value, value)
    elif isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2:
        items = tuple(value)
    else:
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    if not all(_is_int(v) for v in items):
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    result = (int(items[0]), int(items[1]))
    if minimum is not None and min(result) < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return result


def _same_padding_total(size: int, kernel: int, stride: int, dilation: int) -> int:
    out = -(-size // stride)  # ceil(size / stride)
    return max((out - 1) * stride + dilation * (kernel - 1) + 1 - size, 0)


def normalize_padding(
    padding: PaddingLike,
    kernel: PairLike,
    stride: PairLike,
    dilation: PairLike,
    in_hw: PairLike,
) -> Pads:
    """Resolve a padding specification to explicit ``(top, bottom, left, right)``.

    Parameters
    ----------
    padding : int, (h, w), (top, bottom, left, right), "valid" or "same"
        ``p`` pads all four sides by ``p``; ``(h, w)`` pads top and bottom by ``h``, left and
        right by ``w``. ``"valid"`` is no padding. ``"same"`` gives an output of
        ``ceil(in / stride)`` per axis; the total padding is split with the extra pixel on the
        bottom/right (TensorFlow ``SAME``, ONNX ``SAME_UPPER``).
    kernel, stride, dilation : int or (h, w)
        Filter size, stride and dilation; only read for ``"same"``.
    in_hw : (H, W)
        Input height and width; only read for ``"same"``.

    Returns
    -------
    tuple of int
        ``(top, bottom, left, right)``, each ``>= 0``.

    Raises
    ------
    TypeError
        If ``padding`` has the wrong type or length.
    ValueError
        If ``padding`` is an unknown string or has a negative entry.
    """
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0, 0, 0)
        if padding != "same":
            raise ValueError(f"padding must be 'valid' or 'same' when a string, got {padding!r}")
        (kh, kw), (sh, sw) = pair(kernel, "kernel", minimum=1), pair(stride, "stride", minimum=1)
        (dh, dw), (h, w) = pair(dilation, "dilation", minimum=1), pair(in_hw, "in_hw", minimum=1)
        th, tw = _same_padding_total(h, kh, sh, dh), _same_padding_total(w, kw, sw, dw)
        return (th // 2, th - th // 2, tw // 2, tw - tw // 2)
    if isinstance(padding, Sequence) and len(padding) == 4:
        if not all(_is_int(v) for v in padding):
            raise TypeError(f"padding must be ints, got {padding!r}")
        pads = tuple(int(v) for v in padding)
    else:
        try:
            ph, pw = pair(padding, "padding")
        except TypeError:
            raise TypeError(
                "padding must be an int, (h, w), (top, bottom, left, right), 'valid' or 'same', "
                f"got {padding!r}"
            ) from None
        pads = (ph, ph, pw, pw)
    if min(pads) < 0:
        raise ValueError(f"padding must be >= 0, got {padding!r}")
    return pads


def conv_output_size(size: int, kernel: int, stride: int, padding_total: int, dilation: int) -> int:
    """Output length of a convolution along one axis.

    ``floor((size + padding_total - dilation * (kernel - 1) - 1) / stride) + 1``

    Raises
    ------
    ValueError
        If ``kernel``, ``stride`` or ``dilation`` is below 1, ``size`` or ``padding_total`` is
        negative, or the dilated kernel is larger than the padded input (output length < 1).
    """
    for name, value, low in (
        ("size", size, 0),
        ("kernel", kernel, 1),
        ("stride", stride, 1),
        ("padding_total", padding_total, 0),
        ("dilation", dilation, 1),
    ):
        if value < low:
            raise ValueError(f"{name} must be >= {low}, got {value!r}")
    extent = dilation * (kernel - 1) + 1
    padded = size + padding_total
    if extent > padded:
        raise ValueError(
            f"kernel extent {extent} (kernel={kernel}, dilation={dilation}) is larger than the "
            f"padded input {padded} (size={size}, padding_total={padding_total})"
        )
    return (padded - extent) // stride + 1


# --------------------------------------------------------------------------------------------
# private helpers
# --------------------------------------------------------------------------------------------


def _promote(**operands: ArrayLike | None) -> list[NDArray | None]:
    """Cast all operands to int64 if all are integer, else to float64 (``None`` passes)."""
    arrays = {k: None if v is None else np.asarray(v) for k, v in operands.items()}
    for name, a in arrays.items():
        if a is None:
            continue
        kind_ok = a.dtype.kind in "iuf" and a.dtype != np.uint64
        if not kind_ok:
            raise TypeError(f"{name} must have an integer or float dtype, got {a.dtype}")
    present = [a for a in arrays.values() if a is not None]
    dtype = np.int64 if all(a.dtype.kind in "iu" for a in present) else np.float64
    return [None if a is None else a.astype(dtype, copy=False) for a in arrays.values()]


def _check_ndim(a: NDArray, ndim: int, name: str, layout: str) -> None:
    if a.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D {layout}, got shape {a.shape}")


def _check_bias(bias: NDArray | None, channels: int) -> None:
    if bias is not None and bias.shape != (channels,):
        raise ValueError(f"bias must have shape ({channels},), got shape {bias.shape}")


def _max_abs(a: NDArray) -> int:
    return max(abs(int(a.max())), abs(int(a.min()))) if a.size else 0


def _matmul(a: NDArray, b: NDArray) -> NDArray:
    """``a @ b``, exact for int64 operands.

    Integer products are computed in float64 (BLAS) when every partial sum is provably below
    2**53 in magnitude, and in int64 otherwise.
    """
    if a.dtype != np.int64:
        return a @ b
    bound = _max_abs(a) * _max_abs(b) * a.shape[-1]
    if bound < _FLOAT_EXACT_BOUND:
        return (a.astype(np.float64) @ b.astype(np.float64)).astype(np.int64)
    if bound >= _INT64_BOUND:
        raise OverflowError(f"integer dot products may overflow int64 (bound {bound})")
    return a @ b


def _windows(x: NDArray, kernel: Pair, stride: Pair, dilation: Pair, out_hw: Pair) -> NDArray:
    """View of shape (N, C, P, Q, R, S) of the windows of an already padded NCHW array."""
    (r, s), (dh, dw), (p, q) = kernel, dilation, out_hw
    view = sliding_window_view(x, (dh * (r - 1) + 1, dw * (s - 1) + 1), axis=(2, 3))
    return view[:, :, : p * stride[0] : stride[0], : q * stride[1] : stride[1], ::dh, ::dw]


def _pad_hw(x: NDArray, pads: Pads, value: float | int = 0) -> NDArray:
    top, bottom, left, right = pads
    return np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)), constant_values=value)


# --------------------------------------------------------------------------------------------
# convolutions
# --------------------------------------------------------------------------------------------


def conv2d(
    x: ArrayLike,
    w: ArrayLike,
    bias: ArrayLike | None = None,
    *,
    stride: PairLike = 1,
    padding: PaddingLike = 0,
    dilation: PairLike = 1,
    groups: int = 1,
    pad_value: int | float = 0,
) -> NDArray:
    """2-D convolution (cross-correlation, as in every CNN framework), NCHW.

    ``out[n, k, p, q] = bias[k] + sum_{c, r, s} xpad[n, g*Cg + c, p*sh + r*dh, q*sw + s*dw]
    * w[k, c, r, s]`` with ``g = k // (K / groups)`` and ``Cg = C / groups``.

    Depthwise (``groups == C``), grouped, dilated, strided and 1x1 convolutions are all this
    function.

    Parameters
    ----------
    x : array_like, shape (N, C, H, W)
        Input.
    w : array_like, shape (K, C / groups, R, S)
        Filters.
    bias : array_like, shape (K,), optional
        Added to every output pixel of channel ``k``.
    stride, dilation : int or (h, w)
        Both ``>= 1``.
    padding : int, (h, w), (top, bottom, left, right), "valid" or "same"
        See :func:`normalize_padding`.
    groups : int
        Must divide both ``C`` and ``K``.
    pad_value : int or float
        Value of the padded border, 0 by default. (The int8 path pads with the input zero
        point; see :func:`accel.numerics.qconv2d`.) It is an operand like the others: a
        value that is not an integer makes the computation ``float64``.

    Returns
    -------
    ndarray, shape (N, K, P, Q)
        ``int64`` (exact) if all operands are integer, else ``float64``.
        ``P = conv_output_size(H, R, sh, top + bottom, dh)``, likewise ``Q``.

    Raises
    ------
    ValueError
        Wrong ndim, ``groups`` not dividing ``C`` or ``K``, ``w`` channels not ``C / groups``,
        bad bias shape, stride/dilation < 1, negative padding, kernel larger than the padded
        input.
    TypeError
        Unsupported dtype or malformed stride/padding/dilation/groups.
    """
    x, w, bias = _promote(x=x, w=w, bias=bias)
    if x.dtype != np.float64 and not float(pad_value).is_integer():
        x, w, bias = _promote(x=x.astype(np.float64), w=w, bias=bias)
    _check_ndim(x, 4, "x", "(N, C, H, W)")
    _check_ndim(w, 4, "w", "(K, C/groups, R, S)")
    n, c, h, wd = x.shape
    k, cg, r, s = w.shape
    if not _is_int(groups):
        raise TypeError(f"groups must be an int, got {groups!r}")
    if groups < 1:
        raise ValueError(f"groups must be >= 1, got {groups!r}")
    if c % groups:
        raise ValueError(f"groups={groups} must divide the input channels of x, C={c}")
    if k % groups:
        raise ValueError(f"groups={groups} must divide the output channels of w, K={k}")
    if cg != c // groups:
        raise ValueError(
            f"w has {cg} input channels per group (w.shape={w.shape}) but x has C={c} with "
            f"groups={groups}, which needs {c // groups}"
        )
    _check_bias(bias, k)
    sh, sw = pair(stride, "stride", minimum=1)
    dh, dw = pair(dilation, "dilation", minimum=1)
    pads = normalize_padding(padding, (r, s), (sh, sw), (dh, dw), (h, wd))
    p = conv_output_size(h, r, sh, pads[0] + pads[1], dh)
    q = conv_output_size(wd, s, sw, pads[2] + pads[3], dw)

    win = _windows(_pad_hw(x, pads, pad_value), (r, s), (sh, sw), (dh, dw), (p, q))
    kg = k // groups
    # im2col: (G, N*P*Q, Cg*R*S) @ (G, Cg*R*S, Kg) -> (G, N*P*Q, Kg)
    cols = win.reshape(n, groups, cg, p, q, r, s).transpose(1, 0, 3, 4, 2, 5, 6)
    cols = cols.reshape(groups, n * p * q, cg * r * s)
    wmat = w.reshape(groups, kg, cg * r * s).transpose(0, 2, 1)
    out = _matmul(cols, wmat).reshape(groups, n, p, q, kg).transpose(1, 0, 4, 2, 3)
    out = np.ascontiguousarray(out.reshape(n, k, p, q))
    if bias is not None:
        out += bias[None, :, None, None]
    return out


def _pad_or_crop(x: NDArray, pads: Pads) -> NDArray:
    """Pad the H/W axes with zeros where an amount is positive, crop where it is negative."""
    top, bottom, left, right = pads
    x = _pad_hw(x, (max(top, 0), max(bottom, 0), max(left, 0), max(right, 0)))
    h, w = x.shape[2:]
    return x[:, :, max(-top, 0) : h - max(-bottom, 0), max(-left, 0) : w - max(-right, 0)]


def conv_transpose2d(
    x: ArrayLike,
    w: ArrayLike,
    bias: ArrayLike | None = None,
    *,
    stride: PairLike = 1,
    padding: int | Sequence[int] = 0,
    output_padding: PairLike = 0,
    dilation: PairLike = 1,
    groups: int = 1,
) -> NDArray:
    """Transposed 2-D convolution with PyTorch ``conv_transpose2d`` semantics, NCHW.

    Scatter form: ``out[n, g*Kg + k, h*sh - top + r*dh, v*sw - left + s*dw] +=
    x[n, g*Cg + c, h, v] * w[g*Cg + c, k, r, s]``, positions outside the output dropped.

    Parameters
    ----------
    x : array_like, shape (N, C, H, W)
    w : array_like, shape (C, K / groups, R, S)
        PyTorch layout: input channels first.
    bias : array_like, shape (K,), optional
    stride, dilation : int or (h, w)
        Both ``>= 1``.
    padding : int, (h, w) or (top, bottom, left, right)
        Rows/columns removed from each side of the full output (strings are not accepted).
    output_padding : int or (h, w)
        Extra rows/columns added at the bottom/right; each must be ``>= 0`` and smaller than
        ``max(stride, dilation)`` on its axis (PyTorch's rule).
    groups : int
        Must divide ``C`` and ``K``.

    Returns
    -------
    ndarray, shape (N, K, Ho, Wo)
        ``Ho = (H - 1)*sh - top - bottom + dh*(R - 1) + output_padding_h + 1``, likewise
        ``Wo``. Dtype per the module's promotion rule.

    Raises
    ------
    ValueError
        Wrong ndim, channel mismatch, groups not dividing C or K, bad stride/dilation/
        padding/output_padding values, output size < 1.
    TypeError
        Unsupported dtype or malformed arguments.

    Notes
    -----
    Computed as :func:`conv2d` (stride 1, same dilation) of the zero-upsampled input padded by
    ``dilation*(kernel-1) - padding`` with the spatially flipped, channel-transposed filters.
    """
    x, w, bias = _promote(x=x, w=w, bias=bias)
    _check_ndim(x, 4, "x", "(N, C, H, W)")
    _check_ndim(w, 4, "w", "(C, K/groups, R, S)")
    n, c, h, wd = x.shape
    cw, kg, r, s = w.shape
    if cw != c:
        raise ValueError(f"w has {cw} input channels (w.shape={w.shape}) but x has C={c}")
    if not _is_int(groups):
        raise TypeError(f"groups must be an int, got {groups!r}")
    if groups < 1 or c % groups:
        raise ValueError(f"groups={groups} must be >= 1 and divide the input channels C={c}")
    if isinstance(padding, str):
        raise TypeError(f"padding of conv_transpose2d must be ints, got {padding!r}")
    sh, sw = pair(stride, "stride", minimum=1)
    dh, dw = pair(dilation, "dilation", minimum=1)
    oph, opw = pair(output_padding, "output_padding", minimum=0)
    if oph >= max(sh, dh) or opw >= max(sw, dw):
        raise ValueError(
            f"output_padding must be smaller than max(stride, dilation) per axis, got "
            f"output_padding={output_padding!r} with stride={stride!r}, dilation={dilation!r}"
        )
    top, bottom, left, right = normalize_padding(padding, (r, s), (sh, sw), (dh, dw), (h, wd))
    ho = (h - 1) * sh - top - bottom + dh * (r - 1) + oph + 1
    wo = (wd - 1) * sw - left - right + dw * (s - 1) + opw + 1
    if ho < 1 or wo < 1:
        raise ValueError(
            f"conv_transpose2d output size {(ho, wo)} is < 1 for input {(h, wd)}, kernel "
            f"{(r, s)}, stride={stride!r}, padding={padding!r}, dilation={dilation!r}"
        )
    _check_bias(bias, kg * groups)

    up = np.zeros((n, c, (h - 1) * sh + 1, (wd - 1) * sw + 1), dtype=x.dtype)
    up[:, :, ::sh, ::sw] = x
    fh, fw = dh * (r - 1), dw * (s - 1)
    up = _pad_or_crop(up, (fh - top, fh - bottom + oph, fw - left, fw - right + opw))
    cg = c // groups
    w_conv = w.reshape(groups, cg, kg, r, s).transpose(0, 2, 1, 3, 4).reshape(groups * kg, cg, r, s)
    return conv2d(up, w_conv[:, :, ::-1, ::-1], bias, dilation=(dh, dw), groups=groups)


# --------------------------------------------------------------------------------------------
# pooling
# --------------------------------------------------------------------------------------------


def _pool_size(
    size: int, kernel: int, stride: int, pad: int, ceil_mode: bool, dilation: int = 1
) -> int:
    """PyTorch ``pooling_output_shape``; the dilated kernel must fit the padded input."""
    out = conv_output_size(size, kernel, stride, 2 * pad, dilation)
    if ceil_mode:
        out = -(-(size + 2 * pad - dilation * (kernel - 1) - 1) // stride) + 1
        if (out - 1) * stride >= size + pad:  # last window would start in the bottom padding
            out -= 1
    return out


def pool_windows(
    x: NDArray,
    kernel: PairLike,
    stride: PairLike | None,
    padding: PairLike,
    ceil_mode: bool,
    pad_value: float | int,
    dilation: PairLike = 1,
) -> tuple[NDArray, list[NDArray], list[NDArray]]:
    """Windows (N, C, P, Q, kh, kw) and per-axis window [start, end) in input coordinates
    (the span of the dilated window)."""
    _check_ndim(x, 4, "x", "(N, C, H, W)")
    k = pair(kernel, "kernel", minimum=1)
    st = k if stride is None else pair(stride, "stride", minimum=1)
    pd = pair(padding, "padding", minimum=0)
    dl = pair(dilation, "dilation", minimum=1)
    if pd[0] * 2 > k[0] or pd[1] * 2 > k[1]:
        raise ValueError(f"padding must be at most half the kernel {kernel!r}, got {padding!r}")
    out, starts, ends, pads = [], [], [], []
    for size, ki, si, pi, di in zip(x.shape[2:], k, st, pd, dl, strict=True):
        o = _pool_size(size, ki, si, pi, ceil_mode, di)
        span = di * (ki - 1) + 1
        out.append(o)
        starts.append(np.arange(o) * si - pi)
        ends.append(starts[-1] + span)
        pads += [pi, max(pi, (o - 1) * si + span - size - pi)]
    win = _windows(_pad_hw(x, tuple(pads), pad_value), k, st, dl, tuple(out))
    return win, starts, ends


def max_pool2d(
    x: ArrayLike,
    kernel: PairLike,
    stride: PairLike | None = None,
    padding: PairLike = 0,
    ceil_mode: bool = False,
    dilation: PairLike = 1,
) -> NDArray:
    """2-D max pooling with PyTorch ``max_pool2d`` semantics, NCHW.

    Parameters
    ----------
    x : array_like, shape (N, C, H, W)
    kernel : int or (h, w)
    stride : int or (h, w), optional
        Defaults to ``kernel``.
    padding : int or (h, w)
        Symmetric implicit padding with ``-inf`` (never selected); at most half the kernel.
    ceil_mode : bool
        Use ceil instead of floor for the output size; a window that would start in the
        bottom/right padding is dropped.
    dilation : int or (h, w)
        Distance between window taps (PyTorch's ``dilation``); the padding rule is on the
        undilated kernel, as PyTorch's.

    Returns
    -------
    ndarray, shape (N, C, P, Q)
        ``int64`` for integer input, else ``float64``.

    Raises
    ------
    ValueError
        Wrong ndim, kernel/stride/dilation < 1, padding < 0 or larger than half the kernel,
        dilated kernel larger than the padded input.
    """
    (x,) = _promote(x=x)
    low = np.iinfo(np.int64).min if x.dtype == np.int64 else -np.inf
    win, _, _ = pool_windows(x, kernel, stride, padding, ceil_mode, low, dilation)
    return win.max(axis=(4, 5))


def avg_pool2d(
    x: ArrayLike,
    kernel: PairLike,
    stride: PairLike | None = None,
    padding: PairLike = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> NDArray:
    """2-D average pooling with PyTorch ``avg_pool2d`` semantics, NCHW, result ``float64``.

    The divisor of a window is its size clipped to the padded input ``[-pad, size + pad)``
    when ``count_include_pad`` is true (so a ``ceil_mode`` window hanging past the padding
    counts only the part inside it), and the number of real input pixels otherwise.

    Parameters
    ----------
    x : array_like, shape (N, C, H, W)
    kernel, stride, padding, ceil_mode
        As in :func:`max_pool2d` (padding contributes 0 to the sum).
    count_include_pad : bool
        Whether padded pixels count in the divisor.

    Returns
    -------
    ndarray of float64, shape (N, C, P, Q)

    Raises
    ------
    ValueError
        As :func:`max_pool2d`.
    """
    (x,) = _promote(x=x)
    win, starts, ends = pool_windows(x.astype(np.float64), kernel, stride, padding, ceil_mode, 0)
    sizes = x.shape[2:]
    pads = pair(padding, "padding")
    counts = []
    for size, pad, start, end in zip(sizes, pads, starts, ends, strict=True):
        if count_include_pad:
            counts.append(np.minimum(end, size + pad) - start)
        else:
            counts.append(np.minimum(end, size) - np.maximum(start, 0))
    return win.sum(axis=(4, 5)) / np.multiply.outer(counts[0], counts[1])


def global_avg_pool2d(x: ArrayLike) -> NDArray:
    """Mean over H and W, keeping the dims: (N, C, H, W) -> (N, C, 1, 1), ``float64``."""
    (x,) = _promote(x=x)
    _check_ndim(x, 4, "x", "(N, C, H, W)")
    return x.astype(np.float64).mean(axis=(2, 3), keepdims=True)


def upsample_nearest(x: ArrayLike, factor: PairLike) -> NDArray:
    """Nearest-neighbour upsampling by integer factors: (N, C, H, W) -> (N, C, H*fh, W*fw),
    ``y[..., i, j] = x[..., i // fh, j // fw]``, in ``x``'s dtype (int8 stays int8: a copy,
    no arithmetic)."""
    x = np.asarray(x)
    _check_ndim(x, 4, "x", "(N, C, H, W)")
    fh, fw = pair(factor, "factor", minimum=1)
    return x.repeat(fh, axis=2).repeat(fw, axis=3)


def depth_to_space(x: ArrayLike, block: int) -> NDArray:
    """Depth to space in DCR order (ONNX DepthToSpace, mode DCR): (N, C*b*b, H, W) -> (N, C,
    H*b, W*b), ``y[n, c, h*b + i, w*b + j] = x[n, (i*b + j)*C + c, h, w]``, in ``x``'s dtype."""
    x = np.asarray(x)
    _check_ndim(x, 4, "x", "(N, C, H, W)")
    n, c, h, w = x.shape
    b = block
    y = x.reshape(n, b, b, c // (b * b), h, w).transpose(0, 3, 4, 1, 5, 2)
    return y.reshape(n, c // (b * b), h * b, w * b)


def pixel_shuffle(x: ArrayLike, block: int) -> NDArray:
    """Depth to space in CRD order (ONNX DepthToSpace mode CRD, PyTorch's PixelShuffle):
    (N, C*b*b, H, W) -> (N, C, H*b, W*b), ``y[n, c, h*b + i, w*b + j] = x[n, c*b*b + i*b +
    j, h, w]``, in ``x``'s dtype."""
    x = np.asarray(x)
    _check_ndim(x, 4, "x", "(N, C, H, W)")
    n, c, h, w = x.shape
    b = block
    y = x.reshape(n, c // (b * b), b, b, h, w).transpose(0, 1, 4, 2, 5, 3)
    return y.reshape(n, c // (b * b), h * b, w * b)


def channel_shuffle(x: ArrayLike, groups: int) -> NDArray:
    """Channel shuffle (ShuffleNet): (N, C, H, W) -> (N, C, H, W), ``y[n, k*g + i] = x[n,
    i*(C/g) + k]``, in ``x``'s dtype."""
    x = np.asarray(x)
    _check_ndim(x, 4, "x", "(N, C, H, W)")
    n, c, h, w = x.shape
    return x.reshape(n, groups, c // groups, h, w).transpose(0, 2, 1, 3, 4).reshape(n, c, h, w)


def space_to_depth(x: ArrayLike, block: int) -> NDArray:
    """Space to depth (ONNX SpaceToDepth): (N, C, H, W) -> (N, C*b*b, H/b, W/b),
    ``y[n, (i*b + j)*C + c, h, w] = x[n, c, h*b + i, w*b + j]``, in ``x``'s dtype."""
    x = np.asarray(x)
    _check_ndim(x, 4, "x", "(N, C, H, W)")
    n, c, h, w = x.shape
    b = block
    y = x.reshape(n, c, h // b, b, w // b, b).transpose(0, 3, 5, 1, 2, 4)
    return y.reshape(n, c * b * b, h // b, w // b)


# --------------------------------------------------------------------------------------------
# fully connected and element-wise
# --------------------------------------------------------------------------------------------


def linear(x: ArrayLike, w: ArrayLike, bias: ArrayLike | None = None) -> NDArray:
    """Fully connected layer ``x @ w.T + bias``.

    Parameters
    ----------
    x : array_like, shape (N, in)
    w : array_like, shape (out, in)
    bias : array_like, shape (out,), optional

    Returns
    -------
    ndarray, shape (N, out)
        Dtype per the module's promotion rule (exact ``int64`` for integer operands).

    Raises
    ------
    ValueError
        Wrong ndim, ``in`` mismatch, bad bias shape.
    """
    x, w, bias = _promote(x=x, w=w, bias=bias)
    _check_ndim(x, 2, "x", "(N, in)")
    _check_ndim(w, 2, "w", "(out, in)")
    if x.shape[1] != w.shape[1]:
        raise ValueError(
            f"w has {w.shape[1]} input features (w.shape={w.shape}) but x has {x.shape[1]}"
        )
    _check_bias(bias, w.shape[0])
    out = _matmul(x, w.T)
    return out if bias is None else out + bias


def relu(x: ArrayLike) -> NDArray:
    """``max(x, 0)``; dtype per the module's promotion rule."""
    (x,) = _promote(x=x)
    return np.maximum(x, 0)


def relu6(x: ArrayLike) -> NDArray:
    """``min(max(x, 0), 6)``; dtype per the module's promotion rule."""
    (x,) = _promote(x=x)
    return np.clip(x, 0, 6)


def add(a: ArrayLike, b: ArrayLike) -> NDArray:
    """Element-wise sum of two arrays of the same shape (no broadcasting; a residual add).

    Raises
    ------
    ValueError
        If the shapes differ.
    """
    a, b = _promote(a=a, b=b)
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape, got {a.shape} and {b.shape}")
    return a + b


def mul_broadcast_ok(a_shape: Sequence[int], b_shape: Sequence[int]) -> bool:
    """Whether ``a * b`` is an elementwise Mul this toolkit takes: one shape, or ``b`` of shape
    ``(N, C, 1, 1)`` against a 4-D ``a`` of shape ``(N, C, H, W)`` (per-channel broadcast)."""
    a_shape, b_shape = tuple(a_shape), tuple(b_shape)
    if a_shape == b_shape:
        return True
    return (
        len(a_shape) == len(b_shape) == 4 and b_shape[:2] == a_shape[:2] and b_shape[2:] == (1, 1)
    )


def mul(a: ArrayLike, b: ArrayLike) -> NDArray:
    """Element-wise product of two arrays of one shape, or of an ``(N, C, H, W)`` array ``a``
    and an ``(N, C, 1, 1)`` array ``b`` (per-channel broadcast: a squeeze-and-excitation gate).

    Raises
    ------
    ValueError
        If the shapes are neither equal nor that broadcast.
    """
    a, b = _promote(a=a, b=b)
    if not mul_broadcast_ok(a.shape, b.shape):
        raise ValueError(
            f"a and b must have one shape, or b of shape (N, C, 1, 1) against a of shape "
            f"(N, C, H, W), got {a.shape} and {b.shape}"
        )
    return a * b


_erf = np.vectorize(math.erf, otypes=[np.float64])


def _sigmoid(x: NDArray) -> NDArray:
    """``1 / (1 + exp(-x))`` without overflow for large ``|x|``."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def pointwise(x: ArrayLike, function: str, params: Sequence[tuple[str, float]] = ()) -> NDArray:
    """A unary activation of every element in float64, ONNX's definition of each:

    ================  ===========================================================
    ``sigmoid``       ``1 / (1 + exp(-x))``
    ``tanh``          ``tanh(x)``
    ``hardsigmoid``   ``max(0, min(1, alpha * x + beta))``
    ``hardswish``     ``x * max(0, min(1, x / 6 + 1 / 2))``
    ``silu``          ``x * sigmoid(x)`` (Swish)
    ``gelu``          ``x / 2 * (1 + erf(x / sqrt(2)))``
    ``gelu_tanh``     ``x / 2 * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 x**3)))``
    ``elu``           ``x`` if ``x > 0`` else ``alpha * (exp(x) - 1)``
    ``selu``          ``gamma * (x`` if ``x > 0`` else ``alpha * (exp(x) - 1))``
    ``leakyrelu``     ``x`` if ``x >= 0`` else ``alpha * x``
    ``softplus``      ``log(1 + exp(x))``
    ================  ===========================================================

    ``params`` are ``(name, value)`` pairs of :data:`accel.graph.POINTWISE` (every one the
    function takes; :class:`accel.graph.Pointwise` fills the defaults).

    Raises
    ------
    ValueError
        An unknown ``function`` or a missing parameter.
    """
    x = np.asarray(x, dtype=np.float64)
    p = dict(params)
    try:
        if function == "sigmoid":
            return _sigmoid(x)
        if function == "tanh":
            return np.tanh(x)
        if function == "hardsigmoid":
            return np.clip(p["alpha"] * x + p["beta"], 0.0, 1.0)
        if function == "hardswish":
            return x * np.clip(x / 6 + 0.5, 0.0, 1.0)
        if function == "silu":
            return x * _sigmoid(x)
        if function == "gelu":
            return 0.5 * x * (1 + _erf(x / math.sqrt(2)))
        if function == "gelu_tanh":
            return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
        if function in ("elu", "selu"):
            y = np.where(x > 0, x, p["alpha"] * np.expm1(np.minimum(x, 0)))
            return y * p["gamma"] if function == "selu" else y
        if function == "leakyrelu":
            return np.where(x >= 0, x, p["alpha"] * x)
        if function == "softplus":
            return np.logaddexp(0.0, x)
    except KeyError as exc:
        raise ValueError(f"{function} needs parameter {exc.args[0]!r}") from None
    raise ValueError(f"unknown pointwise function {function!r}")


def prelu(x: ArrayLike, slope: ArrayLike) -> NDArray[np.float64]:
    """ONNX PRelu with one slope per channel (axis 1 of ``(N, C, ...)``): ``x`` where ``x >=
    0``, else ``slope[c] * x``, in float64."""
    x = np.asarray(x, dtype=np.float64)
    s = np.asarray(slope, dtype=np.float64).reshape((1, -1) + (1,) * (x.ndim - 2))
    return np.where(x >= 0, x, s * x)
