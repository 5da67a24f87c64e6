"""Ops that run on the host, between accelerator segments: :class:`accel.graph.HostOp`.

A host op carries a single-node ONNX model (:func:`host_op` builds one); it runs with ONNX's
own reference implementation (``onnx.reference``, with the corrections of
:func:`reference_evaluator`) in float32, which is what "the golden model" means for an op the
accelerator does not implement. In an int8 network a host op
takes int8 tensors and gives int8 tensors: its inputs are dequantised with their
:class:`~accel.quantized.TensorQuant`, the op runs in float, and the result is quantised with
the output's (round half to even, saturating), the way a host CPU would run it between two
accelerator segments.
"""

from __future__ import annotations

import base64
import functools
from collections.abc import Mapping, Sequence

import numpy as np
import onnx
from numpy.typing import NDArray
from onnx import helper, numpy_helper

from accel.graph import HostOp, Shape
from accel.quantized import TensorQuant

__all__ = ["host_op", "macs", "reference_evaluator", "run_float", "run_int8"]

#: The batch dimension of a host op model's inputs and output.
BATCH = "N"


def host_op(
    node: onnx.NodeProto,
    inputs: Sequence[tuple[str, Sequence[int]]],
    constants: Mapping[str, np.ndarray],
    output: Sequence[int],
    out_shape: Shape,
    opset_imports: Sequence[onnx.OperatorSetIdProto],
    *,
    index: int = 0,
) -> HostOp:
    """A :class:`HostOp` computing output ``index`` of ``node``.

    ``inputs`` are the node's tensor inputs (ONNX name, shape without the batch), in the order
    the graph feeds them; ``constants`` its constant inputs; ``output`` the ONNX shape of that
    output without the batch and ``out_shape`` the same output as the graph stores it.
    """
    graph = helper.make_graph(
        [node],
        f"host_{node.op_type}",
        [
            helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, [BATCH, *shape])
            for name, shape in inputs
        ],
        [
            helper.make_tensor_value_info(
                node.output[index], onnx.TensorProto.FLOAT, [BATCH, *output]
            )
        ],
        [numpy_helper.from_array(np.asarray(v), name) for name, v in constants.items()],
    )
    model = helper.make_model(graph, opset_imports=list(opset_imports))
    encoded = base64.b64encode(model.SerializeToString()).decode("ascii")
    return HostOp(op_type=node.op_type, out_shape=tuple(out_shape), model=encoded)


def reference_evaluator(model: onnx.ModelProto):
    """``onnx.reference.ReferenceEvaluator(model)`` with the corrections of
    :func:`_corrections`: the ONNX semantics of every op, as onnxruntime computes them."""
    from onnx.reference import ReferenceEvaluator

    return ReferenceEvaluator(model, new_ops=_corrections())


@functools.cache
def _corrections() -> list[type]:
    """Implementations replacing ``onnx.reference``'s where it departs from the ONNX spec
    (``onnx`` 1.23; each is compared with onnxruntime in ``tests/test_accel_onnx_prepare.py``):

    * ``LRN``: the reference sums the squares only for the first ``N`` (batch) channels.
    * ``BatchNormalization`` (opsets 9 to 13): the reference mixes batch statistics into the
      running ones whenever ``momentum`` is set (a training attribute): inference is
      ``scale * (x - mean) / sqrt(var + epsilon) + B``.
    * ``ConvTranspose`` with ``group > 1``: the reference fails; it runs group by group.
    """
    from onnx.reference.op_run import OpRun
    from onnx.reference.ops.op_conv_transpose import ConvTranspose as Reference

    def channel_shape(x: np.ndarray) -> tuple[int, ...]:
        return (1, -1) + (1,) * (x.ndim - 2)

    class LRN(OpRun):
        op_domain = ""

        def _run(self, x, alpha=None, beta=None, bias=None, size=None):
            squares = x.astype(np.float64) ** 2
            channels = x.shape[1]
            total = np.zeros_like(squares)
            before, after = (size - 1) // 2, -(-(size - 1) // 2)
            for c in range(channels):
                total[:, c] = squares[:, max(0, c - before) : min(channels, c + after + 1)].sum(1)
            return ((x / (bias + alpha / size * total) ** beta).astype(x.dtype),)

    class BatchNormalization(OpRun):
        op_domain = ""

        def _run(self, x, scale, bias, mean, var, epsilon=None, momentum=None, training_mode=None):
            if training_mode:
                raise ValueError("BatchNormalization: training_mode=1 is not inference")
            shape = channel_shape(x)
            y = (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + epsilon)
            return ((y * scale.reshape(shape) + bias.reshape(shape)).astype(x.dtype),)

    class ConvTranspose(Reference):
        op_domain = ""

        def _run(self, X, W, B=None, group=None, **attributes):
            if not group or group == 1:
                return super()._run(X, W, B, group=1, **attributes)
            per_out = W.shape[1]
            outputs = [
                super(ConvTranspose, self)._run(
                    x,
                    w,
                    None if B is None else B[g * per_out : (g + 1) * per_out],
                    group=1,
                    **attributes,
                )[0]
                for g, (x, w) in enumerate(
                    zip(np.split(X, group, axis=1), np.split(W, group, axis=0), strict=True)
                )
            ]
            return (np.concatenate(outputs, axis=1),)

    return [LRN, BatchNormalization, ConvTranspose]


@functools.lru_cache(maxsize=256)
def _evaluator(encoded: str):
    model = onnx.load_model_from_string(base64.b64decode(encoded))
    dims = [
        tuple(d.dim_value for d in value.type.tensor_type.shape.dim[1:])
        for value in model.graph.input
    ]
    names = [value.name for value in model.graph.input]
    return reference_evaluator(model), names, dims


@functools.lru_cache(maxsize=1024)
def macs(op: HostOp) -> int:
    """Multiply-accumulates of one image through ``op`` when it is a ``Conv``,
    ``ConvTranspose``, ``Gemm`` or ``MatMul`` with a constant weight (what the accelerator
    would count for it); 0 for every other op (elementwise, layout, normalisation ops have
    no MACs in this project's count)."""
    model = onnx.load_model_from_string(base64.b64decode(op.model))
    node = model.graph.node[0]
    weights = {init.name: tuple(init.dims) for init in model.graph.initializer}
    if len(node.input) < 2 or node.input[1] not in weights:
        return 0
    weight = int(np.prod(weights[node.input[1]]))
    dims = {
        value.name: tuple(d.dim_value for d in value.type.tensor_type.shape.dim[1:])
        for value in model.graph.input
    }
    if node.op_type == "Conv":  # K x C/g x kernel, once per output pixel
        return weight * int(np.prod(op.out_shape[1:]))
    if node.op_type == "ConvTranspose":  # C x K/g x kernel, once per input pixel
        return weight * int(np.prod(dims[node.input[0]][1:]))
    if node.op_type == "Gemm":
        return weight
    if node.op_type == "MatMul":
        return weight * int(np.prod(dims[node.input[0]][:-1]))
    return 0


def run_float(op: HostOp, xs: Sequence[NDArray]) -> NDArray[np.float64]:
    """The op on float inputs with a leading batch axis; float64 of shape ``(N, *out_shape)``."""
    evaluator, names, dims = _evaluator(op.model)
    if len(xs) != len(names):
        raise ValueError(f"{op.op_type} takes {len(names)} inputs, got {len(xs)}")
    batch = len(xs[0])
    feeds = {
        name: np.asarray(x, dtype=np.float32).reshape(batch, *shape)
        for name, x, shape in zip(names, xs, dims, strict=True)
    }
    (y, *_) = evaluator.run(None, feeds)
    return np.asarray(y, dtype=np.float64).reshape(batch, *op.out_shape)


def run_int8(
    op: HostOp, xs: Sequence[NDArray[np.int8]], inputs: Sequence[TensorQuant], output: TensorQuant
) -> NDArray[np.int8]:
    """The op on int8 tensors: dequantise, run in float, quantise with ``output``."""
    real = [quant.dequantize(x) for quant, x in zip(inputs, xs, strict=True)]
    return output.quantize(run_float(op, real))
