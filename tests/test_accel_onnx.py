"""ONNX frontend: models built with onnx.helper, run in onnxruntime and through
``accel.executor.run_network(load(model), ...)``.

* float: within ``rtol=1e-5`` (onnxruntime is float32, golden float64);
* int8: every output within 1 LSB of onnxruntime for a single quantised layer, and the
  fraction of exactly equal outputs is printed and held above a floor measured on these seeds
  (``docs/onnx.md`` has the table); whole CNNs are compared end to end the same way;
* every rejection is pinned by its message.

QDQ models are compared with onnxruntime with graph optimisations off: that runs the QDQ
graph as written (DequantizeLinear, float op, QuantizeLinear), the reference semantics. With
optimisations on, onnxruntime fuses QDQ into its own int8 kernels, which on AVX2 machines
without VNNI saturate int16 pair sums for u8 x s8 products unless weights use 7 bits
(``reduce_range``); the QOperator uint8 test uses ``reduce_range`` for that reason.
"""

from __future__ import annotations

import logging
import re

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import (
    CalibrationDataReader,
    QuantFormat,
    QuantType,
    quantize_static,
)

from accel import executor
from accel.frontends.onnx import load, tensor_map
from accel.graph import (
    Activation,
    Add,
    AvgPool2d,
    Concat,
    GlobalAvgPool,
    HostOp,
    Linear,
    MaxPool2d,
    Network,
)
from accel.quantized import AddQuant, ConvQuant, PoolQuant, QuantizedNetwork, TensorQuant

FLOAT, INT8, UINT8 = TensorProto.FLOAT, TensorProto.INT8, TensorProto.UINT8
OPSET = 13


# ---------------------------------------------------------------------------------------
# Model building and running


class Graph:
    """A tiny builder: nodes, initializers and a checked model."""

    def __init__(self, seed: int = 0) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.rng = np.random.default_rng(seed)
        self._count = 0

    def init(self, name: str, value: object, dtype: object = None) -> str:
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def randn(self, name: str, shape: tuple[int, ...], std: float = 0.3) -> str:
        return self.init(name, self.rng.standard_normal(shape) * std, np.float32)

    def node(self, op: str, inputs: list[str], output: str | None = None, **attrs: object) -> str:
        self._count += 1
        output = output or f"{op.lower()}{self._count}"
        domain = attrs.pop("domain", None)
        name = attrs.pop("name", f"{op.lower()}_{self._count}")
        self.nodes.append(helper.make_node(op, inputs, [output], name=name, domain=domain, **attrs))
        return output

    def model(
        self,
        inputs: dict[str, list[object]],
        outputs: dict[str, int],
        *,
        opset: int = OPSET,
        in_type: int = FLOAT,
        out_type: int = FLOAT,
        microsoft: bool = False,
        check: bool = True,
    ) -> onnx.ModelProto:
        graph = helper.make_graph(
            self.nodes,
            "test",
            [helper.make_tensor_value_info(n, in_type, s) for n, s in inputs.items()],
            [helper.make_tensor_value_info(n, out_type, [None] * r) for n, r in outputs.items()],
            self.inits,
        )
        opsets = [helper.make_opsetid("", opset)]
        if microsoft:
            opsets.append(helper.make_opsetid("com.microsoft", 1))
        model = helper.make_model(graph, opset_imports=opsets)
        if check:
            onnx.checker.check_model(model)
        return model


def ort_run(model: onnx.ModelProto, feeds: dict[str, np.ndarray], optimize: bool = True) -> dict:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    if not optimize:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, feeds), strict=True))


def random_input(shape: tuple[int, ...], batch: int = 2, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((batch, *shape)).astype(np.float32)


def check_float(model: onnx.ModelProto, batch: int = 2, seed: int = 1) -> Network:
    """Load ``model``, run it in golden and onnxruntime on random inputs, compare."""
    net = load(model)
    assert isinstance(net, Network)
    feeds = {name: random_input(net.shape(name), batch, seed) for name in net.input_names}
    expected = ort_run(model, feeds)
    got = executor.run_network(net, feeds)
    nodes = tensor_map(net)
    for name, value in expected.items():
        scale = max(1.0, float(np.abs(value).max()))
        np.testing.assert_allclose(got[nodes[name]], value, rtol=1e-5, atol=1e-6 * scale)
    return net


def ops(net: Network) -> list[str]:
    return [type(net.op(n)).__name__ for n in net.order()]


# ---------------------------------------------------------------------------------------
# Float: Conv


CONV_CASES = {
    # name: (C, K, kernel, (H, W), Conv attributes, with bias)
    "asymmetric_pads": (3, 4, (3, 3), (7, 6), {"pads": [1, 0, 2, 1]}, True),
    "same_upper_stride2": (
        3,
        4,
        (3, 3),
        (7, 8),
        {"auto_pad": "SAME_UPPER", "strides": [2, 2]},
        True,
    ),
    "same_upper_even_kernel": (2, 3, (4, 2), (6, 5), {"auto_pad": "SAME_UPPER"}, True),
    "same_lower_even_kernel": (2, 3, (4, 2), (6, 5), {"auto_pad": "SAME_LOWER"}, True),
    "valid_stride2": (3, 4, (3, 3), (9, 8), {"auto_pad": "VALID", "strides": [2, 2]}, True),
    "groups": (4, 6, (3, 3), (6, 6), {"group": 2, "pads": [1, 1, 1, 1]}, True),
    "depthwise": (4, 4, (3, 3), (6, 7), {"group": 4, "pads": [1, 1, 1, 1]}, True),
    "dilation": (3, 4, (3, 3), (9, 8), {"dilations": [2, 1], "pads": [2, 1, 2, 1]}, True),
    "stride2_no_bias": (3, 5, (3, 3), (8, 8), {"strides": [2, 2], "pads": [1, 1, 1, 1]}, False),
    "pointwise": (6, 3, (1, 1), (5, 5), {}, True),
    "rect_kernel_stride": (3, 4, (1, 3), (6, 9), {"strides": [1, 2], "kernel_shape": [1, 3]}, True),
}


def conv_model(case: str, seed: int = 0, relu: bool = False) -> onnx.ModelProto:
    c, k, kernel, hw, attrs, bias = CONV_CASES[case]
    g = Graph(seed)
    inputs = ["x", g.randn("w", (k, c // attrs.get("group", 1), *kernel))]
    if bias:
        inputs.append(g.randn("b", (k,), 0.1))
    y = g.node("Conv", inputs, "c" if relu else "y", name="conv", **attrs)
    if relu:
        g.node("Relu", [y], "y", name="relu")
    return g.model({"x": ["N", c, *hw]}, {"y": 4})


@pytest.mark.parametrize("case", sorted(CONV_CASES))
def test_conv_matches_onnxruntime(case):
    net = check_float(conv_model(case))
    assert ops(net) == ["Input", "Conv2d"]
    c, k, kernel, _, attrs, bias = CONV_CASES[case]
    op = net.op("conv")
    assert (op.in_channels, op.out_channels, op.kernel, op.bias) == (c, k, kernel, bias)
    assert op.groups == attrs.get("group", 1)


def test_conv_padding_attributes_map_to_top_bottom_left_right():
    def padding(case):
        return load(conv_model(case)).op("conv").padding

    assert padding("asymmetric_pads") == (1, 2, 0, 1)  # ONNX [top, left, bottom, right]
    assert padding("same_upper_stride2") == (1, 1, 0, 1)  # H 7: total 2; W 8: total 1
    assert padding("same_upper_even_kernel") == (1, 2, 0, 1)
    assert padding("same_lower_even_kernel") == (2, 1, 1, 0)
    assert padding("valid_stride2") == (0, 0, 0, 0)


def test_relu_is_fused_into_the_conv_and_names_follow_onnx():
    net = check_float(conv_model("asymmetric_pads", relu=True))
    assert ops(net) == ["Input", "Conv2d"]
    assert net.op("conv").activation == "relu"
    assert tensor_map(net) == {"x": "x", "c": "conv", "y": "conv"}


def test_batch_norm_is_folded_into_the_conv():
    for bias in (True, False):
        g = Graph(3)
        inputs = ["x", g.randn("w", (4, 3, 3, 3))] + ([g.randn("b", (4,))] if bias else [])
        c = g.node("Conv", inputs, name="conv", pads=[1, 1, 1, 1])
        bn_inputs = [
            g.init("gamma", g.rng.uniform(0.5, 2, 4), np.float32),
            g.init("beta", g.rng.standard_normal(4), np.float32),
            g.init("mean", g.rng.standard_normal(4), np.float32),
            g.init("var", g.rng.uniform(0.2, 3, 4), np.float32),
        ]
        n = g.node("BatchNormalization", [c, *bn_inputs], name="bn", epsilon=1e-3)
        g.node("Relu", [n], "y", name="relu")
        net = check_float(g.model({"x": ["N", 3, 6, 6]}, {"y": 4}))
        assert ops(net) == ["Input", "Conv2d"]
        assert net.op("conv").bias and net.op("conv").activation == "relu"


# ---------------------------------------------------------------------------------------
# Float: Gemm / MatMul


@pytest.mark.parametrize(
    ("trans_b", "c_shape"), [(1, (5,)), (0, (5,)), (1, (1, 5)), (0, None), (1, (1,))]
)
def test_gemm_after_flatten_is_a_linear(trans_b, c_shape):
    g = Graph(4)
    f = g.node("Flatten", ["x"], name="flat")
    inputs = [f, g.randn("B", (5, 12) if trans_b else (12, 5))]
    if c_shape is not None:
        inputs.append(g.randn("C", c_shape, 0.1))
    g.node("Gemm", inputs, "y", name="fc", transB=trans_b)
    net = check_float(g.model({"x": ["N", 3, 2, 2]}, {"y": 2}), batch=3)
    assert ops(net) == ["Input", "Flatten", "Linear"]
    assert net.op("fc") == Linear(12, 5, bias=c_shape is not None)


def test_matmul_add_is_a_linear_with_bias():
    for reshape in ([0, -1], [-1, 18], [2, -1]):
        g = Graph(5)
        r = g.node("Reshape", ["x", g.init("shape", reshape, np.int64)], name="reshape")
        m = g.node("MatMul", [r, g.randn("W", (18, 7))], name="mm")
        a = g.node("Add", [g.randn("bias", (7,)), m], name="bias_add")  # bias first: either order
        g.node("Relu", [a], "y", name="relu")
        net = check_float(g.model({"x": [2, 2, 3, 3]}, {"y": 2}))
        assert ops(net) == ["Input", "Flatten", "Linear"]
        assert net.op("mm") == Linear(18, 7, bias=True, activation="relu")


def test_matmul_without_bias():
    g = Graph(6)
    f = g.node("Flatten", ["x"], name="flat")
    g.node("MatMul", [f, g.randn("W", (8, 3))], "y", name="mm")
    net = check_float(g.model({"x": ["N", 2, 2, 2]}, {"y": 2}))
    assert net.op("mm") == Linear(8, 3, bias=False)


# ---------------------------------------------------------------------------------------
# Float: pools, Add, Concat, activations, pass-through ops


POOL_CASES = {
    # name: (op, attributes, (H, W))
    "max_k3_s2_p1": (
        "MaxPool",
        {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1] * 4},
        (7, 8),
    ),
    "max_ceil": ("MaxPool", {"kernel_shape": [2, 2], "strides": [2, 2], "ceil_mode": 1}, (7, 5)),
    "max_ceil_pad": (
        "MaxPool",
        {"kernel_shape": [3, 3], "strides": [3, 3], "pads": [1] * 4, "ceil_mode": 1},
        (7, 8),
    ),
    "max_rect": ("MaxPool", {"kernel_shape": [1, 3], "strides": [1, 2]}, (4, 9)),
    "max_same_upper": ("MaxPool", {"kernel_shape": [3, 3], "auto_pad": "SAME_UPPER"}, (5, 6)),
    "avg_include_pad": (
        "AveragePool",
        {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1] * 4, "count_include_pad": 1},
        (7, 8),
    ),
    "avg_exclude_pad": (
        "AveragePool",
        {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1] * 4},
        (7, 8),
    ),
    "avg_ceil": (
        "AveragePool",
        {"kernel_shape": [2, 2], "strides": [2, 2], "ceil_mode": 1, "count_include_pad": 1},
        (7, 5),
    ),
    "avg_valid": ("AveragePool", {"kernel_shape": [2, 2], "strides": [2, 2]}, (6, 6)),
    "global_avg": ("GlobalAveragePool", {}, (5, 7)),
}


@pytest.mark.parametrize("case", sorted(POOL_CASES))
def test_pools_match_onnxruntime(case):
    op, attrs, hw = POOL_CASES[case]
    g = Graph()
    g.node(op, ["x"], "y", name="pool", **attrs)
    net = check_float(g.model({"x": ["N", 3, *hw]}, {"y": 4}))
    expected = {"MaxPool": MaxPool2d, "AveragePool": AvgPool2d}.get(op, GlobalAvgPool)
    if case in ("avg_exclude_pad", "avg_ceil"):  # a divisor varying along the border
        expected = HostOp
    assert type(net.op("pool")) is expected
    if expected is AvgPool2d:
        assert net.op("pool").count_include_pad == bool(attrs.get("count_include_pad", 0))


def test_residual_add_and_relu():
    g = Graph(7)
    c1 = g.node("Conv", ["x", g.randn("w1", (4, 4, 3, 3))], name="conv1", pads=[1] * 4)
    r1 = g.node("Relu", [c1], name="relu1")
    c2 = g.node(
        "Conv", [r1, g.randn("w2", (4, 4, 3, 3)), g.randn("b2", (4,))], name="conv2", pads=[1] * 4
    )
    s = g.node("Add", [c2, "x"], name="add")
    g.node("Relu", [s], "y", name="relu2")
    net = check_float(g.model({"x": ["N", 4, 5, 5]}, {"y": 4}))
    assert ops(net) == ["Input", "Conv2d", "Conv2d", "Add"]
    assert net.op("add") == Add(activation="relu")
    assert net.inputs("add") == ["conv2", "x"]


@pytest.mark.parametrize("axis", [1, -3])
def test_concat_channels(axis):
    g = Graph(8)
    a = g.node("Conv", ["x", g.randn("w1", (2, 3, 3, 3))], name="a", pads=[1] * 4)
    b = g.node("Conv", ["x", g.randn("w2", (5, 3, 1, 1))], name="b")
    g.node("Concat", [a, b, "x"], "y", name="cat", axis=axis)
    net = check_float(g.model({"x": ["N", 3, 4, 4]}, {"y": 4}))
    assert net.op("cat") == Concat() and net.shape("cat") == (10, 4, 4)


@pytest.mark.parametrize(
    ("bounds", "kind"),
    [
        ((0.0, 6.0), "relu6"),
        ((0.0, None), "relu"),
        ((0.0, float(np.finfo(np.float32).max)), "relu"),
    ],
)
def test_clip_is_relu_or_relu6(bounds, kind):
    g = Graph(9)
    c = g.node("Conv", ["x", g.randn("w", (3, 2, 1, 1), 5.0)], name="conv")
    low, high = bounds
    inputs = [c, g.init("lo", low, np.float32)]
    if high is not None:
        inputs.append(g.init("hi", high, np.float32))
    g.node("Clip", inputs, "y", name="clip")
    net = check_float(g.model({"x": ["N", 2, 3, 3]}, {"y": 4}))
    assert net.op("conv").activation == kind


def test_activation_without_fusable_producer_stays_a_node():
    g = Graph()
    p = g.node("MaxPool", ["x"], name="pool", kernel_shape=[2, 2], strides=[2, 2])
    g.node(
        "Clip", [p, g.init("lo", 0.0, np.float32), g.init("hi", 6.0, np.float32)], "y", name="clip"
    )
    net = check_float(g.model({"x": ["N", 2, 4, 4]}, {"y": 4}))
    assert net.op("clip") == Activation("relu6")


def test_identity_dropout_constant_and_unnamed_nodes():
    g = Graph(10)
    shape = g.node(
        "Constant", [], "shape", name="", value=numpy_helper.from_array(np.array([0, -1]))
    )
    i = g.node("Identity", ["x"], "ident", name="")
    d = g.node("Dropout", [i], "drop", name="")
    f = g.node("Reshape", [d, shape], "flat", name="")
    g.node("Gemm", [f, g.randn("B", (4, 12))], "y", name="", transB=1)
    net = check_float(g.model({"x": ["N", 3, 2, 2]}, {"y": 2}))
    assert net.order() == ["x", "flat", "y"]  # unnamed nodes take their output's name
    assert tensor_map(net)["drop"] == "x"


def test_duplicate_names_are_made_unique():
    g = Graph(11)
    a = g.node("Conv", ["x", g.randn("w1", (2, 2, 1, 1))], "x_1", name="x")  # input's name
    b = g.node("Conv", [a, g.randn("w2", (2, 2, 1, 1))], "y", name="")  # named after y
    g.node("Conv", [b, g.randn("w3", (2, 2, 1, 1))], "z", name="y")
    net = load(g.model({"x": ["N", 2, 3, 3]}, {"z": 4}))  # onnxruntime rejects repeated names
    assert net.order() == ["x", "x_1", "y", "y_1"]
    assert tensor_map(net) == {"x": "x", "x_1": "x_1", "y": "y", "z": "y_1"}


def test_load_from_a_file(tmp_path):
    path = tmp_path / "conv.onnx"
    onnx.save(conv_model("groups"), path)
    assert ops(load(path)) == ["Input", "Conv2d"]
    assert ops(load(str(path))) == ["Input", "Conv2d"]


# ---------------------------------------------------------------------------------------
# Float: a small CNN end to end


def cnn_model(seed: int = 12, batch_norm: bool = True) -> onnx.ModelProto:
    """conv-bn-relu, maxpool, conv-relu, conv + residual, relu, conv stride 2 (relu6),
    global average pool, flatten, gemm: a 6-layer CNN with dynamic batch."""
    g = Graph(seed)

    def bn(x, k, name):
        params = [
            g.init(f"{name}_g", g.rng.uniform(0.5, 1.5, k), np.float32),
            g.init(f"{name}_b", g.rng.standard_normal(k) * 0.1, np.float32),
            g.init(f"{name}_m", g.rng.standard_normal(k) * 0.1, np.float32),
            g.init(f"{name}_v", g.rng.uniform(0.5, 1.5, k), np.float32),
        ]
        return g.node("BatchNormalization", [x, *params], name=name)

    c1 = g.node("Conv", ["x", g.randn("w1", (8, 3, 3, 3), 0.3)], name="conv1", pads=[1] * 4)
    r1 = g.node("Relu", [bn(c1, 8, "bn1") if batch_norm else c1], name="relu1")
    p1 = g.node("MaxPool", [r1], name="pool1", kernel_shape=[2, 2], strides=[2, 2])
    c2 = g.node(
        "Conv",
        [p1, g.randn("w2", (8, 8, 3, 3), 0.15), g.randn("b2", (8,), 0.1)],
        name="conv2",
        pads=[1] * 4,
    )
    r2 = g.node("Relu", [c2], name="relu2")
    c3 = g.node(
        "Conv",
        [r2, g.randn("w3", (8, 8, 3, 3), 0.1), g.randn("b3", (8,), 0.1)],
        name="conv3",
        pads=[1] * 4,
    )
    s = g.node("Add", [c3, p1], name="add")
    r3 = g.node("Relu", [s], name="relu3")
    c4 = g.node(
        "Conv",
        [r3, g.randn("w4", (16, 8, 3, 3), 0.15), g.randn("b4", (16,), 0.1)],
        name="conv4",
        strides=[2, 2],
        pads=[1] * 4,
    )
    r4 = g.node(
        "Clip", [c4, g.init("zero", 0.0, np.float32), g.init("six", 6.0, np.float32)], name="relu6"
    )
    gp = g.node("GlobalAveragePool", [r4], name="gap")
    f = g.node("Flatten", [gp], name="flat")
    g.node(
        "Gemm",
        [f, g.randn("wf", (10, 16), 0.3), g.randn("bf", (10,), 0.1)],
        "y",
        name="fc",
        transB=1,
    )
    return g.model({"x": ["N", 3, 12, 12]}, {"y": 2})


def test_small_cnn_end_to_end_float():
    net = check_float(cnn_model(), batch=3)
    assert ops(net) == [
        "Input", "Conv2d", "MaxPool2d", "Conv2d", "Conv2d", "Add", "Conv2d",
        "GlobalAvgPool", "Flatten", "Linear",
    ]  # fmt: skip
    assert [net.op(n).activation for n in ("conv1", "conv2", "conv3", "add", "conv4")] == [
        "relu", "relu", None, "relu", "relu6",
    ]  # fmt: skip
    assert net.shape("x") == (3, 12, 12) and net.output_names == ["fc"]


# ---------------------------------------------------------------------------------------
# int8: helpers


class _Calibration(CalibrationDataReader):
    def __init__(self, shapes: dict[str, tuple[int, ...]], samples: int = 8) -> None:
        rng = np.random.default_rng(100)
        self._feeds = iter(
            [
                {n: rng.standard_normal((1, *s)).astype(np.float32) for n, s in shapes.items()}
                for _ in range(samples)
            ]
        )

    def get_next(self) -> dict | None:
        return next(self._feeds, None)


def ort_quantize(
    model: onnx.ModelProto,
    tmp_path,
    fmt: QuantFormat,
    activations: QuantType = QuantType.QInt8,
    reduce_range: bool = False,
) -> onnx.ModelProto:
    """onnxruntime's static quantiser: int8 per-channel weights, calibrated on N(0, 1)."""
    shapes = {
        i.name: tuple(d.dim_value for d in i.type.tensor_type.shape.dim[1:])
        for i in model.graph.input
    }
    src, dst = tmp_path / "float.onnx", tmp_path / "int8.onnx"
    onnx.save(model, src)
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantiser logs advice at WARNING
    try:
        quantize_static(
            src,
            dst,
            _Calibration(shapes),
            quant_format=fmt,
            per_channel=True,
            activation_type=activations,
            weight_type=QuantType.QInt8,
            reduce_range=reduce_range,
        )
    finally:
        root.setLevel(level)
    return onnx.load(dst)


def compare_int8(
    model: onnx.ModelProto, batch: int = 8, seed: int = 1, optimize: bool = True
) -> tuple[QuantizedNetwork, int, float]:
    """Load a quantised model, run it in golden (int8) and onnxruntime on the same float
    inputs, and return the network, the largest difference of the int8 outputs in LSB and the
    fraction of outputs that are exactly equal."""
    qnet = load(model)
    assert isinstance(qnet, QuantizedNetwork)
    net = qnet.network
    feeds = {name: random_input(net.shape(name), batch, seed) for name in net.input_names}
    dims = {
        i.name: [d.dim_value for d in i.type.tensor_type.shape.dim[1:]] for i in model.graph.input
    }
    # the ONNX input's own shape: a 1-D model's (N, C, L) is (N, C, 1, L) in the network
    expected = ort_run(model, {n: v.reshape(batch, *dims[n]) for n, v in feeds.items()}, optimize)
    got = executor.run_network(qnet, feeds)
    nodes = tensor_map(qnet)
    diffs = []
    for name, value in expected.items():
        node = nodes[name]
        t = qnet.tensors[node]
        if value.dtype == np.uint8:
            ref = value.astype(np.int64) - 128
        elif value.dtype == np.int8:
            ref = value.astype(np.int64)
        else:  # the float output of a final DequantizeLinear
            ref = np.rint(value.astype(np.float64) / t.scale) + t.zero_point
        diffs.append((got[node].astype(np.int64).reshape(ref.shape) - ref).ravel())
    diff = np.concatenate(diffs)
    return qnet, int(np.abs(diff).max()), float(np.mean(diff == 0))


def qdq(g: Graph, x: str, scale: float, zero_point: int, dtype=np.int8, dequantize=True) -> str:
    """QuantizeLinear (and DequantizeLinear) of activation ``x``."""
    s = g.init(f"{x}_scale", scale, np.float32)
    z = g.init(f"{x}_zp", zero_point, dtype)
    q = g.node("QuantizeLinear", [x, s, z], f"{x}_q")
    return g.node("DequantizeLinear", [q, s, z], f"{x}_dq") if dequantize else q


def int8_weights(g: Graph, name: str, w: np.ndarray, axis: int = 0) -> tuple[str, np.ndarray]:
    """Symmetric per-channel int8 weights behind a DequantizeLinear; returns the scales."""
    other = tuple(i for i in range(w.ndim) if i != axis)
    scale = (np.abs(w).max(axis=other) / 127).astype(np.float32)
    shape = [1] * w.ndim
    shape[axis] = -1
    q = np.rint(w / scale.reshape(shape)).astype(np.int8)
    inputs = [
        g.init(f"{name}_q", q),
        g.init(f"{name}_s", scale),
        g.init(f"{name}_zp", np.zeros(len(scale), np.int8)),
    ]
    return g.node("DequantizeLinear", inputs, name, axis=axis), scale


def int32_bias(g: Graph, name: str, b: np.ndarray, scale: np.ndarray) -> str:
    scale = scale.astype(np.float32)
    q = np.rint(b / scale).astype(np.int32)
    inputs = [
        g.init(f"{name}_q", q),
        g.init(f"{name}_s", scale),
        g.init(f"{name}_zp", np.zeros(len(scale), np.int32)),
    ]
    return g.node("DequantizeLinear", inputs, name, axis=0)


def record(key: str, max_diff: int, exact: float, floor: float) -> None:
    """Print the agreement (``pytest -s`` shows it), then hold it to 1 LSB and ``floor``."""
    print(f"{key}: max |diff| {max_diff} LSB, exactly equal {exact:.4f}")
    assert max_diff <= 1, f"{key}: {max_diff} LSB"
    assert exact >= floor, f"{key}: exact fraction {exact:.4f} below the measured floor {floor}"


# ---------------------------------------------------------------------------------------
# int8: one quantised layer at a time (identical int8 inputs on both sides)


@pytest.mark.parametrize("fmt", [QuantFormat.QDQ, QuantFormat.QOperator], ids=["qdq", "qop"])
@pytest.mark.parametrize("case", sorted(CONV_CASES))
def test_int8_conv_matches_onnxruntime(case, fmt, tmp_path):
    model = ort_quantize(conv_model(case, relu=True), tmp_path, fmt)
    qnet, max_diff, exact = compare_int8(model, optimize=fmt == QuantFormat.QOperator)
    record(f"conv {case} {fmt.name}", max_diff, exact, 0.99)
    (conv,) = [n for n in qnet.network.layers()]
    layer = qnet.layers[conv]
    assert isinstance(layer, ConvQuant) and layer.weight.dtype == np.int8
    assert layer.weight.shape == qnet.network.op(conv).weight_shape
    assert layer.multiplier.shape == (CONV_CASES[case][1],)  # per output channel


def test_int8_gemm_matches_onnxruntime(tmp_path):
    g = Graph(13)
    q = qdq(g, "x", 0.02, 3)
    f = qdq(g, g.node("Flatten", [q], "f", name="flat"), 0.02, 3)
    w, w_scale = int8_weights(g, "W", g.rng.standard_normal((10, 48)) * 0.3)
    b = int32_bias(g, "B", g.rng.standard_normal(10) * 0.1, 0.02 * w_scale)
    g.node("Gemm", [f, w, b], "fc_out", name="fc", transB=1)
    qdq(g, "fc_out", 0.03, -5, dequantize=False)
    model = g.model({"x": ["N", 3, 4, 4]}, {"fc_out_q": 2}, out_type=INT8)
    qnet, max_diff, exact = compare_int8(model, batch=64, optimize=False)
    record("gemm QDQ", max_diff, exact, 0.99)
    assert qnet.layers["fc"].bias.dtype == np.int32


def test_int8_matmul_add_bias_and_qlinear_matmul(tmp_path):
    g = Graph(14)
    f = g.node("Flatten", [qdq(g, "x", 0.02, 0)], "f", name="flat")
    w, w_scale = int8_weights(g, "W", g.rng.standard_normal((48, 6)) * 0.3, axis=1)
    m = g.node("MatMul", [f, w], "m", name="mm")
    a = g.node("Add", [m, int32_bias(g, "B", g.rng.standard_normal(6) * 0.1, 0.02 * w_scale)], "a")
    qdq(g, a, 0.03, -5, dequantize=False)
    model = g.model({"x": ["N", 3, 4, 4]}, {"a_q": 2}, out_type=INT8)
    qnet, max_diff, exact = compare_int8(model, batch=64, optimize=False)
    record("matmul+add QDQ", max_diff, exact, 0.99)
    assert qnet.network.op("mm") == Linear(48, 6, bias=True)

    g = Graph(14)  # the same layer in QOperator form (no bias), per-column weight scales
    f = g.node("Flatten", [qdq(g, "x", 0.02, 0, dequantize=False)], "f", name="flat")
    w = g.rng.standard_normal((48, 6)) * 0.3
    w_scale = (np.abs(w).max(axis=0) / 127).astype(np.float32)
    inputs = [
        f, g.init("a_s", 0.02, np.float32), g.init("a_zp", 0, np.int8),
        g.init("W", np.rint(w / w_scale), np.int8), g.init("W_s", w_scale),
        g.init("W_zp", np.zeros(6), np.int8),
        g.init("y_s", 0.03, np.float32), g.init("y_zp", -5, np.int8),
    ]  # fmt: skip
    g.node("QLinearMatMul", inputs, "y", name="mm")
    model = g.model({"x": ["N", 3, 4, 4]}, {"y": 2}, out_type=INT8)
    qnet, max_diff, exact = compare_int8(model, batch=64)
    record("QLinearMatMul", max_diff, exact, 0.99)
    assert qnet.network.op("mm") == Linear(48, 6, bias=False)


def qdq_layer(op: str, attrs: dict, out_scale: float, out_zp: int, hw=(7, 8)) -> onnx.ModelProto:
    g = Graph()
    g.node(op, [qdq(g, "x", 0.02, 5)], "p", name="pool", **attrs)
    qdq(g, "p", out_scale, out_zp, dequantize=False)
    return g.model({"x": ["N", 4, *hw]}, {"p_q": 4}, out_type=INT8)


@pytest.mark.parametrize(
    ("case", "out_scale", "out_zp", "floor"),
    [
        ("max_k3_s2_p1", 0.02, 5, 1.0),
        ("max_ceil_pad", 0.02, 5, 1.0),
        ("avg_include_pad", 0.02, 5, 0.87),
        ("avg_include_pad", 0.013, -7, 0.86),
        ("avg_valid", 0.011, 2, 0.70),
        ("global_avg", 0.005, -3, 0.93),
    ],
)
def test_int8_pools_match_onnxruntime(case, out_scale, out_zp, floor):
    op, attrs, hw = POOL_CASES[case]
    model = qdq_layer(op, attrs, out_scale, out_zp, hw)
    qnet, max_diff, exact = compare_int8(model, batch=32, optimize=False)
    record(f"pool {case} scale {out_scale}", max_diff, exact, floor)
    if op == "MaxPool":
        assert "pool" not in qnet.layers and qnet.tensors["pool"] == qnet.tensors["x"]
    else:
        assert isinstance(qnet.layers["pool"], PoolQuant)


ADD_SCALES = {
    # output/input scale ratios that are multiples of 1/8: many exact ties, which ONNX rounds to
    # even and the gemmlowp scheme away from zero
    "ties": (0.02, 0.035, 0.04),
    "generic": (0.0213, 0.0347, 0.0417),
}


@pytest.mark.parametrize(
    ("scales", "relu", "floor"),
    [
        ("ties", False, 0.93),
        ("ties", True, 0.97),
        ("generic", False, 0.99),
        ("generic", True, 0.99),
    ],
)
@pytest.mark.parametrize("fmt", ["qdq", "qop"])
def test_int8_add_matches_onnxruntime(fmt, scales, relu, floor):
    s_a, s_b, s_c = ADD_SCALES[scales]
    z_c = -128 if relu else 1
    g = Graph()
    if fmt == "qdq":
        a, b = qdq(g, "a", s_a, 3), qdq(g, "b", s_b, -10)
        s = g.node("Add", [a, b], "s", name="add")
        if relu:
            s = g.node("Relu", [s], "r", name="relu")
        out = qdq(g, s, s_c, z_c, dequantize=False)
    else:  # QOperator has no Relu: the output zero point -128 clamps at real 0
        a, b = qdq(g, "a", s_a, 3, dequantize=False), qdq(g, "b", s_b, -10, dequantize=False)
        c = [g.init("c_scale", s_c, np.float32), g.init("c_zp", z_c, np.int8)]
        inputs = [a, "a_scale", "a_zp", b, "b_scale", "b_zp", *c]
        out = g.node("QLinearAdd", inputs, "s", name="add", domain="com.microsoft")
    shapes = {"a": ["N", 3, 5, 5], "b": ["N", 3, 5, 5]}
    model = g.model(shapes, {out: 4}, out_type=INT8, microsoft=fmt == "qop")
    qnet, max_diff, exact = compare_int8(model, batch=16, optimize=fmt == "qop")
    record(f"add {fmt} {scales} relu={relu}", max_diff, exact, floor)
    assert isinstance(qnet.layers["add"], AddQuant) and qnet.layers["add"].left_shift == 20
    assert qnet.network.op("add") == Add(activation="relu" if relu and fmt == "qdq" else None)


def hand_qdq_conv(
    activation: str | None, dtype=np.int8, zero_point: bool = True
) -> onnx.ModelProto:
    """x -> Q/DQ -> Conv (int8 per-channel weights, int32 bias) -> [Relu | Clip] -> Q."""
    g = Graph(15)
    offset = 128 if dtype == np.uint8 else 0
    x = qdq(g, "x", 0.025, 4 + offset, dtype)
    w, w_scale = int8_weights(g, "W", g.rng.standard_normal((6, 3, 3, 3)) * 0.3)
    b = int32_bias(g, "B", g.rng.standard_normal(6) * 0.2, np.float32(0.025) * w_scale)
    y = g.node("Conv", [x, w, b], "c", name="conv", pads=[1, 1, 1, 1])
    if activation == "relu":
        y = g.node("Relu", [y], "act", name="act")
    elif activation == "relu6":
        y = g.node(
            "Clip",
            [y, g.init("lo", 0.0, np.float32), g.init("hi", 6.0, np.float32)],
            "act",
            name="act",
        )
    s, z = g.init("y_scale", 0.02, np.float32), g.init("y_zp", -20 + offset, dtype)
    g.node("QuantizeLinear", [y, s] + ([z] if zero_point else []), "y")
    out_type = UINT8 if dtype == np.uint8 or not zero_point else INT8
    return g.model({"x": ["N", 3, 6, 6]}, {"y": 4}, out_type=out_type)


@pytest.mark.parametrize("activation", [None, "relu", "relu6"])
@pytest.mark.parametrize("dtype", [np.int8, np.uint8], ids=["int8", "uint8"])
def test_int8_activation_between_conv_and_quantize_linear(activation, dtype):
    qnet, max_diff, exact = compare_int8(hand_qdq_conv(activation, dtype), optimize=False)
    record(f"conv {activation} {np.dtype(dtype).name}", max_diff, exact, 0.99)
    assert qnet.network.op("conv").activation == activation
    assert qnet.tensors["conv"] == TensorQuant(float(np.float32(0.02)), -20)  # uint8 - 128
    layer = qnet.layers["conv"]
    expected = {None: (-128, 127), "relu": (-20, 127), "relu6": (-20, min(127, -20 + 300))}
    assert (layer.act_min, layer.act_max) == expected[activation]


def test_quantize_linear_without_zero_point_is_uint8():
    qnet, max_diff, exact = compare_int8(hand_qdq_conv("relu", zero_point=False), optimize=False)
    record("conv relu, uint8 output without zero point", max_diff, exact, 0.99)
    assert qnet.tensors["conv"].zero_point == -128


def test_int8_concat_with_shared_quantisation():
    g = Graph(16)
    x = qdq(g, "x", 0.02, 0)
    parts = []
    for i in range(2):
        w, _ = int8_weights(g, f"W{i}", g.rng.standard_normal((3, 3, 1, 1)) * 0.5)
        c = g.node("Conv", [x, w], f"c{i}", name=f"conv{i}")
        parts.append(qdq(g, c, 0.03, -2))
    cat = g.node("Concat", parts, "cat", name="cat", axis=1)
    qdq(
        g,
        g.node("MaxPool", [cat], "p", name="pool", kernel_shape=[2, 2], strides=[2, 2]),
        0.03,
        -2,
        dequantize=False,
    )
    model = g.model({"x": ["N", 3, 6, 6]}, {"p_q": 4}, out_type=INT8)
    qnet, max_diff, exact = compare_int8(model, optimize=False)
    record("concat + maxpool QDQ", max_diff, exact, 0.99)
    assert qnet.tensors["cat"] == qnet.tensors["pool"] == TensorQuant(float(np.float32(0.03)), -2)


# ---------------------------------------------------------------------------------------
# int8: a small CNN end to end, both formats


@pytest.mark.parametrize(
    ("fmt", "activations", "reduce_range", "optimize"),
    [
        (QuantFormat.QDQ, QuantType.QInt8, False, False),
        (QuantFormat.QDQ, QuantType.QUInt8, False, False),
        (QuantFormat.QOperator, QuantType.QInt8, False, True),
        (QuantFormat.QOperator, QuantType.QUInt8, True, True),
    ],
    ids=["qdq-int8", "qdq-uint8", "qop-int8", "qop-uint8-reduce-range"],
)
def test_int8_cnn_end_to_end(fmt, activations, reduce_range, optimize, tmp_path):
    """Five quantised layers deep, 1-LSB differences of early layers propagate: every output is
    still within 1 LSB, about 80 % are exactly equal (75-83 % over other seeds)."""
    model = ort_quantize(cnn_model(batch_norm=False), tmp_path, fmt, activations, reduce_range)
    qnet, max_diff, exact = compare_int8(model, batch=32, optimize=optimize)
    extra = " reduce_range" if reduce_range else ""
    record(f"cnn {fmt.name} {activations.name}{extra}", max_diff, exact, 0.78)
    layers = qnet.network.layers()
    assert [type(qnet.network.op(n)).__name__ for n in layers] == [
        "Conv2d", "MaxPool2d", "Conv2d", "Conv2d", "Add", "Conv2d", "GlobalAvgPool", "Flatten",
        "Linear",
    ]  # fmt: skip
    kinds = {type(qnet.layers[n]).__name__ for n in qnet.layers}
    assert kinds == {"ConvQuant", "AddQuant", "PoolQuant"}


# ---------------------------------------------------------------------------------------
# Rejections: every one names the node, the op and the attribute or value


def conv_graph(seed: int = 0, **attrs) -> Graph:
    g = Graph(seed)
    g.node("Conv", ["x", g.randn("w", (4, 3, 3, 3))], "y", name="conv", **attrs)
    return g


def float_model(g: Graph, rank: int = 4, x=("N", 3, 6, 6), **kwargs) -> onnx.ModelProto:
    return g.model({"x": list(x)}, {"y": rank}, **kwargs)


def single(
    op: str,
    inputs=("x",),
    rank: int = 4,
    x=("N", 3, 6, 6),
    flatten: bool = False,
    opset: int = OPSET,
    **attrs,
) -> onnx.ModelProto:
    """One node ``n`` computing ``y``. ``inputs`` items are tensor names, ``(name, shape)``
    for a random initializer, or ``(name, value, dtype)`` for a given one; ``flatten`` puts a
    Flatten in front of it."""
    g = Graph()
    names = []
    for item in inputs:
        if isinstance(item, str):
            names.append(item)
        elif len(item) == 2:
            names.append(g.randn(*item))
        else:
            names.append(g.init(*item))
    if flatten:
        names[0] = g.node("Flatten", [names[0]], "f", name="flat")
    g.node(op, names, "y", name="n", **attrs)
    microsoft = attrs.get("domain") == "com.microsoft"
    return float_model(g, rank, x, opset=opset, microsoft=microsoft)


def weight_from_input() -> onnx.ModelProto:
    g = Graph()
    g.node("Conv", ["x", "w"], "y", name="conv")
    return g.model({"x": ["N", 3, 6, 6], "w": ["N", 3, 3, 3]}, {"y": 4})


def add_constant() -> onnx.ModelProto:
    g = Graph()
    c = g.node("MaxPool", ["x"], "c", name="pool", kernel_shape=[2, 2])
    g.node("Add", [c, g.randn("k", (3, 1, 1))], "y", name="n")
    return float_model(g)


def add_broadcast() -> onnx.ModelProto:
    g = Graph()
    p = g.node("GlobalAveragePool", ["x"], "p", name="gap")
    g.node("Add", ["x", p], "y", name="n")
    return float_model(g)


def batch_norm(case: str) -> onnx.ModelProto:
    g = Graph()
    c = g.node("Conv", ["x", g.randn("w", (4, 3, 3, 3))], "c", name="conv", pads=[1] * 4)
    x = g.node("Relu", [c], "r", name="relu") if case == "after relu" else c
    params = [g.init(n, np.ones(4), np.float32) for n in ("s", "b", "m", "v")]
    attrs = {"training_mode": 1} if case == "training" else {}
    if case == "two consumers":
        bn = g.node("BatchNormalization", [x, *params], "bn", name="n")
        g.node("Add", [bn, c], "y", name="add")
    else:
        g.node("BatchNormalization", [x, *params], "y", name="n", **attrs)
    return float_model(g, opset=15)


def dropout(mask_used: bool) -> onnx.ModelProto:
    g = Graph()
    if mask_used:
        g.nodes.append(helper.make_node("Dropout", ["x"], ["y", "mask"], name="n"))
    else:
        g.node("Dropout", ["x", g.init("ratio", 0.5, np.float32), g.init("t", True)], "y", name="n")
    model = float_model(g, check=False)
    if mask_used:
        mask = helper.make_tensor_value_info("mask", TensorProto.BOOL, [None] * 4)
        model.graph.output.append(mask)
    return model


def max_pool_indices() -> onnx.ModelProto:
    g = Graph()
    g.nodes.append(helper.make_node("MaxPool", ["x"], ["y", "idx"], name="n", kernel_shape=[2, 2]))
    model = float_model(g)
    model.graph.output.append(helper.make_tensor_value_info("idx", TensorProto.INT64, [None] * 4))
    return model


def clip_max_only() -> onnx.ModelProto:
    g = Graph()
    g.node("Clip", ["x", "", g.init("hi", 6.0, np.float32)], "y", name="n")
    return float_model(g)


def input_shape(shape, elem=FLOAT) -> onnx.ModelProto:
    g = Graph()
    g.node("Relu", ["x"], "y", name="n")
    return g.model({"x": shape}, {"y": len(shape)}, in_type=elem, out_type=elem)


def two_inputs(a, b) -> onnx.ModelProto:
    g = Graph()
    g.node("Add", ["a", "b"], "y", name="n")
    return g.model({"a": a, "b": b}, {"y": 4})


def shape_of_symbolic_batch() -> onnx.ModelProto:
    g = Graph()
    s = g.node("Shape", ["x"], "s", name="shape")
    g.node("Reshape", ["x", s], "y", name="n")
    return float_model(g)


def dangling_input() -> onnx.ModelProto:
    g = Graph()
    g.node("Relu", ["nowhere"], "y", name="n")
    return float_model(g, check=False)


def reshape(shape) -> onnx.ModelProto:
    return single("Reshape", ["x", ("s", shape, np.int64)], rank=len(shape))


FLOAT_REJECTIONS = {
    "unsupported op": (
        lambda: single("Softmax"),
        r"^node 'n' \(Softmax\): op 'Softmax' is not supported; supported ops: Add, ",
    ),
    "unsupported microsoft op": (
        lambda: single("FusedConv", ["x", ("w", (4, 3, 3, 3))], domain="com.microsoft"),
        r"node 'n' \(FusedConv\): op 'FusedConv' \(domain 'com.microsoft'\) is not supported",
    ),
    "conv 1-D weight": (
        lambda: single("Conv", ["x", ("w", (4, 3, 3))]),
        r"node 'n' \(Conv\): weight has shape \(4, 3, 3\); a 2-D convolution of an "
        r"\(N, C, H, W\) input needs a 4-D weight",
    ),
    "conv kernel_shape": (
        lambda: float_model(conv_graph(kernel_shape=[2, 2])),
        r"node 'conv' \(Conv\): attribute kernel_shape=\[2, 2\] is not supported: weight shape",
    ),
    "conv auto_pad with pads": (
        lambda: float_model(conv_graph(auto_pad="SAME_UPPER", pads=[1, 1, 1, 1])),
        r"attribute pads=\[1, 1, 1, 1\] is not supported: explicit pads conflict with "
        r"auto_pad='SAME_UPPER'",
    ),
    "conv auto_pad value": (
        lambda: float_model(conv_graph(auto_pad="SAME")),
        r"node 'conv' \(Conv\): attribute auto_pad='SAME' is not supported: expected NOTSET",
    ),
    "conv 3-D strides": (
        lambda: float_model(conv_graph(strides=[1, 1, 1])),
        r"node 'conv' \(Conv\): attribute strides=\[1, 1, 1\] is not supported: expected 2",
    ),
    "conv groups": (
        lambda: single("Conv", ["x", ("w", (3, 1, 3, 3))], group=3, x=("N", 4, 6, 6)),
        r"node 'n' \(Conv\): Conv2d.groups=3 does not divide in_channels=4",
    ),
    "conv kernel larger than input": (
        lambda: single("Conv", ["x", ("w", (4, 3, 7, 7))]),
        r"node 'n' \(Conv\): kernel=\(7, 7\) does not fit the height of input shape \(3, 6, 6\)",
    ),
    "conv weight not constant": (
        weight_from_input,
        r"node 'conv' \(Conv\): weight W \(input 1, 'w'\) must be a constant",
    ),
    "gemm alpha": (
        lambda: single("Gemm", ["x", ("B", (108, 5))], rank=2, flatten=True, alpha=2.0),
        r"node 'n' \(Gemm\): attribute alpha=2.0 is not supported: only alpha=1",
    ),
    "gemm beta": (
        lambda: single("Gemm", ["x", ("B", (108, 5)), ("C", (5,))], 2, flatten=True, beta=0.5),
        r"node 'n' \(Gemm\): attribute beta=0.5 is not supported: only beta=1",
    ),
    "gemm transA": (
        lambda: single("Gemm", ["x", ("B", (108, 5))], rank=2, flatten=True, transA=1),
        r"node 'n' \(Gemm\): attribute transA=1 is not supported",
    ),
    "gemm bias shape": (
        lambda: single("Gemm", ["x", ("B", (108, 5)), ("C", (2, 5))], 2, flatten=True),
        r"node 'n' \(Gemm\): C has shape \(2, 5\); expected \(5,\) or \(1, 5\)",
    ),
    "gemm 4-D input": (
        lambda: single("Gemm", ["x", ("B", (108, 5))], rank=2),
        r"node 'n' \(Gemm\): input has shape \(N, 3, 6, 6\); a matrix product needs a 2-D",
    ),
    "matmul 3-D weight": (
        lambda: single("MatMul", ["x", ("B", (2, 108, 5))], flatten=True),
        r"node 'n' \(MatMul\): B has shape \(2, 108, 5\); expected 2-D",
    ),
    "clip other bounds": (
        lambda: single("Clip", ["x", ("lo", -1.0, np.float32), ("hi", 1.0, np.float32)]),
        r"node 'n' \(Clip\): Clip\(min=-1.0, max=1.0\) is not supported; only min=0 without",
    ),
    "clip max only": (clip_max_only, r"node 'n' \(Clip\): Clip\(min=None, max=6.0\)"),
    "averagepool dilations": (
        lambda: single("AveragePool", kernel_shape=[2, 2], dilations=[2, 2], opset=19),
        r"node 'n' \(AveragePool\): attribute dilations=\[2, 2\] is not supported: dilated "
        "average pooling",
    ),
    "maxpool storage_order": (
        lambda: single("MaxPool", kernel_shape=[2, 2], storage_order=1),
        r"node 'n' \(MaxPool\): attribute storage_order=1 is not supported",
    ),
    "maxpool asymmetric pads": (
        lambda: single("MaxPool", kernel_shape=[3, 3], pads=[0, 0, 1, 1]),
        r"node 'n' \(MaxPool\): pads \(top, bottom, left, right\)=\(0, 1, 0, 1\) are not "
        r"supported: pooling pads must be symmetric",
    ),
    "maxpool same_upper asymmetric": (
        lambda: single("MaxPool", kernel_shape=[2, 2], auto_pad="SAME_UPPER"),
        r"node 'n' \(MaxPool\): pads .* must be symmetric",
    ),
    "maxpool pads over half the kernel": (
        lambda: single("MaxPool", kernel_shape=[3, 3], pads=[2, 2, 2, 2]),
        r"node 'n' \(MaxPool\): pads \(top, bottom, left, right\)=\(2, 2, 2, 2\) exceed half "
        r"of kernel=\(3, 3\)",
    ),
    "maxpool indices": (max_pool_indices, r"node 'n' \(MaxPool\): output 1 \('idx'\) is used"),
    "avgpool ceil_mode with auto_pad": (
        lambda: single("AveragePool", kernel_shape=[3, 3], auto_pad="SAME_UPPER", ceil_mode=1),
        r"node 'n' \(AveragePool\): attribute ceil_mode=1 is not supported: not supported with "
        r"auto_pad='SAME_UPPER'",
    ),
    "avgpool dilations": (
        lambda: single("AveragePool", kernel_shape=[2, 2], dilations=[1, 2], opset=19),
        r"node 'n' \(AveragePool\): attribute dilations=\[1, 2\] is not supported",
    ),
    "add of a constant": (
        add_constant,
        r"node 'n' \(Add\): input 1 \('k'\) is a constant; an Add of a constant is supported "
        r"only as the bias of a MatMul",
    ),
    "add broadcast": (
        add_broadcast,
        r"node 'n' \(Add\): input shapes differ: \[\(3, 6, 6\), \(3, 1, 1\)\]",
    ),
    "concat axis": (
        lambda: single("Concat", ["x", "x"], axis=2),
        r"node 'n' \(Concat\): attribute axis=2 is not supported: only the channel axis",
    ),
    "flatten axis": (
        lambda: single("Flatten", axis=2, rank=2),
        r"node 'n' \(Flatten\): attribute axis=2 is not supported: only axis=1",
    ),
    "reshape not a flatten": (
        lambda: reshape([0, 3, -1]),
        r"node 'n' \(Reshape\): shape \[0, 3, -1\] \(N, 3, 6, 6\) -> \(N, 3, 36\) is not "
        r"supported on the accelerator: only flattening to \(N, F\)",
    ),
    "reshape literal batch with dynamic N": (
        lambda: reshape([1, -1]),
        r"node 'n' \(Reshape\): its output shape does not keep the symbolic batch 'N' as its "
        r"leading dimension \(batch 1: \[1, 108\], batch 2: \[1, 216\]\)",
    ),
    "batchnorm training": (
        lambda: batch_norm("training"),
        r"node 'n' \(BatchNormalization\): attribute training_mode=1 is not supported",
    ),
    "dropout training": (
        lambda: dropout(mask_used=False),
        r"node 'n' \(Dropout\): training_mode=True is not supported",
    ),
    "dropout mask": (
        lambda: dropout(mask_used=True),
        r"node 'n' \(Dropout\): output 1 \('mask'\) is used",
    ),
    "input rank": (
        lambda: input_shape(["N"]),
        r"input 'x': shape \['\?'\] is not supported; expected \(N, C, H, W\), \(N, C, L\) or "
        r"\(N, F\)",
    ),
    "input dynamic height": (
        lambda: input_shape(["N", 3, "H", 4]),
        r"input 'x': shape \['\?', 3, '\?', 4\] is not supported; .* with every dimension but "
        r"the batch N static",
    ),
    "inputs with two batches": (
        lambda: two_inputs(["N", 3, 4, 4], [2, 3, 4, 4]),
        r"input 'b': batch 2 differs from the batch 'N' of the inputs before it",
    ),
    "3-D conv": (
        lambda: single("Conv", ["x", ("w", (4, 3, 3, 3, 3))], x=("N", 3, 5, 6, 6), rank=5),
        r"node 'n' \(Conv\): input \(N, 3, 5, 6, 6\) has rank 5: 3-D Conv is not supported; "
        r"only 1-D \(N, C, L\) and 2-D \(N, C, H, W\) inputs are",
    ),
    "3-D max pool": (
        lambda: single("MaxPool", x=("N", 3, 5, 6, 6), rank=5, kernel_shape=[2, 2, 2]),
        r"node 'n' \(MaxPool\): input \(N, 3, 5, 6, 6\) has rank 5: 3-D MaxPool is not",
    ),
    "1-D conv pads": (
        lambda: single("Conv", ["x", ("w", (4, 3, 3))], x=("N", 3, 9), rank=3, pads=[1, 1, 1, 1]),
        r"node 'n' \(Conv\): attribute pads=\[1, 1, 1, 1\] is not supported: expected 2 values "
        r"\(begin, end\) for a 1-D \(N, C, L\) input",
    ),
    "1-D conv strides": (
        lambda: single("Conv", ["x", ("w", (4, 3, 3))], x=("N", 3, 9), rank=3, strides=[1, 1]),
        r"node 'n' \(Conv\): attribute strides=\[1, 1\] is not supported: expected 1 value for",
    ),
    "invalid model": (dangling_input, r"^invalid ONNX model: "),
}


#: Rejected even though the host could take the op: the host runs float ops that keep the batch.
HOST_REJECTIONS = {
    "shape of a symbolic batch": (
        shape_of_symbolic_batch,
        r"node 'shape' \(Shape\): the shape of 'x' is not static \(batch 'N'\): shape "
        r"computations need a static batch",
    ),
    "host op that moves the batch": (
        lambda: single("Transpose", perm=[1, 0, 2, 3], x=(2, 3, 6, 6)),
        r"node 'n' \(Transpose\): output 0 \('y'\) has shape \[3, 2, 6, 6\]: its leading "
        r"dimension is not the batch 2 \(an op that moves the batch cannot run between",
    ),
    "host op with a huge output": (
        lambda: single("Pad", ["x", ("p", [0, 0, 0, 0, 0, 0, 0, 2**31], np.int64)]),
        r"node 'n' \(Pad\): output 0 \('y'\) has shape \['N', 3, 6, 2147483654\]: over 2\*\*31 "
        r"elements per image",
    ),
    "host op that moves a symbolic batch": (
        lambda: single("Transpose", perm=[1, 0, 2, 3]),
        r"node 'n' \(Transpose\): its output shape does not keep the symbolic batch 'N' as its "
        r"leading dimension \(batch 1: \[3, 1, 6, 6\], batch 2: \[3, 2, 6, 6\]\)",
    ),
    "host op with an integer output": (
        lambda: single("ArgMax", rank=4, axis=1),
        r"node 'n' \(ArgMax\): output 0 \('y'\) has element type INT64; host ops compute "
        r"float tensors",
    ),
    "input dtype": (
        lambda: input_shape(["N", 3, 4, 4], TensorProto.INT32),
        r"input 'x': element type INT32 is not supported",
    ),
}


@pytest.mark.parametrize("case", sorted(HOST_REJECTIONS))
def test_host_rejections(case):
    build, message = HOST_REJECTIONS[case]
    with pytest.raises(ValueError, match=message):
        load(build())


@pytest.mark.parametrize("case", sorted(FLOAT_REJECTIONS))
def test_float_rejections(case):
    build, message = FLOAT_REJECTIONS[case]
    with pytest.raises(ValueError, match=message):
        load(build(), host=False)


def test_load_rejects_other_types():
    with pytest.raises(TypeError, match=r"model must be a path or an onnx.ModelProto, got int"):
        load(123)


def qdq_conv(
    *,
    w_zp: int = 0,
    w_axis: int = 0,
    w_dtype=np.int8,
    bias: str | None = "int32",
    bias_scale: float = 1.0,
    y_scale: float = 0.02,
    after: str | None = None,
    out_q: bool = True,
    opset: int = OPSET,
) -> onnx.ModelProto:
    """x -> Q/DQ -> Conv 'conv' (weights 'W' behind DequantizeLinear) -> [after] -> Q 'y'."""
    g = Graph(15)
    x = qdq(g, "x", 0.025, 4)
    w = g.rng.standard_normal((6, 3, 3, 3)) * 0.3
    if w_dtype is None:  # float weights
        inputs = [x, g.init("W", w, np.float32)]
        w_scale = np.ones(6)
    else:
        other = tuple(i for i in range(4) if i != w_axis)
        w_scale = (np.abs(w).max(axis=other) / 127).astype(np.float32)
        shape = [1, 1, 1, 1]
        shape[w_axis] = -1
        q = np.rint(w / w_scale.reshape(shape)) + (128 if w_dtype == np.uint8 else 0)
        dq = [
            g.init("Wq", q, w_dtype),
            g.init("Ws", w_scale),
            g.init("Wz", np.full(len(w_scale), w_zp), w_dtype),
        ]
        inputs = [x, g.node("DequantizeLinear", dq, "W", name="dq_w", axis=w_axis)]
    if bias == "int32":
        inputs.append(
            int32_bias(g, "B", g.rng.standard_normal(6) * 0.2, 0.025 * w_scale * bias_scale)
        )
    elif bias == "float":
        inputs.append(g.randn("B", (6,)))
    y = g.node("Conv", inputs, "c" if out_q else "y", name="conv", pads=[1, 1, 1, 1])
    if after == "bn":
        params = [g.init(n, np.ones(6), np.float32) for n in ("s", "b", "m", "v")]
        y = g.node("BatchNormalization", [y, *params], "bn", name="bn")
    elif after == "requant":
        y = g.node("Relu", [qdq(g, y, 0.03, -128)], "r", name="relu")
    if out_q:
        g.node(
            "QuantizeLinear",
            [y, g.init("y_s", y_scale, np.float32), g.init("y_z", -20, np.int8)],
            "y",
        )
    return g.model({"x": ["N", 3, 6, 6]}, {"y": 4}, out_type=INT8 if out_q else FLOAT, opset=opset)


def test_int8_uint8_weights_with_zero_point_128():
    qnet, max_diff, exact = compare_int8(qdq_conv(w_dtype=np.uint8, w_zp=128), optimize=False)
    record("conv uint8 weights", max_diff, exact, 0.99)
    assert qnet.layers["conv"].weight.dtype == np.int8


def test_int8_weights_quantised_in_the_graph():
    """QuantizeLinear of a float initializer (per channel) then DequantizeLinear."""
    g = Graph(17)
    x = qdq(g, "x", 0.025, 4)
    w = g.rng.standard_normal((5, 3, 3, 3)) * 0.3
    scale = (np.abs(w).max(axis=(1, 2, 3)) / 127).astype(np.float32)
    sz = [g.init("Ws", scale), g.init("Wz", np.zeros(5), np.int8)]
    wq = g.node("QuantizeLinear", [g.init("Wf", w, np.float32), *sz], "Wq", axis=0)
    wd = g.node("DequantizeLinear", [wq, *sz], "W", axis=0)
    c = g.node("Conv", [x, wd], "c", name="conv", strides=[2, 2])
    qdq(g, c, 0.03, 0, dequantize=False)
    model = g.model({"x": ["N", 3, 7, 7]}, {"c_q": 4}, out_type=INT8)
    qnet, max_diff, exact = compare_int8(model, optimize=False)
    record("conv, weights quantised in the graph", max_diff, exact, 0.99)
    np.testing.assert_array_equal(
        qnet.layers["conv"].weight, np.rint(w / scale[:, None, None, None])
    )


def test_int8_qlinear_average_pool(tmp_path):
    g = Graph(18)
    c = g.node("Conv", ["x", g.randn("w", (4, 3, 3, 3))], "c", name="conv", pads=[1] * 4)
    g.node("AveragePool", [c], "y", name="pool", kernel_shape=[2, 2], strides=[2, 2])
    model = ort_quantize(g.model({"x": ["N", 3, 8, 8]}, {"y": 4}), tmp_path, QuantFormat.QOperator)
    assert "QLinearAveragePool" in [n.op_type for n in model.graph.node]
    qnet, max_diff, exact = compare_int8(model, batch=32)
    record("conv + QLinearAveragePool", max_diff, exact, 0.98)
    assert isinstance(qnet.layers["pool_quant"], PoolQuant)


def per_axis_activation() -> onnx.ModelProto:
    g = Graph()
    s, z = g.init("s", [0.02, 0.03, 0.04], np.float32), g.init("z", [0, 0, 0], np.int8)
    q = g.node("QuantizeLinear", ["x", s, z], "xq", name="q", axis=1)
    g.node("DequantizeLinear", [q, s, z], "y", name="dq", axis=1)
    return float_model(g)


def requantise_input() -> onnx.ModelProto:
    g = Graph()
    x = qdq(g, "x", 0.02, 0)
    g.node(
        "QuantizeLinear", [x, g.init("s", 0.03, np.float32), g.init("z", 0, np.int8)], "y", name="q"
    )
    return float_model(g, out_type=INT8)


def concat_scales(second: float) -> onnx.ModelProto:
    g = Graph(16)
    x = qdq(g, "x", 0.02, 0)
    parts = []
    for i, scale in enumerate((0.03, second)):
        w, _ = int8_weights(g, f"W{i}", g.rng.standard_normal((3, 3, 1, 1)) * 0.5)
        parts.append(qdq(g, g.node("Conv", [x, w], f"c{i}", name=f"conv{i}"), scale, -2))
    cat = g.node("Concat", parts, "cat", name="cat", axis=1)
    qdq(g, cat, 0.03, -2, dequantize=False)
    return g.model({"x": ["N", 3, 6, 6]}, {"cat_q": 4}, out_type=INT8)


def qlinear_add_params(a_scale: float) -> onnx.ModelProto:
    g = Graph()
    a, b = qdq(g, "a", 0.02, 3, dequantize=False), qdq(g, "b", 0.035, -10, dequantize=False)
    inputs = [
        a, g.init("as", a_scale, np.float32), "a_zp", b, "b_scale", "b_zp",
        g.init("c_scale", 0.04, np.float32), g.init("c_zp", 1, np.int8),
    ]  # fmt: skip
    g.node("QLinearAdd", inputs, "y", name="add", domain="com.microsoft")
    shapes = {"a": ["N", 3, 5, 5], "b": ["N", 3, 5, 5]}
    return g.model(shapes, {"y": 4}, out_type=INT8, microsoft=True)


def qlinear_op(op: str, n_inputs: int) -> onnx.ModelProto:
    """A com.microsoft QLinear* node fed by QuantizeLinear, with placeholder parameters."""
    g = Graph()
    x = qdq(g, "x", 0.02, 0, dequantize=False)
    params = [
        g.init(f"p{i}", 0.02 if i % 2 == 0 else 0, np.float32 if i % 2 == 0 else np.int8)
        for i in range(n_inputs)
    ]
    g.node(op, [x, *params], "y", name="n", domain="com.microsoft")
    return float_model(g, microsoft=True, out_type=INT8)


def qgemm_without_output_scale() -> onnx.ModelProto:
    g = Graph()
    f = g.node("Flatten", [qdq(g, "x", 0.02, 0, dequantize=False)], "f", name="flat")
    inputs = [
        f, "x_scale", "x_zp",
        g.init("B", np.ones((5, 108)), np.int8), g.init("Bs", 0.01, np.float32),
        g.init("Bz", 0, np.int8),
        g.init("C", np.zeros(5), np.int32),
    ]  # fmt: skip
    g.node("QGemm", inputs, "y", name="n", domain="com.microsoft", transB=1)
    return float_model(g, rank=2, microsoft=True)


def dequantize_without_zero_point() -> onnx.ModelProto:
    g = Graph()
    q = qdq(g, "x", 0.02, 0, dequantize=False)
    g.node("DequantizeLinear", [q, "x_scale"], "y", name="n")
    return float_model(g)


def opset21(case: str) -> onnx.ModelProto:
    g = Graph()
    if case == "block_size":
        dq = [
            g.init("Wq", np.ones((4, 3, 3, 3)), np.int8),
            g.init("Ws", np.ones((4, 1, 3, 3)), np.float32),
        ]
        w = g.node("DequantizeLinear", dq, "W", name="n", axis=1, block_size=3)
        g.node("Conv", [qdq(g, "x", 0.02, 0), w], "y", name="conv")
        return float_model(g, opset=21)
    if case == "output_dtype":
        g.node(
            "QuantizeLinear",
            ["x", g.init("s", 0.02, np.float32)],
            "y",
            name="n",
            output_dtype=TensorProto.INT16,
        )
        return float_model(g, opset=21, out_type=TensorProto.INT16)
    g.node(
        "QuantizeLinear",
        ["x", g.init("s", 0.02, np.float32), g.init("z", 0, np.int16)],
        "y",
        name="n",
    )
    return float_model(g, opset=21, out_type=TensorProto.INT16)


def matmul_requantised_before_bias() -> onnx.ModelProto:
    """onnxruntime's QDQ MatMul + Add: the product is quantised before the bias Add."""
    g = Graph()
    f = g.node("Flatten", [qdq(g, "x", 0.02, 0)], "f", name="flat")
    w, _ = int8_weights(g, "W", g.rng.standard_normal((108, 5)), axis=1)
    m = qdq(g, g.node("MatMul", [f, w], "m", name="mm"), 0.05, 0)
    b = g.node(
        "DequantizeLinear", [g.init("bq", np.ones(5), np.int8), g.init("bs", 0.01, np.float32)], "b"
    )
    qdq(g, g.node("Add", [m, b], "a", name="n"), 0.05, 0, dequantize=False)
    return g.model({"x": ["N", 3, 6, 6]}, {"a_q": 2}, out_type=INT8)


INT8_REJECTIONS = {
    "activation per axis": (
        per_axis_activation,
        r"node 'q' \(QuantizeLinear\): y scale shape \(3,\) / zero point shape \(3,\): "
        r"activations must be quantised per tensor",
    ),
    "weight zero point": (
        lambda: qdq_conv(w_zp=1),
        r"node 'conv' \(Conv\): weight has zero point \[1, 1, 1, 1, 1, 1\]; weights must be "
        r"symmetric",
    ),
    "uint8 weight zero point": (
        lambda: qdq_conv(w_dtype=np.uint8, w_zp=0),
        r"node 'conv' \(Conv\): weight has zero point \[0, 0, 0, 0, 0, 0\]; weights must be "
        r"symmetric \(int8 zero point 0, or uint8 zero point 128\)",
    ),
    "int32 weights": (
        lambda: qdq_conv(w_dtype=np.int32),
        r"node 'conv' \(Conv\): weight has dtype int32; int8 or uint8 weights are supported",
    ),
    "weights per input channel": (
        lambda: qdq_conv(w_axis=1, bias=None),
        r"node 'conv' \(Conv\): weight is quantised per slice along axis 1; per-channel weight "
        r"scales must be along the output-channel axis 0",
    ),
    "float bias": (
        lambda: qdq_conv(bias="float"),
        r"node 'conv' \(Conv\): bias is float but the weights are int8",
    ),
    "bias scale": (
        lambda: qdq_conv(bias_scale=1.01),
        r"node 'conv' \(Conv\): bias scale 0.00012\d+ of output channel 0 is not input scale \* "
        r"weight scale = 0.00012\d+",
    ),
    "float weights": (
        lambda: qdq_conv(w_dtype=None, bias=None),
        r"node 'conv' \(Conv\): weights are float in a quantised model",
    ),
    "output not quantised": (
        lambda: qdq_conv(out_q=False),
        r"node 'conv' \(Conv\): output is not quantised \(no QuantizeLinear after it",
    ),
    "rescale not representable": (
        lambda: qdq_conv(y_scale=1e-6),
        r"node 'conv' \(Conv\): requantisation scale is not representable: real_scale\[0\] "
        r"must be finite and in \(0, 1\)",
    ),
    "batchnorm after a quantised conv": (
        lambda: qdq_conv(after="bn"),
        r"node 'bn' \(BatchNormalization\): cannot be folded exactly into the int8 weights",
    ),
    "requantised before and after an activation": (
        lambda: qdq_conv(after="requant"),
        r"node 'conv' \(Conv\): output quantised as TensorQuant\(scale=0.0299.*\) before its "
        r"activation 'relu' and as TensorQuant\(scale=0.0199.*\) after it; requantising twice",
    ),
    "quantize of a dequantised tensor": (
        requantise_input,
        r"node 'q' \(QuantizeLinear\): requantises a tensor quantised as "
        r"TensorQuant\(scale=0.0199.*, zero_point=0\) to TensorQuant\(scale=0.0299.*",
    ),
    "maxpool changes scale": (
        lambda: qdq_layer("MaxPool", POOL_CASES["max_k3_s2_p1"][1], 0.03, 5),
        r"node 'pool' \(MaxPool\): output quantisation .* differs from its input quantisation "
        r".*; int8 MaxPool2d keeps the scale and zero point of its inputs",
    ),
    "concat of different scales": (
        lambda: concat_scales(0.05),
        r"node 'cat' \(Concat\): output quantisation .* differs from its input quantisation",
    ),
    "average pool excluding pads": (
        lambda: qdq_layer("AveragePool", POOL_CASES["avg_exclude_pad"][1], 0.02, 5),
        r"node 'pool' \(AveragePool\): count_include_pad=0 with pads \(top, bottom, left, "
        r"right\)=\(1, 1, 1, 1\): the divisor varies along the border; the accelerator divides",
    ),
    "qlinear op reads other parameters": (
        lambda: qlinear_add_params(0.021),
        r"node 'add' \(QLinearAdd\): A_scale/A_zero_point reads tensor 'a' as "
        r"TensorQuant\(scale=0.0209.*\), but it is quantised as TensorQuant\(scale=0.0199",
    ),
    "QLinearConcat": (
        lambda: qlinear_op("QLinearConcat", 4),
        r"node 'n' \(QLinearConcat\): op 'QLinearConcat' \(domain 'com.microsoft'\) is not "
        r"supported",
    ),
    "QLinearSoftmax": (
        lambda: qlinear_op("QLinearSoftmax", 4),
        r"node 'n' \(QLinearSoftmax\): op 'QLinearSoftmax' \(domain 'com.microsoft'\) is not",
    ),
    "QGemm float output": (
        qgemm_without_output_scale,
        r"node 'n' \(QGemm\): y_scale is missing: a float output is not supported",
    ),
    "dequantize without zero point": (
        dequantize_without_zero_point,
        r"node 'n' \(DequantizeLinear\): x_zero_point is required for a computed tensor",
    ),
    "blocked quantisation": (
        lambda: opset21("block_size"),
        r"node 'n' \(DequantizeLinear\): attribute block_size=3 is not supported: blocked",
    ),
    "int16 output_dtype": (
        lambda: opset21("output_dtype"),
        r"node 'n' \(QuantizeLinear\): attribute output_dtype=5 is not supported: expected int8 "
        r"or uint8",
    ),
    "int16 zero point": (
        lambda: opset21("zero_point"),
        r"node 'n' \(QuantizeLinear\): y zero point has dtype int16; int8 and uint8 are supported",
    ),
    "matmul quantised before its bias": (
        matmul_requantised_before_bias,
        r"node 'n' \(Add\): input 1 \('b'\) is a constant; an Add of a constant is supported "
        r"only as the bias of a MatMul whose output it alone reads",
    ),
}


@pytest.mark.parametrize("case", sorted(INT8_REJECTIONS))
def test_int8_rejections(case):
    build, message = INT8_REJECTIONS[case]
    with pytest.raises(ValueError, match=message):
        load(build(), host=False)


@pytest.mark.parametrize("constant", [(2, 3), (1, 3), (3,)])
def test_a_constant_spanning_the_static_batch_is_rejected(constant):
    """ONNX's own PoissonNLLLoss and operator_params cases add a constant of the batch's
    shape: image i would see row i. Host ops run on any number of images, so such a node is
    refused by name; a constant broadcast over the batch is not."""
    g = Graph(12)
    g.node("Pow", ["x", g.randn("c", constant)], "y", name="pow")
    model = g.model({"x": [2, 3]}, {"y": 2}, check=False)
    if constant[0] != 2:  # broadcast over the images: a host op, run image by image
        net = load(model)
        names = tensor_map(net)
        assert isinstance(net.op(names["y"]), HostOp)
        x = np.random.default_rng(0).random((1, 3)) + 0.5
        got = executor.run_network(net, {names["x"]: x.reshape(1, 3, 1, 1)})[names["y"]]
        c = numpy_helper.to_array(g.inits[0]).astype(np.float64)
        np.testing.assert_allclose(got.reshape(1, 3), np.power(x, c.reshape(1, 3)), rtol=1e-6)
        return
    message = (
        "node 'pow' (Pow): output 0 ('y') is [2, 3] for the batch of 2 but [2, 3] for one "
        "image: the op depends on the number of images (a constant input spans or fixes the "
        "batch axis), and host ops run image by image"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        load(model)
