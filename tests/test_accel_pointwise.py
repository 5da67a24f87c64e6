"""Pointwise activations (Sigmoid, Tanh, GELU, ...): the float golden model against ONNX's
reference implementation, the int8 table against the float function, and the int8 network
against the table lookup, bit for bit."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

from accel import executor, golden, graph, numerics, ptq
from accel.graph import Conv2d, Input, Network, Pointwise
from accel.quantized import TableQuant, TensorQuant

#: (function, params, the ONNX node computing it, its opset)
ONNX_NODES = [
    ("sigmoid", {}, helper.make_node("Sigmoid", ["x"], ["y"]), 13),
    ("tanh", {}, helper.make_node("Tanh", ["x"], ["y"]), 13),
    ("hardsigmoid", {}, helper.make_node("HardSigmoid", ["x"], ["y"]), 13),
    (
        "hardsigmoid",
        {"alpha": 0.25, "beta": 0.4},
        helper.make_node("HardSigmoid", ["x"], ["y"], alpha=0.25, beta=0.4),
        13,
    ),
    ("hardswish", {}, helper.make_node("HardSwish", ["x"], ["y"]), 14),
    ("gelu", {}, helper.make_node("Gelu", ["x"], ["y"]), 20),
    ("gelu_tanh", {}, helper.make_node("Gelu", ["x"], ["y"], approximate="tanh"), 20),
    ("elu", {}, helper.make_node("Elu", ["x"], ["y"]), 13),
    ("elu", {"alpha": 0.5}, helper.make_node("Elu", ["x"], ["y"], alpha=0.5), 13),
    ("selu", {}, helper.make_node("Selu", ["x"], ["y"]), 13),
    ("leakyrelu", {}, helper.make_node("LeakyRelu", ["x"], ["y"]), 16),
    ("leakyrelu", {"alpha": 0.2}, helper.make_node("LeakyRelu", ["x"], ["y"], alpha=0.2), 16),
    ("softplus", {}, helper.make_node("Softplus", ["x"], ["y"]), 13),
]


def onnx_reference(node, opset: int, x: np.ndarray) -> np.ndarray:
    model = helper.make_model(
        helper.make_graph(
            [node],
            "g",
            [helper.make_tensor_value_info("x", TensorProto.DOUBLE, list(x.shape))],
            [helper.make_tensor_value_info("y", TensorProto.DOUBLE, list(x.shape))],
        ),
        opset_imports=[helper.make_opsetid("", opset)],
    )
    onnx.checker.check_model(model)
    return ReferenceEvaluator(model).run(None, {"x": x})[0]


@pytest.mark.parametrize(
    ("function", "params", "node", "opset"),
    ONNX_NODES,
    ids=[f"{f}-{'-'.join(map(str, p.values()))}" for f, p, _, _ in ONNX_NODES],
)
def test_float_golden_equals_onnx_reference(function, params, node, opset):
    x = np.concatenate([np.linspace(-12, 12, 481), [0.0, -0.0, 1e-9, -1e-9, 40.0, -40.0]])
    params = {k: float(np.float32(v)) for k, v in params.items()}  # ONNX attributes: float32
    ours = golden.pointwise(x, function, Pointwise(function, params).params)
    # HardSwish and Gelu are ONNX functions whose bodies hold float32 constants (1/6,
    # 1/sqrt(2), ...): they agree to the rounding of those constants; the others to float64.
    rtol, atol = (3e-6, 1e-7) if node.op_type in ("HardSwish", "Gelu") else (1e-12, 1e-15)
    np.testing.assert_allclose(ours, onnx_reference(node, opset, x), rtol=rtol, atol=atol)


def test_silu_is_x_times_sigmoid():
    x = np.linspace(-10, 10, 201)
    np.testing.assert_allclose(
        golden.pointwise(x, "silu"), x * golden.pointwise(x, "sigmoid"), rtol=1e-15, atol=0
    )


def test_pointwise_op_fills_defaults_and_rejects_unknown_params():
    assert Pointwise("selu").params == (
        ("alpha", 1.67326319217681884765625),
        ("gamma", 1.05070102214813232421875),
    )
    assert Pointwise("elu", [("alpha", 2)]).params == (("alpha", 2.0),)
    with pytest.raises(ValueError, match=r"Pointwise.params: sigmoid takes none, got \['alpha'\]"):
        Pointwise("sigmoid", {"alpha": 1.0})
    with pytest.raises(ValueError, match=r"Pointwise\.function must be one of"):
        Pointwise("mish")
    with pytest.raises(ValueError, match=r"Pointwise\.params must be finite"):
        Pointwise("elu", {"alpha": float("nan")})


def test_pointwise_round_trips_through_to_dict():
    net = Network("t")
    net.add("x", Input((2, 3, 3)))
    net.add("y", Pointwise("hardsigmoid", {"beta": 0.25}), ["x"])
    again = Network.from_dict(net.to_dict())
    assert again.op("y") == net.op("y")


@pytest.mark.parametrize("function", list(graph.POINTWISE))
def test_table_is_the_float_function_rounded_once(function):
    """Every entry is the float function of the dequantised input, rounded to the nearest
    output step (or saturated): within half a step where the output range holds it."""
    t_in, t_out = TensorQuant(0.05, 3), TensorQuant(0.03, -20)
    op = Pointwise(function)
    table = TableQuant.for_function(op, t_in, t_out).table
    x = t_in.dequantize(np.arange(-128, 128))
    f = golden.pointwise(x, function, op.params)
    lo, hi = t_out.dequantize(-128), t_out.dequantize(127)
    inside = (f >= lo) & (f <= hi)
    error = np.abs(t_out.dequantize(table) - f)
    assert np.all(error[inside] <= t_out.scale / 2 * (1 + 1e-9))
    assert np.all(table[f < lo] == -128) and np.all(table[f > hi] == 127)


def test_table_lookup_contract():
    table = np.arange(-128, 128, dtype=np.int8)[::-1].copy()
    x = np.array([[-128, 0, 127]], dtype=np.int8)
    np.testing.assert_array_equal(
        numerics.table_lookup(x, table), np.array([[127, -1, -128]], dtype=np.int8), strict=True
    )
    with pytest.raises(TypeError, match="x_q must be a numpy array of dtype int8"):
        numerics.table_lookup(x.astype(np.int16), table)
    with pytest.raises(ValueError, match=r"table must have shape \(256,\)"):
        numerics.table_lookup(x, table[:255])
    with pytest.raises(ValueError, match=r"TableQuant\.table must be int8 of shape"):
        TableQuant(table[:10])


@pytest.mark.parametrize("function", list(graph.POINTWISE))
def test_int8_network_is_the_table_of_its_producer(function):
    """conv -> pointwise -> conv: the pointwise node's int8 output is its table at the conv's
    int8 output, bit for bit, and close to the float network (one table rounding on top of
    the conv's)."""
    net = Network("t")
    net.add("x", Input((3, 5, 5)))
    net.add("conv", Conv2d(3, 6, 3, padding=1), ["x"])
    net.add("act", Pointwise(function), ["conv"])
    net.add("out", Conv2d(6, 4, 1), ["act"])
    rng = np.random.default_rng(7)
    calibration = {"x": rng.normal(size=(4, 3, 5, 5))}
    qnet = ptq.quantize(net, calibration=calibration)
    x = qnet.quantize_input("x", calibration["x"])
    values = {"x": x}
    for node in ("conv", "act", "out"):
        srcs = [values[s] for s in qnet.network.inputs(node)]
        values[node] = executor.int8_node(qnet, node, srcs)
    table = qnet.layers["act"].table
    np.testing.assert_array_equal(
        values["act"], table[values["conv"].astype(np.int64) + 128], strict=True
    )
    outputs = executor.run_network(qnet, {"x": x})
    np.testing.assert_array_equal(outputs["out"], values["out"], strict=True)
    # Against float: the conv's one LSB moves the table input by one step.
    t_conv, t_act = qnet.tensors["conv"], qnet.tensors["act"]
    real = golden.pointwise(t_conv.dequantize(values["conv"]), function, net.op("act").params)
    inside = (real >= t_act.dequantize(-128)) & (real <= t_act.dequantize(127))
    error = np.abs(t_act.dequantize(values["act"]) - real)
    assert inside.mean() > 0.8  # the rest saturates at the calibrated range
    assert np.all(error[inside] <= t_act.scale / 2 * (1 + 1e-9))
