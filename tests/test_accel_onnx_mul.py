"""ONNX Mul of two computed tensors: one shape, or the squeeze-and-excitation gate ``x *
Sigmoid(fc(GlobalAveragePool(x)))`` with its ``(N, C, 1, 1)`` operand in either order, maps to
the vector unit's VMUL (float golden against ONNX's reference, int8 on the cycle model equal
to the int8 golden model, no host op); other broadcasts run on the host."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto
from onnx.reference import ReferenceEvaluator
from onnxruntime.quantization import QuantFormat

from accel import executor
from accel.frontends.onnx import load, tensor_map
from accel.graph import Mul
from tests.test_accel_onnx import Graph, compare_int8, ort_quantize, record
from tests.test_accel_onnx_mapped import check_accelerator
from tests.test_accel_onnx_prepare import host_ops, onnx_inputs, our_feeds

DOUBLE = TensorProto.DOUBLE


def se_model(gate_first: bool):
    g = Graph(61)
    c = g.node("Conv", ["x", g.randn("w", (6, 3, 3, 3)), g.randn("b", (6,))], name="conv",
               pads=[1] * 4)  # fmt: skip
    s = g.node("GlobalAveragePool", [c], name="squeeze")
    s = g.node("Conv", [s, g.randn("fc_w", (6, 6, 1, 1))], name="fc")
    s = g.node("Sigmoid", [s], name="gate")
    g.node("Mul", [s, c] if gate_first else [c, s], "y", name="scale")
    return g.model({"x": ["N", 3, 6, 5]}, {"y": 4}, in_type=DOUBLE, out_type=DOUBLE)


def check_float(model) -> object:
    net = load(model)
    feeds = {k: v.astype(np.float64) for k, v in onnx_inputs(model, 2, 5).items()}
    (expected,) = ReferenceEvaluator(model).run(None, feeds)
    got = executor.run_network(net, our_feeds(net, feeds))[tensor_map(net)["y"]]
    np.testing.assert_allclose(
        got.reshape(expected.shape), expected, rtol=3e-6, atol=1e-6
    )  # float32 weights
    return net


@pytest.mark.parametrize("gate_first", [False, True], ids=["x*gate", "gate*x"])
def test_squeeze_and_excitation_gate_is_a_vmul(gate_first):
    net = check_float(se_model(gate_first))
    assert host_ops(net) == [] and net.op("scale") == Mul()
    assert net.inputs("scale") == ["conv", "gate"]  # the broadcast operand second
    deployment = check_accelerator(net)
    assert not deployment.host_steps


def test_same_shape_mul_is_a_vmul():
    g = Graph(62)
    a = g.node("Conv", ["x", g.randn("wa", (4, 3, 3, 3))], name="a", pads=[1] * 4)
    b = g.node("Conv", ["x", g.randn("wb", (4, 3, 1, 1))], name="b")
    g.node("Mul", [a, b], "y", name="mul")
    net = check_float(g.model({"x": ["N", 3, 5, 5]}, {"y": 4}, in_type=DOUBLE, out_type=DOUBLE))
    assert host_ops(net) == [] and net.op("mul") == Mul()
    check_accelerator(net)


def test_other_broadcasts_run_on_the_host():
    """(N, C, H, W) * (N, 1, H, W): not a per-channel broadcast."""
    g = Graph(63)
    a = g.node("Conv", ["x", g.randn("wa", (4, 3, 3, 3))], name="a", pads=[1] * 4)
    b = g.node("Conv", ["x", g.randn("wb", (1, 3, 1, 1))], name="b")
    g.node("Mul", [a, b], "y", name="mul")
    net = check_float(g.model({"x": ["N", 3, 5, 5]}, {"y": 4}, in_type=DOUBLE, out_type=DOUBLE))
    assert host_ops(net) == ["Mul"]
    assert "(N, C, H, W) by (N, C, 1, 1)" in net.meta("mul")["host_reason"]


@pytest.mark.parametrize("fmt", [QuantFormat.QDQ, QuantFormat.QOperator], ids=["qdq", "qop"])
def test_a_quantised_squeeze_and_excitation_gate_is_a_vmul(fmt, tmp_path):
    """onnxruntime's static quantiser on the float gate: QDQ around the Mul, or its
    ``com.microsoft`` QLinearMul; within 1 LSB of onnxruntime, bit-exact on the cycle model."""
    g = Graph(64)
    c = g.node("Conv", ["x", g.randn("w", (6, 3, 3, 3))], name="conv", pads=[1] * 4)
    s = g.node("GlobalAveragePool", [c], name="squeeze")
    s = g.node("Sigmoid", [g.node("Conv", [s, g.randn("fc_w", (6, 6, 1, 1))], name="fc")])
    g.node("Mul", [c, s], "y", name="scale")
    model = ort_quantize(g.model({"x": ["N", 3, 6, 5]}, {"y": 4}), tmp_path, fmt)
    if fmt == QuantFormat.QOperator:
        assert "QLinearMul" in [n.op_type for n in model.graph.node]
    qnet, max_diff, exact = compare_int8(model, optimize=False)
    record(f"SE gate {fmt.name}", max_diff, exact, 0.98)
    net = qnet.network
    assert host_ops(net) == [] and len([n for n in net.order() if net.op(n) == Mul()]) == 1
    deployment = check_accelerator(qnet)
    assert len(deployment.segments) == 1 and not deployment.host_steps
