"""Network representation shared by the frontends, the golden executor and the compiler.

A :class:`Network` is a DAG of named nodes, each holding one layer *op* (a frozen dataclass
defined here) and the output shape inferred when the node was added. Shapes leave out the
batch: images are ``(C, H, W)``, vectors ``(F,)``. Output sizes follow PyTorch.

Every op validates its fields on construction and every :meth:`Network.add` validates the
op against the shapes of its inputs, so a network that exists is consistent. Errors are
``ValueError`` naming the op or node, the attribute and the value; wrong argument *types*
(an op that is not an op, a bare string as the input list) raise ``TypeError``.

Examples
--------
>>> net = Network("demo")
>>> net.add("x", Input((3, 8, 8)))
'x'
>>> net.add("conv", Conv2d(3, 4, 3, padding=1, activation="relu"), ["x"])
'conv'
>>> net.shape("conv"), net.macs("conv")
((4, 8, 8), 6912)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import MISSING, asdict, dataclass, fields, replace
from numbers import Integral
from typing import Any, ClassVar

import networkx as nx
import numpy as np

__all__ = [
    "ACTIVATIONS",
    "OPS",
    "POINTWISE",
    "Activation",
    "Add",
    "AvgPool2d",
    "ChannelShuffle",
    "ChannelSlice",
    "Concat",
    "Conv2d",
    "ConvTranspose2d",
    "DepthToSpace",
    "Flatten",
    "GlobalAvgPool",
    "HostOp",
    "Input",
    "Linear",
    "MaxPool2d",
    "Mul",
    "Network",
    "Op",
    "PRelu",
    "PixelShuffle",
    "Pointwise",
    "Shape",
    "SpaceToDepth",
    "Upsample",
    "channel_affine",
    "conv_output_size",
    "fuse_activations",
]

Shape = tuple[int, ...]

#: Activation functions an op can apply to its output (``None`` means identity).
ACTIVATIONS = ("relu", "relu6")

#: The unary functions of :class:`Pointwise`, each with its parameters and their defaults
#: (ONNX's attribute names and defaults: float32 attributes, so 0.2 is 0.2 in float32).
POINTWISE: dict[str, dict[str, float]] = {
    "sigmoid": {},
    "tanh": {},
    "hardsigmoid": {"alpha": 0.20000000298023224, "beta": 0.5},
    "hardswish": {},
    "silu": {},
    "gelu": {},
    "gelu_tanh": {},
    "elu": {"alpha": 1.0},
    "selu": {"alpha": 1.67326319217681884765625, "gamma": 1.05070102214813232421875},
    "leakyrelu": {"alpha": 0.009999999776482582},
    "softplus": {},
}


def conv_output_size(
    size: int,
    kernel: int,
    stride: int,
    padding_total: int,
    dilation: int = 1,
    *,
    ceil_mode: bool = False,
    pad_begin: int = 0,
) -> int:
    """Return the number of sliding-window positions along one axis (PyTorch semantics).

    Parameters
    ----------
    size, kernel, stride, dilation : int
        Input length and window parameters; all >= 1 (not re-checked here).
    padding_total : int
        Padding added at both ends together, >= 0.
    ceil_mode : bool
        Round up instead of down, as PyTorch pools do: one extra, partial window is taken
        when the input does not divide evenly, unless it would start in the end padding
        (the last window must start inside the input or the begin padding). This is
        PyTorch's formula exactly; with its pool constraints (padding at most half the
        kernel, no dilation) no window then lies wholly in padding.
    pad_begin : int
        Padding before the first element; only used by ``ceil_mode``.

    Returns
    -------
    int
        ``floor((size + padding_total - dilation * (kernel - 1) - 1) / stride) + 1``
        (``ceil`` with ``ceil_mode``), always >= 1.

    Raises
    ------
    ValueError
        If the dilated kernel is longer than the padded input.
    """
    span = dilation * (kernel - 1) + 1
    room = size + padding_total - span
    if room < 0:
        raise ValueError(
            f"dilated kernel extent {span} is larger than the padded input {size} + {padding_total}"
        )
    if not ceil_mode:
        return room // stride + 1
    out = -(-room // stride) + 1
    if (out - 1) * stride >= size + pad_begin:
        out -= 1
    return out


# ---------------------------------------------------------------------------------------
# Field validation, keyed by field name: a field means the same thing in every op.


def _int(owner: str, field: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        raise ValueError(f"{owner}.{field} must be an int >= {minimum}, got {value!r}")
    return int(value)


def _ints(
    owner: str, field: str, value: Any, length: int, minimum: int, scalar: bool = True
) -> tuple[int, ...]:
    """``length`` ints >= ``minimum`` as a tuple; a single int is repeated if ``scalar``."""
    what = f"an int or {length} ints" if scalar else f"{length} ints"
    items = (value,) * length if scalar and isinstance(value, Integral) else value
    if not isinstance(items, (tuple, list)) or len(items) != length:
        raise ValueError(f"{owner}.{field} must be {what} >= {minimum}, got {value!r}")
    try:
        return tuple(_int(owner, field, v, minimum) for v in items)
    except ValueError:
        raise ValueError(f"{owner}.{field} must be {what} >= {minimum}, got {value!r}") from None


def _pair(owner: str, field: str, value: Any) -> tuple[int, ...]:
    return _ints(owner, field, value, 2, 1)


def _padding(owner: str, field: str, value: Any) -> tuple[int, ...]:
    """An int, (pad_h, pad_w) or (top, bottom, left, right), stored as the last."""
    try:
        if isinstance(value, (tuple, list)) and len(value) == 2:
            h, w = _ints(owner, field, value, 2, 0)
            return (h, h, w, w)
        return _ints(owner, field, value, 4, 0)
    except ValueError:
        raise ValueError(
            f"{owner}.{field} must be an int, (pad_h, pad_w) or (top, bottom, left, right), "
            f"ints >= 0, got {value!r}"
        ) from None


def _bool(owner: str, field: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{owner}.{field} must be a bool, got {value!r}")
    return value


def _activation(owner: str, field: str, value: Any) -> str | None:
    if value is not None and value not in ACTIVATIONS:
        raise ValueError(f"{owner}.{field} must be None or one of {ACTIVATIONS}, got {value!r}")
    return value


def _kind(owner: str, field: str, value: Any) -> str:
    if value not in ACTIVATIONS:
        raise ValueError(f"{owner}.{field} must be one of {ACTIVATIONS}, got {value!r}")
    return value


def _function(owner: str, field: str, value: Any) -> str:
    if value not in POINTWISE:
        raise ValueError(f"{owner}.{field} must be one of {tuple(POINTWISE)}, got {value!r}")
    return value


def _params(owner: str, field: str, value: Any) -> tuple[tuple[str, float], ...]:
    """Named finite floats, sorted by name: a mapping or ``(name, value)`` pairs."""
    try:
        items = dict(value.items() if isinstance(value, dict) else value)
        pairs = tuple(sorted((str(k), float(v)) for k, v in items.items()))
    except (TypeError, ValueError):
        raise ValueError(f"{owner}.{field} must map names to numbers, got {value!r}") from None
    if not all(math.isfinite(v) for _, v in pairs):
        raise ValueError(f"{owner}.{field} must be finite, got {value!r}")
    return pairs


def _text(owner: str, field: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{owner}.{field} must be a non-empty string, got {value!r}")
    return value


def _dims(owner: str, field: str, value: Any) -> tuple[int, ...]:
    """A shape of 1 to 3 dimensions >= 1 (no batch)."""
    if not isinstance(value, (tuple, list)) or not 1 <= len(value) <= 3:
        raise ValueError(f"{owner}.{field} must be 1 to 3 ints >= 1, got {value!r}")
    return _ints(owner, field, value, len(value), 1, scalar=False)


_FIELD_RULES: dict[str, Callable[[str, str, Any], Any]] = {
    "shape": lambda owner, field, value: _ints(owner, field, value, 3, 1, scalar=False),
    "in_channels": _int,
    "out_channels": _int,
    "channels": _int,
    "in_features": _int,
    "out_features": _int,
    "groups": _int,
    "kernel": _pair,
    "factor": _pair,
    "block": _int,
    "start": lambda owner, field, value: _int(owner, field, value, 0),
    "stop": _int,
    "stride": _pair,
    "dilation": _pair,
    "padding": _padding,
    "output_padding": lambda owner, field, value: _ints(owner, field, value, 2, 0),
    "bias": _bool,
    "ceil_mode": _bool,
    "count_include_pad": _bool,
    "activation": _activation,
    "kind": _kind,
    "function": _function,
    "params": _params,
    "op_type": _text,
    "out_shape": _dims,
    "model": _text,
}


# ---------------------------------------------------------------------------------------
# Ops


class Op:
    """Base of all layer ops: a frozen dataclass whose fields are validated and normalised.

    Integer-tuple fields also accept a single int (``kernel=3`` is stored as ``(3, 3)``) or
    a list; ``padding`` also accepts ``(pad_h, pad_w)``, stored as ``(top, bottom, left,
    right)``. Subclasses implement :meth:`infer_shape`; ops with weights override
    :attr:`weight_shape`, :attr:`bias_shape` and :meth:`macs`.
    """

    #: (minimum, maximum) number of inputs; ``None`` means unbounded.
    arity: ClassVar[tuple[int, int | None]] = (1, 1)

    def __post_init__(self) -> None:
        owner = type(self).__name__
        for f in fields(self):  # type: ignore[arg-type]
            value = _FIELD_RULES[f.name](owner, f.name, getattr(self, f.name))
            object.__setattr__(self, f.name, value)
        self._check()

    def _check(self) -> None:
        """Cross-field checks of a subclass, run after field normalisation."""

    def infer_shape(self, shapes: Sequence[Shape]) -> Shape:
        """Return the output shape for the given input shapes.

        Raises
        ------
        ValueError
            If the inputs are incompatible with the op; the message names the attribute
            and the value, the caller adds the node name.
        """
        raise NotImplementedError

    def macs(self, out_shape: Shape) -> int:
        """Multiply-accumulates to produce an output of ``out_shape`` (0 for most ops)."""
        return 0

    @property
    def weight_shape(self) -> Shape | None:
        """Shape of the weight tensor, or ``None`` for ops without weights."""
        return None

    @property
    def bias_shape(self) -> Shape | None:
        """Shape of the bias vector, or ``None`` when the op has no bias."""
        return None


def _chw(shape: Shape) -> Shape:
    if len(shape) != 3:
        raise ValueError(f"expects a (C, H, W) input, got shape {shape}")
    return shape


def _window_hw(
    op: Conv2d | MaxPool2d | AvgPool2d, shape: Shape, dilation: tuple[int, ...] = (1, 1)
) -> tuple[int, int]:
    """Output (P, Q) of a sliding-window op over a (C, H, W) input."""
    ceil_mode = getattr(op, "ceil_mode", False)
    _, h, w = _chw(shape)
    pads = (op.padding[:2], op.padding[2:])
    out = []
    for axis, size, k, s, (begin, end), d in zip(
        ("height", "width"), (h, w), op.kernel, op.stride, pads, dilation, strict=True
    ):
        try:
            out.append(
                conv_output_size(size, k, s, begin + end, d, ceil_mode=ceil_mode, pad_begin=begin)
            )
        except ValueError as exc:
            raise ValueError(
                f"kernel={op.kernel} does not fit the {axis} of input shape {shape} "
                f"with padding={op.padding}, dilation={tuple(dilation)}: {exc}"
            ) from None
    return out[0], out[1]


@dataclass(frozen=True)
class Input(Op):
    """Network input of shape ``(C, H, W)`` (no batch)."""

    shape: tuple[int, int, int]
    arity: ClassVar[tuple[int, int | None]] = (0, 0)

    def infer_shape(self, shapes: Sequence[Shape]) -> Shape:
        return self.shape


@dataclass(frozen=True)
class Conv2d(Op):
    """2-D convolution ``(C, H, W) -> (K, P, Q)``, optionally grouped, biased, activated.

    ``padding`` is ``(top, bottom, left, right)``; ``groups`` must divide both channel
    counts (``groups == in_channels == out_channels`` is a depthwise conv). Weights are
    ``(out_channels, in_channels // groups, R, S)``, bias ``(out_channels,)``.
    """

    in_channels: int
    out_channels: int
    kernel: tuple[int, int]
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    bias: bool = True
    activation: str | None = None

    def _check(self) -> None:
        for field in ("in_channels", "out_channels"):
            if getattr(self, field) % self.groups:
                raise ValueError(
                    f"Conv2d.groups={self.groups} does not divide {field}={getattr(self, field)}"
                )

    def infer_shape(self, shapes: Sequence[Shape]) -> Shape:
        (shape,) = shapes
        if _chw(shape)[0] != self.in_channels:
            raise ValueError(
                f"in_channels={self.in_channels} does not match the {shape[0]} channels "
                f"of input shape {shape}"
            )
        return (self.out_channels, *_window_hw(self, shape, self.dilation))

    def macs(self, out_shape: Shape) -> int:
        r, s = self.kernel
        return math.prod(out_shape) * (self.in_channels // self.groups) * r * s

    @property
    def weight_shape(self) -> Shape:
        return (self.out_channels, self.in_channels // self.groups, *self.kernel)

    @property
    def bias_shape(self) -> Shape | None:
        return (self.out_channels,) if self.bias else None


@dataclass(frozen=True)
class ConvTranspose2d(Op):
    """Transposed 2-D convolution ``(C, H, W) -> (K, Ho, Wo)`` (PyTorch ``ConvTranspose2d``).

    ``Ho = (H - 1)*stride_h - top - bottom + dilation_h*(R - 1) + output_padding_h + 1``,
    likewise ``Wo``: ``padding`` ``(top, bottom, left, right)`` removes rows and columns from
    the full output, ``output_padding`` adds them at the bottom and right (each smaller than
    ``max(stride, dilation)`` on its axis, PyTorch's rule). Weights are in PyTorch/ONNX
    layout, input channels first: ``(in_channels, out_channels // groups, R, S)``; bias
    ``(out_channels,)``. :meth:`output_channel_major` gives them per output channel.
    """

    in_channels: int
    out_channels: int
    kernel: tuple[int, int]
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)
    output_padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    bias: bool = True
    activation: str | None = None

    def _check(self) -> None:
        for field in ("in_channels", "out_channels"):
            if getattr(self, field) % self.groups:
                raise ValueError(
                    f"ConvTranspose2d.groups={self.groups} does not divide "
                    f"{field}={getattr(self, field)}"
                )
        for op_pad, s, d in zip(self.output_padding, self.stride, self.dilation, strict=True):
            if op_pad >= max(s, d):
                raise ValueError(
                    f"ConvTranspose2d.output_padding={self.output_padding} must be smaller "
                    f"than max(stride, dilation) per axis (stride={self.stride}, "
                    f"dilation={self.dilation})"
                )

    def infer_shape(self, shapes: Sequence[Shape]) -> Shape:
        (shape,) = shapes
        c, h, w = _chw(shape)
        if c != self.in_channels:
            raise ValueError(
                f"in_channels={self.in_channels} does not match the {c} channels "
                f"of input shape {shape}"
            )
        pads = (self.padding[:2], self.padding[2:])
        out = []
        for size, k, s, (begin, end), d, extra in zip(
            (h, w), self.kernel, self.stride, pads, self.dilation, self.output_padding, strict=True
        ):
            out.append((size - 1) * s - begin - end + d * (k - 1) + extra + 1)
        if min(out) < 1:
            raise ValueError(
                f"output size {tuple(out)} < 1 for input shape {shape} with kernel={self.kernel}, "
                f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, "
                f"output_padding={self.output_padding}"
            )
        return (self.out_channels, out[0], out[1])

    def input_hw(self, out_shape: Shape) -> tuple[int, int]:
        """The input ``(H, W)`` that gives an output of ``out_shape`` (infer_shape inverted)."""
        pads = (self.padding[:2], self.padding[2:])
        return tuple(  # type: ignore[return-value]
            (size + begin + end - d * (k - 1) - extra - 1) // s + 1
            for size, k, s, (begin, end), d, extra in zip(
                out_shape[1:],
                self.kernel,
                self.stride,
                pads,
                self.dilation,
                self.output_padding,
                strict=True,
            )
        )

    def macs(self, out_shape: Shape) -> int:
        """The products that land in the output: inserted zeros and cropped positions are
        not counted (what the phase decomposition of the compiler computes)."""
        taps = []
        pads = (self.padding[0], self.padding[2])
        for size, out, k, s, begin, d in zip(
            self.input_hw(out_shape), out_shape[1:], self.kernel, self.stride, pads, self.dilation,
            strict=True,
        ):  # fmt: skip
            pos = np.arange(size)[:, None] * s - begin + np.arange(k)[None, :] * d
            taps.append(int(((pos >= 0) & (pos < out)).sum()))
        return self.out_channels * (self.in_channels // self.groups) * taps[0] * taps[1]

    @property
    def weight_shape(self) -> Shape:
        return (self.in_channels, self.out_channels // self.groups, *self.kernel)

    @property
    def bias_shape(self) -> Shape | None:
        return (self.out_channels,) if self.bias else None

    def output_channel_major(self, weight: np.ndarray) -> np.ndarray:
        """``weight`` ``(C, K/groups, R, S)`` as ``(K, C/groups, R, S)``: element ``[g*Kg + k,
        c, r, s]`` is ``weight[g*Cg + c, k, r, s]`` (no flip)."""
        g, kg = self.groups, self.out_channels // self.groups
        cg = self.in_channels // g
        r, s = self.kernel
        return weight.reshape(g, cg, kg, r, s).transpose(0, 2, 1, 3, 4).reshape(g * kg, cg, r, s)

    def input_channel_major(self, weight: np.ndarray) -> np.ndarray:
        """The inverse of :meth:`output_channel_major`."""
        g, kg = self.groups, self.out_channels // self.groups
        cg = self.in_channels // g
        r, s = self.kernel
        return weight.reshape(g, kg, cg, r, s).transpose(0, 2, 1, 3, 4).reshape(g * cg, kg, r, s)


@dataclass(frozen=True)
class Linear(Op):
    """Fully connected layer ``(F,)`` or ``(F, 1, 1)`` -> ``(out_features,)``.

    Weights are ``(out_features, in_features)``, bias ``(out_features,)``.
    """

    in_features: int
    out_features: int
    bias: bool = True
    activation: str | None = None

    def infer_shape(self, shapes: Sequence[Shape]) -> Shape:
        (shape,) = shapes
        if shape not in ((self.in_features,), (self.in_features, 1, 1)):
            raise ValueError(
                f"in_features={self.in_features} does not match input shape {shape} "
                f"(expected ({self.in_features},) or ({self.in_features}, 1, 1))"
            )
        return (self.out_features,)

    def macs(self, out_shape: Shape) -> int:
        return self.in_features * self.out_features

    @property
    def weight_shape(self) -> Shape:
        return (self.out_features, self.in_features)

    @property
    def bias_shape(self) -> Shape | None:
        return (self.out_features,) if self.bias else None


class _Pool(Op):
    """Shared checks of the windowed pools: PyTorch's "pad at most half the kernel" rule,
    which guarantees every window overlaps the input."""

    kernel: tuple[int, int]
    padding: tuple[int, int, int, int]

    def _check(self) -> None:
        for pads, k in zip((self.padding[:2], self.padding[2:]), self.kernel, strict=True):
            if max(pads) > k // 2:
                raise ValueError(
                    f"{type(self).__name__}.padding={self.padding} exceeds half of "
                    f"kernel={self.kernel}"
                )

    def infer_shape(self, shapes: Sequence[Shape]) -> Shape:
        (shape,) = shapes
        dilation = getattr(self, "dilation", (1, 1))
        return (_chw(shape)[0], *_window_hw(self, shape, dilation))  # type: ignore[arg-type]


@dataclass(frozen=True)
class MaxPool2d(_Pool):
    """Max pooling; padded positions never win. ``ceil_mode`` and ``dilation`` (the window
    taps ``dilation`` apart; the padding rule is on the undilated kernel) as PyTorch."""

    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)
    ceil_mode: bool = False
    dilation: tuple[int, int] = (1, 1)


@dataclass(frozen=True)
class AvgPool2d(_Pool):
    """Average pooling; ``ceil_mode`` and ``count_include_pad`` as PyTorch."""

    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)
    ceil_mode: bool = False
    count_include_pad: bool = True


def pool_padding(name: str, op: MaxPool2d | AvgPool2d) -> tuple[int, int]:
    """The symmetric ``(h, w)`` padding of a pool op (ops store ``(top, bottom, left,
    right)``); ``ValueError`` naming node ``name`` if it is asymmetric."""
    top, bottom, left, right = op.padding
    if top != bottom or left != right:
        raise ValueError(
            f"node {name!r} ({type(op).__name__}): asymmetric padding={op.padding} "
            "is not supported (pools pad top == bottom and left == right)"
        )
    return top, left


@dataclass(frozen=True)
class GlobalAvgPool(Op):
    """Mean over H and W: ``(C, H, W) -> (C, 1, 1)``."""

    def infer_shape(self, shapes: Sequence[Shape]) -> Shape:
        (shape,) = shapes
        return (_chw(shape)[0], 1, 1)


@dataclass(frozen=True)
class Add(Op):
    """Elementwise sum of two or more inputs of identical shape, then ``activation``."""

    activation: str | None = None
    arity: ClassVar[tuple[int, int | None]] = (2, None)

    def infer_shape(self, shapes: Sequence[Shape]) -> Shape:
        if len(set(shapes)) != 1:
            raise ValueError(f"input shapes differ: {list(shapes)}")
        return shapes[0]


@dataclass(frozen=True)
class Mul(Op):
    """Elementwise product of two inputs: one shape, or a ``(C, H, W)`` first input and a
    ``(C, 1, 1)`` second one broadcast over its pixels (the squeeze-and-excitation gate)."""

    arity: ClassVar[tuple[int, int | None]] = (2, 2)

    def infer_shape(self, shapes: Sequence[Shape]) -> Shape:
        a, b = shapes
        if a != b and not (len(a) == len(b) == 3 and b == (a[0], 1, 1)):
            raise ValueError(
                f"input shapes {list(shapes)}: Mul takes one shape, or (C, H, W) and (C, 1, 1)"
            )
        return a


@dataclass(frozen=True)
class Concat(Op):
    """Concatenation along the channel axis of ``(C, H, W)`` inputs with equal H and W."""

    arity: ClassVar[tuple[int, int | None]] = (1, None)

    def infer_shape(self, shapes: Sequence[Shape]) -> Shape:
        for shape in shapes:
            _chw(shape)
        if len({shape[1:] for shape in shapes}) != 1:
            raise ValueError(f"input H x W differ: {list(shapes)}")
        return (sum(shape[0] for shape in shapes), *shapes[0][1:])


@dataclass(frozen=True)
class Flatten(Op):
    """Reshape any input to a vector ``(prod(shape),)`` in C, H, W order."""

    def infer_shape(self, shapes: Sequence[Shape]) -> Shape:
        (shape,) = shapes
        return (math.prod(shape),)


@dataclass(frozen=True)
class Activation(Op):
    """Standalone activation, as produced by importers; see :func:`fuse_activations`."""

    kind: str

    def infer_shape(self, shapes: Sequence[Shape]) -> Shape:
        (shape,) = shapes
        return shape


@dataclass(frozen=True)
class Pointwise(Op):
    """A unary function of every element, ``function`` of :data:`POINTWISE` with ``params``.

    ``params`` holds every parameter of the function (missing ones take their defaults;
    others are an error), as sorted ``(name, value)`` pairs. In float it is the formula of
    :func:`accel.golden.pointwise`; in int8 a 256-entry table from the input quantisation to
    the output quantisation (:class:`accel.quantized.TableQuant`), which the hardware applies
    in the POST of the layer that produces its input, or on its own.
    """

    function: str
    params: tuple[tuple[str, float], ...] = ()

    def _check(self) -> None:
        defaults = POINTWISE[self.function]
        given = dict(self.params)
        unknown = sorted(set(given) - set(defaults))
        if unknown:
            raise ValueError(
                f"Pointwise.params: {self.function} takes {sorted(defaults) or 'none'}, "
                f"got {unknown}"
            )
        object.__setattr__(self, "params", tuple(sorted({**defaults, **given}.items())))

    def infer_shape(self, shapes: Sequence[Shape]) -> Shape:
        (shape,) = shapes
        return shape


@dataclass(frozen=True)
class Upsample(Op):
    """Nearest-neighbour upsampling by integer factors: ``(C, H, W) -> (C, H*fh, W*fw)``,
    output pixel ``(i, j)`` is input pixel ``(i // fh, j // fw)`` (every input pixel
    replicated ``fh x fw`` times; no arithmetic, so int8 in and out share one quantisation)."""

    factor: tuple[int, int]

    def infer_shape(self, shapes: Sequence[Shape]) -> Shape:
        (shape,) = shapes
        c, h, w = _chw(shape)
        return (c, h * self.factor[0], w * self.factor[1])


@dataclass(frozen=True)
class ChannelSlice(Op):
    """Channels ``start`` to ``stop`` (exclusive) of a ``(C, H, W)`` input (ONNX Slice and
    Split along the channels): ``(C, H, W) -> (stop - start, H, W)``; int8 in and out share
    one quantisation."""

    start: int
    stop: int

    def _check(self) -> None:
        if self.stop <= self.start:
            raise ValueError(f"ChannelSlice: stop={self.stop} must exceed start={self.start}")

    def infer_shape(self, shapes: Sequence[Shape]) -> Shape:
        (shape,) = shapes
        c, h, w = _chw(shape)
        if self.stop > c:
            raise ValueError(f"ChannelSlice.stop={self.stop} exceeds the {c} input channels")
        return (self.stop - self.start, h, w)


@dataclass(frozen=True)
class DepthToSpace(Op):
    """Depth to space with block ``b`` in DCR order (ONNX DepthToSpace, mode DCR):
    ``(C*b*b, H, W) -> (C, H*b, W*b)``, output pixel ``(h*b + i, w*b + j)`` channel ``c`` is
    input channel ``(i*b + j)*C + c`` of pixel ``(h, w)``; int8 in and out share one
    quantisation."""

    block: int

    def infer_shape(self, shapes: Sequence[Shape]) -> Shape:
        (shape,) = shapes
        c, h, w = _chw(shape)
        b = self.block
        if c % (b * b):
            raise ValueError(f"DepthToSpace.block={b}: {c} channels are not a multiple of {b * b}")
        return (c // (b * b), h * b, w * b)


@dataclass(frozen=True)
class PixelShuffle(Op):
    """Depth to space with block ``b`` in CRD order (ONNX DepthToSpace, mode CRD; PyTorch's
    PixelShuffle): ``(C*b*b, H, W) -> (C, H*b, W*b)``, output pixel ``(h*b + i, w*b + j)``
    channel ``c`` is input channel ``c*b*b + i*b + j`` of pixel ``(h, w)``; int8 in and out
    share one quantisation."""

    block: int

    def infer_shape(self, shapes: Sequence[Shape]) -> Shape:
        (shape,) = shapes
        c, h, w = _chw(shape)
        b = self.block
        if b < 1 or c % (b * b):
            raise ValueError(f"PixelShuffle.block={b}: {c} channels are not a multiple of {b * b}")
        return (c // (b * b), h * b, w * b)


@dataclass(frozen=True)
class ChannelShuffle(Op):
    """Channel shuffle with ``groups`` = ``g`` (ShuffleNet's Reshape(g, C/g) - Transpose -
    Reshape): ``(C, H, W) -> (C, H, W)``, output channel ``k*g + i`` is input channel ``i*(C/g)
    + k``; int8 in and out share one quantisation."""

    groups: int

    def infer_shape(self, shapes: Sequence[Shape]) -> Shape:
        (shape,) = shapes
        c, h, w = _chw(shape)
        g = self.groups
        if g < 1 or c % g:
            raise ValueError(f"ChannelShuffle.groups={g}: {c} channels are not a multiple of it")
        return (c, h, w)


@dataclass(frozen=True)
class SpaceToDepth(Op):
    """Space to depth with block ``b`` (ONNX SpaceToDepth; the inverse of DCR
    :class:`DepthToSpace`): ``(C, H, W) -> (C*b*b, H/b, W/b)``, output channel ``(i*b + j)*C
    + c`` of pixel ``(h, w)`` is input channel ``c`` of pixel ``(h*b + i, w*b + j)``; int8 in
    and out share one quantisation."""

    block: int

    def infer_shape(self, shapes: Sequence[Shape]) -> Shape:
        (shape,) = shapes
        c, h, w = _chw(shape)
        b = self.block
        if h % b or w % b:
            raise ValueError(f"SpaceToDepth.block={b}: H x W = {h} x {w} is not a multiple")
        return (c * b * b, h // b, w // b)


@dataclass(frozen=True)
class PRelu(Op):
    """PRelu with one slope per channel: ``y = x if x >= 0 else slope[c] * x`` of a ``(C, H,
    W)`` tensor. Its weights are the ``(C,)`` slopes (``network.set_weights(name, slope)``).
    In int8 (:class:`accel.quantized.PReluQuant`) each side is a requantisation of ``x -
    zp_in`` with its own per-channel multiplier, so the accelerator runs it as an identity
    depthwise pass whose POST takes the second multiplier for negative values
    (``docs/numerics.md``, "PRelu"). A single slope is a LeakyRelu :class:`Pointwise` instead.
    """

    channels: int

    def infer_shape(self, shapes: Sequence[Shape]) -> Shape:
        (shape,) = shapes
        if _chw(shape)[0] != self.channels:
            raise ValueError(
                f"channels={self.channels} does not match the {shape[0]} channels of input "
                f"shape {shape}"
            )
        return shape

    @property
    def weight_shape(self) -> Shape:
        return (self.channels,)


#: Op classes by name, as used by :meth:`Network.to_dict` and :meth:`Network.from_dict`.
@dataclass(frozen=True)
class HostOp(Op):
    """An op that runs on the host between accelerator segments, not on the accelerator.

    ``op_type`` names it (the ONNX op type, for reports); ``model`` is a self-contained
    single-node ONNX model computing it, serialised and base64-encoded: its graph inputs are
    the node's tensor inputs in order (batch dimension first, symbolic), constant inputs are
    initializers, and it has one output. :mod:`accel.executor` runs it with ONNX's reference
    implementation. ``out_shape`` is the output shape without the batch dimension, as this
    graph stores it (``(C, H, W)``, or ``(F,)``).
    """

    op_type: str
    out_shape: tuple[int, ...]
    model: str
    arity: ClassVar[tuple[int, int | None]] = (1, None)

    def infer_shape(self, shapes: Sequence[Shape]) -> Shape:
        return self.out_shape


OPS: dict[str, type[Op]] = {
    cls.__name__: cls
    for cls in (
        Input,
        Conv2d,
        ConvTranspose2d,
        Linear,
        MaxPool2d,
        AvgPool2d,
        GlobalAvgPool,
        Add,
        Mul,
        Concat,
        Flatten,
        Activation,
        Pointwise,
        Upsample,
        ChannelSlice,
        DepthToSpace,
        PixelShuffle,
        ChannelShuffle,
        SpaceToDepth,
        PRelu,
        HostOp,
    )
}


def _check_name(what: str, name: Any) -> str:
    if not isinstance(name, str) or not name:
        raise ValueError(f"{what} must be a non-empty str, got {name!r}")
    return name


# ---------------------------------------------------------------------------------------
# Network


class Network:
    """A named DAG of layers with inferred shapes, weights and free-form metadata.

    Nodes are added in dependency order with :meth:`add`, so the graph is acyclic by
    construction and insertion order is a topological order. The underlying
    :class:`networkx.DiGraph` is available read-only as :attr:`graph`: node attributes
    ``op``, ``shape``, ``index`` (insertion index), ``weights``, ``meta``; edge attribute
    ``index`` (position of the source among the target's inputs).

    Parameters
    ----------
    name : str
        Non-empty network name.
    """

    def __init__(self, name: str) -> None:
        self._name = _check_name("network name", name)
        self._graph = nx.DiGraph(name=name)
        self._order: tuple[str, ...] | None = None

    def __repr__(self) -> str:
        return f"Network({self._name!r}, {len(self)} nodes)"

    def __len__(self) -> int:
        return len(self._graph)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._graph

    @property
    def name(self) -> str:
        """The network name."""
        return self._name

    @property
    def graph(self) -> nx.DiGraph:
        """Read-only view of the underlying graph (mutate only through this class)."""
        return self._graph.copy(as_view=True)

    # -- building ------------------------------------------------------------------------

    def add(self, name: str, op: Op, inputs: Sequence[str] = ()) -> str:
        """Add node ``name`` computing ``op`` on ``inputs`` and infer its output shape.

        Parameters
        ----------
        name : str
            Non-empty, unique node name.
        op : Op
            The layer.
        inputs : sequence of str
            Names of existing nodes, in operand order, each at most once.

        Returns
        -------
        str
            ``name``, so that calls can be chained into the next ``inputs``.

        Raises
        ------
        ValueError
            Naming the node: invalid or duplicate name, unknown input, the node itself as
            input (a cycle), repeated input, wrong number of inputs, or inputs whose shapes
            the op rejects (channel or ``in_features`` mismatch, kernel larger than the
            padded input, ``Add`` of different shapes, ...).
        TypeError
            If ``op`` is not an :class:`Op` or ``inputs`` is a single string.
        """
        _check_name("node name", name)
        if name in self._graph:
            raise ValueError(f"node {name!r}: duplicate name in network {self._name!r}")
        if not isinstance(op, Op):
            raise TypeError(f"node {name!r}: op must be an accel.graph.Op, got {op!r}")
        if isinstance(inputs, str):
            raise TypeError(
                f"node {name!r}: inputs must be a sequence of node names, got the str {inputs!r}"
            )
        inputs = tuple(inputs)
        for src in inputs:
            if src == name:
                raise ValueError(f"node {name!r}: lists itself as an input (cycle)")
            if src not in self:
                raise ValueError(f"node {name!r}: unknown input {src!r}")
            if inputs.count(src) > 1:
                raise ValueError(f"node {name!r}: input {src!r} is listed more than once")
        kind = type(op).__name__
        low, high = op.arity
        if len(inputs) < low or (high is not None and len(inputs) > high):
            upper = "or more" if high is None else f"to {high}"
            expected = f"{low}" if low == high else f"{low} {upper}"
            raise ValueError(
                f"node {name!r} ({kind}): takes {expected} inputs, "
                f"got {len(inputs)}: {list(inputs)}"
            )
        try:
            shape = op.infer_shape([self.shape(src) for src in inputs])
        except ValueError as exc:
            raise ValueError(f"node {name!r} ({kind}): {exc}") from exc
        self._graph.add_node(
            name, op=op, shape=tuple(shape), index=len(self._graph), weights={}, meta={}
        )
        for index, src in enumerate(inputs):
            self._graph.add_edge(src, name, index=index)
        self._order = None
        return name

    def set_weights(self, name: str, weight: np.ndarray, bias: np.ndarray | None = None) -> None:
        """Attach weights to a Conv2d or Linear node (stored as read-only copies).

        ``weight`` must have the op's :attr:`~Op.weight_shape` (conv ``(K, C/groups, R,
        S)``, linear ``(out, in)``); ``bias`` is required with shape ``(K,)`` exactly when
        the op has ``bias=True``. Arrays must have an integer or floating dtype.

        Raises
        ------
        ValueError
            Naming the node, the argument and the offending shape or dtype.
        """
        op = self.op(name)
        expected = {"weight": op.weight_shape, "bias": op.bias_shape}
        if expected["weight"] is None:
            raise ValueError(f"node {name!r} ({type(op).__name__}) has no weights")
        stored = {}
        for arg, value in (("weight", weight), ("bias", bias)):
            if expected[arg] is None:
                if value is not None:
                    raise ValueError(f"node {name!r}: bias given but the op has bias=False")
                continue
            if not isinstance(value, np.ndarray) or value.dtype.kind not in "iuf":
                raise ValueError(
                    f"node {name!r}: {arg} must be an integer or float ndarray, "
                    f"got {_describe_array(value)}"
                )
            if value.shape != expected[arg]:
                raise ValueError(
                    f"node {name!r}: {arg} shape {value.shape} != expected {expected[arg]}"
                )
            stored[arg] = value.copy()
            stored[arg].flags.writeable = False
        self._node(name)["weights"] = stored

    # -- queries -------------------------------------------------------------------------

    def _node(self, name: str) -> dict[str, Any]:
        try:
            return self._graph.nodes[name]
        except KeyError:
            raise KeyError(f"network {self._name!r} has no node named {name!r}") from None

    def op(self, name: str) -> Op:
        """The op of node ``name`` (``KeyError`` naming it if absent, as all queries)."""
        return self._node(name)["op"]

    def shape(self, name: str) -> Shape:
        """Output shape of node ``name`` (no batch)."""
        return self._node(name)["shape"]

    def inputs(self, name: str) -> list[str]:
        """Input node names of ``name`` in operand order."""
        self._node(name)
        edges = self._graph.in_edges(name, data="index")
        return [src for src, _, _ in sorted(edges, key=lambda edge: edge[2])]

    def consumers(self, name: str) -> list[str]:
        """Nodes reading the output of ``name``, in network order."""
        self._node(name)
        return sorted(self._graph.successors(name), key=lambda n: self._graph.nodes[n]["index"])

    def weights(self, name: str) -> dict[str, np.ndarray]:
        """``{"weight": ..., "bias": ...}`` as set by :meth:`set_weights` (``{}`` if unset;
        no ``"bias"`` key when the op has none)."""
        return dict(self._node(name)["weights"])

    def meta(self, name: str) -> dict[str, Any]:
        """The live, mutable metadata dict of node ``name`` (e.g. quantisation params)."""
        return self._node(name)["meta"]

    def order(self) -> list[str]:
        """All node names in deterministic topological order (ties by insertion index)."""
        if self._order is None:
            index = nx.get_node_attributes(self._graph, "index")
            self._order = tuple(
                nx.lexicographical_topological_sort(self._graph, key=index.__getitem__)
            )
        return list(self._order)

    @property
    def input_names(self) -> list[str]:
        """Names of the :class:`Input` nodes, in order."""
        return [n for n in self.order() if isinstance(self.op(n), Input)]

    @property
    def output_names(self) -> list[str]:
        """Names of the nodes without consumers, in order."""
        return [n for n in self.order() if self._graph.out_degree(n) == 0]

    def layers(self) -> list[str]:
        """Names of the non-:class:`Input` nodes, in order."""
        return [n for n in self.order() if not isinstance(self.op(n), Input)]

    def macs(self, name: str) -> int:
        """Multiply-accumulates of one node: conv ``K*P*Q*(C/groups)*R*S``, linear
        ``in*out``, every other op 0."""
        return self.op(name).macs(self.shape(name))

    @property
    def total_macs(self) -> int:
        """Sum of :meth:`macs` over all nodes."""
        return sum(self.macs(n) for n in self.order())

    def params(self, name: str) -> int:
        """Number of weights plus bias elements of one node (0 for ops without weights)."""
        op = self.op(name)
        return sum(math.prod(s) for s in (op.weight_shape, op.bias_shape) if s is not None)

    @property
    def total_params(self) -> int:
        """Sum of :meth:`params` over all nodes."""
        return sum(self.params(n) for n in self.order())

    def activation_size(self, name: str) -> int:
        """Number of elements of the output of node ``name``."""
        return math.prod(self.shape(name))

    # -- reporting -----------------------------------------------------------------------

    def summary(self) -> str:
        """A text table: name, op (with its non-default attributes), output shape, MACs,
        params, and a totals row."""
        header = ("name", "op", "output", "MACs", "params")
        rows = [
            (
                n,
                _describe_op(self.op(n)),
                "x".join(map(str, self.shape(n))),
                f"{self.macs(n):,}",
                f"{self.params(n):,}",
            )
            for n in self.order()
        ]
        total = (
            "total",
            f"{len(self.layers())} layers",
            "",
            f"{self.total_macs:,}",
            f"{self.total_params:,}",
        )
        widths = [max(len(row[i]) for row in [header, *rows, total]) for i in range(5)]

        def line(row: Sequence[str]) -> str:
            cells = [
                c.ljust(w) if i < 3 else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            ]
            return "  ".join(cells).rstrip()

        rule = line(["-" * w for w in widths])
        body = [line(header), rule, *map(line, rows), rule, line(total)]
        return "\n".join([f"Network {self._name!r}", *body])

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able description (lists, str, int, bool, None only); weights and meta are
        not included. :meth:`from_dict` rebuilds the network from it."""
        nodes = [
            {
                "name": n,
                "op": type(self.op(n)).__name__,
                "attrs": _jsonable(asdict(self.op(n))),  # type: ignore[call-overload]
                "inputs": self.inputs(n),
                "shape": list(self.shape(n)),
                "macs": self.macs(n),
                "params": self.params(n),
            }
            for n in self.order()
        ]
        return {
            "name": self._name,
            "inputs": self.input_names,
            "outputs": self.output_names,
            "total_macs": self.total_macs,
            "total_params": self.total_params,
            "nodes": nodes,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Network:
        """Rebuild a network from :meth:`to_dict` output (derived fields are recomputed)."""
        network = cls(data["name"])
        for node in data["nodes"]:
            if node["op"] not in OPS:
                raise ValueError(f"node {node['name']!r}: unknown op {node['op']!r}")
            network.add(node["name"], OPS[node["op"]](**node["attrs"]), node["inputs"])
        return network


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    return value


def _describe_op(op: Op) -> str:
    """Class name plus non-default attributes, channel counts left out (the shapes show
    them): ``Conv2d kernel=3x3 stride=2x2 padding=1,1,1,1 activation=relu``."""
    if isinstance(op, HostOp):
        return f"HostOp {op.op_type} (on the host)"
    parts = [type(op).__name__]
    for f in fields(op):  # type: ignore[arg-type]
        value = getattr(op, f.name)
        if f.name in ("in_channels", "out_channels", "in_features", "out_features", "shape"):
            continue
        if f.default is not MISSING and value == f.default:
            continue
        if isinstance(value, tuple):
            value = ("x" if len(value) == 2 else ",").join(map(str, value))
        parts.append(f"{f.name}={value}")
    return " ".join(parts)


def _describe_array(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"an ndarray of dtype {value.dtype}"
    return f"{type(value).__name__} {value!r}"


# ---------------------------------------------------------------------------------------
# Passes


def _compose(first: str | None, second: str) -> str:
    """The single activation equal to ``second(first(x))``: relu6 absorbs relu both ways."""
    return "relu6" if "relu6" in (first, second) else "relu"


def fuse_activations(network: Network) -> Network:
    """Return a new network with standalone activations folded into their producers.

    An :class:`Activation` node is folded when its producer (after earlier folds) is a
    :class:`Conv2d`, :class:`ConvTranspose2d`, :class:`Linear` or :class:`Add` whose output
    it is the only consumer of, and the activation node has no metadata. The producer keeps
    its name, weights and metadata; its ``activation`` becomes the composition of the two
    (``relu`` then ``relu6`` or the reverse is ``relu6``; a repeated one is itself), so
    chains fold too.
    Consumers of the folded node read the producer instead. Everything else is copied
    unchanged; ``network`` is not modified.
    """
    alias: dict[str, str] = {}  # folded activation node -> producer that absorbed it
    activation: dict[str, str] = {}  # producer -> its activation after folding
    for name in network.order():
        op = network.op(name)
        if not isinstance(op, Activation) or network.meta(name):
            continue
        (src,) = network.inputs(name)
        target = alias.get(src, src)
        producer = network.op(target)
        if isinstance(producer, (Conv2d, ConvTranspose2d, Linear, Add)) and network.consumers(
            src
        ) == [name]:
            activation[target] = _compose(activation.get(target, producer.activation), op.kind)
            alias[name] = target

    fused = Network(network.name)
    for name in network.order():
        if name in alias:
            continue
        op = network.op(name)
        if name in activation:
            op = replace(op, activation=activation[name])  # type: ignore[type-var]
        fused.add(name, op, [alias.get(src, src) for src in network.inputs(name)])
        fused._node(name)["weights"] = network.weights(name)
        fused.meta(name).update(network.meta(name))
    return fused


def channel_affine(channels: int, activation: str | None = None) -> Conv2d:
    """The per-channel affine ``y[c] = a[c] * x[c] + b[c]`` (a standalone, pre-activation
    BatchNormalization; a Caffe scale layer) as the op the accelerator runs it with: a
    depthwise 1x1 :class:`Conv2d` (``groups == in_channels == out_channels``, no padding,
    stride 1) whose weights ``(C, 1, 1, 1)`` are the scales ``a`` and whose bias is the
    shifts ``b``. Golden, quantisation, compiler, model and RTL are those of any depthwise
    convolution, so the affine is exact wherever they are; an ``activation`` (ReLU of a
    BN-ReLU pair) is fused as on any conv. Set its parameters with
    ``network.set_weights(name, a.reshape(C, 1, 1, 1), b)``.
    """
    return Conv2d(channels, channels, (1, 1), groups=channels, bias=True, activation=activation)
