"""ONNX as users have it (``accel.frontends.onnx`` and ``accel.frontends.prepare``): old opsets
upgraded, constant subgraphs folded, 1-D ``(N, C, L)`` and ``(N, F)`` tensors, the static
batch recorded, and every op without an accelerator mapping run on the host (a
:class:`~accel.graph.HostOp`), in float and in int8, through ``fuse_activations``,
``ptq.quantize`` and the executor.

Every model is compared with onnxruntime on random inputs: ``rtol=1e-5`` and an absolute
``1e-6`` of the output's magnitude (accelerator ops run in float64, host ops in float32 with
``onnx.reference``, onnxruntime in float32).
"""

from __future__ import annotations

import logging

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from accel import executor, graph, ptq
from accel.frontends import load_model
from accel.frontends.onnx import batch_size, import_notes, load, tensor_map
from accel.graph import Activation, AvgPool2d, Conv2d, GlobalAvgPool, HostOp, Linear, MaxPool2d
from accel.quantized import QuantizedNetwork
from tests.test_accel_onnx import FLOAT, INT8, Graph, int8_weights, ort_run, qdq, record

# ---------------------------------------------------------------------------------------
# Helpers


def onnx_inputs(model: onnx.ModelProto, batch: int, seed: int) -> dict[str, np.ndarray]:
    """Random N(0, 1) float32 feeds of every graph input, symbolic dimensions -> ``batch``."""
    rng = np.random.default_rng(seed)
    inits = {i.name for i in model.graph.initializer}
    feeds = {}
    for value in model.graph.input:
        if value.name in inits:
            continue
        dims = [d.dim_value or batch for d in value.type.tensor_type.shape.dim]
        feeds[value.name] = rng.standard_normal(dims).astype(np.float32)
    return feeds


def our_feeds(net, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """ONNX-shaped feeds as the graph's ``Input`` nodes take them, ``(N, C, H, W)``."""
    network = getattr(net, "network", net)
    nodes = tensor_map(network)
    return {nodes[k]: v.reshape(len(v), *network.shape(nodes[k])) for k, v in feeds.items()}


def check(model: onnx.ModelProto, batch: int = 2, seed: int = 1, *, reference=ort_run, **kwargs):
    """Load ``model``, run it in golden (float) and in ``reference`` (onnxruntime unless
    given: ``(model, feeds) -> {output: value}``), compare; return the network."""
    net = load(model, **kwargs)
    feeds = onnx_inputs(model, batch, seed)
    expected = reference(model, feeds)
    got = executor.run_network(net, our_feeds(net, feeds))
    nodes = tensor_map(net)
    for name, value in expected.items():
        scale = max(1.0, float(np.abs(value).max()))
        actual = got[nodes[name]].reshape(value.shape)
        np.testing.assert_allclose(actual, value, rtol=1e-5, atol=1e-6 * scale)
    return net


def ops(net) -> list[str]:
    net = getattr(net, "network", net)
    return [
        net.op(n).op_type if isinstance(net.op(n), HostOp) else type(net.op(n)).__name__
        for n in net.order()
    ]


def host_ops(net) -> list[str]:
    net = getattr(net, "network", net)
    return [net.op(n).op_type for n in net.order() if isinstance(net.op(n), HostOp)]


# ---------------------------------------------------------------------------------------
# Opsets


def old_cnn(opset: int) -> onnx.ModelProto:
    """Conv, BatchNormalization, Relu, MaxPool, Dropout, Flatten, Gemm at an old opset."""
    g = Graph(20)
    c = g.node("Conv", ["x", g.randn("w", (4, 3, 3, 3)), g.randn("b", (4,))], name="conv")
    bn = [g.init(n, g.rng.uniform(0.5, 1.5, 4), np.float32) for n in ("s", "bb", "m", "v")]
    n = g.node("BatchNormalization", [c, *bn], name="bn")
    r = g.node("Relu", [n], name="relu")
    p = g.node("MaxPool", [r], name="pool", kernel_shape=[2, 2], strides=[2, 2])
    d = g.node("Dropout", [p], name="drop", **({"ratio": 0.5} if opset < 12 else {}))
    f = g.node("Flatten", [d], name="flat")
    g.node("Gemm", [f, g.randn("fc", (5, 36)), g.randn("fc_b", (5,))], "y", name="fc", transB=1)
    return g.model({"x": ["N", 3, 8, 8]}, {"y": 2}, opset=opset)


@pytest.mark.parametrize("opset", [7, 9, 10])
def test_old_opsets_are_upgraded_and_say_so(opset, caplog):
    model = old_cnn(opset)
    with caplog.at_level(logging.INFO, logger="accel.frontends.onnx"):
        net = check(model)
    note = f"default-domain opset {opset} upgraded to 13 with onnx.version_converter"
    assert import_notes(net) == [note]
    assert note in caplog.text
    assert ops(net) == ["Input", "Conv2d", "MaxPool2d", "Flatten", "Linear"]


def test_a_recent_opset_is_not_converted():
    net = check(old_cnn(13))
    assert import_notes(net) == []


def test_an_upgrade_that_fails_names_the_file_and_the_opset(monkeypatch, tmp_path):
    def refuse(model, target):
        raise RuntimeError("adapter missing\nmore detail")

    monkeypatch.setattr(onnx.version_converter, "convert_version", refuse)
    path = tmp_path / "old.onnx"
    onnx.save(old_cnn(9), path)
    with pytest.raises(
        ValueError,
        match=rf"^{path}: default-domain opset 9 could not be upgraded to 13 with "
        r"onnx.version_converter: adapter missing$",
    ):
        load(path)


# ---------------------------------------------------------------------------------------
# Constant folding


def shape_chain_model(batch: int | str) -> onnx.ModelProto:
    """PyTorch's flatten: Reshape(x, Concat(Unsqueeze(Gather(Shape(x), 0)), [-1])), weights
    made by Transpose and ConstantOfShape + Mul, a Cast of the Reshape's shape."""
    g = Graph(21)
    c = g.node("Conv", ["x", g.randn("w", (4, 3, 3, 3))], name="conv", pads=[1] * 4)
    s = g.node("Shape", [c], name="shape")
    n = g.node("Gather", [s, g.init("zero", 0, np.int64)], name="gather", axis=0)
    u = g.node("Unsqueeze", [n, g.init("axes", [0], np.int64)], name="unsqueeze")
    cat = g.node("Concat", [u, g.init("minus1", [-1], np.int64)], name="cat", axis=0)
    shape = g.node("Cast", [cat], name="cast", to=TensorProto.INT64)
    f = g.node("Reshape", [c, shape], name="flatten")
    ones = g.node(
        "ConstantOfShape",
        [g.init("wshape", [144, 5], np.int64)],
        name="ones",
        value=numpy_helper.from_array(np.array([0.5], np.float32)),
    )
    wt = g.node("Transpose", [g.randn("wt", (5, 144))], name="transpose")
    w = g.node("Mul", [ones, wt], name="weight")
    g.node("MatMul", [f, w], "y", name="fc")
    return g.model({"x": [batch, 3, 6, 6]}, {"y": 2})


def test_constant_subgraphs_fold_away():
    net = check(shape_chain_model(2), batch=2)
    assert ops(net) == ["Input", "Conv2d", "Flatten", "Linear"]
    assert batch_size(net) == 2


def test_shape_of_a_dynamic_batch_is_not_a_constant():
    with pytest.raises(
        ValueError,
        match=r"node 'shape' \(Shape\): the shape of 'conv1' is not static \(batch 'N'\)",
    ):
        load(shape_chain_model("N"))


def test_a_folding_failure_names_the_node():
    g = Graph()
    bad = helper.make_node(
        "Reshape", ["k", "s"], ["r"], name="bad_reshape"
    )  # 6 elements into (4,): onnx.reference refuses
    g.nodes.append(bad)
    g.init("k", np.ones(6), np.float32)
    g.init("s", [4], np.int64)
    g.node("Add", ["x", "r"], "y", name="add")
    model = g.model({"x": ["N", 4]}, {"y": 2}, check=False)
    with pytest.raises(
        ValueError, match=r"node 'bad_reshape' \(Reshape\): constant folding \(onnx.reference\)"
    ):
        load(model)


# ---------------------------------------------------------------------------------------
# 1-D and (N, F) tensors


CONV1D = {
    # name: (C, K, k, L, attributes)
    "plain": (3, 4, 3, 10, {}),
    "pads": (3, 4, 3, 10, {"pads": [2, 1]}),
    "stride_dilation": (3, 4, 3, 17, {"strides": [2], "dilations": [2], "pads": [1, 1]}),
    "groups": (4, 6, 3, 9, {"group": 2}),
    "depthwise": (4, 4, 5, 9, {"group": 4, "pads": [2, 2]}),
    "same_upper": (3, 2, 4, 9, {"auto_pad": "SAME_UPPER", "strides": [2]}),
    "same_lower": (3, 2, 4, 9, {"auto_pad": "SAME_LOWER"}),
}


@pytest.mark.parametrize("case", sorted(CONV1D))
def test_conv1d_runs_as_a_2d_conv_with_h_1(case):
    c, k, kernel, length, attrs = CONV1D[case]
    g = Graph(22)
    w = g.randn("w", (k, c // attrs.get("group", 1), kernel))
    conv = g.node("Conv", ["x", w, g.randn("b", (k,))], name="conv", **attrs)
    bn = [g.init(n, g.rng.uniform(0.5, 1.5, k), np.float32) for n in ("s", "bb", "m", "v")]
    g.node("BatchNormalization", [conv, *bn], "y", name="bn")
    net = check(g.model({"x": ["N", c, length]}, {"y": 3}))
    assert ops(net) == ["Input", "Conv2d"]
    op = net.op("conv")
    assert net.shape("x") == (c, 1, length) and op.kernel == (1, kernel)
    assert op.padding[:2] == (0, 0)
    if "pads" in attrs:
        assert op.padding[2:] == tuple(attrs["pads"])


@pytest.mark.parametrize(
    ("op", "attrs", "expected"),
    [
        ("MaxPool", {"kernel_shape": [3], "strides": [2], "pads": [1, 1]}, MaxPool2d),
        ("MaxPool", {"kernel_shape": [2], "ceil_mode": 1}, MaxPool2d),
        ("AveragePool", {"kernel_shape": [3], "pads": [1, 1], "count_include_pad": 1}, AvgPool2d),
        ("AveragePool", {"kernel_shape": [4], "strides": [3]}, AvgPool2d),
        ("GlobalAveragePool", {}, GlobalAvgPool),
    ],
)
def test_pool1d_runs_as_a_2d_pool_with_h_1(op, attrs, expected):
    g = Graph()
    g.node(op, ["x"], "y", name="pool", **attrs)
    net = check(g.model({"x": ["N", 3, 11]}, {"y": 3}))
    assert type(net.op("pool")) is expected


def test_unsqueezed_1d_pool_keeps_its_layout():
    """PyTorch's old AvgPool1d export: Unsqueeze(-1) to (N, C, L, 1), a (k, 1) pool, Squeeze.
    (N, C, L, 1) is stored as (C, 1, L), the same elements: the reshapes are aliases and the
    pool swaps its axes."""
    g = Graph()
    u = g.node("Unsqueeze", ["x", g.init("axes", [3], np.int64)], name="unsqueeze")
    p = g.node("AveragePool", [u], name="pool", kernel_shape=[3, 1], strides=[2, 1])
    c = g.node("Conv", [p, g.randn("w", (2, 3, 2, 1))], name="conv", pads=[1, 0, 0, 0])
    g.node("Squeeze", [c, g.init("axes3", [3], np.int64)], "y", name="squeeze")
    net = check(g.model({"x": ["N", 3, 12]}, {"y": 3}))
    assert ops(net) == ["Input", "AvgPool2d", "Conv2d"]
    assert net.op("pool").kernel == (1, 3) and net.op("conv").padding == (0, 0, 1, 0)


def test_mlp_on_an_n_f_input():
    g = Graph(23)
    h = g.node("Gemm", ["x", g.randn("w1", (16, 10)), g.randn("b1", (16,))], name="fc1", transB=1)
    r = g.node("Relu", [h], name="relu")
    g.node("MatMul", [r, g.randn("w2", (16, 3))], "y", name="fc2")
    net = check(g.model({"x": ["N", 10]}, {"y": 2}))
    assert net.shape("x") == (10, 1, 1)
    assert net.op("fc1") == Linear(10, 16, activation="relu")


def test_static_batch_is_recorded_and_loaded(tmp_path):
    g = Graph()
    g.node("Conv", ["x", g.randn("w", (4, 3, 3, 3))], "y", name="conv")
    model = g.model({"x": [4, 3, 6, 6]}, {"y": 4})
    net = check(model, batch=4)
    assert batch_size(net) == 4
    assert import_notes(net) == ["static batch N=4: the network describes one image of it"]
    path = tmp_path / "batch4.onnx"
    onnx.save(model, path)
    assert batch_size(load_model(str(path))) == 4  # accel simulate/verify run 4 images


def test_batch_1_and_dynamic_batches_are_not_recorded(tmp_path):
    for batch in (1, "N"):
        g = Graph()
        g.node("Relu", ["x"], "y", name="relu")
        net = load(g.model({"x": [batch, 3, 4, 4]}, {"y": 4}))
        assert batch_size(net) == (1 if batch == 1 else None)
        assert import_notes(net) == []


# ---------------------------------------------------------------------------------------
# Exact mappings of common export patterns


def test_caffe_pools_with_end_padding_run_with_ceil_mode():
    """Caffe's ceil-mode pools export as pads (0, 0, 1, 1): for a max, the same windows as
    begin pads 0 with ceil_mode. An average would need a divisor that varies along the border
    (whether or not it counts pads): it runs on the host."""
    g = Graph()
    attrs = {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [0, 0, 1, 1]}
    g.node("MaxPool", ["x"], "y", name="pool", **attrs)
    net = check(g.model({"x": ["N", 3, 8, 9]}, {"y": 4}))
    assert net.op("pool").ceil_mode and net.op("pool").padding == (0, 0, 0, 0)
    for count_include_pad in (0, 1):
        g = Graph()
        g.node("AveragePool", ["x"], "y", name="pool", count_include_pad=count_include_pad, **attrs)
        assert host_ops(check(g.model({"x": ["N", 3, 8, 9]}, {"y": 4}))) == ["AveragePool"]


def test_average_pool_of_the_whole_input_is_a_global_pool():
    """Inception v1's 7x7 pool with pads (0, 0, 1, 1) on a 6x6 map: one window, no pad
    counted."""
    g = Graph()
    attrs = {"kernel_shape": [7, 7], "pads": [0, 0, 1, 1]}
    g.node("AveragePool", ["x"], "y", name="pool", **attrs)
    net = check(g.model({"x": ["N", 8, 6, 6]}, {"y": 4}))
    assert net.op("pool") == GlobalAvgPool()


def test_identity_average_pool_is_no_node():
    """AdaptiveAvgPool2d exported on an input of its output size (AlexNet's): kernel 1."""
    g = Graph(24)
    c = g.node("Conv", ["x", g.randn("w", (4, 3, 3, 3))], "c", name="conv")
    p = g.node("AveragePool", [c], "p", name="pool", kernel_shape=[1, 1], strides=[1, 1])
    g.node("Relu", [p], "y", name="relu")
    net = check(g.model({"x": ["N", 3, 6, 6]}, {"y": 4}))
    assert ops(net) == ["Input", "Conv2d"] and net.op("conv").activation == "relu"
    assert tensor_map(net)["p"] == "conv"
    ptq.quantize(net)


def test_per_channel_scale_and_bias_after_a_conv_fold_into_it():
    """Caffe2's Conv, SpatialBN, Mul and Add of per-channel constants (Inception v2)."""
    g = Graph(25)
    c = g.node("Conv", ["x", g.randn("w", (4, 3, 3, 3))], name="conv")
    bn = [g.init(n, g.rng.uniform(0.5, 1.5, 4), np.float32) for n in ("s", "bb", "m", "v")]
    n = g.node("BatchNormalization", [c, *bn], name="bn")
    m = g.node("Mul", [g.randn("scale", (4, 1, 1)), n], name="mul")
    a = g.node("Add", [m, g.randn("shift", (1, 4, 1, 1))], name="add")
    s = g.node("Mul", [a, g.init("half", 0.5, np.float32)], name="mul2")
    g.node("Relu", [s], "y", name="relu")
    net = check(g.model({"x": ["N", 3, 6, 6]}, {"y": 4}))
    assert ops(net) == ["Input", "Conv2d"]


def test_sum_of_two_is_an_add():
    g = Graph()
    a = g.node("Relu", ["x"], name="a")
    b = g.node("MaxPool", ["x"], name="b", kernel_shape=[3, 3], pads=[1] * 4, strides=[1, 1])
    s = g.node("Sum", [a, b], name="sum")
    g.node("Sum", [s], "y", name="one")
    net = check(g.model({"x": ["N", 3, 5, 5]}, {"y": 4}))
    assert ops(net) == ["Input", "Activation", "MaxPool2d", "Add"]


# ---------------------------------------------------------------------------------------
# The host runs the rest


def host_case(op: str, **kwargs):
    """x -> conv -> tanh -> ``op`` -> relu; ``kwargs``: ``inputs`` (extra constant inputs as
    ``(name, value, dtype)``), ``x`` (input shape), ``opset``, attributes."""
    inputs = kwargs.pop("inputs", [])
    x = kwargs.pop("x", ["N", 3, 6, 6])
    opset = kwargs.pop("opset", 13)
    g = Graph(26)
    rank = len(x)
    w_shape = (4, x[1], *([3] * (rank - 2)))
    c = g.node("Conv", ["x", g.randn("w", w_shape)], name="conv", pads=[1] * 2 * (rank - 2))
    r = g.node("Relu", [c], name="relu0")
    names = [r] + [g.init(*item) for item in inputs]
    h = g.node(op, names, name="host", **kwargs)
    g.node("Relu", [h], "y", name="relu")
    return g.model({"x": x}, {"y": rank}, opset=opset)


HOST_CASES = {
    "Softsign": lambda: host_case("Softsign"),
    "Erf": lambda: host_case("Erf"),
    "Mish": lambda: host_case("Mish", opset=18),
    "ThresholdedRelu": lambda: host_case("ThresholdedRelu", alpha=0.2),
    "Celu 1-D": lambda: host_case("Celu", x=["N", 3, 9], alpha=0.5),
    "PRelu along W": lambda: host_case(
        "PRelu", inputs=[("slope", np.linspace(0.1, 0.4, 6).reshape(1, 6), np.float32)]
    ),
    "Softmax": lambda: host_case("Softmax", axis=1),
    "LRN": lambda: host_case("LRN", size=3),
    "Pad reflect": lambda: host_case(
        "Pad", inputs=[("pads", [0, 0, 1, 2, 0, 0, 2, 1], np.int64)], mode="reflect"
    ),
    "Resize bilinear": lambda: host_case(
        "Resize",
        inputs=[("roi", [], np.float32), ("scales", [1, 1, 2, 2], np.float32)],
        mode="linear",
    ),
    "Mul broadcast": lambda: host_case("Mul", inputs=[("k", np.full((1, 6), 2.0), np.float32)]),
    "Clip(-1, 1)": lambda: host_case(
        "Clip", inputs=[("lo", -1.0, np.float32), ("hi", 1.0, np.float32)]
    ),
    "dilated AveragePool": lambda: host_case(
        "AveragePool", kernel_shape=[2, 2], dilations=[2, 2], opset=19
    ),
    "ConvTranspose output_shape past the full output": lambda: host_case(
        "ConvTranspose",
        inputs=[("wt", np.linspace(-1, 1, 4 * 2 * 9).reshape(4, 2, 3, 3), np.float32)],
        strides=[2, 2],
        output_shape=[14, 13],  # the full output is 13 x 13: a negative padding
    ),
    "Transpose HW": lambda: host_case("Transpose", perm=[0, 1, 3, 2]),
}


@pytest.mark.parametrize("case", sorted(HOST_CASES))
def test_ops_without_a_mapping_run_on_the_host(case):
    model = HOST_CASES[case]()
    net = check(model)
    op_type = model.graph.node[2].op_type
    assert ops(net) == ["Input", "Conv2d", op_type, "Activation"]
    assert net.op("conv").activation == "relu" and net.inputs("relu") == ["host"]
    assert net.meta("host")["host_reason"]
    assert import_notes(net)[-1] == f"1 ops run on the host: {op_type} x1"
    with pytest.raises(ValueError, match=rf"^node 'host' \({op_type}\): "):
        load(model, host=False)


def test_host_op_with_two_used_outputs():
    """Split of the rows (a channel Split is a ChannelSlice pair): one HostOp per used
    output."""
    g = Graph()
    c = g.node("Conv", ["x", g.randn("w", (4, 3, 1, 1))], name="conv")
    g.nodes.append(helper.make_node("Split", [c], ["a", "b"], name="split", axis=2))
    g.node("Add", ["a", "b"], "y", name="add")
    net = check(g.model({"x": ["N", 3, 4, 4]}, {"y": 4}))
    assert ops(net) == ["Input", "Conv2d", "Split", "Split", "Add"]


def test_squeeze_and_excitation_on_the_host():
    """x * sigmoid(fc(gap(x))): the gap, the 1x1 convs and the Sigmoid (a table) on the
    accelerator, the broadcasting Mul on the host."""
    g = Graph(27)
    p = g.node("GlobalAveragePool", ["x"], name="gap")
    c1 = g.node("Conv", [p, g.randn("w1", (2, 8, 1, 1)), g.randn("b1", (2,))], name="fc1")
    r = g.node("Relu", [c1], name="relu")
    c2 = g.node("Conv", [r, g.randn("w2", (8, 2, 1, 1)), g.randn("b2", (8,))], name="fc2")
    s = g.node("Sigmoid", [c2], name="gate")
    g.node("Mul", ["x", s], "y", name="scale")
    net = check(g.model({"x": ["N", 8, 5, 5]}, {"y": 4}))
    assert ops(net) == ["Input", "GlobalAvgPool", "Conv2d", "Conv2d", "Pointwise", "Mul"]
    assert net.op("fc1").activation == "relu"  # fused across the host boundary's neighbour


def test_host_ops_quantise_and_run_in_int8():
    """ptq calibrates through the host ops, which get their own TensorQuant; in int8 they
    dequantise, run in float and quantise, and stay within 1 LSB of that float op on the same
    int8 inputs."""
    model = HOST_CASES["Softsign"]()
    net = load(model)
    x = np.random.default_rng(3).standard_normal((4, 3, 6, 6))
    qnet = ptq.quantize(net, calibration={"x": x})
    assert "host" in qnet.tensors and "host" not in qnet.layers
    assert qnet.tensors["host"] != qnet.tensors["conv"]
    trace = executor.trace_network(qnet, {"x": x})
    inputs = qnet.dequantize("conv", trace["conv"])
    expected = qnet.tensors["host"].quantize(inputs / (1 + np.abs(inputs)))
    assert np.abs(trace["host"].astype(int) - expected).max() <= 1
    graph.fuse_activations(net)  # nothing to fuse into a host op; no error


def test_qdq_model_with_a_host_op_matches_onnxruntime():
    """DequantizeLinear -> Softsign -> QuantizeLinear: the host op takes the quantisation of
    the QuantizeLinear after it. The conv is within 1 LSB of onnxruntime (the reference
    semantics of QDQ, optimisations off); the host softsign of our conv output is exactly
    QuantizeLinear(Softsign(DequantizeLinear(c))), round half to even as ONNX."""
    g = Graph(28)
    x = qdq(g, "x", 0.02, 0)
    w, _ = int8_weights(g, "W", g.rng.standard_normal((4, 3, 3, 3)) * 0.3)
    c = qdq(g, g.node("Conv", [x, w], "c", name="conv", pads=[1] * 4), 0.05, 3)
    qdq(g, g.node("Softsign", [c], "s", name="gate"), 1 / 128, 0, dequantize=False)
    model = g.model({"x": ["N", 3, 6, 6]}, {"s_q": 4, "c_q": 4}, out_type=INT8)
    qnet = load(model)
    assert isinstance(qnet, QuantizedNetwork) and host_ops(qnet) == ["Softsign"]
    feeds = onnx_inputs(model, 16, 2)
    expected = ort_run(model, feeds, optimize=False)["c_q"].astype(int)
    trace = executor.trace_network(qnet, feeds)
    diff = np.abs(trace["conv"].astype(int) - expected)
    record("qdq conv before a host softsign", int(diff.max()), float(np.mean(diff == 0)), 0.99)
    real = qnet.dequantize("conv", trace["conv"]).astype(np.float32)
    softsign = (real / (1 + np.abs(real))).astype(np.float32)
    expected = np.clip(np.rint(softsign / np.float32(1 / 128)), -128, 127)
    np.testing.assert_array_equal(trace["gate"], expected.astype(np.int8), strict=True)


def test_activations_fuse_around_host_ops():
    g = Graph(29)
    c = g.node("Conv", ["x", g.randn("w", (4, 3, 3, 3))], name="conv")
    r = g.node("Relu", [c], name="relu")
    s = g.node("Softplus", [r], name="host")
    g.node("Relu", [s], "y", name="relu2")
    net = check(g.model({"x": ["N", 3, 6, 6]}, {"y": 4}))
    assert net.op("conv").activation == "relu"
    assert net.op("relu2") == Activation("relu") and net.inputs("relu2") == ["host"]


def test_host_false_keeps_every_mapped_op_off_the_host():
    net = load(old_cnn(13), host=False)
    assert host_ops(net) == []
    assert isinstance(net.op("conv"), Conv2d)


def test_load_rejects_a_non_bool_host():
    with pytest.raises(TypeError, match=r"host must be a bool, got 'no'"):
        load(old_cnn(13), host="no")


def test_float_input_types_reach_the_host_as_float32():
    g = Graph()
    g.node("Softsign", ["x"], "y", name="host")
    net = check(g.model({"x": ["N", 3, 2, 2]}, {"y": 4}, in_type=FLOAT))
    assert host_ops(net) == ["Softsign"]


def test_qdq_bias_added_after_the_requantised_product_runs_on_the_host():
    """onnxruntime's QDQ MatMul -> Q -> DQ -> Add(bias): the Add of a constant on the host, in
    int8, within 1 LSB of onnxruntime's reference semantics of QDQ (the MatMul's double
    rounding, docs/onnx.md)."""
    from tests.test_accel_onnx import matmul_requantised_before_bias

    model = matmul_requantised_before_bias()
    qnet = load(model)
    assert host_ops(qnet) == ["Add"]
    feeds = onnx_inputs(model, 16, 4)
    expected = ort_run(model, feeds, optimize=False)["a_q"].astype(int)
    diff = np.abs(executor.run_network(qnet, feeds)["n"].astype(int) - expected)
    record("qdq matmul, host bias add", int(diff.max()), float(np.mean(diff == 0)), 0.97)


# ---------------------------------------------------------------------------------------
# The host's reference implementation against onnxruntime


def one_node(op: str, constants=(), opset: int = 17, x=(2, 4, 5, 6), outputs: int = 1, **attrs):
    """``op`` on a float input ``x`` (static shape) and ``constants`` ((name, value) pairs)."""
    names = [f"y{i}" for i in range(outputs)]
    node = helper.make_node(op, ["x", *(n for n, _ in constants)], names, **attrs)
    graph = helper.make_graph(
        [node],
        op,
        [helper.make_tensor_value_info("x", FLOAT, list(x))],
        [helper.make_value_info(n, onnx.TypeProto()) for n in names],
        [numpy_helper.from_array(np.asarray(v), n) for n, v in constants],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


_R = np.random.default_rng(11)


def _f(*shape):
    return _R.random(shape).astype(np.float32) + 0.5


def _i(*values):
    return np.array(values, dtype=np.int64)


def _roi_scales(*scales):
    return [("roi", np.array([], np.float32)), ("scales", np.array(scales, np.float32))]


REFERENCE_CASES = {
    "Softmax": one_node("Softmax", axis=1),
    "Softmax last": one_node("Softmax"),
    "LogSoftmax": one_node("LogSoftmax", axis=1),
    "Sigmoid": one_node("Sigmoid"),
    "Tanh": one_node("Tanh"),
    "HardSwish": one_node("HardSwish"),
    "HardSigmoid": one_node("HardSigmoid", alpha=0.3, beta=0.4),
    "LeakyRelu": one_node("LeakyRelu", alpha=0.1),
    "Elu": one_node("Elu", alpha=0.7),
    "Selu": one_node("Selu"),
    "Celu": one_node("Celu", alpha=0.5),
    "Mish": one_node("Mish", opset=18),
    "Gelu": one_node("Gelu", opset=20),
    "Gelu tanh": one_node("Gelu", opset=20, approximate="tanh"),
    "Softplus": one_node("Softplus"),
    "Softsign": one_node("Softsign"),
    "ThresholdedRelu": one_node("ThresholdedRelu", alpha=0.3),
    "Shrink": one_node("Shrink", lambd=0.5, bias=0.1),
    "Erf": one_node("Erf"),
    "PRelu": one_node("PRelu", [("slope", _f(4, 1, 1))]),
    "Clip": one_node("Clip", [("lo", np.float32(-0.5)), ("hi", np.float32(0.5))]),
    "Pad constant": one_node("Pad", [("pads", _i(0, 0, 1, 2, 0, 0, 2, 1))]),
    "Pad reflect": one_node("Pad", [("pads", _i(0, 0, 1, 2, 0, 0, 2, 1))], mode="reflect"),
    "Pad edge": one_node("Pad", [("pads", _i(0, 0, 1, 2, 0, 0, 2, 1))], mode="edge"),
    "Resize nearest": one_node("Resize", _roi_scales(1, 1, 2, 2), mode="nearest"),
    "Resize nearest 1.5": one_node("Resize", _roi_scales(1, 1, 1.5, 1.5), mode="nearest"),
    "Resize linear": one_node("Resize", _roi_scales(1, 1, 2, 2), mode="linear"),
    "Resize linear align_corners": one_node(
        "Resize",
        _roi_scales(1, 1, 2, 2),
        mode="linear",
        coordinate_transformation_mode="align_corners",
    ),
    "Resize linear pytorch_half_pixel": one_node(
        "Resize",
        _roi_scales(1, 1, 1.7, 2.3),
        mode="linear",
        coordinate_transformation_mode="pytorch_half_pixel",
    ),
    "Resize cubic": one_node("Resize", _roi_scales(1, 1, 2, 2), mode="cubic"),
    "Upsample": one_node("Upsample", [("scales", np.array([1, 1, 2, 2], np.float32))], opset=9),
    "Transpose": one_node("Transpose", perm=[0, 2, 3, 1]),
    "Mul broadcast": one_node("Mul", [("k", _f(4, 1, 1))]),
    "Div": one_node("Div", [("k", _f(1, 6))]),
    "Sub": one_node("Sub", [("k", _f(6))]),
    "Pow": one_node("Pow", [("k", np.float32(2))]),
    "Max": one_node("Max", [("k", _f(4, 1, 1))]),
    "Mean": one_node("Mean", [("k", _f(4, 1, 1))]),
    "ReduceMean": one_node("ReduceMean", axes=[2, 3], keepdims=1),
    "ReduceMean 18": one_node("ReduceMean", [("axes", _i(2, 3))], opset=18),
    "ReduceSum": one_node("ReduceSum", [("axes", _i(1))]),
    "ReduceMax": one_node("ReduceMax", axes=[1], keepdims=1),
    "ReduceL2": one_node("ReduceL2", axes=[1]),
    "ConvTranspose": one_node(
        "ConvTranspose",
        [("w", _f(4, 3, 3, 3))],
        strides=[2, 2],
        pads=[1, 1, 1, 1],
        output_padding=[1, 1],
    ),
    "ConvTranspose grouped dilated": one_node(
        "ConvTranspose",
        [("w", _f(4, 1, 3, 3)), ("b", _f(2))],
        strides=[2, 1],
        group=2,
        dilations=[2, 1],
    ),
    "MaxPool dilated": one_node("MaxPool", kernel_shape=[2, 2], dilations=[2, 2], pads=[1] * 4),
    "MaxPool asymmetric": one_node(
        "MaxPool", kernel_shape=[3, 3], strides=[2, 2], pads=[0, 0, 1, 1]
    ),
    "AveragePool counting pads": one_node(
        "AveragePool", kernel_shape=[3, 3], pads=[1, 0, 2, 1], count_include_pad=1
    ),
    "AveragePool ceil": one_node(
        "AveragePool", kernel_shape=[3, 3], strides=[2, 2], pads=[1] * 4, ceil_mode=1
    ),
    "AveragePool dilated": one_node("AveragePool", kernel_shape=[2, 2], dilations=[2, 2], opset=19),
    "GlobalMaxPool": one_node("GlobalMaxPool"),
    "LpPool": one_node("LpPool", kernel_shape=[2, 2], p=2),
    "InstanceNormalization": one_node("InstanceNormalization", [("s", _f(4)), ("b", _f(4))]),
    "LayerNormalization": one_node("LayerNormalization", [("s", _f(6)), ("b", _f(6))]),
    "LayerNormalization 3 axes": one_node("LayerNormalization", [("s", _f(4, 5, 6))], axis=1),
    "GroupNormalization": one_node(
        "GroupNormalization", [("s", _f(2)), ("b", _f(2))], num_groups=2, opset=18
    ),
    "LRN": one_node("LRN", size=3),
    "LRN 5": one_node("LRN", size=5, alpha=0.001, beta=0.5, bias=2.0),
    "BatchNormalization 13": one_node(
        "BatchNormalization", [(n, _f(4)) for n in "sbmv"], opset=13, momentum=0.8
    ),
    "BatchNormalization 9": one_node("BatchNormalization", [(n, _f(4)) for n in "sbmv"], opset=9),
    "BatchNormalization 15": one_node("BatchNormalization", [(n, _f(4)) for n in "sbmv"], opset=15),
    "Split": one_node("Split", outputs=2, axis=1),
    "Slice": one_node("Slice", [("starts", _i(1)), ("ends", _i(3)), ("axes", _i(1))]),
    "DepthToSpace DCR": one_node("DepthToSpace", blocksize=2),
    "DepthToSpace CRD": one_node("DepthToSpace", blocksize=2, mode="CRD"),
    "SpaceToDepth": one_node("SpaceToDepth", x=(2, 4, 6, 6), blocksize=2),
    "Tile": one_node("Tile", [("repeats", _i(1, 1, 2, 1))]),
    "LpNormalization": one_node("LpNormalization", axis=1),
    "MeanVarianceNormalization": one_node("MeanVarianceNormalization"),
    "Flatten axis 2": one_node("Flatten", axis=2),
    "CumSum": one_node("CumSum", [("axis", np.array(1))]),
    "Einsum": one_node("Einsum", [("w", _f(4, 3))], equation="nchw,cd->ndhw"),
    "MatMul batched": one_node("MatMul", [("w", _f(6, 3))]),
    "Hardmax": one_node("Hardmax", axis=1),
    "Reciprocal": one_node("Reciprocal"),
    "Exp": one_node("Exp"),
    "Abs": one_node("Abs"),
    "Round": one_node("Round"),
}


@pytest.mark.parametrize("case", sorted(REFERENCE_CASES))
def test_the_host_reference_agrees_with_onnxruntime(case):
    """accel.host.reference_evaluator (onnx.reference with its corrections) against
    onnxruntime: within 1e-5 of the largest output."""
    import onnxruntime as ort

    from accel.host import reference_evaluator

    model = REFERENCE_CASES[case]
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    x = (np.random.default_rng(12).standard_normal(dims) * 2).astype(np.float32)
    with np.errstate(all="ignore"):
        ours = reference_evaluator(model).run(None, {"x": x})
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    for got, expected in zip(ours, session.run(None, {"x": x}), strict=True):
        assert got.shape == expected.shape
        scale = max(1.0, float(np.abs(expected).max()))
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5 * scale)


@pytest.mark.parametrize("stride", [1, 2])
def test_qdq_identity_average_pool(stride):
    """A QDQ AveragePool of kernel 1 with the same scale in and out: the rescale factor 1 is
    the exact identity multiplier (it used to be rejected), equal to onnxruntime."""
    from accel.quantized import IDENTITY_MULTIPLIER, PoolQuant

    g = Graph()
    p = g.node(
        "AveragePool",
        [qdq(g, "x", 0.02, 5)],
        "p",
        name="pool",
        kernel_shape=[1, 1],
        strides=[stride, stride],
    )
    qdq(g, p, 0.02, 5, dequantize=False)
    model = g.model({"x": ["N", 4, 6, 6]}, {"p_q": 4}, out_type=INT8)
    qnet = load(model)
    assert qnet.layers["pool"] == PoolQuant(*IDENTITY_MULTIPLIER)
    feeds = onnx_inputs(model, 8, 5)
    expected = ort_run(model, feeds, optimize=False)["p_q"]
    np.testing.assert_array_equal(executor.run_network(qnet, feeds)["pool"], expected, strict=True)
