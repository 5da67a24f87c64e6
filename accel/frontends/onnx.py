"""ONNX import: float models to a :class:`~accel.graph.Network`, int8 models to a
:class:`~accel.quantized.QuantizedNetwork`.

:func:`load` walks the graph once, in its (topological) node order, with one handler per ONNX
op (:data:`HANDLERS`). Every attribute a handler does not implement exactly, and every op
without a handler, raises ``ValueError("node 'name' (OpType): ...")`` naming the attribute
and the value: nothing is approximated. ``docs/onnx.md`` lists what is supported and how
ONNX quantisation parameters map to our requantisation.

Float models: Conv, Gemm, MatMul (+ Add of a constant as its bias), Relu, Clip (relu /
relu6), MaxPool, AveragePool, GlobalAveragePool, Add, Concat, Flatten, Reshape to ``(N, -1)``,
BatchNormalization (folded into the preceding Conv), Identity, Dropout. Activations are fused
into their producers with :func:`accel.graph.fuse_activations`.

Quantised models (any QuantizeLinear, DequantizeLinear or QLinear* node makes the result a
:class:`~accel.quantized.QuantizedNetwork`), in either form:

* **QDQ**: ``DequantizeLinear`` of int8 initializers gives int8 weights (per-tensor or per
  output channel, zero point 0) and int32 biases; the float ops between
  ``DequantizeLinear`` and ``QuantizeLinear`` of activations become int8 layers whose output
  quantisation is that of the ``QuantizeLinear`` after them (after a fused Relu/Clip).
* **QOperator**: QLinearConv, QLinearMatMul, the ``com.microsoft`` QGemm, QLinearAdd,
  QLinearAveragePool and QLinearGlobalAveragePool, int8 MaxPool / Flatten / Reshape /
  Concat, QuantizeLinear at the inputs and DequantizeLinear at the outputs.

uint8 tensors are converted exactly to int8 (``q - 128`` with zero point ``zp - 128``). Every
node of the result records the ONNX tensors it stands for in ``meta["onnx_tensors"]``;
:func:`tensor_map` inverts that.

Examples
--------
>>> from accel import executor
>>> net = load("model.onnx")  # doctest: +SKIP
>>> executor.run_network(net, {"input": x})  # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import onnx
import onnx.external_data_helper
from google.protobuf.message import DecodeError
from onnx import TensorProto, helper, numpy_helper

from accel import numerics
from accel.files import read_bytes
from accel.graph import (
    Activation,
    Add,
    AvgPool2d,
    Concat,
    Conv2d,
    Flatten,
    GlobalAvgPool,
    Input,
    Linear,
    MaxPool2d,
    Network,
    Op,
    fuse_activations,
)
from accel.quantized import (
    AddQuant,
    ConvQuant,
    PoolQuant,
    QuantizedNetwork,
    TensorQuant,
    avg_pool_count,
    multiplier_for,
)

__all__ = ["HANDLERS", "MICROSOFT_HANDLERS", "MIN_OPSET", "load", "tensor_map"]

#: Oldest default-domain opset accepted (Clip bounds and Dropout changed before it).
MIN_OPSET = 11
#: Ops whose int8 output must have the quantisation of their inputs.
_SHARED_QUANT = (MaxPool2d, Flatten, Concat, Activation)
#: Ops whose output takes the input quantisation when no QuantizeLinear follows them.
_INHERIT_QUANT = (*_SHARED_QUANT, AvgPool2d, GlobalAvgPool)
#: Ops evaluated ahead of the main pass when all their inputs are constants.
_CONSTANT_FOLDABLE = ("Constant", "Identity", "QuantizeLinear", "DequantizeLinear")
_INT_TYPES = {TensorProto.INT8: np.int8, TensorProto.UINT8: np.uint8}


# ---------------------------------------------------------------------------------------
# Public API


def load(model: str | os.PathLike[str] | onnx.ModelProto) -> Network | QuantizedNetwork:
    """Import an ONNX model.

    Parameters
    ----------
    model : path or onnx.ModelProto
        The model; it must pass ``onnx.checker.check_model`` and use default-domain opset
        ``>= MIN_OPSET``. Inputs are ``(N, C, H, W)`` tensors with a static ``C, H, W`` and
        any (also symbolic) batch ``N``; each becomes an :class:`~accel.graph.Input` named
        after it.

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
    where = "invalid ONNX model"
    if isinstance(model, (str, os.PathLike)):
        path = os.fspath(model)
        where = f"{path}: invalid ONNX model"
        data = read_bytes(path, what="ONNX model")
        try:
            model = onnx.load_model_from_string(data)
        except DecodeError as exc:
            raise ValueError(f"{path}: not an ONNX model, or a truncated one ({exc})") from None
        try:
            onnx.external_data_helper.load_external_data_for_model(
                model, os.path.dirname(os.path.abspath(path))
            )
        except (OSError, ValueError, onnx.checker.ValidationError) as exc:
            raise ValueError(f"{path}: cannot read its external data: {exc}") from None
    elif not isinstance(model, onnx.ModelProto):
        raise TypeError(f"model must be a path or an onnx.ModelProto, got {type(model).__name__}")
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        raise ValueError(f"{where}: {exc}") from None
    except UnicodeDecodeError as exc:  # a damaged string field
        raise ValueError(f"{where}: a name or string is not UTF-8 ({exc.reason})") from None
    return _Importer(model).run()


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


# ---------------------------------------------------------------------------------------
# Nodes and their attributes


class _NodeError(ValueError):
    """A ValueError whose message already names the node."""


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


class _Importer:
    def __init__(self, model: onnx.ModelProto) -> None:
        opsets = {o.domain or "ai.onnx": o.version for o in model.opset_import}
        if opsets.get("ai.onnx", 0) < MIN_OPSET:
            raise ValueError(
                f"default-domain opset {opsets.get('ai.onnx')} is not supported; "
                f"need >= {MIN_OPSET}"
            )
        graph = model.graph
        self.protos = list(graph.node)
        self.net = Network(graph.name or "onnx")
        self.consts: dict[str, np.ndarray] = {
            init.name: numpy_helper.to_array(init) for init in graph.initializer
        }
        self.qconsts: dict[str, _QConst] = {}
        self.nodes_of: dict[str, str] = {}  # ONNX activation tensor -> network node
        self.op_types: dict[str, str] = {}  # network node -> ONNX op type
        self.quant: dict[str, TensorQuant] = {}  # network node -> its output quantisation
        self.claims: list[tuple[str, TensorQuant, _Node, str]] = []
        self.int_layers: dict[str, _IntLayer] = {}
        self.quantized = False
        self.absorbed: set[int] = set()  # indices of nodes folded into an earlier one
        self.graph_outputs = [o.name for o in graph.output]
        self.consumers: dict[str, list[int]] = {}
        for index, proto in enumerate(self.protos):
            for name in proto.input:
                self.consumers.setdefault(name, []).append(index)
        self.batch: int | None = None
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
        if len(dims) != 4 or any(d is None or d < 1 for d in dims[1:]):
            shown = ["?" if d is None else d for d in dims]
            raise ValueError(
                f"input {label!r}: shape {shown} is not supported; expected (N, C, H, W) with "
                "static C, H, W (N may be symbolic)"
            )
        if dims[0]:
            self.batch = dims[0] if self.batch in (None, dims[0]) else None
        name = self.unique(label)
        self.net.add(name, Input(tuple(dims[1:])))
        self.nodes_of[label] = name
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

    def define(self, tensor: str, name: str) -> None:
        """ONNX ``tensor`` is the output of network node ``name``."""
        self.nodes_of[tensor] = name

    def unused_outputs(self, node: _Node, first: int = 1) -> None:
        for index, tensor in enumerate(node.outputs[first:], first):
            if tensor and self.used(tensor):
                raise node.error(f"output {index} ({tensor!r}) is used; it is not supported")

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
        for index, proto in enumerate(self.protos):
            if index in self.absorbed:
                continue
            node = _Node(proto)
            handler = HANDLERS.get(proto.op_type) if proto.domain in ("", "ai.onnx") else None
            if proto.domain == "com.microsoft":
                handler = MICROSOFT_HANDLERS.get(proto.op_type)
            if handler is None:
                domain = f" (domain {proto.domain!r})" if proto.domain else ""
                raise node.error(
                    f"op {proto.op_type!r}{domain} is not supported; supported ops: "
                    f"{', '.join(sorted(HANDLERS))}, com.microsoft "
                    f"{', '.join(sorted(MICROSOFT_HANDLERS))}"
                )
            handler(self, node)
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
        layers: dict[str, ConvQuant | PoolQuant | AddQuant] = {}
        for name in fused.layers():
            op = fused.op(name)
            label = f"node {name!r} ({self.op_types[name]})"
            t_ins = [tensors[src] for src in fused.inputs(name)]
            t_out = tensors[name]
            try:
                if isinstance(op, (Conv2d, Linear)):
                    layers[name] = self._conv_quant(label, name, op, t_ins[0], t_out)
                elif isinstance(op, (AvgPool2d, GlobalAvgPool)):
                    count = avg_pool_count(fused, name)
                    real = t_ins[0].scale / (t_out.scale * count)
                    layers[name] = PoolQuant(*multiplier_for(real, "pool rescale"))
                elif isinstance(op, Add):
                    layers[name] = AddQuant.for_scales(t_ins, t_out, op.activation)
            except _NodeError:
                raise
            except ValueError as exc:
                message = re.sub(r"^node '[^']*' \(\w+\): ", "", str(exc))
                raise _NodeError(f"{label}: {message}") from None
        return QuantizedNetwork(fused, tensors, layers)

    def _conv_quant(
        self, label: str, name: str, op: Conv2d | Linear, t_in: TensorQuant, t_out: TensorQuant
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


def _image_shape(imp: _Importer, node: _Node, name: str) -> tuple[int, int, int]:
    shape = imp.net.shape(name)
    if len(shape) != 3:
        raise node.error(
            f"input has shape (N, {', '.join(map(str, shape))}); expected (N, C, H, W)"
        )
    return shape  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------
# Handlers: float ops (also the float core of QDQ models)


def _build_conv(
    imp: _Importer, node: _Node, x: str, weight: np.ndarray, bias: np.ndarray | None
) -> str:
    attrs = node.attrs(
        auto_pad="NOTSET", dilations=None, group=1, kernel_shape=None, pads=None, strides=None
    )
    c, h, w = _image_shape(imp, node, x)
    if weight.ndim != 4:
        raise node.error(f"weight has shape {weight.shape}; only 2-D convolutions are supported")
    k = weight.shape[0]
    kernel = weight.shape[2:]
    if attrs["kernel_shape"] is not None and list(attrs["kernel_shape"]) != list(kernel):
        raise node.bad("kernel_shape", attrs["kernel_shape"], f"weight shape is {weight.shape}")
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
    return name


def _conv(imp: _Importer, node: _Node) -> None:
    x = imp.activation(node, 0)
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
    name = _build_conv(imp, node, x, weight, bias)
    if w_q is not None or b_q is not None:
        imp.int_layers[name] = _int_layer(node, w_q, b_q, bias, 0, weight.shape[0])
    imp.define(output, name)


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
    return weight * factor.reshape(k, 1, 1, 1), folded_bias


def _batch_norm(imp: _Importer, node: _Node) -> None:
    raise node.error(
        "BatchNormalization is supported only directly after a float Conv whose output it "
        "alone reads (it is folded into the Conv's weights and bias)"
    )


def _vector(node: _Node, value: np.ndarray, k: int, what: str) -> np.ndarray:
    """A bias of shape (), (1,), (K,) or (1, K) as a (K,) vector."""
    if value.shape in ((k,), (1, k)):
        return value.reshape(k)
    if value.size == 1 and value.ndim <= 1:
        return np.full(k, value.reshape(-1)[0])
    raise node.error(f"{what} has shape {value.shape}; expected ({k},) or (1, {k})")


def _build_linear(
    imp: _Importer, node: _Node, x: str, weight: np.ndarray, bias: np.ndarray | None
) -> str:
    """A Linear ``x @ weight.T + bias`` for a 2-D ``(N, F)`` input; weight ``(out, in)``."""
    shape = imp.net.shape(x)
    if len(shape) != 1:
        raise node.error(
            f"input has shape (N, {', '.join(map(str, shape))}); a matrix product needs a 2-D "
            "(N, F) input (insert a Flatten)"
        )
    out_features, in_features = weight.shape
    if in_features != shape[0]:
        raise node.error(f"weight has {in_features} input features, the input has {shape[0]}")
    name = imp.add(node, lambda: Linear(in_features, out_features, bias is not None), [x])
    with _named(node):
        imp.net.set_weights(name, weight, bias)
    return name


def _gemm(imp: _Importer, node: _Node) -> None:
    attrs = node.attrs(alpha=1.0, beta=1.0, transA=0, transB=0)
    if attrs["transA"] != 0:
        raise node.bad("transA", attrs["transA"], "only transA=0 is supported")
    if attrs["alpha"] != 1.0:
        raise node.bad("alpha", attrs["alpha"], "only alpha=1 is supported")
    if attrs["beta"] != 1.0 and node.has_input(2):
        raise node.bad("beta", attrs["beta"], "only beta=1 is supported")
    x = imp.activation(node, 0)
    b, b_q = imp.weight(node, 1, "B")
    if b.ndim != 2:
        raise node.error(f"B has shape {b.shape}; expected 2-D")
    out_axis = 0 if attrs["transB"] else 1
    weight = b if attrs["transB"] else b.T
    c, c_q = imp.weight(node, 2, "C") if node.has_input(2) else (None, None)
    bias = None if c is None else _vector(node, c, weight.shape[0], "C")
    name = _build_linear(imp, node, x, weight, bias)
    _linear_int_layer(imp, node, name, b_q, c_q, bias, out_axis)
    imp.define(node.outputs[0], name)


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
    x = imp.activation(node, 0)
    b, b_q = imp.weight(node, 1, "B")
    if b.ndim != 2:
        raise node.error(f"B has shape {b.shape}; expected 2-D (a plain matrix product)")
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
    name = _build_linear(imp, node, x, b.T, bias)
    _linear_int_layer(imp, node, name, b_q, c_q, bias, 1)
    imp.define(output, name)


def _activation(kind: str) -> Callable[[_Importer, _Node], None]:
    def handler(imp: _Importer, node: _Node) -> None:
        node.attrs()
        x = imp.activation(node, 0)
        imp.define(node.outputs[0], imp.add(node, lambda: Activation(kind), [x]))

    return handler


def _clip(imp: _Importer, node: _Node) -> None:
    attrs = node.attrs(min=None, max=None)  # attributes before opset 11, inputs since
    bounds = []
    for index, key in ((1, "min"), (2, "max")):
        value = attrs[key]
        if node.has_input(index):
            value = float(imp.constant(node, index, key).reshape(-1)[0])
        bounds.append(None if value is None or value >= np.finfo(np.float32).max else value)
    low, high = bounds
    if low == 0.0 and high is None:
        kind = "relu"
    elif low == 0.0 and high == 6.0:
        kind = "relu6"
    else:
        raise node.error(
            f"Clip(min={low}, max={high}) is not supported; only min=0 without max (relu) "
            "and min=0, max=6 (relu6)"
        )
    x = imp.activation(node, 0)
    imp.define(node.outputs[0], imp.add(node, lambda: Activation(kind), [x]))


def _pool(imp: _Importer, node: _Node, average: bool, qlinear: bool = False) -> None:
    """MaxPool, AveragePool and com.microsoft QLinearAveragePool (X, x_scale, x_zero_point,
    y_scale, y_zero_point)."""
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
    x = imp.activation(node, 0)
    _, h, w = _image_shape(imp, node, x)
    if attrs["kernel_shape"] is None:
        raise node.error("attribute kernel_shape is required")
    kernel = _pair_attr(node, "kernel_shape", attrs["kernel_shape"], 1, 1)
    stride = _pair_attr(node, "strides", attrs["strides"], 1, 1)
    if _pair_attr(node, "dilations", attrs["dilations"], 1, 1) != (1, 1):
        raise node.bad("dilations", attrs["dilations"], "dilated pooling is not supported")
    if attrs.get("storage_order", 0) != 0:
        raise node.bad("storage_order", attrs["storage_order"], "only 0 (row major) is supported")
    ceil_mode = attrs["ceil_mode"]
    if ceil_mode not in (0, 1):
        raise node.bad("ceil_mode", ceil_mode, "expected 0 or 1")
    if ceil_mode and attrs["auto_pad"] != "NOTSET":
        raise node.bad("ceil_mode", ceil_mode, f"not supported with auto_pad={attrs['auto_pad']!r}")
    padding = _window_pads(node, attrs, (h, w), kernel, stride, (1, 1))
    if padding[0] != padding[1] or padding[2] != padding[3]:
        raise node.error(
            f"pads (top, bottom, left, right)={padding} are not supported: pooling pads must be "
            "symmetric (top == bottom, left == right)"
        )
    imp.unused_outputs(node)
    include_pad = bool(attrs.get("count_include_pad"))

    def make() -> Op:
        if average:
            return AvgPool2d(kernel, stride, padding, bool(ceil_mode), include_pad)
        return MaxPool2d(kernel, stride, padding, bool(ceil_mode))

    name = imp.add(node, make, [x])
    if qlinear:
        imp.quantized = True
        imp.claim(x, imp.scale_zero_point(node, 1, "x"), node, "x_scale/x_zero_point")
        imp.set_quant(name, imp.scale_zero_point(node, 3, "y"), node)
    imp.define(node.outputs[0], name)


def _global_average_pool(imp: _Importer, node: _Node) -> None:
    node.attrs()
    x = imp.activation(node, 0)
    _image_shape(imp, node, x)
    imp.define(node.outputs[0], imp.add(node, GlobalAvgPool, [x]))


def _add(imp: _Importer, node: _Node) -> None:
    node.attrs()
    for index, tensor in enumerate(node.inputs):
        if tensor in imp.consts:
            raise node.error(
                f"input {index} ({tensor!r}) is a constant; an Add of a constant is supported "
                "only as the bias of a MatMul whose output it alone reads"
            )
    xs = [imp.activation(node, 0), imp.activation(node, 1)]
    imp.define(node.outputs[0], imp.add(node, Add, xs))


def _rank(imp: _Importer, name: str) -> int:
    return len(imp.net.shape(name)) + 1


def _concat(imp: _Importer, node: _Node) -> None:
    attrs = node.attrs(axis=None)
    xs = [imp.activation(node, i) for i in range(len(node.inputs))]
    rank = _rank(imp, xs[0])
    axis = attrs["axis"]
    if axis is None or rank != 4 or axis % rank != 1:
        raise node.bad("axis", axis, "only the channel axis (1) of 4-D tensors is supported")
    imp.define(node.outputs[0], imp.add(node, Concat, xs))


def _flatten(imp: _Importer, node: _Node) -> None:
    attrs = node.attrs(axis=1)
    x = imp.activation(node, 0)
    axis = attrs["axis"]
    if axis % _rank(imp, x) != 1:
        raise node.bad("axis", axis, "only axis=1 (keep the batch) is supported")
    imp.define(node.outputs[0], imp.add(node, Flatten, [x]))


def _reshape(imp: _Importer, node: _Node) -> None:
    attrs = node.attrs(allowzero=0)
    x = imp.activation(node, 0)
    target = [int(v) for v in imp.constant(node, 1, "shape").reshape(-1)]
    size = math.prod(imp.net.shape(x))
    batches = [imp.batch] if imp.batch is not None else []  # a literal N needs a static N
    if attrs["allowzero"] == 0:
        batches.append(0)  # 0 copies the input's N
    if target not in ([n, m] for n in batches for m in (-1, size)) and target != [-1, size]:
        raise node.error(
            f"shape {target} is not supported; only a flatten to (N, -1) is "
            f"([0, -1], [-1, {size}] or [N, -1] with a static batch N)"
        )
    imp.define(node.outputs[0], imp.add(node, Flatten, [x]))


def _identity(imp: _Importer, node: _Node) -> None:
    node.attrs()
    if node.inputs[0] in imp.consts:
        imp.consts[node.outputs[0]] = imp.consts[node.inputs[0]]
        if node.inputs[0] in imp.qconsts:
            imp.qconsts[node.outputs[0]] = imp.qconsts[node.inputs[0]]
        return
    imp.define(node.outputs[0], imp.activation(node, 0))


def _dropout(imp: _Importer, node: _Node) -> None:
    node.attrs(seed=0, ratio=0.5)  # ignored in inference
    if node.has_input(2) and bool(imp.constant(node, 2, "training_mode").reshape(-1)[0]):
        raise node.error("training_mode=True is not supported; only inference")
    imp.unused_outputs(node)
    imp.define(node.outputs[0], imp.activation(node, 0))


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
    imp.define(node.outputs[0], x)


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
    imp.define(node.outputs[0], x)


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
    name = _build_conv(
        imp,
        node,
        x,
        weight * weight_scale.reshape(-1, 1, 1, 1),
        None if bias is None else bias * x_quant.scale * weight_scale,
    )
    imp.int_layers[name] = _IntLayer(weight, weight_scale, bias, None)
    imp.set_quant(name, y_quant, node)
    imp.define(node.outputs[0], name)


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
    name = _build_linear(imp, node, x, float_weight, float_bias)
    imp.int_layers[name] = _IntLayer(weight, weight_scale, bias, None)
    imp.set_quant(name, y_quant, node)
    imp.define(node.outputs[0], name)


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
    name = imp.add(node, Add, xs)
    imp.set_quant(name, y_quant, node)
    imp.define(node.outputs[0], name)


def _qlinear_global_average_pool(imp: _Importer, node: _Node) -> None:
    imp.quantized = True
    attrs = node.attrs(channels_last=0)
    if attrs["channels_last"] != 0:
        raise node.bad("channels_last", attrs["channels_last"], "only NCHW (0) is supported")
    x = imp.activation(node, 0)
    _image_shape(imp, node, x)
    imp.claim(x, imp.scale_zero_point(node, 1, "x"), node, "x_scale/x_zero_point")
    y_quant = imp.scale_zero_point(node, 3, "y")
    name = imp.add(node, GlobalAvgPool, [x])
    imp.set_quant(name, y_quant, node)
    imp.define(node.outputs[0], name)


#: Default-domain ONNX op -> handler.
HANDLERS: dict[str, Callable[[_Importer, _Node], None]] = {
    "Add": _add,
    "AveragePool": partial(_pool, average=True),
    "BatchNormalization": _batch_norm,
    "Clip": _clip,
    "Concat": _concat,
    "Constant": _constant,
    "Conv": _conv,
    "DequantizeLinear": _dequantize_linear,
    "Dropout": _dropout,
    "Flatten": _flatten,
    "Gemm": _gemm,
    "GlobalAveragePool": _global_average_pool,
    "Identity": _identity,
    "MatMul": _matmul,
    "MaxPool": partial(_pool, average=False),
    "QLinearConv": _qlinear_conv,
    "QLinearMatMul": _qlinear_matmul,
    "QuantizeLinear": _quantize_linear,
    "Relu": _activation("relu"),
    "Reshape": _reshape,
}

#: ``com.microsoft`` op -> handler (onnxruntime's quantised contrib ops).
MICROSOFT_HANDLERS: dict[str, Callable[[_Importer, _Node], None]] = {
    "QGemm": _qgemm,
    "QLinearAdd": _qlinear_add,
    "QLinearAveragePool": partial(_pool, average=True, qlinear=True),
    "QLinearGlobalAveragePool": _qlinear_global_average_pool,
}
