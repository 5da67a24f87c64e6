"""PRelu (issue 12) on the accelerator: one slope for every element is a LeakyRelu table;
one slope per channel is a :class:`accel.graph.PRelu` node, an identity depthwise pass whose
POST requantises negative values with a second per-channel multiplier.

Each model is built with ``onnx.helper``; its golden float output equals onnxruntime
(``rtol=1e-5``), quantised (``ptq``) the cycle model runs it bit-exact to the int8 golden model,
and the int8 layer is within 1 LSB of onnxruntime's float PRelu on the dequantised input
(``docs/numerics.md``, "Activation tables" and "PRelu"). Slopes along another axis, a computed
slope, per-channel slopes in a quantised model or of an ``(N, F)`` input run on the host
(``load(..., host=False)`` names them).
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from accel import executor, graph, ptq
from accel.frontends.onnx import load
from tests.test_accel_onnx import Graph, ort_run
from tests.test_accel_onnx_mapped import check_accelerator
from tests.test_accel_onnx_prepare import check, host_ops, ops


def prelu_model(slope, after: str = "conv", x=("N", 4, 5, 6), seed: int = 0) -> onnx.ModelProto:
    """``after`` (a Conv, or a residual Add) -> PRelu(slope) -> y."""
    g = Graph(seed)
    rank = len(x)
    kernel = (3,) * (rank - 2)
    c = g.node(
        "Conv", ["x", g.randn("w", (x[1], x[1], *kernel))], name="conv", pads=[1] * 2 * (rank - 2)
    )
    src = g.node("Add", [c, "x"], name="add") if after == "add" else c
    g.node("PRelu", [src, g.init("slope", slope, np.float32)], "y", name="prelu")
    return g.model({"x": list(x)}, {"y": rank})


MAPPED = {
    "scalar after conv": lambda: prelu_model(0.25),
    "negative scalar after add": lambda: prelu_model([-0.5], after="add"),
    "equal per-channel slopes": lambda: prelu_model(np.full((4, 1, 1), 0.1)),
    "1-D": lambda: prelu_model(np.full((4, 1), 0.3), x=("N", 4, 9)),
}


@pytest.mark.parametrize("case", sorted(MAPPED))
def test_a_single_slope_prelu_is_a_leaky_relu_table(case):
    net = check(MAPPED[case]())
    assert host_ops(net) == []
    op = net.op("prelu")
    assert isinstance(op, graph.Pointwise) and op.function == "leakyrelu"
    check_accelerator(net)


def test_the_slope_is_the_tables_alpha():
    net = check(prelu_model(-0.5, after="add"))
    assert ops(net) == ["Input", "Conv2d", "Add", "Pointwise"]
    assert net.op("prelu").params == (("alpha", -0.5),)


PER_CHANNEL = {
    "after conv": lambda: prelu_model(np.linspace(-0.5, 1.5, 4).reshape(4, 1, 1)),
    "after add, (1, C, 1, 1)": lambda: prelu_model(
        np.array([0.25, 0.0, -0.3, 2.0]).reshape(1, 4, 1, 1), after="add"
    ),
    "1-D": lambda: prelu_model(np.array([[0.1], [0.2], [0.3], [0.4]]), x=("N", 4, 9)),
}


@pytest.mark.parametrize("case", sorted(PER_CHANNEL))
def test_per_channel_prelu_is_a_prelu_node_on_the_accelerator(case):
    net = check(PER_CHANNEL[case]())
    assert host_ops(net) == []
    assert net.op("prelu") == graph.PRelu(4)
    assert net.weights("prelu")["weight"].shape == (4,)
    check_accelerator(net)
    check_accelerator(net, "edge")


@pytest.mark.parametrize("slope", [0.2, [0.25, -0.5, 0.0, 0.9, 1.0, 0.01, 3.0, -1.2]])
def test_int8_prelu_is_within_one_lsb_of_onnxruntime(slope):
    g = Graph(3)
    value = np.reshape(slope, (8, 1, 1)) if np.ndim(slope) else slope
    g.node("PRelu", ["x", g.init("slope", value, np.float32)], "y", name="prelu")
    model = g.model({"x": ["N", 8, 6, 6]}, {"y": 4})
    qnet = ptq.quantize(graph.fuse_activations(load(model)), seed=1)
    t_in, t_out = qnet.tensors["x"], qnet.tensors["prelu"]
    q_in = np.random.default_rng(2).integers(-128, 128, (2, 8, 6, 6), dtype=np.int8)
    want = t_out.quantize(ort_run(model, {"x": t_in.dequantize(q_in).astype(np.float32)})["y"])
    got = executor.run_network(qnet, {"x": q_in})["prelu"]
    diff = np.abs(got.astype(np.int64) - want)
    assert diff.max() <= 1 and (diff == 0).mean() > 0.95  # one rounding, float32 ties aside


def computed_slope() -> onnx.ModelProto:
    g = Graph(4)
    c = g.node("Conv", ["x", g.randn("w", (4, 4, 1, 1))], name="conv")
    g.node("PRelu", ["x", c], "y", name="prelu")
    return g.model({"x": ["N", 4, 5, 5]}, {"y": 4})


def quantised_per_channel() -> onnx.ModelProto:
    g = Graph(5)
    scale = [g.init("s", 0.05, np.float32), g.init("zp", 0, np.int8)]
    d = g.node("DequantizeLinear", [g.node("QuantizeLinear", ["x", *scale]), *scale])
    p = g.node("PRelu", [d, g.init("slope", [[[0.1]], [[0.2]], [[0.3]]], np.float32)], name="prelu")
    g.node("DequantizeLinear", [g.node("QuantizeLinear", [p, *scale]), *scale], "y")
    return g.model({"x": ["N", 3, 4, 4]}, {"y": 4})


def vector_input() -> onnx.ModelProto:
    g = Graph(6)
    f = g.node("Flatten", ["x"], name="flat")
    g.node("PRelu", [f, g.init("slope", np.linspace(0.1, 0.5, 12), np.float32)], "y", name="prelu")
    return g.model({"x": ["N", 3, 2, 2]}, {"y": 2})


HOSTED = {
    "slopes along W": (
        lambda: prelu_model(np.linspace(0.1, 0.4, 6)),
        r"node 'prelu' \(PRelu\): slope of shape \(6,\) on an \(N, 4, 5, 6\) input: only one "
        r"slope per channel of an \(N, C, H, W\) or \(N, C, L\) tensor maps",
    ),
    "quantised model": (
        quantised_per_channel,
        r"node 'prelu' \(PRelu\): per-channel slopes in a quantised model",
    ),
    "(N, F) input": (
        vector_input,
        r"node 'prelu' \(PRelu\): slope of shape \(12,\) on an \(N, 12\) input",
    ),
    "computed slope": (
        computed_slope,
        r"node 'prelu' \(PRelu\): slope \(input 1\) is computed; only a constant slope maps",
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTED))
def test_prelu_without_a_mapping_runs_on_the_host(case):
    build, message = HOSTED[case]
    net = load(build()) if case == "quantised model" else check(build())
    assert host_ops(net) == ["PRelu"]
    with pytest.raises(ValueError, match=message):
        load(build(), host=False)


def test_a_network_with_a_prelu_node_round_trips_through_to_dict():
    net = check(PER_CHANNEL["after conv"]())
    data = net.to_dict()
    assert data["nodes"][-1]["op"] == "PRelu" and data["nodes"][-1]["attrs"] == {"channels": 4}
    rebuilt = graph.Network.from_dict(data)
    assert [rebuilt.op(n) for n in rebuilt.order()] == [net.op(n) for n in net.order()]
