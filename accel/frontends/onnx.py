"""ONNX import: float models to a :class:`~accel.graph.Network`, int8 models to a
:class:`~accel.quantized.QuantizedNetwork`.

:func:`load` prepares the model (:mod:`accel.frontends.prepare`: a default-domain opset older
than 11 is upgraded with ``onnx.version_converter``), then walks the graph once, in its
(topological) node order, with one handler per ONNX op (:data:`HANDLERS`):

* a node whose inputs are all constants (initializers, Constant nodes, values folded before
  it, the Shape of a tensor whose shape is static) is evaluated with ``onnx.reference`` and
  becomes a constant: Shape / Gather / Concat / ConstantOfShape / Cast ... chains disappear;
* an op with a handler becomes accelerator ops (Conv2d, ConvTranspose2d, Linear, pools, Add,
  Mul (one shape, or a per-channel ``(N, C, 1, 1)`` broadcast), Pointwise activations such
  as Sigmoid and GELU, the layout ops Upsample (nearest Resize), ChannelSlice (channel Slice /
  Split), DepthToSpace (DCR) and PixelShuffle (DepthToSpace CRD), SpaceToDepth, the
  channel shuffle, ...), its attributes mapped exactly; a Reshape - Transpose - Reshape chain
  that is a channel shuffle or a depth to space (:data:`_LAYOUT_CHAINS`) becomes that one op;
  1-D ``(N, C, L)`` tensors run as 2-D with ``H = 1`` and ``(N, F)`` tensors as vectors;
* an op without an accelerator mapping (no handler, or a form the handler does not map:
  Softmax, a Mul of a constant or of other broadcast shapes, a reflect Pad, a quantised
  ConvTranspose, dilated MaxPool, a broadcasting Add, a Reshape that is not a flatten, ...)
  becomes an :class:`accel.graph.HostOp` (:func:`accel.host.host_op`), run on the host with ONNX's
  reference implementation;
  ``load(..., host=False)`` rejects it instead, naming the node and the op.

Every attribute a handler does not implement exactly raises ``ValueError("node 'name'
(OpType): ...")`` naming the attribute and the value, or sends the node to the host:
nothing is approximated. ``docs/onnx.md`` lists what runs where and how ONNX quantisation
parameters map to our requantisation.

Quantised models (any QuantizeLinear, DequantizeLinear or QLinear* node makes the result a
:class:`~accel.quantized.QuantizedNetwork`), in either form:

* **QDQ**: ``DequantizeLinear`` of int8 initializers gives int8 weights (per-tensor or per
  output channel, zero point 0) and int32 biases; the float ops between
  ``DequantizeLinear`` and ``QuantizeLinear`` of activations become int8 layers whose output
  quantisation is that of the ``QuantizeLinear`` after them (after a fused Relu/Clip); a
  Pointwise activation's table maps its input's quantisation to that output quantisation.
* **QOperator**: QLinearConv, QLinearMatMul, the ``com.microsoft`` QGemm, QLinearAdd, QLinearMul,
  QLinearAveragePool, QLinearGlobalAveragePool, QLinearSigmoid and QLinearLeakyRelu, int8
  MaxPool / Flatten / Reshape / Concat, QuantizeLinear at the inputs and DequantizeLinear at
  the outputs.

uint8 tensors are converted exactly to int8 (``q - 128`` with zero point ``zp - 128``). Every
node of the result records the ONNX tensors it stands for in ``meta["onnx_tensors"]``;
:func:`tensor_map` inverts that. Input nodes record the model's static batch
(:func:`batch_size`) and the notes of the import (:func:`import_notes`), which are also
logged (logger ``accel.frontends.onnx``, level INFO).

Examples
--------
>>> from accel import executor
>>> net = load("model.onnx")  # doctest: +SKIP
>>> executor.run_network(net, {"input": x})  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import onnx
import onnx.external_data_helper
from google.protobuf.message import DecodeError
from onnx import TensorProto, helper, numpy_helper

from accel import golden, numerics
from accel import host as host_ops
from accel.files import read_bytes
from accel.frontends import prepare
from accel.frontends.prepare import MIN_OPSET
from accel.graph import (
    POINTWISE,
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
    HostOp,
    Input,
    Linear,
    MaxPool2d,
    Mul,
    Network,
    Op,
    PixelShuffle,
    Pointwise,
    PRelu,
    Shape,
    SpaceToDepth,
    Upsample,
    channel_affine,
    conv_output_size,
    fuse_activations,
)
from accel.quantized import (
    AddQuant,
    ConvQuant,
    MulQuant,
    PoolQuant,
    QuantizedNetwork,
    TableQuant,
    TensorQuant,
    avg_pool_count,
    multiplier_for,
)

__all__ = [
    "HANDLERS",
    "MICROSOFT_HANDLERS",
    "MIN_OPSET",
    "batch_size",
    "import_notes",
    "load",
    "tensor_map",
]

_LOG = logging.getLogger(__name__)
#: Ops whose int8 output must have the quantisation of their inputs.
_SHARED_QUANT = (
    MaxPool2d,
    Flatten,
    Concat,
    Activation,
    Upsample,
    ChannelSlice,
    DepthToSpace,
    PixelShuffle,
    ChannelShuffle,
    SpaceToDepth,
)
#: Ops whose output takes the input quantisation when no QuantizeLinear follows them.
_INHERIT_QUANT = (*_SHARED_QUANT, AvgPool2d, GlobalAvgPool)
#: Ops evaluated ahead of the main pass when all their inputs are constants.
_CONSTANT_FOLDABLE = ("Constant", "Identity", "QuantizeLinear", "DequantizeLinear")
_INT_TYPES = {TensorProto.INT8: np.int8, TensorProto.UINT8: np.uint8}


# ---------------------------------------------------------------------------------------
# Public API


def _one_line(error: Exception) -> str:
    """The message of a checker or parser error on one line (onnx's span several, with a
    blank line and a ``==> Context:`` line)."""
    return "; ".join(line.strip() for line in str(error).splitlines() if line.strip())


def load(
    model: str | os.PathLike[str] | onnx.ModelProto, *, host: bool = True
) -> Network | QuantizedNetwork:
    """Import an ONNX model.

    Parameters
    ----------
    model : path or onnx.ModelProto
        The model; it must pass ``onnx.checker.check_model``. A default-domain opset older
        than :data:`MIN_OPSET` is upgraded to :data:`~accel.frontends.prepare.TARGET_OPSET`
        first (a note says so). Inputs are tensors of rank 2 or more whose dimensions other
        than the leading batch ``N`` are static; ``N`` may be symbolic or a number (the
        batch, recorded: :func:`batch_size`). ``(N, C, H, W)`` becomes ``Input((C, H, W))``,
        ``(N, C, L)`` ``Input((C, 1, L))``, ``(N, F)`` ``Input((F, 1, 1))``.
    host : bool
        Ops without an accelerator mapping become :class:`~accel.graph.HostOp` nodes
        (``True``, the default) or are rejected (``False``).

    Returns
    -------
    Network or QuantizedNetwork
        A float :class:`~accel.graph.Network` with activations fused, or, if the model has any
        QuantizeLinear / DequantizeLinear / QLinear* node, a
        :class:`~accel.quantized.QuantizedNetwork` whose ``network`` holds the dequantised weights.
        Node names are the ONNX node names (the first output's name for unnamed nodes),
        made unique with a ``_1``, ``_2``, ... suffix.

    Raises
    ------
    ValueError
        For anything that is not imported exactly: ``"node 'name' (OpType): ..."`` naming
        the node, the op and the attribute or value; or an invalid model.
    TypeError
        If ``model`` is neither a path nor a ModelProto.
    """
    if not isinstance(host, bool):
        raise TypeError(f"host must be a bool, got {host!r}")
    where = "invalid ONNX model"
    label = "ONNX model"
    if isinstance(model, (str, os.PathLike)):
        path = os.fspath(model)
        where = f"{path}: invalid ONNX model"
        label = path
        data = read_bytes(path, what="ONNX model")
        try:
            model = onnx.load_model_from_string(data)
        except DecodeError as exc:
            raise ValueError(
                f"{path}: not an ONNX model, or a truncated one ({_one_line(exc)})"
            ) from None
        try:
            onnx.external_data_helper.load_external_data_for_model(
                model, os.path.dirname(os.path.abspath(path))
            )
        except (OSError, ValueError, onnx.checker.ValidationError) as exc:
            raise ValueError(f"{path}: cannot read its external data: {_one_line(exc)}") from None
    elif not isinstance(model, onnx.ModelProto):
        raise TypeError(f"model must be a path or an onnx.ModelProto, got {type(model).__name__}")
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        raise ValueError(f"{where}: {_one_line(exc)}") from None
    except UnicodeDecodeError as exc:  # a damaged string field
        raise ValueError(f"{where}: a name or string is not UTF-8 ({exc.reason})") from None
    model, note = prepare.upgrade(model, label)
    notes = [note] if note else []
    return _Importer(model, host=host, notes=notes).run()


def tensor_map(network: Network | QuantizedNetwork) -> dict[str, str]:
    """ONNX tensor name -> name of the node whose output holds it (from ``meta``).

    Aliases (Identity, Dropout, Q/DQ pairs, fused Relu and BatchNormalization outputs) map to
    the node that computes the value, so every graph output can be found.
    """
    network = getattr(network, "network", network)
    return {
        tensor: name
        for name in network.order()
        for tensor in network.meta(name).get("onnx_tensors", ())
    }


def _first_input_meta(network: Network | QuantizedNetwork) -> dict[str, Any]:
    network = getattr(network, "network", network)
    names = network.input_names
    return network.meta(names[0]) if names else {}


def batch_size(network: Network | QuantizedNetwork) -> int | None:
    """The static batch ``N`` of the imported model's inputs, or ``None`` when it is symbolic
    (or the network was not imported from ONNX). The network itself describes one image; a
    caller honours ``N`` by running ``N`` images."""
    return _first_input_meta(network).get("batch")


def import_notes(network: Network | QuantizedNetwork) -> list[str]:
    """What the import did that a user should know, one line each: an opset upgrade, the
    static batch, the ops sent to the host (also logged at INFO by ``accel.frontends.onnx``)."""
    return list(_first_input_meta(network).get("onnx_notes", ()))


# ---------------------------------------------------------------------------------------
# Nodes and their attributes


class _NodeError(ValueError):
    """A ValueError whose message already names the node."""


class _Unmapped(_NodeError):
    """The op, or this form of it, has no accelerator mapping: it runs on the host unless
    ``load(..., host=False)``, which raises this error."""


def _attribute(attr: onnx.AttributeProto) -> Any:
    value = helper.get_attribute_value(attr)
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, TensorProto):
        return numpy_helper.to_array(value)
    return value


class _Node:
    """An ONNX node with its attributes decoded and an error helper."""

    def __init__(self, proto: onnx.NodeProto) -> None:
        self.proto = proto
        self.op_type = proto.op_type
        self.label = proto.name or proto.output[0]
        self.inputs = list(proto.input)
        self.outputs = list(proto.output)
        self._attrs = {a.name: _attribute(a) for a in proto.attribute}

    def error(self, message: str) -> _NodeError:
        return _NodeError(f"node {self.label!r} ({self.op_type}): {message}")

    def attrs(self, **defaults: Any) -> dict[str, Any]:
        """The attributes, with ``defaults`` for the missing ones; any other attribute is
        rejected."""
        for key, value in self._attrs.items():
            if key not in defaults:
                raise self.error(f"attribute {key}={_show(value)} is not supported")
        return {key: self._attrs.get(key, default) for key, default in defaults.items()}

    def bad(self, key: str, value: Any, why: str) -> _NodeError:
        return self.error(f"attribute {key}={_show(value)} is not supported: {why}")

    def unmapped(self, message: str) -> _Unmapped:
        return _Unmapped(f"node {self.label!r} ({self.op_type}): {message}")

    def unmapped_attr(self, key: str, value: Any, why: str) -> _Unmapped:
        return self.unmapped(f"attribute {key}={_show(value)} is not supported: {why}")

    def has_input(self, index: int) -> bool:
        return index < len(self.inputs) and self.inputs[index] != ""


def _show(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return repr(value.tolist())
    return repr(value)


@contextmanager
def _named(node: _Node) -> Iterator[None]:
    """Re-raise a ValueError of the graph layer as an error naming the ONNX node."""
    try:
        yield
    except _NodeError:
        raise
    except ValueError as exc:
        message = re.sub(r"^node '[^']*' \(\w+\): ", "", str(exc))
        raise node.error(message) from None


# ---------------------------------------------------------------------------------------
# Quantised constants and layers


@dataclass(frozen=True, eq=False)
class _QConst:
    """An integer initializer behind a DequantizeLinear: ``real = scale * (values - zp)``."""

    values: np.ndarray  # as stored (int8, uint8 or int32)
    scale: np.ndarray  # float64, size 1 or one per slice along ``axis``
    zero_point: np.ndarray  # int64, the shape of ``scale``
    axis: int | None  # None: per tensor


@dataclass(frozen=True, eq=False)
class _IntLayer:
    """Integer parameters of a Conv2d/Linear node before the tensor scales are known."""

    weight: np.ndarray  # int8, (K, ...)
    weight_scale: np.ndarray  # float64, (K,)
    bias: np.ndarray | None  # int32, (K,)
    bias_scale: np.ndarray | None  # float64, (K,), None when implied (QOperator)


def _int8_weight(
    node: _Node, q: _QConst, out_axis: int, what: str
) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 weights and their (K,) scales from an int8/uint8 quantised constant."""
    values = q.values.astype(np.int64)
    zero_point = q.zero_point
    if q.values.dtype == np.uint8:
        values, zero_point = values - 128, zero_point - 128
    elif q.values.dtype != np.int8:
        raise node.error(f"{what} has dtype {q.values.dtype}; int8 or uint8 weights are supported")
    if np.any(zero_point != 0):
        raise node.error(
            f"{what} has zero point {_show(q.zero_point)}; weights must be symmetric "
            "(int8 zero point 0, or uint8 zero point 128)"
        )
    k = q.values.shape[out_axis]
    if q.axis is None:
        scale = np.full(k, float(q.scale.reshape(-1)[0]))
    elif q.axis == out_axis:
        scale = q.scale.reshape(-1).astype(np.float64)
    else:
        raise node.error(
            f"{what} is quantised per slice along axis {q.axis}; per-channel weight scales "
            f"must be along the output-channel axis {out_axis}"
        )
    return values.astype(np.int8), scale


def _int32_bias(node: _Node, q: _QConst, k: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    """int32 bias values and their (K,) scales."""
    if q.values.dtype != np.int32:
        raise node.error(f"{what} has dtype {q.values.dtype}; a quantised bias must be int32")
    if np.any(q.zero_point != 0):
        raise node.error(f"{what} has zero point {_show(q.zero_point)}; it must be 0")
    if q.values.size != k or q.values.shape not in ((k,), (1, k)):
        raise node.error(f"{what} has shape {q.values.shape}; expected ({k},)")
    scale = q.scale.reshape(-1).astype(np.float64)
    return q.values.reshape(k), np.full(k, scale[0]) if scale.size == 1 else scale


def _int32_vector(node: _Node, value: np.ndarray, k: int, what: str) -> np.ndarray:
    """A QOperator int32 bias (scale implied: input scale * weight scale) as (K,)."""
    if value.dtype != np.int32 or value.shape not in ((k,), (1, k)):
        raise node.error(
            f"{what} has dtype {value.dtype}, shape {value.shape}; expected int32 ({k},)"
        )
    return value.reshape(k)


def _tensor_quant(node: _Node, scale: np.ndarray, zero_point: np.ndarray, what: str) -> TensorQuant:
    """Per-tensor int8 quantisation; uint8 becomes int8 with the zero point minus 128."""
    if scale.size != 1 or zero_point.size != 1:
        raise node.error(
            f"{what} scale shape {scale.shape} / zero point shape {zero_point.shape}: "
            "activations must be quantised per tensor"
        )
    value = float(scale.reshape(-1)[0])
    if not (math.isfinite(value) and value > 0):
        raise node.error(f"{what} scale {value!r} must be finite and > 0")
    zp = int(zero_point.reshape(-1)[0])
    if zero_point.dtype == np.uint8:
        zp -= 128
    elif zero_point.dtype != np.int8:
        raise node.error(
            f"{what} zero point has dtype {zero_point.dtype}; int8 and uint8 are supported"
        )
    return TensorQuant(value, zp)


# ---------------------------------------------------------------------------------------
# The importer


_QUANT_OPS = ("QuantizeLinear", "DequantizeLinear")
#: Largest host op output per image (elements); more is a damaged model, not a network.
_MAX_ELEMENTS = 2**31


def _graph_shape(dims: tuple[int, ...]) -> Shape:
    """How the graph stores an ONNX tensor of shape ``(N, *dims)`` (the same elements in the
    same order, without the batch): ``()`` as ``(1,)``, ``(F,)`` as a vector, ``(C, L)`` as
    ``(C, 1, L)``, ``(C, H, W)`` as it is, higher ranks as ``(d1, d2 * ... * d(k-1), dk)``."""
    if len(dims) == 0:
        return (1,)
    if len(dims) == 1:
        return (dims[0],)
    if len(dims) == 2:
        return (dims[0], 1, dims[1])
    if len(dims) == 3:
        return tuple(dims)
    return (dims[0], math.prod(dims[1:-1]), dims[-1])


def _input_shape(dims: tuple[int, ...]) -> Shape:
    """The ``Input`` shape (always 3-D) of an ONNX input of shape ``(N, *dims)``."""
    shape = _graph_shape(dims)
    return (*shape, 1, 1)[:3] if len(shape) < 3 else shape


def _initializer(init: onnx.TensorProto) -> np.ndarray:
    try:
        return numpy_helper.to_array(init)
    except (KeyError, TypeError, ValueError) as exc:
        try:
            kind = TensorProto.DataType.Name(init.data_type)
        except ValueError:
            kind = "unknown"
        raise ValueError(
            f"initializer {init.name!r}: cannot be read (data type {init.data_type}, {kind}: "
            f"{exc!r})"
        ) from None


class _Importer:
    def __init__(
        self, model: onnx.ModelProto, host: bool = True, notes: Sequence[str] = ()
    ) -> None:
        graph = model.graph
        self.host = host
        self.notes = list(notes)
        self.opsets = [o for o in model.opset_import if o.domain in ("", "ai.onnx")]
        self.protos = list(graph.node)
        self.net = Network(graph.name or "onnx")
        self.consts: dict[str, np.ndarray] = {
            init.name: _initializer(init) for init in graph.initializer
        }
        self.qconsts: dict[str, _QConst] = {}
        self.nodes_of: dict[str, str] = {}  # ONNX activation tensor -> network node
        self.dims: dict[str, tuple[int, ...]] = {}  # ONNX activation tensor -> its shape sans N
        self.op_types: dict[str, str] = {}  # network node -> ONNX op type
        self.quant: dict[str, TensorQuant] = {}  # network node -> its output quantisation
        self.claims: list[tuple[str, TensorQuant, _Node, str]] = []
        self.int_layers: dict[str, _IntLayer] = {}
        self.quantized = False
        self.quantized_model = any(
            p.op_type in _QUANT_OPS or p.op_type.startswith("QLinear") or p.op_type == "QGemm"
            for p in self.protos
        )
        self.absorbed: set[int] = set()  # indices of nodes folded into an earlier one
        self.graph_outputs = [o.name for o in graph.output]
        self.consumers: dict[str, list[int]] = {}
        for index, proto in enumerate(self.protos):
            for name in proto.input:
                self.consumers.setdefault(name, []).append(index)
        self.batch: int | str | None = None  # static N, or the name of a symbolic one
        for value_info in graph.input:
            if value_info.name not in self.consts:
                self._add_input(value_info)

    # -- graph inputs and outputs --------------------------------------------------------

    def _add_input(self, value_info: onnx.ValueInfoProto) -> None:
        label = value_info.name
        tensor_type = value_info.type.tensor_type
        if tensor_type.elem_type not in (
            TensorProto.FLOAT,
            TensorProto.DOUBLE,
            TensorProto.FLOAT16,
            TensorProto.INT8,
        ):
            dtype = TensorProto.DataType.Name(tensor_type.elem_type)
            raise ValueError(
                f"input {label!r}: element type {dtype} is not supported "
                "(float, double, float16 or int8)"
            )
        dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor_type.shape.dim]
        params = [d.dim_param for d in tensor_type.shape.dim]
        if len(dims) < 2 or any(d is None or d < 1 for d in dims[1:]):
            shown = ["?" if d is None else d for d in dims]
            raise ValueError(
                f"input {label!r}: shape {shown} is not supported; expected (N, C, H, W), "
                "(N, C, L) or (N, F) (any rank >= 2) with every dimension but the batch N "
                "static"
            )
        batch: int | str = dims[0] if dims[0] else (params[0] or "N")
        static = isinstance(batch, int) or isinstance(self.batch, int)
        if static and self.batch is not None and batch != self.batch:
            raise ValueError(
                f"input {label!r}: batch {batch!r} differs from the batch {self.batch!r} "
                "of the inputs before it"
            )
        if self.batch is None or isinstance(batch, int):
            self.batch = batch
        name = self.unique(label)
        self.net.add(name, Input(_input_shape(tuple(dims[1:]))))
        self.nodes_of[label] = name
        self.dims[label] = tuple(dims[1:])
        self.op_types[name] = "input"

    def unique(self, base: str) -> str:
        name, suffix = base, 0
        while name in self.net:
            suffix += 1
            name = f"{base}_{suffix}"
        return name

    # -- tensors --------------------------------------------------------------------------

    def used(self, tensor: str) -> bool:
        return tensor in self.consumers or tensor in self.graph_outputs

    def activation(self, node: _Node, index: int) -> str:
        """The network node computing input ``index`` (not a constant)."""
        if not node.has_input(index):
            raise node.error(f"input {index} is missing")
        tensor = node.inputs[index]
        if tensor in self.consts:
            raise node.error(
                f"input {index} ({tensor!r}) is a constant; expected a computed tensor"
            )
        if tensor not in self.nodes_of:
            raise node.error(f"input {index} ({tensor!r}) is not produced by an imported node")
        return self.nodes_of[tensor]

    def dims_of(self, node: _Node, index: int) -> tuple[int, ...]:
        """The ONNX shape (without the batch) of computed input ``index``."""
        self.activation(node, index)
        return self.dims[node.inputs[index]]

    def constant(self, node: _Node, index: int, what: str) -> np.ndarray:
        if not node.has_input(index):
            raise node.error(f"{what} (input {index}) is missing")
        tensor = node.inputs[index]
        if tensor not in self.consts:
            raise node.error(
                f"{what} (input {index}, {tensor!r}) must be a constant "
                "(an initializer or a Constant node)"
            )
        return self.consts[tensor]

    def weight(self, node: _Node, index: int, what: str) -> tuple[np.ndarray, _QConst | None]:
        """A constant as float64, with its integer form if it is a quantised constant."""
        if node.has_input(index) and node.inputs[index] not in self.consts:
            raise node.unmapped(
                f"{what} (input {index}, {node.inputs[index]!r}) must be a constant "
                "(an initializer or a Constant node)"
            )
        value = self.constant(node, index, what)
        if value.dtype.kind != "f":
            raise node.error(f"{what} has dtype {value.dtype}; expected float")
        return value.astype(np.float64), self.qconsts.get(node.inputs[index])

    def scale_zero_point(self, node: _Node, index: int, what: str) -> TensorQuant:
        """The per-tensor quantisation given by inputs ``index`` (scale), ``index + 1``
        (zero point, required) of a QLinear* node."""
        scale = self.constant(node, index, f"{what} scale")
        zero_point = self.constant(node, index + 1, f"{what} zero point")
        return _tensor_quant(node, scale, zero_point, what)

    def define(self, tensor: str, name: str, dims: tuple[int, ...]) -> None:
        """ONNX ``tensor``, of shape ``(N, *dims)``, is the output of network node ``name``."""
        dims = tuple(int(d) for d in dims)
        if math.prod(dims) != math.prod(self.net.shape(name)):
            raise AssertionError(f"tensor {tensor!r} {dims} is not node {name!r}")
        self.nodes_of[tensor] = name
        self.dims[tensor] = dims

    def unused_outputs(self, node: _Node, first: int = 1, unmapped: bool = False) -> None:
        for index, tensor in enumerate(node.outputs[first:], first):
            if tensor and self.used(tensor):
                error = node.unmapped if unmapped else node.error
                raise error(f"output {index} ({tensor!r}) is used; it is not supported")

    def sole_consumer(self, node: _Node, op_type: str, operand: int | None = None) -> int | None:
        """Index of the only node reading output 0, if it is an ``op_type`` (reading it as
        input ``operand``, if given) and the output is not a graph output."""
        tensor = node.outputs[0]
        readers = self.consumers.get(tensor, [])
        if tensor in self.graph_outputs or len(readers) != 1:
            return None
        (index,) = readers
        proto = self.protos[index]
        if proto.op_type != op_type or proto.domain not in ("", "ai.onnx"):
            return None
        if operand is not None and list(proto.input).index(tensor) != operand:
            return None
        return index

    # -- network nodes and quantisation ---------------------------------------------------

    def add(self, node: _Node, make_op: Callable[[], Op], inputs: list[str]) -> str:
        """Add a network node named after the ONNX node; graph errors name the ONNX node."""
        name = self.unique(node.label)
        with _named(node):
            self.net.add(name, make_op(), inputs)
        self.op_types[name] = node.op_type
        return name

    def alias(self, node: _Node, index: int, dims: tuple[int, ...]) -> None:
        """Output 0 of ``node`` is input ``index`` seen with shape ``(N, *dims)``: a reshape
        that changes nothing the graph stores, or an op that is the identity."""
        x = self.activation(node, index)
        self.define(node.outputs[0], x, dims)

    def set_quant(self, name: str, quant: TensorQuant, node: _Node) -> None:
        old = self.quant.get(name)
        if old is not None and old != quant:
            raise node.error(
                f"requantises a tensor quantised as {old} to {quant}; a QuantizeLinear of a "
                "dequantised tensor must keep its scale and zero point"
            )
        self.quant[name] = quant

    def claim(self, name: str, quant: TensorQuant, node: _Node, what: str) -> None:
        """Node ``node`` reads int8 tensor ``name`` with quantisation ``quant``."""
        self.claims.append((name, quant, node, what))

    # -- constant folding and the host ----------------------------------------------------

    def foldable(self, proto: onnx.NodeProto) -> bool:
        """A default-domain node whose inputs are all known constants, or the Shape / Size of
        a computed tensor whose shape (batch included) is static."""
        if proto.domain not in ("", "ai.onnx") or proto.op_type in prepare.NEVER_FOLD:
            return False
        inputs = [name for name in proto.input if name]
        if proto.op_type in ("Shape", "Size") and inputs and inputs[0] in self.nodes_of:
            return isinstance(self.batch, int)
        return bool(inputs) and all(name in self.consts for name in inputs)

    def fold(self, node: _Node) -> None:
        proto = node.proto
        if proto.op_type in ("Shape", "Size") and node.inputs[0] in self.nodes_of:
            full = np.array([self.batch, *self.dims[node.inputs[0]]], dtype=np.int64)
            if proto.op_type == "Size":
                self.consts[node.outputs[0]] = np.array(full.prod(), dtype=np.int64)
                return
            attrs = node.attrs(start=0, end=None)
            rank = len(full)
            start, end = attrs["start"], rank if attrs["end"] is None else attrs["end"]
            start, end = (min(max(v + rank if v < 0 else v, 0), rank) for v in (start, end))
            self.consts[node.outputs[0]] = full[start:end]
            return
        self.consts.update(prepare.evaluate(proto, self.consts, self.opsets))

    def host_node(self, node: _Node, reason: str) -> None:
        """Run ``node`` on the host: one :class:`HostOp` per used output."""
        proto = node.proto
        if proto.domain not in ("", "ai.onnx"):
            raise node.error(
                f"op {proto.op_type!r} (domain {proto.domain!r}) cannot run on the host: the "
                "host runs default-domain ONNX ops"
            )
        if any(
            a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
            for a in proto.attribute
        ):
            raise node.error("ops with subgraphs (control flow) are not supported")
        if proto.op_type in ("Shape", "Size"):
            raise node.error(
                f"the shape of {node.inputs[0]!r} is not static (batch {self.batch!r}): shape "
                "computations need a static batch; export the model with a fixed batch size"
            )
        inputs: dict[str, str] = {}  # ONNX tensor -> network node, computed inputs in order
        rename: dict[str, str] = {}
        constants: dict[str, np.ndarray] = {}
        for index, tensor in enumerate(node.inputs):
            if not tensor:
                continue
            if tensor in self.consts:
                value = self.consts[tensor]
                constants[tensor] = value.astype(np.float32) if value.dtype == np.float64 else value
                continue
            src = self.activation(node, index)
            twin = next((t for t, n in inputs.items() if n == src and t != tensor), None)
            if twin is not None and self.dims[twin] == self.dims[tensor]:
                rename[tensor] = twin
            elif twin is not None:
                raise node.error(
                    f"inputs {twin!r} and {tensor!r} are one tensor seen with two shapes"
                )
            else:
                inputs[tensor] = src
        if not inputs:
            raise node.error("has no computed input (nothing for the host to run it on)")
        if rename:
            proto = onnx.NodeProto()
            proto.CopyFrom(node.proto)
            proto.input[:] = [rename.get(t, t) for t in node.proto.input]
        opsets = self.opsets
        shapes = {t: (self.batch, *self.dims[t]) for t in inputs}
        used = [i for i, t in enumerate(node.outputs) if t and (self.used(t) or i == 0)]
        for index in used:
            tensor = node.outputs[index]
            elem, dims = prepare.infer_output(proto, shapes, constants, opsets, index)
            if elem not in (TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.FLOAT16):
                raise node.error(
                    f"output {index} ({tensor!r}) has element type "
                    f"{TensorProto.DataType.Name(elem)}; host ops compute float tensors"
                )
            if not dims or dims[0] != self.batch:
                raise node.error(
                    f"output {index} ({tensor!r}) has shape {list(dims)}: its leading dimension "
                    f"is not the batch {self.batch!r} (an op that moves the batch cannot run "
                    "between accelerator segments)"
                )
            if isinstance(self.batch, int) and self.batch > 1:  # host ops run on any batch
                one = {t: (1, *self.dims[t]) for t in inputs}
                try:
                    _, single = prepare.infer_output(proto, one, constants, opsets, index)
                except ValueError:
                    single = None
                if single is None or tuple(single) != (1, *dims[1:]):
                    raise node.error(
                        f"output {index} ({tensor!r}) is {list(dims)} for the batch of "
                        f"{self.batch} but {list(single) if single else 'none'} for one image: "
                        "the op depends on the number of images (a constant input spans or "
                        "fixes the batch axis), and host ops run image by image"
                    )
            out = tuple(int(d) for d in dims[1:])
            if not all(out):
                raise node.error(f"output {index} ({tensor!r}) is empty: shape {list(dims)}")
            if math.prod(out) > _MAX_ELEMENTS:
                raise node.error(
                    f"output {index} ({tensor!r}) has shape {list(dims)}: over 2**31 elements "
                    "per image"
                )
            with _named(node):
                op = host_ops.host_op(
                    proto,
                    [(t, self.dims[t]) for t in inputs],
                    constants,
                    out,
                    _graph_shape(out),
                    opsets,
                    index=index,
                )
            name = self.add(node, lambda op=op: op, list(inputs.values()))
            self.net.meta(name)["host_reason"] = reason
            self.define(tensor, name, out)

    # -- the passes ------------------------------------------------------------------------

    def run(self) -> Network | QuantizedNetwork:
        for index, proto in enumerate(self.protos):  # constants first: no order dependence
            default_domain = proto.domain in ("", "ai.onnx")
            if (
                default_domain
                and proto.op_type in _CONSTANT_FOLDABLE
                and all(not name or name in self.consts for name in proto.input)
            ):
                HANDLERS[proto.op_type](self, _Node(proto))
                self.absorbed.add(index)
            elif self.foldable(proto) and not (set(proto.input) & set(self.nodes_of)):
                self.fold(_Node(proto))
                self.absorbed.add(index)
        for index, proto in enumerate(self.protos):
            if index in self.absorbed:
                continue
            node = _Node(proto)
            if self.foldable(proto):
                self.fold(node)
                continue
            handler = HANDLERS.get(proto.op_type) if proto.domain in ("", "ai.onnx") else None
            if proto.domain == "com.microsoft":
                handler = MICROSOFT_HANDLERS.get(proto.op_type)
            if handler is None:
                domain = f" (domain {proto.domain!r})" if proto.domain else ""
                if self.host and not domain:
                    self.host_node(node, f"no accelerator mapping for {proto.op_type}")
                    continue
                raise node.error(
                    f"op {proto.op_type!r}{domain} is not supported; supported ops: "
                    f"{', '.join(sorted(HANDLERS))}, com.microsoft "
                    f"{', '.join(sorted(MICROSOFT_HANDLERS))}"
                )
            size, absorbed = len(self.net), set(self.absorbed)
            try:
                handler(self, node)
            except _Unmapped as exc:
                if not self.host or len(self.net) != size or proto.domain not in ("", "ai.onnx"):
                    raise
                self.absorbed = absorbed
                self.host_node(node, re.sub(r"^node '[^']*' \(\w+\): ", "", str(exc)))
        for tensor in self.graph_outputs:
            if tensor not in self.nodes_of:
                raise ValueError(f"graph output {tensor!r} is not computed by an imported node")
        return self.finish()

    def finish(self) -> Network | QuantizedNetwork:
        fused = fuse_activations(self.net)
        target: dict[str, str] = {}  # pre-fusion node -> fused node holding its value
        for name in self.net.order():
            target[name] = name if name in fused else target[self.net.inputs(name)[0]]
        tensors: dict[str, list[str]] = {}
        for tensor, name in self.nodes_of.items():
            tensors.setdefault(target[name], []).append(tensor)
        for name, names in tensors.items():
            fused.meta(name)["onnx_tensors"] = names
        batch = self.batch if isinstance(self.batch, int) else None
        if batch is not None and batch > 1:
            self.notes.append(f"static batch N={batch}: the network describes one image of it")
        hosted: dict[str, int] = {}
        for name in fused.order():
            op = fused.op(name)
            if isinstance(op, HostOp):
                hosted[op.op_type] = hosted.get(op.op_type, 0) + 1
        if hosted:
            counts = ", ".join(f"{op_type} x{n}" for op_type, n in sorted(hosted.items()))
            self.notes.append(f"{sum(hosted.values())} ops run on the host: {counts}")
        for note in self.notes:
            _LOG.info("%s: %s", fused.name, note)
        for name in fused.input_names:
            fused.meta(name).update(batch=batch, onnx_notes=list(self.notes))
        if not self.quantized:
            return fused
        return self.quantize(fused, target)

    def quantize(self, fused: Network, target: dict[str, str]) -> QuantizedNetwork:
        quant: dict[str, TensorQuant] = {}
        for name in self.net.order():  # a producer before the activations folded into it
            if name in self.quant:
                tgt = target[name]
                if quant.get(tgt, self.quant[name]) != self.quant[name]:
                    raise _NodeError(
                        f"node {tgt!r} ({self.op_types[tgt]}): output quantised as {quant[tgt]} "
                        f"before its activation {name!r} and as {self.quant[name]} after it; "
                        "requantising twice is not supported"
                    )
                quant[tgt] = self.quant[name]
        claims = {}
        for name, q, _, _ in self.claims:
            claims.setdefault(target[name], q)
        tensors: dict[str, TensorQuant] = {}
        for name in fused.order():
            op = fused.op(name)
            label = f"node {name!r} ({self.op_types[name]})"
            ins = [tensors[src] for src in fused.inputs(name)]
            t = quant.get(name)
            if t is None and isinstance(op, Input):
                t = claims.get(name)
            if t is None and isinstance(op, _INHERIT_QUANT) and len(set(ins)) == 1:
                t = ins[0]
            if t is None:
                raise _NodeError(
                    f"{label}: output is not quantised (no QuantizeLinear after it and no "
                    "QLinear output scale)"
                )
            if isinstance(op, _SHARED_QUANT) and any(i != t for i in ins):
                raise _NodeError(
                    f"{label}: output quantisation {t} differs from its input quantisation "
                    f"{ins}; int8 {type(op).__name__} keeps the scale and zero point of its "
                    "inputs"
                )
            tensors[name] = t
        for name, q, node, what in self.claims:
            actual = tensors[target[name]]
            if actual != q:
                raise node.error(
                    f"{what} reads tensor {name!r} as {q}, but it is quantised as {actual}"
                )
        layers: dict[str, ConvQuant | PoolQuant | AddQuant | MulQuant | TableQuant] = {}
        for name in fused.layers():
            op = fused.op(name)
            label = f"node {name!r} ({self.op_types[name]})"
            t_ins = [tensors[src] for src in fused.inputs(name)]
            t_out = tensors[name]
            try:
                if isinstance(op, (Conv2d, ConvTranspose2d, Linear)):
                    layers[name] = self._conv_quant(label, name, op, t_ins[0], t_out)
                elif isinstance(op, (AvgPool2d, GlobalAvgPool)):
                    count = avg_pool_count(fused, name)
                    real = t_ins[0].scale / (t_out.scale * count)
                    layers[name] = PoolQuant(*multiplier_for(real, "pool rescale"))
                elif isinstance(op, Add):
                    layers[name] = AddQuant.for_scales(t_ins, t_out, op.activation)
                elif isinstance(op, Mul):
                    layers[name] = MulQuant.for_scales(t_ins, t_out)
                elif isinstance(op, Pointwise):
                    layers[name] = TableQuant.for_function(op, t_ins[0], t_out)
            except _NodeError:
                raise
            except ValueError as exc:
                message = re.sub(r"^node '[^']*' \(\w+\): ", "", str(exc))
                raise _NodeError(f"{label}: {message}") from None
        return QuantizedNetwork(fused, tensors, layers)

    def _conv_quant(
        self,
        label: str,
        name: str,
        op: Conv2d | ConvTranspose2d | Linear,
        t_in: TensorQuant,
        t_out: TensorQuant,
    ) -> ConvQuant:
        layer = self.int_layers.get(name)
        if layer is None:
            raise _NodeError(
                f"{label}: weights are float in a quantised model; expected int8 weights "
                "(a DequantizeLinear of an int8 initializer, or a QLinear op)"
            )
        k = layer.weight.shape[0]
        if layer.bias_scale is not None:
            expected = t_in.scale * layer.weight_scale
            off = np.abs(layer.bias_scale / expected - 1) > 1e-6  # float32 rounding is 6e-8
            if off.any():
                channel = int(np.argmax(off))
                raise _NodeError(
                    f"{label}: bias scale {float(layer.bias_scale[channel]):.9g} of output "
                    f"channel {channel} is not input scale * weight scale = "
                    f"{float(expected[channel]):.9g}"
                )
        bias = layer.bias if layer.bias is not None else np.zeros(k, dtype=np.int32)
        multiplier, shift = multiplier_for(
            t_in.scale * layer.weight_scale / t_out.scale, "requantisation scale"
        )
        act = numerics.activation_range(op.activation, t_out.zero_point, t_out.scale)
        return ConvQuant(
            layer.weight, bias, multiplier, shift, *act, weight_scale=layer.weight_scale
        )


# ---------------------------------------------------------------------------------------
# Window attributes (Conv, MaxPool, AveragePool)


def _pair_attr(node: _Node, key: str, value: Any, default: int, minimum: int) -> tuple[int, int]:
    if value is None:
        return (default, default)
    if len(value) != 2 or any(v < minimum for v in value):
        raise node.bad(key, value, f"expected 2 values >= {minimum} (2-D ops only)")
    return (int(value[0]), int(value[1]))


def _window_pads(
    node: _Node,
    attrs: dict[str, Any],
    in_hw: tuple[int, ...],
    kernel: tuple[int, int],
    stride: tuple[int, int],
    dilation: tuple[int, int],
) -> tuple[int, int, int, int]:
    """``(top, bottom, left, right)`` from ``pads`` or ``auto_pad``."""
    auto_pad, pads = attrs["auto_pad"], attrs["pads"]
    if auto_pad == "NOTSET":
        if pads is None:
            return (0, 0, 0, 0)
        if len(pads) != 4 or min(pads) < 0:
            raise node.bad("pads", pads, "expected 4 values >= 0 (2-D ops only)")
        top, left, bottom, right = pads  # ONNX: [x1_begin, x2_begin, x1_end, x2_end]
        return (top, bottom, left, right)
    if pads is not None and any(pads):
        raise node.bad("pads", pads, f"explicit pads conflict with auto_pad={auto_pad!r}")
    if auto_pad == "VALID":
        return (0, 0, 0, 0)
    if auto_pad not in ("SAME_UPPER", "SAME_LOWER"):
        raise node.bad("auto_pad", auto_pad, "expected NOTSET, VALID, SAME_UPPER or SAME_LOWER")
    result = []
    for size, k, s, d in zip(in_hw, kernel, stride, dilation, strict=True):
        total = max((-(-size // s) - 1) * s + d * (k - 1) + 1 - size, 0)
        small, large = total // 2, total - total // 2
        result += [small, large] if auto_pad == "SAME_UPPER" else [large, small]
    return tuple(result)  # type: ignore[return-value]


@dataclass(frozen=True)
class _Image:
    """The input of a window op: ``spatial`` 2 for ``(N, C, H, W)``, 1 for ``(N, C, L)``
    (stored as ``(C, 1, L)``); ``transposed`` for an ``(N, C, H, 1)`` tensor stored as
    ``(C, 1, H)`` (the same elements in the same order), whose window attributes swap their
    two axes; ``c, h, w`` the stored shape."""

    spatial: int
    transposed: bool
    c: int
    h: int
    w: int


def _image_shape(imp: _Importer, node: _Node, index: int = 0) -> _Image:
    dims = imp.dims_of(node, index)
    rank = len(dims) + 1
    shown = ", ".join(map(str, dims))
    if rank >= 5:
        raise node.error(
            f"input (N, {shown}) has rank {rank}: {rank - 2}-D {node.op_type} is not supported; "
            "only 1-D (N, C, L) and 2-D (N, C, H, W) inputs are"
        )
    if rank < 3:
        raise node.error(f"input has shape (N, {shown}); expected (N, C, H, W) or (N, C, L)")
    c, h, w = imp.net.shape(imp.activation(node, index))
    return _Image(1 if rank == 3 else 2, rank == 4 and (c, h, w) != dims, c, h, w)


def _as_2d(node: _Node, attrs: dict[str, Any], image: _Image) -> dict[str, Any]:
    """The window attributes of a 1-D op as those of the 2-D op over ``(C, 1, L)``: kernel
    ``[k] -> [1, k]``, strides and dilations ``[s] -> [1, s]``, pads ``[b, e] -> [0, b, 0, e]``
    (ONNX order ``[top, left, bottom, right]``); of a transposed image with both axes
    swapped."""
    attrs = dict(attrs)
    if image.spatial == 1:
        for key in ("kernel_shape", "strides", "dilations"):
            value = attrs.get(key)
            if value is not None:
                if len(value) != 1:
                    raise node.bad(key, value, "expected 1 value for a 1-D (N, C, L) input")
                attrs[key] = [1, int(value[0])]
        pads = attrs.get("pads")
        if pads is not None:
            if len(pads) != 2:
                raise node.bad(
                    "pads", pads, "expected 2 values (begin, end) for a 1-D (N, C, L) input"
                )
            attrs["pads"] = [0, int(pads[0]), 0, int(pads[1])]
    elif image.transposed:
        for key in ("kernel_shape", "strides", "dilations"):
            value = attrs.get(key)
            if value is not None:
                if len(value) != 2:
                    raise node.bad(key, value, "expected 2 values >= 1 (2-D ops only)")
                attrs[key] = [int(value[1]), int(value[0])]
        pads = attrs.get("pads")
        if pads is not None:
            if len(pads) != 4:
                raise node.bad("pads", pads, "expected 4 values >= 0 (2-D ops only)")
            attrs["pads"] = [int(pads[1]), int(pads[0]), int(pads[3]), int(pads[2])]
    return attrs


def _out_dims(imp: _Importer, name: str, image: _Image) -> tuple[int, ...]:
    """The ONNX shape of a window op's output: ``(K, P, Q)``, ``(K, Q)`` in 1-D, ``(K, Q, 1)``
    for a transposed image."""
    k, p, q = imp.net.shape(name)
    if image.spatial == 1:
        return (k, q)
    return (k, q, 1) if image.transposed else (k, p, q)


def _fits(dims: tuple[int, ...], shape: Shape) -> bool:
    """Whether a node of graph shape ``shape`` can stand for an ONNX tensor ``(N, *dims)``:
    its own layout, or ``(C, H, 1)`` stored as ``(C, 1, H)``."""
    if len(dims) == 3 and dims[2] == 1 and shape == (dims[0], 1, dims[1]):
        return True
    return shape == _graph_shape(dims)


# ---------------------------------------------------------------------------------------
# Handlers: float ops (also the float core of QDQ models)


def _build_conv(
    imp: _Importer, node: _Node, weight: np.ndarray, bias: np.ndarray | None
) -> tuple[str, tuple[int, ...]]:
    """A Conv2d of input 0; 1-D convolutions as 2-D over ``(C, 1, L)``. Returns the node and
    the ONNX shape of its output."""
    attrs = node.attrs(
        auto_pad="NOTSET", dilations=None, group=1, kernel_shape=None, pads=None, strides=None
    )
    image = _image_shape(imp, node)
    spatial, c, h, w = image.spatial, image.c, image.h, image.w
    x = imp.activation(node, 0)
    if weight.ndim != spatial + 2:
        layout = "(N, C, H, W)" if spatial == 2 else "(N, C, L)"
        raise node.error(
            f"weight has shape {weight.shape}; a {spatial}-D convolution of an {layout} input "
            f"needs a {spatial + 2}-D weight"
        )
    k = weight.shape[0]
    if attrs["kernel_shape"] is not None and list(attrs["kernel_shape"]) != list(weight.shape[2:]):
        raise node.bad("kernel_shape", attrs["kernel_shape"], f"weight shape is {weight.shape}")
    attrs = _as_2d(node, attrs, image)
    if image.transposed:
        weight = weight.transpose(0, 1, 3, 2)
    weight = np.ascontiguousarray(weight.reshape(k, weight.shape[1], -1, weight.shape[-1]))
    kernel = weight.shape[2:]
    stride = _pair_attr(node, "strides", attrs["strides"], 1, 1)
    dilation = _pair_attr(node, "dilations", attrs["dilations"], 1, 1)
    padding = _window_pads(node, attrs, (h, w), kernel, stride, dilation)
    if bias is not None and bias.shape != (k,):
        raise node.error(f"bias has shape {bias.shape}; expected ({k},)")
    name = imp.add(
        node,
        lambda: Conv2d(
            c, k, kernel, stride, padding, dilation, attrs["group"], bias=bias is not None
        ),
        [x],
    )
    with _named(node):
        imp.net.set_weights(name, weight, bias)
    return name, _out_dims(imp, name, image)


def _conv(imp: _Importer, node: _Node) -> None:
    imp.activation(node, 0)
    weight, w_q = imp.weight(node, 1, "weight W")
    bias, b_q = imp.weight(node, 2, "bias B") if node.has_input(2) else (None, None)
    output = node.outputs[0]
    bn_index = imp.sole_consumer(node, "BatchNormalization", operand=0)
    if bn_index is not None:
        bn = _Node(imp.protos[bn_index])
        if w_q is not None:
            raise bn.error("cannot be folded exactly into the int8 weights of a quantised Conv")
        weight, bias = _fold_batch_norm(imp, bn, weight, bias)
        imp.absorbed.add(bn_index)
        output = bn.outputs[0]
    if w_q is None and b_q is None:
        output, weight, bias = _fold_affine(imp, output, weight, bias)
    name, dims = _build_conv(imp, node, weight, bias)
    if w_q is not None or b_q is not None:
        layer = _int_layer(node, w_q, b_q, bias, 0, weight.shape[0])
        imp.int_layers[name] = _IntLayer(
            _stored_weight(imp, name, layer.weight),
            layer.weight_scale,
            layer.bias,
            layer.bias_scale,
        )
    imp.define(output, name, dims)


# ---------------------------------------------------------------------------------------
# ConvTranspose


def _conv_transpose_2d_attrs(node: _Node, attrs: dict[str, Any], image: _Image) -> dict[str, Any]:
    """The attributes of a ConvTranspose as those of the 2-D op over the stored image:
    :func:`_as_2d` for the window attributes, and likewise ``output_padding`` and
    ``output_shape`` (``[v] -> [0 or 1, v]`` in 1-D, swapped for a transposed image)."""
    result = _as_2d(node, attrs, image)
    for key, fill in (("output_padding", 0), ("output_shape", 1)):
        value = attrs.get(key)
        if value is None:
            continue
        value = [int(v) for v in value]
        if len(value) != image.spatial:
            raise node.bad(key, value, f"expected {image.spatial} values for this input")
        if image.spatial == 1:
            value = [fill, value[0]]
        elif image.transposed:
            value = value[::-1]
        result[key] = value
    return result


def _conv_transpose_pads(
    node: _Node,
    attrs: dict[str, Any],
    in_hw: tuple[int, int],
    kernel: tuple[int, int],
    stride: tuple[int, int],
    dilation: tuple[int, int],
    output_padding: tuple[int, int],
) -> tuple[int, int, int, int]:
    """``(top, bottom, left, right)`` of a ConvTranspose from ``pads``, ``auto_pad`` or
    ``output_shape`` (ONNX's formulas: the total padding is the full output minus the
    requested one; ``SAME_UPPER`` puts the smaller half first, ``SAME_LOWER`` and an
    ``output_shape`` without ``auto_pad`` the larger)."""
    auto_pad, pads, shape = attrs["auto_pad"], attrs["pads"], attrs["output_shape"]
    if auto_pad not in ("NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER"):
        raise node.bad("auto_pad", auto_pad, "expected NOTSET, VALID, SAME_UPPER or SAME_LOWER")
    if shape is None and auto_pad in ("NOTSET", "VALID"):
        if auto_pad == "VALID" or pads is None:
            return (0, 0, 0, 0)
        if len(pads) != 4 or min(pads) < 0:
            raise node.bad("pads", pads, "expected 4 values >= 0 (2-D ops only)")
        top, left, bottom, right = (int(v) for v in pads)
        return (top, bottom, left, right)
    if shape is None:
        shape = [size * s for size, s in zip(in_hw, stride, strict=True)]
    elif len(shape) != 2:
        raise node.bad("output_shape", shape, "expected 2 values (2-D ops only)")
    result: list[int] = []
    for size, want, k, s, d, extra in zip(
        in_hw, shape, kernel, stride, dilation, output_padding, strict=True
    ):
        total = s * (size - 1) + extra + (k - 1) * d + 1 - int(want)
        if total < 0:
            raise node.unmapped_attr(
                "output_shape" if attrs["output_shape"] is not None else "auto_pad",
                attrs["output_shape"] if attrs["output_shape"] is not None else auto_pad,
                f"the output would be {-total} larger than the full transposed convolution "
                "(negative padding)",
            )
        small, large = total // 2, total - total // 2
        result += [small, large] if auto_pad == "SAME_UPPER" else [large, small]
    return tuple(result)  # type: ignore[return-value]


def _conv_transpose(imp: _Importer, node: _Node) -> None:
    """A ConvTranspose2d of input 0; 1-D as 2-D over ``(C, 1, L)``. In a QDQ model its int8
    weights ``(C, K/group, ...)`` are quantised per tensor or per slice of axis 1 (output
    channel ``j`` of every group shares scale ``j``), its bias int32."""
    attrs = node.attrs(
        auto_pad="NOTSET",
        dilations=None,
        group=1,
        kernel_shape=None,
        output_padding=None,
        output_shape=None,
        pads=None,
        strides=None,
    )
    image = _image_shape(imp, node)
    x = imp.activation(node, 0)
    weight, w_q = imp.weight(node, 1, "weight W")
    bias, b_q = imp.weight(node, 2, "bias B") if node.has_input(2) else (None, None)
    spatial = image.spatial
    if weight.ndim != spatial + 2:
        layout = "(N, C, H, W)" if spatial == 2 else "(N, C, L)"
        raise node.error(
            f"weight has shape {weight.shape}; a {spatial}-D transposed convolution of an "
            f"{layout} input needs a {spatial + 2}-D weight"
        )
    if attrs["kernel_shape"] is not None and list(attrs["kernel_shape"]) != list(weight.shape[2:]):
        raise node.bad("kernel_shape", attrs["kernel_shape"], f"weight shape is {weight.shape}")
    group = int(attrs["group"])
    if group < 1 or image.c % group or weight.shape[0] != image.c:
        raise node.error(
            f"weight shape {weight.shape} and group={group} do not fit the {image.c} input "
            "channels (ConvTranspose weights are (C, K / group, ...))"
        )
    k = weight.shape[1] * group
    attrs = _conv_transpose_2d_attrs(node, attrs, image)

    def stored(value: np.ndarray) -> np.ndarray:  # as the ConvTranspose2d node keeps it
        if image.transposed:
            value = value.transpose(0, 1, 3, 2)
        return np.ascontiguousarray(value.reshape(image.c, value.shape[1], -1, value.shape[-1]))

    int_layer = None
    if w_q is not None or b_q is not None:
        int_layer = _int_layer(node, w_q, b_q, bias, 1, k)
    weight = stored(weight)
    kernel = weight.shape[2:]
    stride = _pair_attr(node, "strides", attrs["strides"], 1, 1)
    dilation = _pair_attr(node, "dilations", attrs["dilations"], 1, 1)
    output_padding = _pair_attr(node, "output_padding", attrs["output_padding"], 0, 0)
    for extra, s, d in zip(output_padding, stride, dilation, strict=True):
        if extra >= max(s, d):
            raise node.unmapped_attr(
                "output_padding",
                attrs["output_padding"],
                f"must be smaller than max(stride, dilation) = {max(s, d)} on each axis",
            )
    padding = _conv_transpose_pads(
        node, attrs, (image.h, image.w), kernel, stride, dilation, output_padding
    )
    if bias is not None and bias.shape != (k,):
        raise node.error(f"bias has shape {bias.shape}; expected ({k},)")
    name = imp.add(
        node,
        lambda: ConvTranspose2d(
            image.c,
            k,
            kernel,
            stride,
            padding,
            output_padding,
            dilation,
            group,
            bias=bias is not None,
        ),
        [x],
    )
    if attrs["output_shape"] is not None:
        got = imp.net.shape(name)[1:]
        if list(got) != list(attrs["output_shape"]):
            raise AssertionError(f"output shape {got} != {attrs['output_shape']}")
    with _named(node):
        imp.net.set_weights(name, weight, bias)
    if int_layer is not None:
        scale = int_layer.weight_scale  # one per output channel of a group
        imp.int_layers[name] = _IntLayer(
            stored(int_layer.weight),
            np.tile(scale, k // scale.size),
            int_layer.bias,
            int_layer.bias_scale,
        )
    imp.define(node.outputs[0], name, _out_dims(imp, name, image))


def _stored_weight(imp: _Importer, name: str, weight: np.ndarray) -> np.ndarray:
    """An ONNX Conv weight as the Conv2d node stores it (1-D: ``(K, C, 1, k)``; transposed
    image: ``(K, C, 1, kh)``)."""
    shape = imp.net.op(name).weight_shape
    if weight.ndim == 4 and weight.shape != shape:
        weight = weight.transpose(0, 1, 3, 2)
    return np.ascontiguousarray(weight.reshape(shape))


def _int_layer(
    node: _Node,
    w_q: _QConst | None,
    b_q: _QConst | None,
    bias: np.ndarray | None,
    out_axis: int,
    k: int,
) -> _IntLayer:
    """Integer parameters of a QDQ Conv/Gemm/MatMul (weights oriented (K, ...) later)."""
    if w_q is None:
        raise node.error("bias is quantised but the weights are float")
    if b_q is None and bias is not None:
        raise node.error(
            "bias is float but the weights are int8; a quantised bias must be a "
            "DequantizeLinear of an int32 initializer"
        )
    weight, weight_scale = _int8_weight(node, w_q, out_axis, "weight")
    int_bias, bias_scale = _int32_bias(node, b_q, k, "bias") if b_q is not None else (None, None)
    return _IntLayer(weight, weight_scale, int_bias, bias_scale)


def _fold_batch_norm(
    imp: _Importer, bn: _Node, weight: np.ndarray, bias: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """``w' = w * g / sqrt(var + eps)``, ``b' = (b - mean) * g / sqrt(var + eps) + beta``."""
    attrs = bn.attrs(epsilon=1e-5, momentum=0.9, training_mode=0, spatial=1)
    if attrs["training_mode"] != 0:
        raise bn.bad("training_mode", attrs["training_mode"], "only inference (0) is supported")
    if attrs["spatial"] != 1:
        raise bn.bad("spatial", attrs["spatial"], "only spatial=1 is supported")
    imp.unused_outputs(bn)
    k = weight.shape[0]
    params = []
    for index, what in enumerate(("scale", "B", "input_mean", "input_var"), 1):
        value = imp.constant(bn, index, what).astype(np.float64)
        if value.shape != (k,):
            raise bn.error(f"{what} has shape {value.shape}; expected ({k},)")
        params.append(value)
    gamma, beta, mean, var = params
    factor = gamma / np.sqrt(var + attrs["epsilon"])
    folded_bias = ((bias if bias is not None else 0.0) - mean) * factor + beta
    return weight * factor.reshape(k, *[1] * (weight.ndim - 1)), folded_bias


def _channel_constant(value: np.ndarray, k: int, rank: int) -> np.ndarray | None:
    """A float constant that broadcasts over an ``(N, K, ...)`` tensor of ``rank`` as one value
    per channel (a scalar, ``(K, 1, 1)``, ``(1, K, 1, 1)``, ...), as a ``(K,)`` vector."""
    if value.dtype.kind != "f" or value.ndim > rank:
        return None
    if value.size == 1:
        return np.full(k, float(value.reshape(-1)[0]))
    shape = (1,) * (rank - value.ndim) + value.shape
    if shape[1] != k or any(d != 1 for i, d in enumerate(shape) if i != 1):
        return None
    return value.reshape(k).astype(np.float64)


def _fold_affine(
    imp: _Importer, output: str, weight: np.ndarray, bias: np.ndarray | None
) -> tuple[str, np.ndarray, np.ndarray | None]:
    """Fold a chain of Mul and Add of per-channel constants after a float Conv (Caffe2's
    scale layers) into its weights and bias: ``Mul(c)``: ``w' = w * c``, ``b' = b * c``;
    ``Add(c)``: ``b' = b + c``. Each must be the only reader of the tensor before it."""
    k = weight.shape[0]
    while True:
        readers = imp.consumers.get(output, [])
        if output in imp.graph_outputs or len(readers) != 1:
            return output, weight, bias
        proto = imp.protos[readers[0]]
        others = [t for t in proto.input if t != output]
        if (
            proto.domain not in ("", "ai.onnx")
            or proto.op_type not in ("Mul", "Add")
            or len(proto.input) != 2
            or len(others) != 1
            or others[0] not in imp.consts
            or proto.attribute
        ):
            return output, weight, bias
        value = _channel_constant(imp.consts[others[0]], k, weight.ndim)
        if value is None:
            return output, weight, bias
        if proto.op_type == "Mul":
            weight = weight * value.reshape(k, *[1] * (weight.ndim - 1))
            bias = None if bias is None else bias * value
        else:
            bias = value if bias is None else bias + value
        imp.absorbed.add(readers[0])
        output = proto.output[0]


def _batch_norm(imp: _Importer, node: _Node) -> None:
    """A BatchNormalization that no Conv absorbed (pre-activation BN, BN after an Add or a
    pool) as a per-channel affine (:func:`accel.graph.channel_affine`, a depthwise 1x1
    Conv2d): ``a = g / sqrt(var + eps)``, ``b = beta - mean * a``, then the Mul/Add scale
    layers after it folded in as after a Conv (:func:`_fold_affine`)."""
    attrs = node.attrs(epsilon=1e-5, momentum=0.9, training_mode=0, spatial=1)
    if attrs["training_mode"] != 0:
        raise node.bad("training_mode", attrs["training_mode"], "only inference (0) is supported")
    if attrs["spatial"] != 1:
        raise node.bad("spatial", attrs["spatial"], "only spatial=1 is supported")
    imp.unused_outputs(node)
    dims = imp.dims_of(node, 0)
    if imp.quantized_model:
        raise node.unmapped(
            "a BatchNormalization that no Conv absorbs has float parameters; in a quantised "
            "model it has no int8 form on the accelerator"
        )
    if len(dims) not in (2, 3):
        shown = ", ".join(map(str, dims))
        raise node.unmapped(
            f"input (N, {shown}): the per-channel affine runs on (N, C, H, W) and (N, C, L) tensors"
        )
    c = dims[0]
    params = []
    for index, what in enumerate(("scale", "B", "input_mean", "input_var"), 1):
        value = imp.constant(node, index, what).astype(np.float64)
        if value.shape != (c,):
            raise node.error(f"{what} has shape {value.shape}; expected ({c},)")
        params.append(value)
    gamma, beta, mean, var = params
    scale = gamma / np.sqrt(var + attrs["epsilon"])
    shift = beta - mean * scale
    # _fold_affine reads the tensor's rank from the weight's: (C, 1, 1) for (N, C, L).
    weight = scale.reshape(c, *[1] * len(dims))
    output, weight, shift = _fold_affine(imp, node.outputs[0], weight, shift)
    x = imp.activation(node, 0)
    name = imp.add(node, lambda: channel_affine(c), [x])
    with _named(node):
        imp.net.set_weights(name, weight.reshape(c, 1, 1, 1), shift)
    imp.define(output, name, dims)


def _vector(node: _Node, value: np.ndarray, k: int, what: str) -> np.ndarray:
    """A bias of shape (), (1,), (K,) or (1, K) as a (K,) vector."""
    if value.shape in ((k,), (1, k)):
        return value.reshape(k)
    if value.size == 1 and value.ndim <= 1:
        return np.full(k, value.reshape(-1)[0])
    raise node.unmapped(f"{what} has shape {value.shape}; expected ({k},) or (1, {k})")


def _build_linear(imp: _Importer, node: _Node, weight: np.ndarray, bias: np.ndarray | None) -> str:
    """A Linear ``x @ weight.T + bias`` for a 2-D ``(N, F)`` input 0; weight ``(out, in)``."""
    dims = imp.dims_of(node, 0)
    if len(dims) != 1:
        raise node.unmapped(
            f"input has shape (N, {', '.join(map(str, dims))}); a matrix product needs a 2-D "
            "(N, F) input (insert a Flatten)"
        )
    x = imp.activation(node, 0)
    out_features, in_features = weight.shape
    if in_features != dims[0]:
        raise node.error(f"weight has {in_features} input features, the input has {dims[0]}")
    name = imp.add(node, lambda: Linear(in_features, out_features, bias is not None), [x])
    with _named(node):
        imp.net.set_weights(name, weight, bias)
    return name


def _gemm(imp: _Importer, node: _Node) -> None:
    attrs = node.attrs(alpha=1.0, beta=1.0, transA=0, transB=0)
    if attrs["transA"] != 0:
        raise node.unmapped_attr("transA", attrs["transA"], "only transA=0 is supported")
    if attrs["alpha"] != 1.0:
        raise node.unmapped_attr("alpha", attrs["alpha"], "only alpha=1 is supported")
    if attrs["beta"] != 1.0 and node.has_input(2):
        raise node.unmapped_attr("beta", attrs["beta"], "only beta=1 is supported")
    dims = imp.dims_of(node, 0)
    if len(dims) != 1:
        raise node.error(
            f"input has shape (N, {', '.join(map(str, dims))}); a matrix product needs a 2-D "
            "(N, F) input (insert a Flatten)"
        )
    b, b_q = imp.weight(node, 1, "B")
    if b.ndim != 2:
        raise node.error(f"B has shape {b.shape}; expected 2-D")
    out_axis = 0 if attrs["transB"] else 1
    weight = b if attrs["transB"] else b.T
    c, c_q = imp.weight(node, 2, "C") if node.has_input(2) else (None, None)
    bias = None if c is None else _vector(node, c, weight.shape[0], "C")
    name = _build_linear(imp, node, weight, bias)
    _linear_int_layer(imp, node, name, b_q, c_q, bias, out_axis)
    imp.define(node.outputs[0], name, (weight.shape[0],))


def _linear_int_layer(
    imp: _Importer,
    node: _Node,
    name: str,
    b_q: _QConst | None,
    c_q: _QConst | None,
    bias: np.ndarray | None,
    out_axis: int,
) -> None:
    if b_q is None and c_q is None:
        return
    k = imp.net.op(name).out_features
    layer = _int_layer(node, b_q, c_q, bias, out_axis, k)
    weight = layer.weight if out_axis == 0 else layer.weight.T
    imp.int_layers[name] = _IntLayer(
        np.ascontiguousarray(weight), layer.weight_scale, layer.bias, layer.bias_scale
    )


def _matmul(imp: _Importer, node: _Node) -> None:
    node.attrs()
    dims = imp.dims_of(node, 0)
    if len(dims) != 1:
        raise node.unmapped(
            f"input has shape (N, {', '.join(map(str, dims))}); a matrix product needs a 2-D "
            "(N, F) input (insert a Flatten)"
        )
    b, b_q = imp.weight(node, 1, "B")
    if b.ndim != 2:
        raise node.unmapped(f"B has shape {b.shape}; expected 2-D (a plain matrix product)")
    bias = c_q = None
    output = node.outputs[0]
    add_index = imp.sole_consumer(node, "Add")
    if add_index is not None:
        add = _Node(imp.protos[add_index])
        other = [t for t in add.inputs if t != output]
        if len(add.inputs) == 2 and len(other) == 1 and other[0] in imp.consts:
            add.attrs()
            index = add.inputs.index(other[0])
            c, c_q = imp.weight(add, index, "bias")
            bias = _vector(add, c, b.shape[1], "bias")
            imp.absorbed.add(add_index)
            output = add.outputs[0]
    name = _build_linear(imp, node, b.T, bias)
    _linear_int_layer(imp, node, name, b_q, c_q, bias, 1)
    imp.define(output, name, (b.shape[1],))


def _activation(kind: str) -> Callable[[_Importer, _Node], None]:
    def handler(imp: _Importer, node: _Node) -> None:
        node.attrs()
        x = imp.activation(node, 0)
        name = imp.add(node, lambda: Activation(kind), [x])
        imp.define(node.outputs[0], name, imp.dims_of(node, 0))

    return handler


#: ONNX activation -> the :data:`accel.graph.POINTWISE` function computing it; the ONNX
#: attributes (alpha, beta, gamma) are its parameters, with the same names and defaults.
_POINTWISE_OPS = {
    "Elu": "elu",
    "HardSigmoid": "hardsigmoid",
    "HardSwish": "hardswish",
    "LeakyRelu": "leakyrelu",
    "Selu": "selu",
    "Sigmoid": "sigmoid",
    "Softplus": "softplus",
    "Tanh": "tanh",
}
#: ``x * f(x)`` as one function: ``f`` and its parameters -> the product's function.
_TIMES_X = {
    ("sigmoid", ()): "silu",
    ("hardsigmoid", (("alpha", float(np.float32(1 / 6))), ("beta", 0.5))): "hardswish",
}


def _pointwise(imp: _Importer, node: _Node) -> None:
    """Sigmoid, Tanh, HardSigmoid, HardSwish, Elu, Selu, LeakyRelu, Softplus and Gelu (erf or
    tanh) as a :class:`Pointwise` table, on a tensor of any rank. ``Mul(x, Sigmoid(x))``
    (SiLU) and ``Mul(x, HardSigmoid(x, alpha=1/6, beta=0.5))`` (HardSwish), either operand
    order, become one Pointwise when the Mul alone reads the activation (PyTorch's GELU
    below opset 20: :func:`_div`)."""
    if node.op_type == "Gelu":
        approximate = node.attrs(approximate="none")["approximate"]
        if approximate not in ("none", "tanh"):
            raise node.bad("approximate", approximate, "expected 'none' or 'tanh'")
        function, params = ("gelu" if approximate == "none" else "gelu_tanh"), {}
    else:
        function = _POINTWISE_OPS[node.op_type]
        params = node.attrs(**POINTWISE[function])
    x = imp.activation(node, 0)
    dims = imp.dims_of(node, 0)
    with _named(node):
        op = Pointwise(function, params)
    output = node.outputs[0]
    product = _TIMES_X.get((op.function, op.params))
    index = imp.sole_consumer(node, "Mul") if product else None
    if index is not None:
        mul = imp.protos[index]
        others = [t for t in mul.input if t != output]
        if len(others) == 1 and imp.nodes_of.get(others[0]) == x and imp.dims[others[0]] == dims:
            op, output = Pointwise(product), mul.output[0]
            imp.absorbed.add(index)
    name = imp.add(node, lambda: op, [x])
    imp.define(output, name, dims)


def _prelu(imp: _Importer, node: _Node) -> None:
    """PRelu with one slope for every element (a scalar slope, or a per-channel one whose
    values are all equal) is LeakyRelu with ``alpha`` = the slope: a :class:`Pointwise`
    table, exact by construction in int8. Per-channel slopes (one value per channel, of an
    ``(N, C, H, W)`` or ``(N, C, L)`` float input) are a :class:`PRelu` node: an identity
    depthwise pass with a two-slope POST on the accelerator."""
    node.attrs()
    x = imp.activation(node, 0)
    dims = imp.dims_of(node, 0)
    if not node.has_input(1) or node.inputs[1] not in imp.consts:
        raise node.unmapped("slope (input 1) is computed; only a constant slope maps")
    slope = imp.consts[node.inputs[1]]
    if slope.dtype.kind != "f":
        raise node.error(f"slope has dtype {slope.dtype}; expected float")
    shown = ", ".join(map(str, dims))
    if not _broadcasts_to(slope.shape, (1, *dims)):
        raise node.unmapped(
            f"slope of shape {slope.shape} does not broadcast to the input (N, {shown}) "
            "without growing it"
        )
    values = np.unique(slope)
    if values.size == 1:
        with _named(node):
            op = Pointwise("leakyrelu", {"alpha": float(values[0])})
        name = imp.add(node, lambda: op, [x])
        imp.define(node.outputs[0], name, dims)
        return
    per_channel = _channel_constant(slope, dims[0], len(dims) + 1)
    if per_channel is None or len(dims) not in (2, 3):
        raise node.unmapped(
            f"slope of shape {slope.shape} on an (N, {shown}) input: only one slope per "
            "channel of an (N, C, H, W) or (N, C, L) tensor maps"
        )
    if imp.quantized_model:
        raise node.unmapped(
            "per-channel slopes in a quantised model (its output scale need not leave both "
            "rescales below 1)"
        )
    name = imp.add(node, lambda: PRelu(dims[0]), [x])
    with _named(node):
        imp.net.set_weights(name, per_channel)
    imp.define(node.outputs[0], name, dims)


def _broadcasts_to(shape: tuple[int, ...], target: tuple[int, ...]) -> bool:
    """Whether an array of ``shape`` broadcasts to ``target`` (numpy's rules)."""
    if len(shape) > len(target):
        return False
    return all(s in (1, t) for s, t in zip(reversed(shape), reversed(target), strict=False))


#: PyTorch's GELU below opset 20, after ``Div(x, sqrt(2))``: each op and the constant its
#: other operand must be, compared in float32 (Erf has none; ``None`` for a Mul: ``x``).
_GELU_CHAIN = (("Erf", None), ("Add", 1.0), ("Mul", None), ("Mul", 0.5))


def _div(imp: _Importer, node: _Node) -> None:
    """A Div maps only as the start of PyTorch's exported GELU, ``Mul(Mul(x, Add(Erf(Div(x,
    sqrt(2))), 1)), 0.5)`` (either operand order of the Add and Muls), each op the only reader
    of the one before: one ``Pointwise("gelu")``. The constants must equal float32(sqrt(2)),
    1 and 0.5 in float32 (the float32 rounding of sqrt(2) is that of ONNX's Gelu function)."""
    node.attrs()
    if node.inputs[0] in imp.consts or not _is_constant(imp, node.inputs[1], math.sqrt(2)):
        raise node.unmapped("a Div maps only as the start of a GELU, x / sqrt(2)")
    x = imp.activation(node, 0)
    dims = imp.dims_of(node, 0)
    current, indices = node, []
    for op_type, value in _GELU_CHAIN:
        index = imp.sole_consumer(current, op_type)
        if index is None or not _gelu_operand(imp, imp.protos[index], current, value, x, dims):
            raise node.unmapped(f"x / sqrt(2) is not followed by the {op_type} of a GELU")
        current = _Node(imp.protos[index])
        indices.append(index)
    imp.absorbed.update(indices)
    name = imp.add(node, lambda: Pointwise("gelu"), [x])
    imp.define(current.outputs[0], name, dims)


def _gelu_operand(
    imp: _Importer,
    proto: onnx.NodeProto,
    previous: _Node,
    value: float | None,
    x: str,
    dims: tuple[int, ...],
) -> bool:
    """Whether the other operand of ``proto`` (an op of the GELU chain reading ``previous``)
    is what the chain needs: nothing (Erf), the constant ``value``, or (``None``) ``x``."""
    rest = [t for t in proto.input if t != previous.outputs[0]]
    if proto.op_type == "Erf":
        return not rest
    if len(rest) != 1:
        return False
    if value is not None:
        return _is_constant(imp, rest[0], value)
    return imp.nodes_of.get(rest[0]) == x and imp.dims[rest[0]] == dims


def _is_constant(imp: _Importer, tensor: str | None, value: float) -> bool:
    """Whether ``tensor`` is a constant scalar equal to ``value`` in float32."""
    if tensor not in imp.consts:
        return False
    constant = imp.consts[tensor]
    return constant.size == 1 and np.float32(constant.reshape(-1)[0]) == np.float32(value)


def _clip(imp: _Importer, node: _Node) -> None:
    attrs = node.attrs(min=None, max=None)  # attributes before opset 11, inputs since
    bounds = []
    for index, key in ((1, "min"), (2, "max")):
        value = attrs[key]
        if node.has_input(index):
            if node.inputs[index] not in imp.consts:
                raise node.unmapped(f"{key} (input {index}) is computed, not a constant")
            value = float(imp.constant(node, index, key).reshape(-1)[0])
        bounds.append(None if value is None or value >= np.finfo(np.float32).max else value)
    low, high = bounds
    if low == 0.0 and high is None:
        kind = "relu"
    elif low == 0.0 and high == 6.0:
        kind = "relu6"
    else:
        raise node.unmapped(
            f"Clip(min={low}, max={high}) is not supported; only min=0 without max (relu) "
            "and min=0, max=6 (relu6)"
        )
    x = imp.activation(node, 0)
    name = imp.add(node, lambda: Activation(kind), [x])
    imp.define(node.outputs[0], name, imp.dims_of(node, 0))


def _pool(imp: _Importer, node: _Node, average: bool, qlinear: bool = False) -> None:
    """MaxPool, AveragePool and com.microsoft QLinearAveragePool (X, x_scale, x_zero_point,
    y_scale, y_zero_point); 1-D pools as 2-D over ``(C, 1, L)``."""
    defaults = {
        "auto_pad": "NOTSET",
        "ceil_mode": 0,
        "dilations": None,
        "kernel_shape": None,
        "pads": None,
        "strides": None,
    }
    defaults.update({"count_include_pad": 0} if average else {"storage_order": 0})
    if qlinear:
        defaults["channels_last"] = 0
    attrs = node.attrs(**defaults)
    if attrs.get("channels_last", 0) != 0:
        raise node.bad("channels_last", attrs["channels_last"], "only NCHW (0) is supported")
    image = _image_shape(imp, node)
    h, w = image.h, image.w
    x = imp.activation(node, 0)
    if attrs["kernel_shape"] is None:
        raise node.error("attribute kernel_shape is required")
    dilations = attrs["dilations"]
    attrs = _as_2d(node, attrs, image)
    kernel = _pair_attr(node, "kernel_shape", attrs["kernel_shape"], 1, 1)
    stride = _pair_attr(node, "strides", attrs["strides"], 1, 1)
    dilation = _pair_attr(node, "dilations", attrs["dilations"], 1, 1)
    if average and dilation != (1, 1):
        raise node.unmapped_attr("dilations", dilations, "dilated average pooling is not supported")
    if attrs.get("storage_order", 0) != 0:
        raise node.unmapped_attr(
            "storage_order", attrs["storage_order"], "only 0 (row major) is supported"
        )
    ceil_mode = attrs["ceil_mode"]
    if ceil_mode not in (0, 1):
        raise node.bad("ceil_mode", ceil_mode, "expected 0 or 1")
    if ceil_mode and attrs["auto_pad"] != "NOTSET":
        raise node.unmapped_attr(
            "ceil_mode", ceil_mode, f"not supported with auto_pad={attrs['auto_pad']!r}"
        )
    padding = _window_pads(node, attrs, (h, w), kernel, stride, dilation)
    include_pad = bool(attrs.get("count_include_pad"))
    whole = all(
        size + begin + end - k < s and begin + size <= k and not ceil_mode
        for size, k, s, (begin, end) in zip(
            (h, w), kernel, stride, (padding[:2], padding[2:]), strict=True
        )
    )
    if average and not qlinear and whole and (not include_pad or not any(padding)):
        imp.unused_outputs(node, unmapped=True)
        name = imp.add(node, GlobalAvgPool, [x])  # one window over the whole input
        imp.define(node.outputs[0], name, _out_dims(imp, name, image))
        return
    if padding[0] != padding[1] or padding[2] != padding[3]:
        undilated_max = not average and dilation == (1, 1)
        ceil = _end_pads_as_ceil_mode(padding, (h, w), kernel, stride) if undilated_max else None
        if ceil is not None and not ceil_mode:
            padding, ceil_mode = ceil, 1
    if padding[0] != padding[1] or padding[2] != padding[3]:
        raise node.unmapped(
            f"pads (top, bottom, left, right)={padding} are not supported: pooling pads must be "
            "symmetric (top == bottom, left == right)"
        )
    if padding[0] > kernel[0] // 2 or padding[2] > kernel[1] // 2:
        raise node.unmapped(
            f"pads (top, bottom, left, right)={padding} exceed half of kernel={kernel} "
            "(every window must overlap the input)"
        )
    if average:
        _one_divisor(node, (h, w), kernel, stride, padding, bool(ceil_mode), include_pad)
    imp.unused_outputs(node, unmapped=True)
    dims = imp.dims_of(node, 0)
    if kernel == stride == (1, 1) and not any(padding) and not imp.quantized_model:
        imp.alias(node, 0, dims)  # a 1x1 window of stride 1 (adaptive pooling exports it)
        return

    def make() -> Op:
        if average:
            return AvgPool2d(kernel, stride, padding, bool(ceil_mode), include_pad)
        return MaxPool2d(kernel, stride, padding, bool(ceil_mode), dilation)

    name = imp.add(node, make, [x])
    if qlinear:
        imp.quantized = True
        imp.claim(x, imp.scale_zero_point(node, 1, "x"), node, "x_scale/x_zero_point")
        imp.set_quant(name, imp.scale_zero_point(node, 3, "y"), node)
    imp.define(node.outputs[0], name, _out_dims(imp, name, image))


def _one_divisor(
    node: _Node,
    in_hw: tuple[int, int],
    kernel: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int, int, int],
    ceil_mode: bool,
    include_pad: bool,
) -> None:
    """The accelerator's average pools divide every window by the kernel area: an
    AveragePool whose divisor varies along the border (pads not counted, or ``ceil_mode``
    windows past the padded input) has no mapping (``accel.quantized.avg_pool_count``)."""
    if not include_pad and any(padding):
        raise node.unmapped(
            f"count_include_pad=0 with pads (top, bottom, left, right)={padding}: the divisor "
            "varies along the border; the accelerator divides every window by the kernel area"
        )
    for size, k, s, (begin, end) in zip(
        in_hw, kernel, stride, (padding[:2], padding[2:]), strict=True
    ):
        out = conv_output_size(size, k, s, begin + end, ceil_mode=ceil_mode, pad_begin=begin)
        if (out - 1) * s + k > size + begin + end:
            raise node.unmapped(
                "ceil_mode=1 makes the last window overhang the padded input (a smaller "
                "divisor there); the accelerator divides every window by the kernel area"
            )


def _end_pads_as_ceil_mode(
    padding: tuple[int, int, int, int],
    in_hw: tuple[int, int],
    kernel: tuple[int, int],
    stride: tuple[int, int],
) -> tuple[int, int, int, int] | None:
    """A max pool's pads ``(top, bottom, left, right)`` with more at the end than at the
    start (Caffe's exports of ceil-mode pools) as the symmetric begin pads with ``ceil_mode``,
    when that gives the same windows: the same number of windows per axis, the same starts,
    and the end of the last ones clipped at the padded input instead of covering end padding,
    which a max never takes. ``None`` when not."""
    result: list[int] = []
    for size, k, s, (begin, end) in zip(
        in_hw, kernel, stride, (padding[:2], padding[2:]), strict=True
    ):
        if end < begin or size + begin + end < k:
            return None
        onnx_out = (size + begin + end - k) // s + 1
        try:
            ours = conv_output_size(size, k, s, 2 * begin, ceil_mode=True, pad_begin=begin)
        except ValueError:
            return None
        if ours != onnx_out:
            return None
        result += [begin, begin]
    return tuple(result)  # type: ignore[return-value]


def _global_average_pool(imp: _Importer, node: _Node) -> None:
    node.attrs()
    image = _image_shape(imp, node)
    x = imp.activation(node, 0)
    imp.define(
        node.outputs[0], imp.add(node, GlobalAvgPool, [x]), (image.c,) + (1,) * image.spatial
    )


def _reduce_mean(imp: _Importer, node: _Node) -> None:
    """ReduceMean over the spatial axes (``[2, 3]`` of ``(N, C, H, W)``, ``[2]`` of ``(N, C,
    L)``, in any order or negative) is a :class:`GlobalAvgPool`; with ``keepdims=0`` its output
    is the ``(N, C)`` tensor (a vector, which a Linear reads as it is). ``axes`` is an
    attribute before opset 18, a constant input since. Any other axes run on the host."""
    attrs = node.attrs(axes=None, keepdims=1, noop_with_empty_axes=0)
    axes = attrs["axes"]
    if node.has_input(1):
        if node.inputs[1] not in imp.consts:
            raise node.unmapped(f"axes (input 1, {node.inputs[1]!r}) is computed at run time")
        axes = imp.consts[node.inputs[1]].reshape(-1).tolist()
    rank = len(imp.dims_of(node, 0)) + 1
    spatial = list(range(2, rank))
    if not axes or rank not in (3, 4) or sorted(a % rank for a in axes) != spatial:
        raise node.unmapped(
            f"axes={axes} of a rank-{rank} input: only the spatial axes {spatial} of "
            "(N, C, H, W) or (N, C, L) map to a global average pool"
        )
    if attrs["keepdims"] not in (0, 1):
        raise node.bad("keepdims", attrs["keepdims"], "expected 0 or 1")
    image = _image_shape(imp, node)
    x = imp.activation(node, 0)
    dims = (image.c,) + (1,) * image.spatial if attrs["keepdims"] else (image.c,)
    imp.define(node.outputs[0], imp.add(node, GlobalAvgPool, [x]), dims)


#: The ops a constant Pad folds into (reading it as input 0).
_PAD_CONSUMERS = ("Conv", "AveragePool", "MaxPool")


def _pad(imp: _Importer, node: _Node) -> None:
    """A constant Pad of the spatial axes folded into the Conv, AveragePool or MaxPool that
    alone reads it: its ``pads`` are added to the consumer's, which then reads the Pad's
    input. Exact when the padded values are what the consumer pads with:

    * Conv: value 0 (a convolution pads with zeros);
    * AveragePool: value 0, and the pool counts its own pads (``count_include_pad=1``) or has
      none: the Pad's zeros are data the divisor counts, so the merged pool counts every pad;
    * MaxPool: value ``-inf``, or 0 when the input is a Relu/Clip(0, ...) output (never below
      0, so a 0 never wins a window that overlaps the input, as each does).

    The merged consumer must itself map (symmetric pool pads, ...). Anything else (other
    modes, values, pads of N or C, negative pads, other or several readers) runs on the host.
    """
    attrs = node.attrs(mode="constant")
    if attrs["mode"] != "constant":
        raise node.unmapped_attr("mode", attrs["mode"], "only constant pads fold into a Conv")
    dims = imp.dims_of(node, 0)
    rank = len(dims) + 1
    given = []
    for index, what in ((1, "pads"), (2, "constant_value"), (3, "axes")):
        if node.has_input(index) and node.inputs[index] not in imp.consts:
            raise node.unmapped(f"{what} (input {index}) is computed at run time")
        given.append(imp.consts[node.inputs[index]] if node.has_input(index) else None)
    pads, value, axes = given
    pads = [int(p) for p in pads.reshape(-1)]
    value = 0.0 if value is None or value.size == 0 else float(value.reshape(-1)[0])
    axes = list(range(rank)) if axes is None else [int(a) % rank for a in axes.reshape(-1)]
    full = [0] * (2 * rank)  # begins of every axis, then ends
    for i, axis in enumerate(axes):
        full[axis], full[rank + axis] = pads[i], pads[len(axes) + i]
    begin, end = full[:rank], full[rank:]
    if rank not in (3, 4) or any(begin[:2] + end[:2]) or min(full) < 0:
        raise node.unmapped(
            f"pads={pads} of a rank-{rank} input: only non-negative pads of the spatial axes of "
            "(N, C, H, W) or (N, C, L) fold into a Conv or pool"
        )
    index = next(
        (i for op in _PAD_CONSUMERS if (i := imp.sole_consumer(node, op, operand=0)) is not None),
        None,
    )
    if index is None:
        raise node.unmapped(
            "only a Pad read by one Conv, AveragePool or MaxPool alone folds into it"
        )
    consumer = _Node(imp.protos[index])
    own = consumer._attrs
    if own.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
        raise node.unmapped(f"its reader {consumer.label!r} has auto_pad={own['auto_pad']!r}")
    own_pads = [int(p) for p in own.get("pads", [0] * 2 * (rank - 2))]
    if len(own_pads) != 2 * (rank - 2):
        raise node.unmapped(f"its reader {consumer.label!r} has pads={own_pads}")
    if consumer.op_type == "MaxPool":
        x = imp.net.op(imp.activation(node, 0))
        non_negative = isinstance(x, Activation) and x.kind in ("relu", "relu6")
        exact = value == -math.inf or (value == 0 and non_negative)
    else:
        exact = value == 0 and not (
            consumer.op_type == "AveragePool"
            and not own.get("count_include_pad", 0)
            and any(own_pads)
        )
    if not exact:
        raise node.unmapped(
            f"a pad value of {value} before {consumer.op_type} {consumer.label!r} is not what it "
            "pads with"
        )
    merged = onnx.NodeProto()
    merged.CopyFrom(consumer.proto)
    merged.input[0] = node.inputs[0]
    del merged.attribute[:]
    for attr in consumer.proto.attribute:
        if attr.name not in ("auto_pad", "pads", "count_include_pad"):
            merged.attribute.append(attr)
    total = [a + b for a, b in zip(own_pads, begin[2:] + end[2:], strict=True)]
    merged.attribute.append(helper.make_attribute("pads", total))
    if consumer.op_type == "AveragePool":
        merged.attribute.append(helper.make_attribute("count_include_pad", 1))
    try:
        HANDLERS[consumer.op_type](imp, _Node(merged))
    except _Unmapped as exc:
        reason = re.sub(r"^node '[^']*' \(\w+\): ", "", str(exc))
        raise node.unmapped(f"cannot fold into {consumer.label!r}: {reason}") from None
    imp.absorbed.add(index)


def _add(imp: _Importer, node: _Node) -> None:
    node.attrs()
    for index, tensor in enumerate(node.inputs):
        if tensor in imp.consts:
            raise node.unmapped(
                f"input {index} ({tensor!r}) is a constant; an Add of a constant is supported "
                "only as the bias of a MatMul whose output it alone reads"
            )
    _sum_of(imp, node)


def _sum_of(imp: _Importer, node: _Node) -> None:
    """An Add of computed tensors of one shape."""
    xs = [imp.activation(node, i) for i in range(len(node.inputs))]
    dims = [imp.dims_of(node, i) for i in range(len(node.inputs))]
    if len(set(dims)) != 1 or len({imp.net.shape(x) for x in xs}) != 1:
        raise node.unmapped(f"input shapes differ: {dims}")
    if len(set(xs)) != len(xs):
        raise node.unmapped("adds a tensor to itself")
    imp.define(node.outputs[0], imp.add(node, Add, xs), dims[0])


def _mul(imp: _Importer, node: _Node) -> None:
    """A Mul of two computed tensors of one shape, or of an ``(N, C, H, W)`` tensor and an
    ``(N, C, 1, 1)`` one in either order (the squeeze-and-excitation gate): the vector
    unit's VMUL, the broadcast operand second. Anything else runs on the host."""
    node.attrs()
    if len(node.inputs) != 2:
        raise node.error(f"{len(node.inputs)} inputs; Mul takes two")
    name, dims = _add_mul(imp, node, (0, 1))
    imp.define(node.outputs[0], name, dims)


def _add_mul(imp: _Importer, node: _Node, indices: tuple[int, int]) -> tuple[str, tuple]:
    """The ``Mul`` node of the operands at ``indices`` of ``node`` and its output dims
    (:func:`_mul`'s rules)."""
    for index in indices:
        tensor = node.inputs[index]
        if tensor in imp.consts:
            raise node.unmapped(
                f"input {index} ({tensor!r}) is a constant; a Mul of a constant maps only as "
                "a per-channel scale folded into the Conv before it"
            )
    xs = [imp.activation(node, i) for i in indices]
    dims = [imp.dims_of(node, i) for i in indices]
    if xs[0] == xs[1]:
        raise node.unmapped("multiplies a tensor by itself")
    shapes = [imp.net.shape(x) for x in xs]
    if shapes[0] != shapes[1] and shapes[0][1:] == (1, 1) and shapes[1][1:] != (1, 1):
        xs, dims, shapes = xs[::-1], dims[::-1], shapes[::-1]  # the broadcast operand second
    if not golden.mul_broadcast_ok((1, *shapes[0]), (1, *shapes[1])) or (
        dims[0] != dims[1] and tuple(shapes) != tuple(map(tuple, dims))
    ):
        raise node.unmapped(
            f"input shapes {dims}: the accelerator multiplies one shape, or (N, C, H, W) by "
            "(N, C, 1, 1)"
        )
    return imp.add(node, Mul, xs), dims[0]


def _sum(imp: _Importer, node: _Node) -> None:
    node.attrs()
    if len(node.inputs) == 1:
        imp.alias(node, 0, imp.dims_of(node, 0))
        return
    if len(node.inputs) > 2:
        raise node.unmapped(f"a Sum of {len(node.inputs)} inputs; the accelerator adds two")
    if any(tensor in imp.consts for tensor in node.inputs):
        raise node.unmapped("a Sum with a constant input")
    _sum_of(imp, node)


#: Per ``coordinate_transformation_mode`` of a nearest Resize, the ``nearest_mode`` values
#: that make an integer upscaling factor ``s`` plain replication (output ``o`` reads input
#: ``o // s``), each with the largest ``s`` for which it does (``None``: any). Output ``o =
#: i*s + a`` maps to ``i + a/s`` (asymmetric), ``i + (a + 0.5)/s - 0.5`` (the half-pixel
#: modes: strictly within half a pixel of ``i``) or ``i + (a + 0.5)/s``
#: (tf_half_pixel_for_nn); ``align_corners`` and ``tf_crop_and_resize`` only at ``s = 1``
#: or never. ``tests/test_accel_onnx_resize.py`` checks the table against onnxruntime.
_NEAREST_REPLICATES: dict[str, dict[str, int | None]] = {
    "asymmetric": {"floor": None, "round_prefer_floor": 2, "round_prefer_ceil": 1, "ceil": 1},
    "half_pixel": {"round_prefer_floor": None, "round_prefer_ceil": None, "floor": 1, "ceil": 1},
    "pytorch_half_pixel": {
        "round_prefer_floor": None,
        "round_prefer_ceil": None,
        "floor": 1,
        "ceil": 1,
    },
    "half_pixel_symmetric": {
        "round_prefer_floor": None,
        "round_prefer_ceil": None,
        "floor": 1,
        "ceil": 1,
    },
    "tf_half_pixel_for_nn": {"floor": None, "round_prefer_floor": 1},
    "align_corners": dict.fromkeys(("floor", "round_prefer_floor", "round_prefer_ceil", "ceil"), 1),
}


def _resize(imp: _Importer, node: _Node) -> None:
    """Resize (opset 11 and later; older Upsample/Resize are upgraded to it): nearest with
    integer spatial factors whose coordinate mapping is plain replication
    (:data:`_NEAREST_REPLICATES`) is an :class:`Upsample`; every other form runs on the host,
    the reason naming the attribute or input."""
    attrs = node.attrs(
        antialias=0,
        axes=None,
        coordinate_transformation_mode="half_pixel",
        cubic_coeff_a=-0.75,
        exclude_outside=0,
        extrapolation_value=0.0,
        keep_aspect_ratio_policy="stretch",
        mode="nearest",
        nearest_mode="round_prefer_floor",
    )
    x = imp.activation(node, 0)
    dims = imp.dims_of(node, 0)
    rank = len(dims) + 1
    if attrs["mode"] != "nearest":
        raise node.unmapped_attr("mode", attrs["mode"], "only nearest runs on the accelerator")
    if rank not in (3, 4):
        raise node.unmapped(
            f"input (N, {', '.join(map(str, dims))}) is not (N, C, H, W) or (N, C, L)"
        )
    axes = list(range(rank)) if attrs["axes"] is None else [int(a) % rank for a in attrs["axes"]]
    scales = imp.consts.get(node.inputs[2]) if node.has_input(2) else None
    sizes = imp.consts.get(node.inputs[3]) if node.has_input(3) else None
    if (node.has_input(2) and scales is None) or (node.has_input(3) and sizes is None):
        raise node.unmapped("scales and sizes must be constants")
    full = (imp.batch if isinstance(imp.batch, int) else None, *dims)
    factors = [1] * rank
    if sizes is not None and sizes.size:
        if attrs["keep_aspect_ratio_policy"] != "stretch" and len(axes) > 1:
            raise node.unmapped_attr(
                "keep_aspect_ratio_policy", attrs["keep_aspect_ratio_policy"], "only stretch"
            )
        for axis, size in zip(axes, sizes.tolist(), strict=True):
            if full[axis] is None:
                raise node.unmapped(f"sizes {sizes.tolist()} fix the symbolic batch")
            if size % full[axis] or size < full[axis]:
                raise node.unmapped(
                    f"sizes {sizes.tolist()} are not integer multiples of the input"
                )
            factors[axis] = size // full[axis]
    elif scales is not None and scales.size:
        for axis, scale in zip(axes, scales.tolist(), strict=True):
            if scale != round(scale) or scale < 1:
                raise node.unmapped(f"scales {scales.tolist()} are not integers >= 1")
            factors[axis] = round(scale)
    else:
        raise node.error("neither scales nor sizes is given")
    if factors[0] != 1 or factors[1] != 1:
        raise node.unmapped(f"factors {factors} resize the batch or the channels")
    mode = attrs["coordinate_transformation_mode"]
    limit = _NEAREST_REPLICATES.get(mode, {}).get(attrs["nearest_mode"], 0)
    if limit is not None and max(factors) > limit:
        raise node.unmapped(
            f"coordinate_transformation_mode={mode!r} with nearest_mode="
            f"{attrs['nearest_mode']!r} is not replication by factors {factors[2:]}"
        )
    c, h, w = imp.net.shape(x)
    out = tuple(d * f for d, f in zip(dims, factors[1:], strict=True))
    if rank == 3:
        factor = (1, factors[2])
    elif (c, h, w) == dims:
        factor = (factors[2], factors[3])
    elif factors[3] == 1:  # (N, C, H, 1) stored as (C, 1, H)
        factor = (1, factors[2])
    else:
        raise node.unmapped(f"an (N, C, H, 1) tensor upsampled along its last axis by {factors[3]}")
    name = imp.add(node, lambda: Upsample(factor), [x])
    imp.define(node.outputs[0], name, out)


def _channel_range(node: _Node, dims: tuple[int, ...]) -> None:
    """Reject (to the host) a channel Slice/Split input other than (N, C, H, W) or (N, C, L)."""
    if len(dims) + 1 not in (3, 4):
        raise node.unmapped(
            f"input (N, {', '.join(map(str, dims))}) is not (N, C, H, W) or (N, C, L)"
        )


def _slice(imp: _Importer, node: _Node) -> None:
    """Slice (opset 10 and later) of the channels alone, steps 1, constant starts / ends /
    axes / steps: a :class:`ChannelSlice` (the whole channel range: an alias). Every other
    axis listed must be kept whole (the batch: start 0 and an end of at least 2**31 - 1)."""
    node.attrs()
    x = imp.activation(node, 0)
    dims = imp.dims_of(node, 0)
    _channel_range(node, dims)
    rank = len(dims) + 1
    values = []
    for index, what in ((1, "starts"), (2, "ends"), (3, "axes"), (4, "steps")):
        if node.has_input(index) and node.inputs[index] not in imp.consts:
            raise node.unmapped(f"{what} must be a constant")
        values.append(imp.consts[node.inputs[index]].tolist() if node.has_input(index) else None)
    starts, ends, axes, steps = values
    axes = list(range(len(starts))) if axes is None else [int(a) % rank for a in axes]
    steps = [1] * len(starts) if steps is None else steps
    if any(step != 1 for step in steps):
        raise node.unmapped(f"steps {steps}: only 1 runs on the accelerator")
    start, stop = 0, dims[0]
    for axis, begin, end in zip(axes, starts, ends, strict=True):
        if axis == 0:
            if begin != 0 or end < 2**31 - 1:
                raise node.unmapped(f"starts {starts} / ends {ends} slice the batch")
            continue
        size = dims[axis - 1]
        begin, end = (min(max(v + size if v < 0 else v, 0), size) for v in (begin, end))
        if axis != 1:
            if (begin, end) != (0, size):
                raise node.unmapped(
                    f"axis {axis} sliced to {begin}..{end} of {size}: only channels"
                )
            continue
        start, stop = begin, end
    if stop <= start:
        raise node.unmapped(f"starts {starts} / ends {ends} give no channel")
    out = (stop - start, *dims[1:])
    if (start, stop) == (0, dims[0]):
        imp.alias(node, 0, out)
        return
    imp.define(node.outputs[0], imp.add(node, lambda: ChannelSlice(start, stop), [x]), out)


def _split(imp: _Importer, node: _Node) -> None:
    """Split along the channels (``axis`` 1), sizes from ``split`` (an attribute before
    opset 13, a constant input since), ``num_outputs`` (opset 18) or equal parts: one
    :class:`ChannelSlice` per used output."""
    attrs = node.attrs(axis=0, split=None, num_outputs=None)
    x = imp.activation(node, 0)
    dims = imp.dims_of(node, 0)
    _channel_range(node, dims)
    rank = len(dims) + 1
    if attrs["axis"] % rank != 1:
        raise node.unmapped_attr("axis", attrs["axis"], "only the channel axis (1)")
    sizes = attrs["split"]
    if node.has_input(1):
        if node.inputs[1] not in imp.consts:
            raise node.unmapped("split must be a constant")
        sizes = imp.consts[node.inputs[1]].tolist()
    parts = len(node.outputs)
    channels = dims[0]
    if sizes is None:
        size = -(-channels // parts)  # ceil: the last part smaller (opset 18), else equal
        sizes = [min(size, channels - i * size) for i in range(parts)]
    sizes = [int(v) for v in sizes]
    if len(sizes) != parts or sum(sizes) != channels or min(sizes) < 1:
        raise node.unmapped(f"split {sizes} of {channels} channels into {parts} parts")
    start = 0
    for tensor, size in zip(node.outputs, sizes, strict=True):
        begin, start = start, start + size
        if not tensor or not imp.used(tensor):
            continue
        out = (size, *dims[1:])
        name = imp.add(node, lambda b=begin, e=start: ChannelSlice(b, e), [x])
        imp.define(tensor, name, out)


def _depth_to_space(imp: _Importer, node: _Node) -> None:
    """DepthToSpace of an (N, C, H, W) tensor: a :class:`DepthToSpace` in DCR order (the
    default), a :class:`PixelShuffle` in CRD order (PyTorch's PixelShuffle)."""
    attrs = node.attrs(blocksize=None, mode="DCR")
    x = imp.activation(node, 0)
    dims = imp.dims_of(node, 0)
    b = attrs["blocksize"]
    if b is None or b < 1:
        raise node.bad("blocksize", b, "expected an int >= 1")
    if attrs["mode"] not in ("DCR", "CRD"):
        raise node.bad("mode", attrs["mode"], "expected DCR or CRD")
    if len(dims) != 3 or imp.net.shape(x) != dims:
        raise node.unmapped(f"input (N, {', '.join(map(str, dims))}) is not (N, C, H, W)")
    c, h, w = dims
    if c % (b * b):
        raise node.error(f"{c} channels are not a multiple of blocksize**2 = {b * b}")
    out = (c // (b * b), h * b, w * b)
    make = DepthToSpace if attrs["mode"] == "DCR" else PixelShuffle
    imp.define(node.outputs[0], imp.add(node, lambda: make(b), [x]), out)


def _space_to_depth(imp: _Importer, node: _Node) -> None:
    """SpaceToDepth of an (N, C, H, W) tensor: a :class:`SpaceToDepth`."""
    attrs = node.attrs(blocksize=None)
    x = imp.activation(node, 0)
    dims = imp.dims_of(node, 0)
    b = attrs["blocksize"]
    if b is None or b < 1:
        raise node.bad("blocksize", b, "expected an int >= 1")
    if len(dims) != 3 or imp.net.shape(x) != dims:
        raise node.unmapped(f"input (N, {', '.join(map(str, dims))}) is not (N, C, H, W)")
    c, h, w = dims
    if h % b or w % b:
        raise node.error(f"H x W = {h} x {w} is not a multiple of blocksize = {b}")
    out = (c * b * b, h // b, w // b)
    imp.define(node.outputs[0], imp.add(node, lambda: SpaceToDepth(b), [x]), out)


def _concat(imp: _Importer, node: _Node) -> None:
    attrs = node.attrs(axis=None)
    if any(tensor in imp.consts for tensor in node.inputs):
        raise node.unmapped("a Concat with a constant input")
    xs = [imp.activation(node, i) for i in range(len(node.inputs))]
    dims = [imp.dims_of(node, i) for i in range(len(node.inputs))]
    rank = len(dims[0]) + 1
    axis = attrs["axis"]
    if axis is None or rank < 3 or axis % rank != 1:
        raise node.unmapped_attr(
            "axis", axis, "only the channel axis (1) of (N, C, H, W) or (N, C, L) tensors"
        )
    if len({d[1:] for d in dims}) != 1 or len({len(d) for d in dims}) != 1:
        raise node.error(f"input shapes {dims} differ in more than the channels")
    out = (sum(d[0] for d in dims), *dims[0][1:])
    imp.define(node.outputs[0], imp.add(node, Concat, xs), out)


def _flatten(imp: _Importer, node: _Node) -> None:
    attrs = node.attrs(axis=1)
    x = imp.activation(node, 0)
    dims = imp.dims_of(node, 0)
    axis = attrs["axis"]
    if axis % (len(dims) + 1) != 1:
        raise node.unmapped_attr("axis", axis, "only axis=1 (keep the batch) is supported")
    flat = (math.prod(dims),)
    if _fits(flat, imp.net.shape(x)):
        imp.alias(node, 0, flat)
        return
    imp.define(node.outputs[0], imp.add(node, Flatten, [x]), flat)


def _reshape(imp: _Importer, node: _Node) -> None:
    """Reshape, Squeeze, Unsqueeze: an alias when the graph stores input and output alike
    (e.g. ``(N, C, L) <-> (N, C, 1, L)``), a Flatten to ``(N, F)``; else the host."""
    x = imp.activation(node, 0)
    dims = imp.dims_of(node, 0)
    for tensor in node.inputs[1:]:
        if tensor and tensor not in imp.consts:
            raise node.unmapped(f"its shape input {tensor!r} is computed at run time")
    constants = {t: imp.consts[t] for t in node.inputs[1:] if t}
    _, out = prepare.infer_output(
        node.proto, {node.inputs[0]: (imp.batch, *dims)}, constants, imp.opsets
    )
    if out[0] != imp.batch:
        raise node.unmapped(
            f"output shape {list(out)} does not keep the batch {imp.batch!r} as its leading "
            "dimension"
        )
    out = tuple(int(d) for d in out[1:])
    if _fits(out, imp.net.shape(x)):
        imp.alias(node, 0, out)
    elif len(out) == 1:
        imp.define(node.outputs[0], imp.add(node, Flatten, [x]), out)
    elif node.op_type == "Reshape" and _layout_chain(imp, node, x, dims, out):
        return
    else:
        target = ""
        if node.op_type == "Reshape":
            target = f"shape {imp.consts[node.inputs[1]].reshape(-1).tolist()} "
        raise node.unmapped(
            f"{target}(N, {', '.join(map(str, dims))}) -> (N, {', '.join(map(str, out))}) is "
            "not supported on the accelerator: only flattening to (N, F) and reshapes that "
            "keep the stored layout (adding or removing a unit axis after the channels)"
        )


#: Transposes of a Reshape - Transpose - Reshape chain that are layout ops: the shape
#: after the first Reshape, its perm (batch axis 0), the op; ``C``, ``H``, ``W`` of the
#: input, ``k`` the op's parameter.
_LAYOUT_CHAINS = (
    # ShuffleNet's channel shuffle: (N, g, C/g, H, W), groups swapped with channels.
    (lambda c, h, w, k: (k, c // k, h, w), (0, 2, 1, 3, 4), ChannelShuffle),
    # PixelShuffle (CRD) as exported at opsets < 11: (N, C, b, b, H, W).
    (lambda c, h, w, k: (c // (k * k), k, k, h, w), (0, 1, 4, 2, 5, 3), PixelShuffle),
    # DepthToSpace DCR written out: (N, b, b, C, H, W).
    (lambda c, h, w, k: (k, k, c // (k * k), h, w), (0, 3, 4, 1, 5, 2), DepthToSpace),
)


def _layout_chain(
    imp: _Importer, node: _Node, x: str, dims: tuple[int, ...], out: tuple[int, ...]
) -> bool:
    """Recognise ``Reshape(node) - Transpose - Reshape`` as a channel shuffle, a CRD or DCR
    depth to space (:data:`_LAYOUT_CHAINS`): add the op, define the last Reshape's output and
    absorb the other two nodes; False if the chain is none of them."""
    if len(dims) != 3 or imp.net.shape(x) != dims:
        return False
    transpose = imp.sole_consumer(node, "Transpose")
    if transpose is None:
        return False
    t_node = _Node(imp.protos[transpose])
    reshape = imp.sole_consumer(t_node, "Reshape", 0)
    if reshape is None or set(t_node._attrs) != {"perm"}:
        return False
    r_node = _Node(imp.protos[reshape])
    if any(t not in imp.consts for t in r_node.inputs[1:] if t):
        return False
    perm = tuple(int(p) for p in t_node._attrs["perm"])
    c, h, w = dims
    k = out[0] if len(out) == 4 else out[1]
    for shape_of, want_perm, make in _LAYOUT_CHAINS:
        if perm != want_perm or k < 1 or out != shape_of(c, h, w, k):
            continue
        moved = (imp.batch, *(((imp.batch, *out))[p] for p in perm[1:]))
        constants = {t: imp.consts[t] for t in r_node.inputs[1:] if t}
        _, final = prepare.infer_output(
            r_node.proto, {r_node.inputs[0]: moved}, constants, imp.opsets
        )
        final = tuple(int(d) for d in final[1:]) if final[0] == imp.batch else ()
        op = make(k)
        try:
            expected = op.infer_shape([dims])
        except ValueError:
            return False
        if final != expected:
            return False
        imp.define(r_node.outputs[0], imp.add(node, lambda op=op: op, [x]), expected)
        imp.absorbed.update((transpose, reshape))
        return True
    return False


def _identity(imp: _Importer, node: _Node) -> None:
    node.attrs()
    if node.inputs[0] in imp.consts:
        imp.consts[node.outputs[0]] = imp.consts[node.inputs[0]]
        if node.inputs[0] in imp.qconsts:
            imp.qconsts[node.outputs[0]] = imp.qconsts[node.inputs[0]]
        return
    imp.alias(node, 0, imp.dims_of(node, 0))


def _dropout(imp: _Importer, node: _Node) -> None:
    node.attrs(seed=0, ratio=0.5)  # ignored in inference
    if node.has_input(2) and bool(imp.constant(node, 2, "training_mode").reshape(-1)[0]):
        raise node.error("training_mode=True is not supported; only inference")
    imp.unused_outputs(node)
    imp.alias(node, 0, imp.dims_of(node, 0))


def _constant(imp: _Importer, node: _Node) -> None:
    attrs = node.attrs(
        value=None, value_float=None, value_floats=None, value_int=None, value_ints=None
    )
    given = {k: v for k, v in attrs.items() if v is not None}
    if len(given) != 1:
        raise node.error(f"expected exactly one value attribute, got {sorted(given)}")
    ((key, value),) = given.items()
    dtype = np.float32 if key.startswith("value_float") else None
    dtype = np.int64 if key.startswith("value_int") else dtype
    imp.consts[node.outputs[0]] = np.asarray(value, dtype=dtype)


# ---------------------------------------------------------------------------------------
# Handlers: quantisation (QDQ) and QOperator ops


def _quantize_linear(imp: _Importer, node: _Node) -> None:
    imp.quantized = True
    attrs = node.attrs(axis=1, saturate=1, block_size=0, output_dtype=0, precision=0)
    for key, ok in (("block_size", 0), ("precision", 0)):
        if attrs[key] != ok:
            raise node.bad(key, attrs[key], f"only {ok} is supported")
    scale = imp.constant(node, 1, "y_scale").astype(np.float64)
    out_type = attrs["output_dtype"]
    if node.has_input(2):
        zero_point = imp.constant(node, 2, "y_zero_point")
    elif out_type in (0, *_INT_TYPES):
        zero_point = np.zeros(scale.shape, dtype=_INT_TYPES.get(out_type, np.uint8))
    else:
        zero_point = np.zeros(scale.shape, dtype=np.float32)  # rejected below
    if out_type and _INT_TYPES.get(out_type) != zero_point.dtype:
        raise node.bad("output_dtype", out_type, "expected int8 or uint8 matching the zero point")
    if node.inputs[0] in imp.consts:  # a float initializer quantised in the graph
        x = imp.consts[node.inputs[0]].astype(np.float64)
        if zero_point.dtype.type not in _INT_TYPES.values():
            raise node.error(f"zero point dtype {zero_point.dtype} is not supported (int8, uint8)")
        shape = _axis_shape(node, x.ndim, scale, attrs["axis"])
        info = np.iinfo(zero_point.dtype)
        q = np.rint(x / scale.reshape(shape)) + zero_point.reshape(shape).astype(np.int64)
        imp.consts[node.outputs[0]] = np.clip(q, info.min, info.max).astype(zero_point.dtype)
        return
    quant = _tensor_quant(node, scale, zero_point, "y")
    x = imp.activation(node, 0)
    imp.set_quant(x, quant, node)
    imp.alias(node, 0, imp.dims_of(node, 0))


def _axis_shape(node: _Node, ndim: int, scale: np.ndarray, axis: int) -> tuple[int, ...]:
    """Broadcast shape of a per-tensor (size 1) or per-axis (1-D) scale."""
    if scale.size == 1:
        return (1,) * ndim
    if scale.ndim != 1 or not -ndim <= axis < ndim:
        raise node.bad("axis", axis, f"with scale shape {scale.shape}: blocked scales unsupported")
    shape = [1] * ndim
    shape[axis % ndim] = scale.size
    return tuple(shape)


def _dequantize_linear(imp: _Importer, node: _Node) -> None:
    imp.quantized = True
    attrs = node.attrs(axis=1, block_size=0, output_dtype=0)
    if attrs["block_size"] != 0:
        raise node.bad("block_size", attrs["block_size"], "blocked quantisation is not supported")
    if attrs["output_dtype"] not in (0, TensorProto.FLOAT):
        raise node.bad("output_dtype", attrs["output_dtype"], "only float is supported")
    scale = imp.constant(node, 1, "x_scale").astype(np.float64)
    if node.inputs[0] in imp.consts:  # quantised weights or bias
        x = imp.consts[node.inputs[0]]
        if x.dtype not in (np.int8, np.uint8, np.int32):
            raise node.error(f"x has dtype {x.dtype}; int8, uint8 or int32 are supported")
        if node.has_input(2):
            zero_point = imp.constant(node, 2, "x_zero_point")
        else:
            zero_point = np.zeros(scale.shape, dtype=x.dtype)
        shape = _axis_shape(node, x.ndim, scale, attrs["axis"])
        if not np.all(np.isfinite(scale) & (scale > 0)):
            raise node.error(f"x_scale {_show(scale)} must be finite and > 0")
        real = scale.reshape(shape) * (x.astype(np.float64) - zero_point.reshape(shape))
        axis = None if scale.size == 1 else attrs["axis"] % x.ndim
        imp.consts[node.outputs[0]] = real
        imp.qconsts[node.outputs[0]] = _QConst(x, scale, zero_point.astype(np.int64), axis)
        return
    if not node.has_input(2):
        raise node.error(
            "x_zero_point is required for a computed tensor (its type decides the meaning)"
        )
    quant = _tensor_quant(node, scale, imp.constant(node, 2, "x_zero_point"), "x")
    x = imp.activation(node, 0)
    imp.claim(x, quant, node, "x_scale/x_zero_point")
    imp.alias(node, 0, imp.dims_of(node, 0))


def _qconst(
    node: _Node, values: np.ndarray, scale: np.ndarray, zero_point: np.ndarray, axis: int
) -> _QConst:
    scale = scale.astype(np.float64)
    if not np.all(np.isfinite(scale) & (scale > 0)):
        raise node.error(f"weight scale {_show(scale)} must be finite and > 0")
    per_axis = scale.size > 1
    return _QConst(values, scale, zero_point.astype(np.int64), axis if per_axis else None)


def _qlinear_conv(imp: _Importer, node: _Node) -> None:
    imp.quantized = True
    x = imp.activation(node, 0)
    x_quant = imp.scale_zero_point(node, 1, "x")
    imp.claim(x, x_quant, node, "x_scale/x_zero_point")
    w = imp.constant(node, 3, "w")
    w_zp = imp.constant(node, 5, "w_zero_point")
    w_q = _qconst(node, w, imp.constant(node, 4, "w_scale"), w_zp, 0)
    y_quant = imp.scale_zero_point(node, 6, "y")
    weight, weight_scale = _int8_weight(node, w_q, 0, "w")
    bias = None
    if node.has_input(8):
        bias = _int32_vector(node, imp.constant(node, 8, "B"), weight.shape[0], "B")
    name, dims = _build_conv(
        imp,
        node,
        weight * weight_scale.reshape(-1, *[1] * (weight.ndim - 1)),
        None if bias is None else bias * x_quant.scale * weight_scale,
    )
    weight = _stored_weight(imp, name, weight)
    imp.int_layers[name] = _IntLayer(weight, weight_scale, bias, None)
    imp.set_quant(name, y_quant, node)
    imp.define(node.outputs[0], name, dims)


def _qlinear_linear(
    imp: _Importer, node: _Node, b_index: int, bias_index: int | None, y_index: int, trans_b: bool
) -> None:
    """QLinearMatMul / QGemm: ``a`` at 0-2, ``b`` at ``b_index`` .. + 2, output quant at
    ``y_index``; ``b`` is (in, out), or (out, in) with ``trans_b``."""
    imp.quantized = True
    x = imp.activation(node, 0)
    a_quant = imp.scale_zero_point(node, 1, "a")
    imp.claim(x, a_quant, node, "a_scale/a_zero_point")
    b = imp.constant(node, b_index, "b")
    if b.ndim != 2:
        raise node.error(f"b has shape {b.shape}; expected 2-D")
    out_axis = 0 if trans_b else 1
    b_q = _qconst(
        node,
        b,
        imp.constant(node, b_index + 1, "b_scale"),
        imp.constant(node, b_index + 2, "b_zero_point"),
        out_axis,
    )
    weight, weight_scale = _int8_weight(node, b_q, out_axis, "b")
    weight = np.ascontiguousarray(weight if trans_b else weight.T)
    bias = None
    if bias_index is not None and node.has_input(bias_index):
        bias = _int32_vector(node, imp.constant(node, bias_index, "C"), weight.shape[0], "C")
    if not node.has_input(y_index):
        raise node.error("y_scale is missing: a float output is not supported")
    y_quant = imp.scale_zero_point(node, y_index, "y")
    float_weight = weight * weight_scale.reshape(-1, 1)
    float_bias = None if bias is None else bias * a_quant.scale * weight_scale
    name = _build_linear(imp, node, float_weight, float_bias)
    imp.int_layers[name] = _IntLayer(weight, weight_scale, bias, None)
    imp.set_quant(name, y_quant, node)
    imp.define(node.outputs[0], name, (weight.shape[0],))


def _qlinear_matmul(imp: _Importer, node: _Node) -> None:
    node.attrs()
    _qlinear_linear(imp, node, 3, None, 6, trans_b=False)


def _qgemm(imp: _Importer, node: _Node) -> None:
    attrs = node.attrs(alpha=1.0, transA=0, transB=0)
    if attrs["transA"] != 0:
        raise node.bad("transA", attrs["transA"], "only transA=0 is supported")
    if attrs["alpha"] != 1.0:
        raise node.bad("alpha", attrs["alpha"], "only alpha=1 is supported")
    _qlinear_linear(imp, node, 3, 6, 7, trans_b=bool(attrs["transB"]))


def _qlinear_add(imp: _Importer, node: _Node) -> None:
    imp.quantized = True
    node.attrs()
    xs = []
    for index, what in ((0, "A"), (3, "B")):
        x = imp.activation(node, index)
        imp.claim(
            x, imp.scale_zero_point(node, index + 1, what), node, f"{what}_scale/{what}_zero_point"
        )
        xs.append(x)
    y_quant = imp.scale_zero_point(node, 6, "C")
    dims = [imp.dims_of(node, 0), imp.dims_of(node, 3)]
    if dims[0] != dims[1]:
        raise node.error(f"input shapes differ: {dims}")
    name = imp.add(node, Add, xs)
    imp.set_quant(name, y_quant, node)
    imp.define(node.outputs[0], name, dims[0])


def _qlinear_mul(imp: _Importer, node: _Node) -> None:
    """com.microsoft QLinearMul (A, A_scale, A_zero_point, B, B_scale, B_zero_point,
    C_scale, C_zero_point): the VMUL of :func:`_mul`, with these quantisations."""
    imp.quantized = True
    node.attrs()
    for index, what in ((0, "A"), (3, "B")):
        x = imp.activation(node, index)
        imp.claim(
            x, imp.scale_zero_point(node, index + 1, what), node, f"{what}_scale/{what}_zero_point"
        )
    y_quant = imp.scale_zero_point(node, 6, "C")
    name, dims = _add_mul(imp, node, (0, 3))
    imp.set_quant(name, y_quant, node)
    imp.define(node.outputs[0], name, dims)


def _qlinear_global_average_pool(imp: _Importer, node: _Node) -> None:
    imp.quantized = True
    attrs = node.attrs(channels_last=0)
    if attrs["channels_last"] != 0:
        raise node.bad("channels_last", attrs["channels_last"], "only NCHW (0) is supported")
    x = imp.activation(node, 0)
    image = _image_shape(imp, node)
    imp.claim(x, imp.scale_zero_point(node, 1, "x"), node, "x_scale/x_zero_point")
    y_quant = imp.scale_zero_point(node, 3, "y")
    name = imp.add(node, GlobalAvgPool, [x])
    imp.set_quant(name, y_quant, node)
    imp.define(node.outputs[0], name, (image.c,) + (1,) * image.spatial)


def _qlinear_pointwise(function: str) -> Callable[[_Importer, _Node], None]:
    """com.microsoft QLinearSigmoid / QLinearLeakyRelu (``alpha``): X, X_scale,
    X_zero_point, Y_scale, Y_zero_point, as the table of :func:`_pointwise`."""

    def handler(imp: _Importer, node: _Node) -> None:
        imp.quantized = True
        params = node.attrs(**POINTWISE[function])
        x = imp.activation(node, 0)
        imp.claim(x, imp.scale_zero_point(node, 1, "X"), node, "X_scale/X_zero_point")
        name = imp.add(node, lambda: Pointwise(function, params), [x])
        imp.set_quant(name, imp.scale_zero_point(node, 3, "Y"), node)
        imp.define(node.outputs[0], name, imp.dims_of(node, 0))

    return handler


#: Default-domain ONNX op -> handler.
HANDLERS: dict[str, Callable[[_Importer, _Node], None]] = {
    "Add": _add,
    "Mul": _mul,
    "AveragePool": partial(_pool, average=True),
    "BatchNormalization": _batch_norm,
    "Clip": _clip,
    "Concat": _concat,
    "Constant": _constant,
    "Conv": _conv,
    "DepthToSpace": _depth_to_space,
    "ConvTranspose": _conv_transpose,
    "DequantizeLinear": _dequantize_linear,
    "Div": _div,
    "Dropout": _dropout,
    "Flatten": _flatten,
    "Gelu": _pointwise,
    "Gemm": _gemm,
    "GlobalAveragePool": _global_average_pool,
    "Identity": _identity,
    "MatMul": _matmul,
    "MaxPool": partial(_pool, average=False),
    "QLinearConv": _qlinear_conv,
    "QLinearMatMul": _qlinear_matmul,
    "Pad": _pad,
    "QuantizeLinear": _quantize_linear,
    "PRelu": _prelu,
    "ReduceMean": _reduce_mean,
    "Relu": _activation("relu"),
    "Reshape": _reshape,
    "Resize": _resize,
    "Slice": _slice,
    "SpaceToDepth": _space_to_depth,
    "Split": _split,
    "Squeeze": _reshape,
    "Sum": _sum,
    "Unsqueeze": _reshape,
    **dict.fromkeys(_POINTWISE_OPS, _pointwise),
}

#: ``com.microsoft`` op -> handler (onnxruntime's quantised contrib ops).
MICROSOFT_HANDLERS: dict[str, Callable[[_Importer, _Node], None]] = {
    "QGemm": _qgemm,
    "QLinearAdd": _qlinear_add,
    "QLinearMul": _qlinear_mul,
    "QLinearAveragePool": partial(_pool, average=True, qlinear=True),
    "QLinearGlobalAveragePool": _qlinear_global_average_pool,
    "QLinearLeakyRelu": _qlinear_pointwise("leakyrelu"),
    "QLinearSigmoid": _qlinear_pointwise("sigmoid"),
}
