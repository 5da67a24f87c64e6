"""PRelu (issue 12): one slope for every element is a LeakyRelu table on the accelerator.

Each model is built with ``onnx.helper``; its golden float output equals onnxruntime
(``rtol=1e-5``), quantised (``ptq``) the cycle model runs it bit-exact to the int8 golden model,
and the int8 table is within 1 LSB of onnxruntime's float PRelu on the dequantised input
(``docs/numerics.md``, "Activation tables"). Slopes that differ per channel, and a computed
slope, run on the host (``load(..., host=False)`` names them).
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


def test_int8_prelu_is_within_one_lsb_of_onnxruntime():
    g = Graph(3)
    g.node("PRelu", ["x", g.init("slope", 0.2, np.float32)], "y", name="prelu")
    model = g.model({"x": ["N", 8, 6, 6]}, {"y": 4})
    qnet = ptq.quantize(graph.fuse_activations(load(model)), seed=1)
    t_in, t_out = qnet.tensors["x"], qnet.tensors["prelu"]
    q_in = np.random.default_rng(2).integers(-128, 128, (2, 8, 6, 6), dtype=np.int8)
    want = t_out.quantize(ort_run(model, {"x": t_in.dequantize(q_in).astype(np.float32)})["y"])
    got = executor.run_network(qnet, {"x": q_in})["prelu"]
    diff = np.abs(got.astype(np.int64) - want)
    assert diff.max() <= 1 and (diff == 0).mean() > 0.95


def computed_slope() -> onnx.ModelProto:
    g = Graph(4)
    c = g.node("Conv", ["x", g.randn("w", (4, 4, 1, 1))], name="conv")
    g.node("PRelu", ["x", c], "y", name="prelu")
    return g.model({"x": ["N", 4, 5, 5]}, {"y": 4})


HOSTED = {
    "per-channel slopes": (
        lambda: prelu_model(np.linspace(0.1, 0.4, 4).reshape(4, 1, 1)),
        r"node 'prelu' \(PRelu\): 4 different slopes; only one slope for every element maps",
    ),
    "computed slope": (
        computed_slope,
        r"node 'prelu' \(PRelu\): slope \(input 1\) is computed; only a constant slope maps",
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTED))
def test_prelu_without_a_mapping_runs_on_the_host(case):
    build, message = HOSTED[case]
    net = check(build())
    assert host_ops(net) == ["PRelu"]
    with pytest.raises(ValueError, match=message):
        load(build(), host=False)
