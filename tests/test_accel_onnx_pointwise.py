"""ONNX activations imported as :class:`accel.graph.Pointwise` tables: Sigmoid, Tanh,
HardSigmoid, HardSwish, Elu, Selu, LeakyRelu, Softplus, Gelu (erf and tanh), and the
``x * Sigmoid(x)`` (SiLU) and ``x * HardSigmoid(x, 1/6, 1/2)`` (HardSwish) patterns. Each model
is built with ``onnx.helper`` in float64, so that

* the imported network's golden float output equals ``onnx.reference.ReferenceEvaluator`` on
  the original model to float64 rounding (HardSwish and Gelu to the float32 constants of their
  ONNX function bodies, as in ``tests/test_accel_pointwise.py``);
* the network has no host op, and quantised (``ptq``) it runs on the cycle model bit-exact to
  the int8 golden model;

and in QDQ models the table takes its scales from the QuantizeLinear/DequantizeLinear nodes.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto
from onnx.reference import ReferenceEvaluator
from onnxruntime.quantization import QuantFormat

import sim
from accel import config, deploy, executor, synthetic
from accel.frontends.onnx import load, tensor_map
from accel.graph import Mul, Pointwise
from accel.quantized import QuantizedNetwork, TableQuant, TensorQuant
from tests.test_accel_onnx import INT8, Graph, compare_int8, int8_weights, ort_quantize, qdq
from tests.test_accel_onnx_mapped import check_accelerator
from tests.test_accel_onnx_prepare import host_ops, onnx_inputs, our_feeds

DOUBLE = TensorProto.DOUBLE
SIXTH = float(np.float32(1 / 6))

#: case -> (ONNX op, its attributes, opset, the Pointwise it imports as)
OPS = {
    "Sigmoid": ("Sigmoid", {}, 13, Pointwise("sigmoid")),
    "Tanh": ("Tanh", {}, 13, Pointwise("tanh")),
    "HardSigmoid": ("HardSigmoid", {}, 13, Pointwise("hardsigmoid")),
    "HardSigmoid alpha beta": (
        "HardSigmoid",
        {"alpha": 0.25, "beta": 0.375},
        13,
        Pointwise("hardsigmoid", {"alpha": 0.25, "beta": 0.375}),
    ),
    "HardSwish": ("HardSwish", {}, 14, Pointwise("hardswish")),
    "Elu": ("Elu", {}, 13, Pointwise("elu")),
    "Elu alpha": ("Elu", {"alpha": 0.5}, 13, Pointwise("elu", {"alpha": 0.5})),
    "Selu": ("Selu", {}, 13, Pointwise("selu")),
    "Selu alpha gamma": (
        "Selu",
        {"alpha": 1.5, "gamma": 1.25},
        13,
        Pointwise("selu", {"alpha": 1.5, "gamma": 1.25}),
    ),
    "LeakyRelu": ("LeakyRelu", {}, 16, Pointwise("leakyrelu")),
    "LeakyRelu alpha": (
        "LeakyRelu",
        {"alpha": 0.125},
        16,
        Pointwise("leakyrelu", {"alpha": 0.125}),
    ),
    "Softplus": ("Softplus", {}, 13, Pointwise("softplus")),
    "Gelu": ("Gelu", {}, 20, Pointwise("gelu")),
    "Gelu tanh": ("Gelu", {"approximate": "tanh"}, 20, Pointwise("gelu_tanh")),
    "SiLU x*Sigmoid(x)": ("silu", {}, 13, Pointwise("silu")),
    "SiLU Sigmoid(x)*x": ("silu reversed", {}, 13, Pointwise("silu")),
    "HardSwish x*HardSigmoid(x)": ("hardswish", {}, 13, Pointwise("hardswish")),
    "GELU as PyTorch exports it below opset 20": ("gelu", {}, 13, Pointwise("gelu")),
    "GELU decomposed, operands swapped": ("gelu swapped", {}, 13, Pointwise("gelu")),
}
#: The ops whose ONNX definitions hold float32 constants: agreement to their rounding.
_FLOAT32_CONSTANTS = ("HardSwish", "Gelu", "hardswish", "gelu", "gelu swapped")


def activation(g: Graph, op: str, x: str, attrs: dict, name: str = "act", dtype=np.float64) -> str:
    """``op`` of ``x``, or one of the patterns (``silu``, ``silu reversed``, ``hardswish``;
    ``gelu``, ``gelu swapped``: PyTorch's GELU, ``dtype`` its constants), its output the last
    node's."""
    if op.startswith("gelu"):
        swap = op == "gelu swapped"
        sqrt2 = g.init(f"{name}_sqrt2", np.float32(np.sqrt(2)), dtype)
        one, half = g.init(f"{name}_one", 1.0, dtype), g.init(f"{name}_half", 0.5, dtype)
        e = g.node("Erf", [g.node("Div", [x, sqrt2], name=name)])
        a = g.node("Add", [one, e] if swap else [e, one])
        m = g.node("Mul", [a, x] if swap else [x, a])
        return g.node("Mul", [half, m] if swap else [m, half], name="mul")
    if op.startswith("silu"):
        s = g.node("Sigmoid", [x], name=name)
        return g.node("Mul", [s, x] if op == "silu reversed" else [x, s], name="mul")
    if op == "hardswish":
        h = g.node("HardSigmoid", [x], name=name, alpha=SIXTH, beta=0.5)
        return g.node("Mul", [x, h], name="mul")
    return g.node(op, [x], name=name, **attrs)


def layer(g: Graph, x: str, rank: int, c: int, k: int, name: str, output: str | None = None):
    """A Conv of the rank's spatial axes, or a Gemm of an ``(N, F)`` input, float64."""
    if rank == 2:
        w = g.init(f"{name}_w", g.rng.standard_normal((c, k)) * 0.6, np.float64)
        return g.node("MatMul", [x, w], output, name=name)
    w = g.init(f"{name}_w", g.rng.standard_normal((k, c, *[3] * (rank - 2))) * 0.3, np.float64)
    b = g.init(f"{name}_b", g.rng.standard_normal(k) * 0.3, np.float64)
    return g.node("Conv", [x, w, b], output, name=name, pads=[1] * 2 * (rank - 2))


#: rank -> the input's shape
SHAPES = {4: ["N", 3, 6, 5], 3: ["N", 3, 9], 2: ["N", 12]}


def model(case: str, rank: int = 4, standalone: bool = False) -> onnx.ModelProto:
    """``layer -> activation -> layer`` in float64 (``standalone``: the activation reads the
    input)."""
    op, attrs, opset, _ = OPS[case]
    g = Graph(41)
    shape = SHAPES[rank]
    x = "x" if standalone else layer(g, "x", rank, shape[1], 8, "first")
    a = activation(g, op, x, attrs)
    layer(g, a, rank, 8 if not standalone else shape[1], 4, "last", "y")
    return g.model({"x": shape}, {"y": rank}, opset=opset, in_type=DOUBLE, out_type=DOUBLE)


def check_reference(model: onnx.ModelProto, case: str):
    """The golden float output against ``ReferenceEvaluator``, to float64 rounding."""
    net = load(model)
    feeds = {k: v.astype(np.float64) * 3 for k, v in onnx_inputs(model, 2, 5).items()}
    (expected,) = ReferenceEvaluator(model).run(None, feeds)
    got = executor.run_network(net, our_feeds(net, feeds))[tensor_map(net)["y"]]
    rtol, atol = (3e-6, 1e-6) if OPS[case][0] in _FLOAT32_CONSTANTS else (1e-12, 1e-12)
    np.testing.assert_allclose(got.reshape(expected.shape), expected, rtol=rtol, atol=atol)
    return net


@pytest.mark.parametrize("case", sorted(OPS))
def test_activation_imports_as_a_pointwise_table(case):
    net = check_reference(model(case), case)
    assert host_ops(net) == []
    assert net.op("act") == OPS[case][3]
    assert "mul" not in net
    check_accelerator(net)


@pytest.mark.parametrize("rank", [3, 2])
@pytest.mark.parametrize(
    "case", ["Sigmoid", "Gelu", "SiLU x*Sigmoid(x)", "GELU as PyTorch exports it below opset 20"]
)
def test_pointwise_of_every_rank(case, rank):
    """(N, C, L) and (N, F) tensors; the table is fused into the layer before it."""
    net = check_reference(model(case, rank), case)
    assert host_ops(net) == []
    check_accelerator(net)


@pytest.mark.parametrize("case", ["Tanh", "SiLU x*Sigmoid(x)"])
def test_pointwise_of_the_network_input(case):
    """No layer before it: the table runs on its own."""
    net = check_reference(model(case, standalone=True), case)
    assert host_ops(net) == [] and net.inputs("act") == ["x"]
    check_accelerator(net)


def test_a_mul_that_is_not_the_silu_pattern_is_a_vmul():
    """z * Sigmoid(x) of one shape, and x * Sigmoid(x) whose Sigmoid has another reader: the
    Sigmoid is a table, the Mul the vector unit's elementwise product (VMUL)."""
    g = Graph(42)
    c = layer(g, "x", 4, 3, 4, "first")
    s = g.node("Sigmoid", [c], name="gate")
    g.node("Mul", ["z", s], "y", name="scale")
    m = g.model(
        {"x": ["N", 3, 5, 5], "z": ["N", 4, 5, 5]}, {"y": 4}, in_type=DOUBLE, out_type=DOUBLE
    )
    net = load(m)
    assert net.op("gate") == Pointwise("sigmoid") and host_ops(net) == []
    assert net.op("scale") == Mul()
    g = Graph(43)
    c = layer(g, "x", 4, 3, 4, "first")
    s = g.node("Sigmoid", [c], "s", name="act")
    g.node("Mul", [c, s], "y", name="mul")
    m = g.model({"x": ["N", 3, 5, 5]}, {"y": 4, "s": 4}, in_type=DOUBLE, out_type=DOUBLE)
    net = load(m)
    assert net.op("act") == Pointwise("sigmoid") and host_ops(net) == []
    assert net.op("mul") == Mul()


def test_hardsigmoid_times_x_with_other_parameters_is_not_hardswish():
    g = Graph(44)
    c = layer(g, "x", 4, 3, 4, "first")
    h = g.node("HardSigmoid", [c], name="act", alpha=0.2, beta=0.5)
    g.node("Mul", [c, h], "y", name="mul")
    net = load(g.model({"x": ["N", 3, 5, 5]}, {"y": 4}, in_type=DOUBLE, out_type=DOUBLE))
    assert net.op("act") == Pointwise("hardsigmoid") and host_ops(net) == []
    assert net.op("mul") == Mul()  # x * HardSigmoid(x): a VMUL, not the HardSwish table


@pytest.mark.parametrize(
    ("divisor", "half", "host"),
    [
        (1.5, 0.5, ["Div", "Erf", "Add", "Mul"]),  # x * (...) is a VMUL, the Mul by 0.5 not
        (np.sqrt(2), 0.25, ["Div", "Erf", "Add", "Mul"]),
    ],
)
def test_a_decomposition_that_is_not_gelu_stays_on_the_host(divisor, half, host):
    g = Graph(47)
    c = layer(g, "x", 4, 3, 4, "first")
    d = g.node("Div", [c, g.init("d", divisor, np.float64)], name="act")
    a = g.node("Add", [g.node("Erf", [d]), g.init("one", 1.0, np.float64)])
    g.node("Mul", [g.node("Mul", [c, a]), g.init("half", half, np.float64)], "y")
    net = load(g.model({"x": ["N", 3, 5, 5]}, {"y": 4}, in_type=DOUBLE, out_type=DOUBLE))
    assert host_ops(net) == host
    assert "GELU" in net.meta("act")["host_reason"]


def test_bad_gelu_approximation_is_one_error_line():
    g = Graph()
    g.node("Gelu", ["x"], "y", name="g", approximate="erf")
    m = g.model({"x": ["N", 3, 4, 4]}, {"y": 4}, opset=20)
    with pytest.raises(
        ValueError,
        match=r"^node 'g' \(Gelu\): attribute approximate='erf' is not supported: expected "
        r"'none' or 'tanh'$",
    ):
        load(m)


def qdq_model(case: str) -> onnx.ModelProto:
    """x -> Q/DQ -> Conv -> Q/DQ -> activation -> Q: the table's scales are the DQ's before
    it and the Q's after it."""
    op, attrs, opset, _ = OPS[case]
    g = Graph(45)
    x = qdq(g, "x", 0.02, 0)
    w, _ = int8_weights(g, "W", g.rng.standard_normal((4, 3, 3, 3)) * 0.3)
    c = qdq(g, g.node("Conv", [x, w], "c", name="conv", pads=[1] * 4), 0.05, 3)
    a = activation(g, op, c, attrs)
    qdq(g, a, 0.015, -20, dequantize=False)
    return g.model({"x": ["N", 3, 6, 6]}, {f"{a}_q": 4}, opset=opset, out_type=INT8)


@pytest.mark.parametrize("case", ["Sigmoid", "HardSwish", "LeakyRelu alpha", "SiLU x*Sigmoid(x)"])
def test_qdq_activation_takes_its_scales_from_the_qdq_nodes(case):
    """The int8 output is the table of the conv's int8 output, ``table[i] =
    Q_out(f(DQ_in(i)))``; against ONNX's reference (float32) on the same int8 conv output
    within one step (a float32 rounding at a half step)."""
    m = qdq_model(case)
    qnet = load(m)
    assert isinstance(qnet, QuantizedNetwork) and host_ops(qnet) == []
    op = qnet.network.op("act")
    assert op == OPS[case][3]
    t_conv = TensorQuant(float(np.float32(0.05)), 3)
    t_act = TensorQuant(float(np.float32(0.015)), -20)
    assert qnet.tensors["conv"] == t_conv and qnet.tensors["act"] == t_act
    table = TableQuant.for_function(op, t_conv, t_act).table
    np.testing.assert_array_equal(qnet.layers["act"].table, table, strict=True)
    # ONNX's reference of the activation alone, on every int8 input.
    g = Graph()
    x = g.node("DequantizeLinear", ["q", g.init("s", 0.05, np.float32), g.init("z", 3, np.int8)])
    a = activation(g, OPS[case][0], x, OPS[case][1])
    g.node("QuantizeLinear", [a, g.init("so", 0.015, np.float32), g.init("zo", -20, np.int8)], "y")
    ref = g.model({"q": [256]}, {"y": 1}, opset=21, in_type=INT8, out_type=INT8)
    q = np.arange(-128, 128, dtype=np.int8)
    (expected,) = ReferenceEvaluator(ref).run(None, {"q": q})
    assert np.abs(expected.astype(int) - table).max() <= 1
    assert np.mean(expected == table) > 0.97
    feeds = onnx_inputs(m, 2, 3)
    trace = executor.trace_network(qnet, feeds)
    np.testing.assert_array_equal(trace["act"], table[trace["conv"].astype(int) + 128])
    deployment = deploy.deploy(qnet, config.preset("tiny"))
    inputs = synthetic.random_int8_inputs(qnet)
    run = deploy.run(deployment, inputs, sim.run)
    want = executor.run_network(qnet, inputs)["act"]
    np.testing.assert_array_equal(run.outputs["act"].reshape(want.shape), want, strict=True)


@pytest.mark.parametrize("fmt", [QuantFormat.QDQ, QuantFormat.QOperator], ids=["qdq", "qop"])
@pytest.mark.parametrize("op", ["Sigmoid", "LeakyRelu", "Tanh", "HardSwish", "silu"])
def test_onnxruntime_quantised_activation_matches_onnxruntime(op, fmt, tmp_path):
    """onnxruntime's static quantiser (QDQ; QOperator: QLinearSigmoid, QLinearLeakyRelu, the
    others between DequantizeLinear and QuantizeLinear): conv -> activation -> conv within one
    step of onnxruntime, 99 % equal. Its QDQ SiLU quantises the Sigmoid's output before the
    Mul, which runs as a VMUL; so does its QOperator SiLU (a QLinearSigmoid table, then a
    com.microsoft QLinearMul of the input and the table's output)."""
    g = Graph(46)
    w, b = g.randn("w", (4, 3, 3, 3)), g.randn("b", (4,))
    c = g.node("Conv", ["x", w, b], "c", name="conv", pads=[1] * 4)
    a = activation(g, op, c, {"alpha": 0.1} if op == "LeakyRelu" else {})
    g.node("Conv", [a, g.randn("w2", (4, 4, 1, 1))], "y", name="last")
    model = ort_quantize(g.model({"x": ["N", 3, 8, 8]}, {"y": 4}, opset=17), tmp_path, fmt)
    qnet, max_diff, exact = compare_int8(model, optimize=fmt == QuantFormat.QOperator)
    assert host_ops(qnet) == []
    (table,) = [n for n in qnet.network.order() if isinstance(qnet.network.op(n), Pointwise)]
    assert isinstance(qnet.layers[table], TableQuant)
    assert (Mul() in [qnet.network.op(n) for n in qnet.network.order()]) == (op == "silu")
    assert max_diff <= 1 and exact >= 0.99


def test_a_table_between_host_ops_runs_on_the_host():
    """conv -> Softsign (host) -> Sigmoid -> Softsign (host) -> conv: the Sigmoid between host
    ops runs on the host too (no segment of its own), in int8 the table the golden model
    looks up; next to an accelerator layer it stays on the accelerator."""
    g = Graph(48)
    c = layer(g, "x", 4, 3, 4, "first")
    s = g.node("Sigmoid", [g.node("Softsign", [c], name="soft1")], name="act")
    t = g.node("Softsign", [s], name="soft2")
    layer(g, g.node("Tanh", [t], name="tanh"), 4, 4, 4, "last", "y")
    net = load(g.model({"x": ["N", 3, 5, 5]}, {"y": 4}, in_type=DOUBLE, out_type=DOUBLE))
    deployment = check_accelerator(net)
    assert [s.node for s in deployment.host_steps] == ["soft1", "act", "soft2"]
    assert [s.layers for s in deployment.segments] == [("first",), ("tanh", "last")]
    assert deployment.host_steps[1].kind == "Pointwise sigmoid"
