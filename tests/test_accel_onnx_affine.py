"""Standalone BatchNormalization as a per-channel affine on the accelerator (issue 12).

A BatchNormalization that no Conv absorbs (pre-activation BN as in DenseNet, a BN after an Add
or a pool) becomes :func:`accel.graph.channel_affine`, a depthwise 1x1 Conv2d with the scales
as weights and the shifts as bias; the Mul/Add scale layers after it (the ONNX zoo's
DenseNet-121) and a Relu fold into it. Each model is built with ``onnx.helper`` and

* its golden float output equals onnxruntime (``rtol=1e-5``);
* quantised (``ptq``), the cycle model runs it bit-exact to the int8 golden model, and the
  int8 affine layer is within the documented 1 LSB of the float layer on its dequantised
  input (``docs/numerics.md``, "Comparing with float");
* the forms without a mapping (an ``(N, F)`` input, a quantised model) run on the host.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from accel import executor, graph, ptq
from accel.frontends.onnx import load, tensor_map
from tests.test_accel_onnx import Graph, batch_norm, ort_run
from tests.test_accel_onnx_mapped import check_accelerator
from tests.test_accel_onnx_prepare import check, host_ops, ops


def bn_params(g: Graph, prefix: str, c: int) -> list[str]:
    """Random inference statistics: scale of either sign, shift, mean, positive variance."""
    sign = np.where(g.rng.random(c) < 0.25, -1.0, 1.0)
    return [
        g.init(f"{prefix}.s", sign * g.rng.uniform(0.3, 2.0, c), np.float32),
        g.init(f"{prefix}.b", g.rng.standard_normal(c), np.float32),
        g.init(f"{prefix}.m", g.rng.standard_normal(c) * 0.5, np.float32),
        g.init(f"{prefix}.v", g.rng.uniform(0.2, 3.0, c), np.float32),
    ]


def pre_activation(seed: int = 0, spatial: int = 2) -> onnx.ModelProto:
    """DenseNet's dense layer: conv0 -> concat(conv0, x) -> BN -> Relu -> conv1, in 2-D or 1-D."""
    g = Graph(seed)
    k = (3,) * spatial
    pads = [1] * (2 * spatial)
    c0 = g.node("Conv", ["x", g.randn("w0", (5, 3, *k))], name="conv0", pads=pads)
    cat = g.node("Concat", [c0, "x"], name="concat", axis=1)
    bn = g.node("BatchNormalization", [cat, *bn_params(g, "bn", 8)], name="norm1", epsilon=1e-3)
    r = g.node("Relu", [bn], name="relu1")
    g.node("Conv", [r, g.randn("w1", (4, 8, *k)), g.randn("b1", (4,))], "y", name="conv1")
    x = ["N", 3, 6, 7] if spatial == 2 else ["N", 3, 9]
    return g.model({"x": x}, {"y": spatial + 2})


def after_add_with_scale_layers(seed: int = 1) -> onnx.ModelProto:
    """A BN after a residual Add, then the ONNX zoo DenseNet's Mul and Add scale layers and a
    Relu: all one affine; the BN output is the graph output."""
    g = Graph(seed)
    c = g.node("Conv", ["x", g.randn("w", (4, 4, 3, 3))], name="conv", pads=[1] * 4)
    a = g.node("Add", [c, "x"], name="add")
    bn = g.node("BatchNormalization", [a, *bn_params(g, "bn", 4)], name="bn")
    m = g.node("Mul", [bn, g.randn("mul", (4, 1, 1), std=1.0)], name="scale")
    s = g.node("Add", [m, g.randn("shift", (1, 4, 1, 1))], name="shift")
    g.node("Relu", [s], "y", name="relu")
    return g.model({"x": ["N", 4, 5, 5]}, {"y": 4})


def standalone(shape: list, seed: int = 2) -> onnx.ModelProto:
    """The graph input -> BN: the whole network is the affine."""
    g = Graph(seed)
    g.node("BatchNormalization", ["x", *bn_params(g, "bn", shape[1])], "y", name="bn")
    return g.model({"x": shape}, {"y": len(shape)})


MODELS = {
    "pre-activation 2-D": lambda: pre_activation(0, 2),
    "pre-activation 1-D": lambda: pre_activation(3, 1),
    "after add, scale layers, relu": after_add_with_scale_layers,
    "standalone": lambda: standalone(["N", 6, 4, 5]),
}


def affine_nodes(net: graph.Network) -> list[str]:
    return [
        n
        for n in net.order()
        if isinstance(net.op(n), graph.Conv2d)
        and net.op(n) == graph.channel_affine(net.shape(n)[0], net.op(n).activation)
    ]


@pytest.mark.parametrize("case", sorted(MODELS))
def test_standalone_batch_norm_is_an_affine_on_the_accelerator(case):
    net = check(MODELS[case]())
    assert host_ops(net) == []
    (name,) = affine_nodes(net)
    assert net.weights(name)["weight"].shape == (net.shape(name)[0], 1, 1, 1)
    check_accelerator(net)


def test_relu_and_scale_layers_fold_into_the_affine():
    net = check(after_add_with_scale_layers())
    assert ops(net) == ["Input", "Conv2d", "Add", "Conv2d"]
    assert net.op("bn").activation == "relu"
    assert tensor_map(net)["y"] == "bn"


def test_pre_activation_relu_is_fused_and_1d_runs_as_2d():
    net = check(pre_activation(3, 1))
    assert net.op("norm1") == graph.channel_affine(8, "relu")
    assert net.shape("norm1") == (8, 1, 9)


def test_int8_affine_is_within_one_lsb_of_the_float_layer():
    """``docs/numerics.md``: the int8 layer against the float layer (onnxruntime) on its
    dequantised input, within 1 LSB of the output quantisation; most outputs equal."""
    model = standalone(["N", 16, 6, 6], seed=7)
    qnet = ptq.quantize(graph.fuse_activations(load(model)), seed=3)
    t_in, t_out = qnet.tensors["x"], qnet.tensors["bn"]
    rng = np.random.default_rng(4)
    q_in = rng.integers(-128, 128, (2, 16, 6, 6), dtype=np.int8)
    want = t_out.quantize(ort_run(model, {"x": t_in.dequantize(q_in).astype(np.float32)})["y"])
    got = executor.run_network(qnet, {"x": q_in})["bn"]
    diff = np.abs(got.astype(np.int64) - want)
    assert diff.max() <= 1
    assert (diff == 0).mean() > 0.9


HOSTED = {
    "(N, F) input": (
        lambda: standalone(["N", 6]),
        r"node 'bn' \(BatchNormalization\): input \(N, 6\): the per-channel affine runs on "
        r"\(N, C, H, W\) and \(N, C, L\) tensors",
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTED))
def test_unmapped_batch_norm_runs_on_the_host_or_is_rejected_by_name(case):
    build, message = HOSTED[case]
    net = check(build())
    assert host_ops(net) == ["BatchNormalization"]
    with pytest.raises(ValueError, match=message):
        load(build(), host=False)


def test_a_batch_norm_in_a_quantised_model_runs_on_the_host():
    g = Graph(5)
    scale = [g.init("s", 0.05, np.float32), g.init("zp", 0, np.int8)]
    q = g.node("QuantizeLinear", ["x", *scale], name="q")
    d = g.node("DequantizeLinear", [q, *scale], name="dq")
    bn = g.node("BatchNormalization", [d, *bn_params(g, "bn", 3)], name="bn")
    q2 = g.node("QuantizeLinear", [bn, *scale], name="q2")
    g.node("DequantizeLinear", [q2, *scale], "y", name="dq2")
    model = g.model({"x": ["N", 3, 4, 4]}, {"y": 4})
    with pytest.raises(ValueError, match=r"node 'bn' \(BatchNormalization\): a Batch.*no int8"):
        load(model, host=False)
    assert host_ops(load(model)) == ["BatchNormalization"]


@pytest.mark.parametrize(
    ("case", "layers"),
    [
        ("after relu", ["Input", "Conv2d", "Conv2d"]),
        ("two consumers", ["Input", "Conv2d", "Conv2d", "Add"]),
    ],
)
def test_a_batch_norm_that_no_conv_absorbs_is_an_affine(case, layers):
    """The BN reads a Relu (fused into the Conv), or a Conv output another node reads too:
    the Conv keeps its weights, the BN is an affine of its own."""
    net = check(batch_norm(case))
    assert ops(net) == layers
    assert net.op("n") == graph.channel_affine(4)
    check_accelerator(net)
