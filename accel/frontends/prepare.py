"""ONNX models as users have them, made ready for the importer (:mod:`accel.frontends.onnx`).

* :func:`upgrade`: a model whose default-domain opset is older than :data:`MIN_OPSET` is
  converted to :data:`TARGET_OPSET` with ``onnx.version_converter`` (the handlers only ever
  see opset ``>= MIN_OPSET`` semantics); the note it returns says so.
* :func:`evaluate`: one node on constant inputs, with ONNX's reference implementation
  (``onnx.reference``, corrected as the host runs it: :func:`accel.host.reference_evaluator`):
  how constant subgraphs (Shape / Gather / Concat / ConstantOfShape /
  Cast ... chains, weights computed in the graph) fold at import.
* :func:`infer_output`: the type and shape of one output of one node, given the shapes of its
  computed inputs (ONNX shape inference on a one-node model, or running it on zeros when
  inference leaves a dimension unknown).

Every failure is a ``ValueError`` naming the model or the node.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import onnx
import onnx.version_converter
from onnx import TensorProto, helper, numpy_helper

from accel.host import reference_evaluator

__all__ = [
    "MIN_OPSET",
    "NEVER_FOLD",
    "TARGET_OPSET",
    "Dims",
    "default_opset",
    "evaluate",
    "infer_output",
    "upgrade",
]

#: Oldest default-domain opset the handlers read (Clip bounds and Dropout changed before it).
MIN_OPSET = 11
#: Opset older models are upgraded to.
TARGET_OPSET = 13
#: Ops never folded even when their inputs are constants: random generators (not constant),
#: and QuantizeLinear / DequantizeLinear, whose integer constants the importer keeps itself.
NEVER_FOLD = frozenset(
    {
        "Bernoulli",
        "DequantizeLinear",
        "Multinomial",
        "QuantizeLinear",
        "RandomNormal",
        "RandomNormalLike",
        "RandomUniform",
        "RandomUniformLike",
    }
)

#: A tensor shape: static ints, the batch as its name (a str), ``None`` when unknown.
Dims = tuple[int | str | None, ...]


def default_opset(model: onnx.ModelProto) -> int | None:
    """The default-domain (``""`` / ``"ai.onnx"``) opset version of ``model``, if imported."""
    for opset in model.opset_import:
        if opset.domain in ("", "ai.onnx"):
            return opset.version
    return None


def upgrade(model: onnx.ModelProto, where: str) -> tuple[onnx.ModelProto, str | None]:
    """``model`` itself if its default-domain opset is ``>= MIN_OPSET``, else converted to
    :data:`TARGET_OPSET` (IR version raised to what that opset needs) with a note.

    Raises
    ------
    ValueError
        ``"{where}: default-domain opset 5 could not be upgraded to 13 ..."`` when the
        converter or the checker of the converted model fails; or when the model imports no
        default-domain opset.
    """
    version = default_opset(model)
    if version is None:
        raise ValueError(f"{where}: the model imports no default-domain (ai.onnx) opset")
    if version >= MIN_OPSET:
        return model, None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            converted = onnx.version_converter.convert_version(_shaped(model), TARGET_OPSET)
        minimum = helper.find_min_ir_version_for(list(converted.opset_import))
        converted.ir_version = max(converted.ir_version, minimum)
        onnx.checker.check_model(converted)
    except Exception as exc:  # the converter raises RuntimeError, checker ValidationError
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(
            f"{where}: default-domain opset {version} could not be upgraded to {TARGET_OPSET} "
            f"with onnx.version_converter: {message}"
        ) from None
    note = f"default-domain opset {version} upgraded to {TARGET_OPSET} with onnx.version_converter"
    return converted, note


def _shaped(model: onnx.ModelProto) -> onnx.ModelProto:
    """``model`` with a shape on every graph output, which the version converter requires:
    the inferred one, else an empty one (the importer reads shapes from the inputs, never
    from the declared outputs). Value infos without a shape are dropped (they are optional
    annotations)."""
    missing = [
        o.name
        for o in model.graph.output
        if o.type.HasField("tensor_type") and not o.type.tensor_type.HasField("shape")
    ]
    loose = [v for v in model.graph.value_info if not v.type.tensor_type.HasField("shape")]
    if not missing and not loose:
        return model
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    for value in loose:
        copy.graph.value_info.remove(next(v for v in copy.graph.value_info if v == value))
    probe = onnx.ModelProto()
    probe.CopyFrom(copy)
    kept = [o for o in probe.graph.output if o.name not in missing]
    del probe.graph.output[:]
    probe.graph.output.extend(kept)
    try:
        inferred = onnx.shape_inference.infer_shapes(probe).graph.value_info
    except Exception:  # inference is a help here, not a requirement
        inferred = []
    types = {v.name: v.type for v in inferred if v.type.tensor_type.HasField("shape")}
    for output in copy.graph.output:
        if output.name in missing:
            if output.name in types:
                output.type.CopyFrom(types[output.name])
            else:
                output.type.tensor_type.shape.SetInParent()
    return copy


def _label(node: onnx.NodeProto) -> str:
    return f"node {node.name or node.output[0]!r} ({node.op_type})"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _model(
    node: onnx.NodeProto,
    inputs: Sequence[onnx.ValueInfoProto],
    outputs: Sequence[str],
    constants: Mapping[str, np.ndarray],
    opsets: Sequence[onnx.OperatorSetIdProto],
) -> onnx.ModelProto:
    graph = helper.make_graph(
        [node],
        f"one_{node.op_type}",
        list(inputs),
        [helper.make_value_info(name, onnx.TypeProto()) for name in outputs],
        [numpy_helper.from_array(np.asarray(value), name) for name, value in constants.items()],
    )
    return helper.make_model(graph, opset_imports=list(opsets))


def _run(model: onnx.ModelProto, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        evaluator = reference_evaluator(model)
        return [np.asarray(v) for v in evaluator.run(None, dict(feeds))]


def evaluate(
    node: onnx.NodeProto,
    constants: Mapping[str, np.ndarray],
    opsets: Sequence[onnx.OperatorSetIdProto],
) -> dict[str, np.ndarray]:
    """Run ``node``, whose inputs are all in ``constants``, with ``onnx.reference``.

    Returns
    -------
    dict of str to ndarray
        Every (non-empty) output name of the node -> its value.

    Raises
    ------
    ValueError
        ``"node 'n' (Op): constant folding failed: ..."``.
    """
    outputs = [name for name in node.output if name]
    used = {name: constants[name] for name in node.input if name}
    try:
        values = _run(_model(node, [], outputs, used, opsets), {})
    except Exception as exc:
        raise ValueError(
            f"{_label(node)}: constant folding (onnx.reference) failed: {_first_line(exc)}"
        ) from None
    return dict(zip(outputs, values, strict=True))


def _value_info(name: str, dims: Dims) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, list(dims))


def _shape_of(value: onnx.ValueInfoProto) -> tuple[int, Dims] | None:
    kind = value.type.WhichOneof("value")
    if kind != "tensor_type" or not value.type.tensor_type.HasField("shape"):
        return None
    tensor = value.type.tensor_type
    dims = tuple(
        d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in tensor.shape.dim
    )
    return tensor.elem_type, dims


def _inferred(
    model: onnx.ModelProto, output: str, inputs: Mapping[str, Dims]
) -> tuple[int, Dims] | None:
    """Type and shape of ``output`` by ONNX shape inference, if static but for the batch."""
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    except Exception:  # inference is optional here: running the node decides
        return None
    names = {d[0] for d in inputs.values() if d and isinstance(d[0], str)}
    for value in (*inferred.graph.value_info, *inferred.graph.output):
        found = _shape_of(value) if value.name == output else None
        if found is None or found[0] == TensorProto.UNDEFINED or not found[1]:
            continue
        dims = found[1]
        static = all(isinstance(d, int) for d in dims[1:])
        if static and (isinstance(dims[0], int) or dims[0] in names):
            return found
    return None


def infer_output(
    node: onnx.NodeProto,
    inputs: Mapping[str, Dims],
    constants: Mapping[str, np.ndarray],
    opsets: Sequence[onnx.OperatorSetIdProto],
    index: int = 0,
    batches: Sequence[int] = (1, 2),
) -> tuple[int, Dims]:
    """The element type and shape of output ``index`` of ``node``.

    ``inputs`` maps the node's computed (float) inputs to their shapes, batch first (an int,
    or the batch's name for a symbolic batch); ``constants`` its constant inputs. ONNX shape
    inference on a one-node model answers first; where it leaves a dimension unknown, the node
    runs on zeros (with each batch size of ``batches`` when the batch is symbolic: a leading
    dimension equal to the batch in every run is the batch, any other dimension must not
    change).

    Raises
    ------
    ValueError
        Naming the node, when neither way gives a shape.
    """
    output = node.output[index]
    used = {name: constants[name] for name in node.input if name and name in constants}
    infos = [_value_info(name, dims) for name, dims in inputs.items()]
    model = _model(node, infos, [], used, opsets)
    found = _inferred(model, output, inputs)
    if found is not None:
        return found
    symbolic = any(d and not isinstance(d[0], int) for d in inputs.values())
    runs = batches if symbolic else (None,)
    shapes = []
    elem = TensorProto.UNDEFINED
    for batch in runs:
        feeds = {}
        for name, dims in inputs.items():
            full = [batch if (i == 0 and not isinstance(d, int)) else d for i, d in enumerate(dims)]
            if any(not isinstance(d, int) for d in full):
                raise ValueError(f"{_label(node)}: input {name!r} has shape {list(dims)}")
            feeds[name] = np.zeros(full, dtype=np.float32)
        try:
            model = _model(
                node, [_value_info(n, d) for n, d in inputs.items()], [output], used, opsets
            )
            (value,) = _run(model, feeds)
        except Exception as exc:
            raise ValueError(
                f"{_label(node)}: cannot compute its output shape with onnx.reference: "
                f"{_first_line(exc)}"
            ) from None
        elem = helper.np_dtype_to_tensor_dtype(value.dtype)
        shapes.append((batch, value.shape))
    if not symbolic:
        return elem, tuple(int(d) for d in shapes[0][1])
    name = next(d[0] for d in inputs.values() if d and not isinstance(d[0], int))
    first = shapes[0][1]
    if all(len(s) == len(first) and s[1:] == first[1:] for _, s in shapes) and all(
        s and s[0] == b for b, s in shapes
    ):
        return elem, (name, *(int(d) for d in first[1:]))
    seen = ", ".join(f"batch {b}: {list(s)}" for b, s in shapes)
    raise ValueError(
        f"{_label(node)}: its output shape does not keep the symbolic batch {name!r} as its "
        f"leading dimension ({seen})"
    )
