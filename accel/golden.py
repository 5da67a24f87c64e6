"""NumPy reference (golden model) of the layers the accelerator runs.

Every function here is plain math on NCHW arrays, written for clarity and checked against
naive loop implementations in ``tests/test_accel_golden.py``. The cycle model and the RTL are
compared with these functions element for element.

Dtype contract
--------------
All operands of one call are promoted together:

* if every operand has an integer dtype, the computation is exact and the result is ``int64``
  (an :class:`OverflowError` is raised when a dot product could leave ``int64``);
* otherwise (any operand floating) the computation is done in ``float64`` and the result is
  ``float64``.

Booleans, complex numbers, ``uint64`` and non-numeric dtypes are rejected with a
:class:`TypeError`. ``avg_pool2d`` and ``global_avg_pool2d`` always return ``float64``.

Whole networks
--------------
:func:`run_network` (and :func:`trace_network`, every node's output) executes an
:class:`accel.graph.Network` in float64 or an :class:`accel.quant.QuantizedNetwork` in int8;
its docstring is the int8 contract the hardware is held to. The int8 layers it needs beyond
:func:`accel.numerics.qconv2d` are :func:`qavg_pool2d` and :func:`qadd` (int8 in, int8 out).

Argument conventions
--------------------
``stride``, ``dilation`` and pooling ``kernel`` are an int or an ``(h, w)`` pair (see
:func:`pair`). Convolution ``padding`` is an int, ``(h, w)``, ``(top, bottom, left, right)``,
``"valid"`` or ``"same"`` (see :func:`normalize_padding`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import ArrayLike, NDArray

if TYPE_CHECKING:  # accel.numerics and accel.quant import this module: no runtime import
    from accel.graph import AvgPool2d, MaxPool2d, Network
    from accel.quant import QuantizedNetwork

__all__ = [
    "add",
    "avg_pool2d",
    "conv2d",
    "conv_output_size",
    "conv_transpose2d",
    "global_avg_pool2d",
    "linear",
    "max_pool2d",
    "normalize_padding",
    "pair",
    "pool_padding",
    "qadd",
    "qavg_pool2d",
    "relu",
    "relu6",
    "run_network",
    "trace_network",
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
        point; see :func:`accel.numerics.qconv2d`.)

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


def _pool_size(size: int, kernel: int, stride: int, pad: int, ceil_mode: bool) -> int:
    """PyTorch ``pooling_output_shape`` (dilation 1); the kernel must fit the padded input."""
    out = conv_output_size(size, kernel, stride, 2 * pad, 1)
    if ceil_mode:
        out = -(-(size + 2 * pad - kernel) // stride) + 1
        if (out - 1) * stride >= size + pad:  # last window would start in the bottom padding
            out -= 1
    return out


def _pool_windows(
    x: NDArray,
    kernel: PairLike,
    stride: PairLike | None,
    padding: PairLike,
    ceil_mode: bool,
    pad_value: float | int,
) -> tuple[NDArray, list[NDArray], list[NDArray]]:
    """Windows (N, C, P, Q, kh, kw) and per-axis window [start, end) in input coordinates."""
    _check_ndim(x, 4, "x", "(N, C, H, W)")
    k = pair(kernel, "kernel", minimum=1)
    st = k if stride is None else pair(stride, "stride", minimum=1)
    pd = pair(padding, "padding", minimum=0)
    if pd[0] * 2 > k[0] or pd[1] * 2 > k[1]:
        raise ValueError(f"padding must be at most half the kernel {kernel!r}, got {padding!r}")
    out, starts, ends, pads = [], [], [], []
    for size, ki, si, pi in zip(x.shape[2:], k, st, pd, strict=True):
        o = _pool_size(size, ki, si, pi, ceil_mode)
        out.append(o)
        starts.append(np.arange(o) * si - pi)
        ends.append(starts[-1] + ki)
        pads += [pi, max(pi, (o - 1) * si + ki - size - pi)]
    win = _windows(_pad_hw(x, tuple(pads), pad_value), k, st, (1, 1), tuple(out))
    return win, starts, ends


def max_pool2d(
    x: ArrayLike,
    kernel: PairLike,
    stride: PairLike | None = None,
    padding: PairLike = 0,
    ceil_mode: bool = False,
) -> NDArray:
    """2-D max pooling with PyTorch ``max_pool2d`` semantics (dilation 1), NCHW.

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

    Returns
    -------
    ndarray, shape (N, C, P, Q)
        ``int64`` for integer input, else ``float64``.

    Raises
    ------
    ValueError
        Wrong ndim, kernel/stride < 1, padding < 0 or larger than half the kernel, kernel
        larger than the padded input.
    """
    (x,) = _promote(x=x)
    low = np.iinfo(np.int64).min if x.dtype == np.int64 else -np.inf
    win, _, _ = _pool_windows(x, kernel, stride, padding, ceil_mode, low)
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
    win, starts, ends = _pool_windows(x.astype(np.float64), kernel, stride, padding, ceil_mode, 0)
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


# --------------------------------------------------------------------------------------------
# int8 layers beyond convolution (conv and linear are accel.numerics.qconv2d / qlinear)
# --------------------------------------------------------------------------------------------
# accel.numerics and accel.quant import this module, so they are imported inside functions.


def _int8(x: object, name: str) -> NDArray[np.int8]:
    if not isinstance(x, np.ndarray) or x.dtype != np.int8:
        got = x.dtype if isinstance(x, np.ndarray) else type(x).__name__
        raise TypeError(f"{name} must be a numpy array of dtype int8, got {got}")
    return x


def qavg_pool2d(
    x_q: NDArray[np.int8],
    kernel: PairLike,
    stride: PairLike | None = None,
    padding: PairLike = 0,
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
        As in :func:`max_pool2d`.
    x_zero_point, out_zero_point : int
        Zero points of input and output.
    multiplier, shift, act_min, act_max : int
        As in :func:`accel.numerics.requantize`.

    Returns
    -------
    ndarray of int8, shape (N, C, P, Q)
    """
    from accel import numerics

    x = _int8(x_q, "x_q").astype(np.int64) - x_zero_point
    win, _, _ = _pool_windows(x, kernel, stride, padding, ceil_mode, 0)
    acc = win.sum(axis=(4, 5))
    return numerics.requantize(acc, multiplier, shift, out_zero_point, act_min, act_max)


def qadd(
    inputs: Sequence[NDArray[np.int8]],
    zero_points: Sequence[int],
    input_multipliers: Sequence[int],
    input_shifts: Sequence[int],
    *,
    left_shift: int,
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
    out_zero_point, act_min, act_max)``, i.e. :func:`accel.numerics.requantize` of the sum.

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
    from accel import numerics

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
        high = numerics.saturating_rounding_doubling_high_mul(shifted, m)
        total += numerics.rounding_divide_by_pot(high, sh)
    return numerics.requantize(total, multiplier, shift, out_zero_point, act_min, act_max)


# --------------------------------------------------------------------------------------------
# whole networks
# --------------------------------------------------------------------------------------------


def pool_padding(name: str, op: MaxPool2d | AvgPool2d) -> Pair:
    """The symmetric ``(h, w)`` padding of a graph pool op (``accel.graph`` stores
    ``(top, bottom, left, right)``); ``ValueError`` naming node ``name`` if asymmetric."""
    top, bottom, left, right = op.padding
    if top != bottom or left != right:
        raise ValueError(
            f"node {name!r} ({type(op).__name__}): asymmetric padding={op.padding} "
            "is not supported (pools pad top == bottom and left == right)"
        )
    return top, left


def _activate(x: NDArray, activation: str | None) -> NDArray:
    return {None: lambda v: v, "relu": relu, "relu6": relu6}[activation](x)


def _float_node(network: Network, name: str, xs: list[NDArray]) -> NDArray:
    """Output of node ``name`` in float64 from its input values ``xs``."""
    from accel import graph

    op = network.op(name)
    weights = network.weights(name)
    x = xs[0]
    if isinstance(op, graph.Conv2d):
        out = conv2d(
            x,
            weights["weight"],
            weights.get("bias"),
            stride=op.stride,
            padding=op.padding,
            dilation=op.dilation,
            groups=op.groups,
        )
        return _activate(out, op.activation)
    if isinstance(op, graph.Linear):
        out = linear(x.reshape(len(x), -1), weights["weight"], weights.get("bias"))
        return _activate(out, op.activation)
    if isinstance(op, graph.MaxPool2d):
        return max_pool2d(x, op.kernel, op.stride, pool_padding(name, op), op.ceil_mode)
    if isinstance(op, graph.AvgPool2d):
        pads = pool_padding(name, op)
        return avg_pool2d(x, op.kernel, op.stride, pads, op.ceil_mode, op.count_include_pad)
    if isinstance(op, graph.GlobalAvgPool):
        return global_avg_pool2d(x)
    if isinstance(op, graph.Add):
        total = xs[0]
        for other in xs[1:]:
            total = add(total, other)
        return _activate(total, op.activation)
    if isinstance(op, graph.Concat):
        return np.concatenate(xs, axis=1)
    if isinstance(op, graph.Flatten):
        return x.reshape(len(x), -1)
    if isinstance(op, graph.Activation):
        return _activate(x, op.kind)
    raise ValueError(f"node {name!r}: no executor for op {type(op).__name__}")


def _clamp(q: NDArray[np.int8], act_min: int, act_max: int) -> NDArray[np.int8]:
    """``clip(q, act_min, act_max)`` for bounds inside int8.

    Applied to the output of ``requantize(..., -128, 127)`` it equals ``requantize(...,
    act_min, act_max)``, since ``clip(clip(v, -128, 127), lo, hi) == clip(v, lo, hi)``.
    """
    if not -128 <= act_min <= act_max <= 127:
        raise ValueError(f"need -128 <= act_min <= act_max <= 127, got {act_min}, {act_max}")
    return np.clip(q, int(act_min), int(act_max)).astype(np.int8)


def _int8_node(qnet: QuantizedNetwork, name: str, xs: list[NDArray[np.int8]]) -> NDArray[np.int8]:
    """Output of node ``name`` of a QuantizedNetwork in int8 (see :func:`run_network`)."""
    from accel import graph, numerics, quant

    network = qnet.network
    op = network.op(name)
    kind = type(op).__name__
    t_out = qnet.tensors[name]
    t_ins = [qnet.tensors[src] for src in network.inputs(name)]
    layer = qnet.layers.get(name)
    expected = {
        graph.Conv2d: quant.ConvQuant,
        graph.Linear: quant.ConvQuant,
        graph.AvgPool2d: quant.PoolQuant,
        graph.GlobalAvgPool: quant.PoolQuant,
        graph.Add: quant.AddQuant,
    }.get(type(op), type(None))
    if not isinstance(layer, expected):
        raise ValueError(
            f"node {name!r} ({kind}): layer parameters must be {expected.__name__}, got {layer!r}"
        )
    shares_quant = isinstance(op, graph.MaxPool2d | graph.Flatten | graph.Concat | graph.Activation)
    if shares_quant and any(t != t_out for t in t_ins):
        raise ValueError(
            f"node {name!r} ({kind}): int8 execution needs the inputs' quantisation "
            f"{t_ins} to equal the output's {t_out}"
        )
    x = xs[0]
    if isinstance(op, graph.Conv2d | graph.Linear):
        common = {
            "x_zero_point": t_ins[0].zero_point,
            "multiplier": layer.multiplier,
            "shift": layer.shift,
            "out_zero_point": t_out.zero_point,
        }
        if isinstance(op, graph.Linear):
            out = numerics.qlinear(x.reshape(len(x), -1), layer.weight, layer.bias, **common)
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
        pads = pool_padding(name, op)
        return max_pool2d(x, op.kernel, op.stride, pads, op.ceil_mode).astype(np.int8)
    if isinstance(op, graph.AvgPool2d | graph.GlobalAvgPool):
        quant.avg_pool_count(network, name)  # rejects what one divisor cannot express
        if isinstance(op, graph.GlobalAvgPool):
            window = {"kernel": x.shape[2:]}
        else:
            window = {
                "kernel": op.kernel,
                "stride": op.stride,
                "padding": pool_padding(name, op),
                "ceil_mode": op.ceil_mode,
            }
        return qavg_pool2d(
            x,
            **window,
            x_zero_point=t_ins[0].zero_point,
            multiplier=layer.multiplier,
            shift=layer.shift,
            out_zero_point=t_out.zero_point,
            act_min=layer.act_min,
            act_max=layer.act_max,
        )
    if isinstance(op, graph.Add):
        return qadd(
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
    if isinstance(op, graph.Concat):
        return np.concatenate(xs, axis=1)
    if isinstance(op, graph.Flatten):
        return x.reshape(len(x), -1)
    if isinstance(op, graph.Activation):
        return _clamp(x, *numerics.activation_range(op.kind, t_out.zero_point, t_out.scale))
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
    from accel import quant
    from accel.graph import Network

    if isinstance(network_or_qnet, quant.QuantizedNetwork):
        qnet, network = network_or_qnet, network_or_qnet.network
    elif isinstance(network_or_qnet, Network):
        qnet, network = None, network_or_qnet
        if any(network.op(n).weight_shape and not network.weights(n) for n in network.order()):
            network = quant.random_weights(network, seed)
    else:
        raise TypeError(
            f"expected an accel.graph.Network or accel.quant.QuantizedNetwork, "
            f"got {network_or_qnet!r}"
        )
    values = _network_inputs(network, inputs, qnet)
    for name in network.layers():
        xs = [values[src] for src in network.inputs(name)]
        if qnet is None:
            values[name] = _float_node(network, name, xs)
        else:
            values[name] = _int8_node(qnet, name, xs)
    return {name: values[name] for name in network.order()}


def run_network(
    network_or_qnet: Network | QuantizedNetwork, inputs: Mapping[str, ArrayLike], *, seed: int = 0
) -> dict[str, NDArray]:
    """Execute a whole network, float64 or int8, and return its outputs.

    Nodes run in :meth:`accel.graph.Network.order`. Values carry the batch axis: ``(N, C, H,
    W)`` images, ``(N, F)`` vectors.

    **Float** (an :class:`accel.graph.Network`): float64, with the functions of this module
    (``conv2d``, ``linear``, ``max_pool2d``, ``avg_pool2d``, ``global_avg_pool2d``, ``add``,
    ``relu``/``relu6``, concatenation, flatten in C, H, W order). Weights that are missing are
    :func:`accel.quant.random_weights` of ``seed``.

    **int8** (an :class:`accel.quant.QuantizedNetwork`, ``seed`` unused): the contract the
    hardware is held to, bit for bit. ``zp_in``/``zp_out``/``s_out`` are the zero points and
    scale of the :class:`~accel.quant.TensorQuant` of the input and output tensors; SRDHM is
    ``saturating_rounding_doubling_high_mul``, RDBPOT ``rounding_divide_by_pot``, all in
    :mod:`accel.numerics`; every intermediate is int32 (``ValueError`` if one is not).

    * Conv2d: ``numerics.qconv2d(x, weight, bias, x_zero_point=zp_in, multiplier, shift,
      out_zero_point=zp_out, stride, padding, dilation, groups)`` (padding holds ``zp_in``,
      zero point folded into the bias), clamped to ``[act_min, act_max]`` of the
      :class:`~accel.quant.ConvQuant`: ``clamp(RDBPOT(SRDHM(acc, M[k]), shift[k]) + zp_out,
      act_min, act_max)``.
    * Linear: the same as a 1x1 conv (``numerics.qlinear``) on the input flattened in C, H, W
      order.
    * MaxPool2d: :func:`max_pool2d` of the int8 values (padding never wins).
    * AvgPool2d, GlobalAvgPool: :func:`qavg_pool2d`: ``acc = sum over the window of (x -
      zp_in)``, padded positions contributing 0 (``count_include_pad=True``), then
      ``requantize(acc, multiplier, shift, zp_out, act_min, act_max)`` of the
      :class:`~accel.quant.PoolQuant` (the divisor is folded into the multiplier).
      ``count_include_pad=False`` with padding, and ``ceil_mode`` windows that overhang the
      padded input, are rejected (:func:`accel.quant.avg_pool_count`).
    * Add: :func:`qadd`: ``scaled_i = RDBPOT(SRDHM((x_i - zp_i) << left_shift, M_i),
      shift_i)``; ``out = clamp(RDBPOT(SRDHM(sum_i scaled_i, M), shift) + zp_out, act_min,
      act_max)`` with the :class:`~accel.quant.AddQuant` parameters.
    * Concat: channel concatenation of the int8 inputs. Flatten: reshape in C, H, W order.
      Concat, Flatten, MaxPool2d and Activation require the inputs' TensorQuant to equal the
      output's (``ValueError`` naming the node otherwise).
    * Activation: ``clamp(x, *numerics.activation_range(kind, zp_out, s_out))``.

    Parameters
    ----------
    network_or_qnet : Network or QuantizedNetwork
    inputs : mapping of str to array_like
        One array ``(N, C, H, W)`` (``N >= 1``, shared) per Input node. A float network takes
        float (or integer) arrays. A QuantizedNetwork takes int8 arrays as they are and
        quantises float arrays with :meth:`~accel.quant.QuantizedNetwork.quantize_input`.
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
