"""ONNX ops that map onto accelerator ops the hardware already has (issue 12): ReduceMean over
the spatial axes as a global average pool, a constant zero Pad folded into the Conv or pool
that alone reads it. Each model is built with ``onnx.helper`` and

* its golden float output equals ``onnx.reference.ReferenceEvaluator`` on the original model
  (``rtol=1e-5``, an absolute ``1e-6`` of the output's magnitude: golden is float64, the
  reference float32);
* the mapped network has no host op, and quantised (``ptq``) it runs on the cycle model
  bit-exact to the int8 golden model;
* the forms without an exact mapping still run on the host.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx.reference import ReferenceEvaluator

import sim
from accel import config, deploy, executor, graph, ptq, synthetic
from accel.frontends.onnx import load, tensor_map
from tests.test_accel_onnx import Graph
from tests.test_accel_onnx_prepare import host_ops, onnx_inputs, ops, our_feeds


def check_reference(model: onnx.ModelProto, batch: int = 2, seed: int = 1):
    """Load ``model`` and compare its golden float outputs with ONNX's reference
    implementation of the original model; return the network."""
    net = load(model)
    feeds = onnx_inputs(model, batch, seed)
    names = [o.name for o in model.graph.output]
    expected = dict(zip(names, ReferenceEvaluator(model).run(None, feeds), strict=True))
    got = executor.run_network(net, our_feeds(net, feeds))
    nodes = tensor_map(net)
    for name, value in expected.items():
        scale = max(1.0, float(np.abs(value).max()))
        actual = got[nodes[name]].reshape(value.shape)
        np.testing.assert_allclose(actual, value, rtol=1e-5, atol=1e-6 * scale)
    return net


def check_accelerator(net, preset: str = "tiny") -> deploy.Deployment:
    """Quantise ``net``, deploy it on ``preset`` and run it on the cycle model: every output
    equal to the int8 golden model."""
    qnet = ptq.quantize(graph.fuse_activations(net), seed=0)
    deployment = deploy.deploy(qnet, config.preset(preset))
    inputs = synthetic.random_int8_inputs(qnet)
    run = deploy.run(deployment, inputs, sim.run)
    for output, want in executor.run_network(qnet, inputs).items():
        np.testing.assert_array_equal(run.outputs[output].reshape(want.shape), want, strict=True)
    return deployment


# ---------------------------------------------------------------------------------------
# ReduceMean


def reduce_mean(axes, keepdims: int, opset: int, x=("N", 4, 5, 6), head: str = "Gemm"):
    """conv -> relu -> ReduceMean(axes, keepdims) -> ``head`` (Gemm, Flatten + Gemm, or none);
    ``axes`` an attribute before opset 18, a constant input since."""
    g = Graph(31)
    rank = len(x)
    w_shape = (8, x[1], *([3] * (rank - 2)))
    c = g.node("Conv", ["x", g.randn("w", w_shape)], name="conv", pads=[1] * 2 * (rank - 2))
    r = g.node("Relu", [c], name="relu")
    if opset >= 18:
        m = g.node(
            "ReduceMean", [r, g.init("axes", axes, np.int64)], name="mean", keepdims=keepdims
        )
    else:
        m = g.node("ReduceMean", [r], name="mean", axes=axes, keepdims=keepdims)
    out_rank = rank if keepdims else 2
    if head == "Flatten":
        m, out_rank = g.node("Flatten", [m], name="flat"), 2
    if head in ("Gemm", "Flatten"):
        g.node("Gemm", [m, g.randn("fc", (3, 8)), g.randn("fb", (3,))], "y", name="fc", transB=1)
        out_rank = 2
    else:
        g.nodes[-1].output[0] = "y"
    return g.model({"x": list(x)}, {"y": out_rank}, opset=opset)


REDUCE_MEAN = {
    "axes [2, 3] keepdims 0 -> Gemm, opset 13": ([2, 3], 0, 13, ("N", 4, 5, 6), "Gemm"),
    "axes [3, 2] keepdims 1 -> Flatten -> Gemm": ([3, 2], 1, 13, ("N", 4, 5, 6), "Flatten"),
    "axes [-2, -1] keepdims 1, output": ([-2, -1], 1, 13, ("N", 4, 5, 6), "none"),
    "axes input [2, 3] keepdims 0, opset 18": ([2, 3], 0, 18, ("N", 4, 5, 6), "Gemm"),
    "axes input [2, 3] keepdims 1 -> Flatten, opset 18": ([2, 3], 1, 18, ("N", 4, 6, 5), "Flatten"),
    "1-D axes [2] keepdims 0 -> Gemm": ([2], 0, 13, ("N", 4, 9), "Gemm"),
    "1-D axes input [-1] keepdims 1, output": ([-1], 1, 18, ("N", 4, 9), "none"),
}


@pytest.mark.parametrize("case", sorted(REDUCE_MEAN))
def test_reduce_mean_over_the_spatial_axes_is_a_global_average_pool(case):
    net = check_reference(reduce_mean(*REDUCE_MEAN[case]))
    assert "GlobalAvgPool" in ops(net) and not host_ops(net)
    assert check_accelerator(net).whole


@pytest.mark.parametrize(
    "axes, keepdims", [([1], 1), ([2], 0), ([1, 2, 3], 0), ([0, 2, 3], 1), ([3], 1)]
)
def test_reduce_mean_over_other_axes_runs_on_the_host(axes, keepdims):
    model = reduce_mean(axes, keepdims, 13, head="none")
    if 0 in axes:  # the batch reduced away: not between accelerator segments
        with pytest.raises(ValueError, match=r"^node 'mean' \(ReduceMean\): output 0 .* batch"):
            load(model)
        return
    net = check_reference(model)
    assert host_ops(net) == ["ReduceMean"]
    assert "spatial axes" in net.meta("mean")["host_reason"]
    with pytest.raises(ValueError, match=r"^node 'mean' \(ReduceMean\): axes="):
        load(model, host=False)


def test_reduce_mean_of_every_axis_is_rejected_as_a_host_op():
    """No axes (every axis, the batch too): not a global pool, and its output has no batch."""
    g = Graph(32)
    a = g.node("Relu", ["x"], name="relu")
    g.node("ReduceMean", [a], "y", name="mean", keepdims=1)
    with pytest.raises(ValueError, match="leading dimension is not the batch"):
        load(g.model({"x": ["N", 4, 5, 6]}, {"y": 4}))
