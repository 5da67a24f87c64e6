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

import re

import numpy as np
import onnx
import pytest
from onnx.reference import ReferenceEvaluator

import sim
from accel import config, deploy, executor, graph, ptq, synthetic
from accel.frontends.onnx import load
from accel.quantized import QuantizedNetwork
from tests.test_accel_onnx import Graph
from tests.test_accel_onnx_prepare import check, host_ops, ops


def reference_run(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> dict:
    """ONNX's reference implementation of ``model`` on ``feeds``: ``{output: value}``."""
    names = [o.name for o in model.graph.output]
    return dict(zip(names, ReferenceEvaluator(model).run(None, feeds), strict=True))


def check_reference(model: onnx.ModelProto, batch: int = 2, seed: int = 1):
    """Load ``model`` and compare its golden float outputs with ONNX's reference
    implementation of the original model; return the network."""
    return check(model, batch, seed, reference=reference_run)


def check_accelerator(net, preset: str = "tiny") -> deploy.Deployment:
    """Quantise ``net`` (unless it is a :class:`QuantizedNetwork` already), deploy it on
    ``preset`` and run it on the cycle model: every output equal to the int8 golden model."""
    if isinstance(net, QuantizedNetwork):
        qnet = net
    else:
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


# ---------------------------------------------------------------------------------------
# Pad


def pad_model(
    reader: str,
    pad: list[int],
    value: float | None = 0.0,
    x=("N", 3, 6, 7),
    relu: bool = False,
    opset: int = 13,
    axes: list[int] | None = None,
    mode: str = "constant",
    **attrs,
):
    """x [-> conv -> relu] -> Pad(pad, value[, axes]) -> ``reader`` (Conv, AveragePool,
    MaxPool with ``attrs``) -> y."""
    g = Graph(33)
    rank = len(x)
    src = "x"
    if relu:
        c = g.node("Conv", ["x", g.randn("w0", (x[1], x[1], *([1] * (rank - 2))))], name="conv")
        src = g.node("Relu", [c], name="relu")
    inputs = [src, g.init("pads", pad, np.int64)]
    if value is not None or axes is not None:
        inputs.append("" if value is None else g.init("value", value, np.float32))
    if axes is not None:
        inputs.append(g.init("axes", axes, np.int64))
    p = g.node("Pad", inputs, name="pad", mode=mode)
    if reader == "Conv":
        channels = x[1] if axes else x[1] + pad[1] + pad[rank + 1]
        w = g.randn("w", (4, channels, *([3] * (rank - 2))))
        g.node("Conv", [p, w, g.randn("b", (4,))], "y", name="reader", **attrs)
    else:
        g.node(reader, [p], "y", name="reader", **attrs)
    return g.model({"x": list(x)}, {"y": rank}, opset=opset)


PAD_FOLDS = {
    "Conv, asymmetric": (("Conv", [0, 0, 1, 2, 0, 0, 2, 1]), {}, (1, 2, 2, 1)),
    "Conv with its own pads, stride 2": (
        ("Conv", [0, 0, 1, 1, 0, 0, 0, 1]),
        {"pads": [1, 1, 1, 1], "strides": [2, 2]},
        (2, 1, 2, 2),
    ),
    "Conv, no value input": (("Conv", [0, 0, 1, 1, 0, 0, 1, 1]), {"value": None}, (1, 1, 1, 1)),
    "Conv, axes input, opset 18": (
        ("Conv", [2, 1, 0, 1]),
        {"axes": [2, 3], "opset": 18, "auto_pad": "VALID"},
        (2, 0, 1, 1),
    ),
    "1-D Conv": (("Conv", [0, 0, 2, 0, 0, 1]), {"x": ("N", 3, 9)}, (0, 0, 2, 1)),
    "AveragePool counting no pads": (
        ("AveragePool", [0, 0, 1, 1, 0, 0, 1, 1]),
        {"kernel_shape": [3, 3], "strides": [2, 2]},
        (1, 1, 1, 1),
    ),
    "AveragePool counting its pads": (
        ("AveragePool", [0, 0, 1, 0, 0, 0, 1, 0]),
        {"kernel_shape": [5, 3], "pads": [1, 1, 1, 1], "count_include_pad": 1},
        (2, 2, 1, 1),
    ),
    "MaxPool after a Relu": (
        ("MaxPool", [0, 0, 1, 1, 0, 0, 1, 1]),
        {"relu": True, "kernel_shape": [3, 3], "strides": [2, 2]},
        (1, 1, 1, 1),
    ),
    "MaxPool, -inf": (
        ("MaxPool", [0, 0, 1, 1, 0, 0, 1, 1]),
        {"value": -np.inf, "kernel_shape": [3, 3]},
        (1, 1, 1, 1),
    ),
}


@pytest.mark.parametrize("case", sorted(PAD_FOLDS))
def test_a_constant_pad_folds_into_the_conv_or_pool_reading_it(case):
    args, kwargs, padding = PAD_FOLDS[case]
    net = check_reference(pad_model(*args, **kwargs))
    assert not host_ops(net) and "Pad" not in ops(net)
    assert net.op("reader").padding == padding
    assert net.inputs("reader") == ["conv" if kwargs.get("relu") else "x"]
    assert check_accelerator(net).whole


PAD_ON_HOST = {
    "reflect": (("Conv", [0, 0, 1, 1, 0, 0, 1, 1]), {"mode": "reflect"}, "mode='reflect'"),
    "value 1": (("Conv", [0, 0, 1, 1, 0, 0, 1, 1]), {"value": 1.0}, "pad value of 1.0"),
    "channels": (("Conv", [0, 1, 0, 0, 0, 0, 0, 0]), {"x": ("N", 2, 6, 7)}, "spatial axes"),
    "MaxPool, no Relu": (
        ("MaxPool", [0, 0, 1, 1, 0, 0, 1, 1]),
        {"kernel_shape": [3, 3]},
        "not what it pads with",
    ),
    "AveragePool not counting its pads": (
        ("AveragePool", [0, 0, 1, 1, 0, 0, 1, 1]),
        {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]},
        "not what it pads with",
    ),
    "AveragePool, asymmetric": (
        ("AveragePool", [0, 0, 0, 0, 0, 0, 1, 1]),
        {"kernel_shape": [2, 2], "strides": [2, 2]},
        "cannot fold into 'reader': pads .* symmetric",
    ),
    "Conv SAME_UPPER": (
        ("Conv", [0, 0, 1, 1, 0, 0, 1, 1]),
        {"auto_pad": "SAME_UPPER"},
        "auto_pad='SAME_UPPER'",
    ),
}


@pytest.mark.parametrize("case", sorted(PAD_ON_HOST))
def test_a_pad_that_does_not_fold_runs_on_the_host(case):
    args, kwargs, reason = PAD_ON_HOST[case]
    net = check_reference(pad_model(*args, **kwargs))
    assert host_ops(net)[0] == "Pad" and net.inputs("reader") == ["pad"]
    assert re.search(reason, net.meta("pad")["host_reason"])


def test_a_pad_with_two_readers_runs_on_the_host():
    g = Graph(34)
    p = g.node("Pad", ["x", g.init("pads", [0, 0, 1, 1, 0, 0, 1, 1], np.int64)], name="pad")
    a = g.node("Conv", [p, g.randn("w", (3, 3, 3, 3))], name="conv", pads=[1, 1, 1, 1])
    g.node("Add", [a, p], "y", name="add")
    net = check_reference(g.model({"x": ["N", 3, 6, 6]}, {"y": 4}))
    assert host_ops(net) == ["Pad"]
    assert "read by one Conv" in net.meta("pad")["host_reason"]


# ---------------------------------------------------------------------------------------
# A global pool larger than the input buffer


def test_a_global_pool_over_more_than_the_input_buffer_runs_on_the_accelerator():
    """EfficientNet's squeeze-and-excitation pools read the whole map: on `tiny` (1024
    input words) a 40x40 map of 8 channels does not fit; the pool sums it block by block,
    bit-exact, and the ReduceMean form of it too."""
    g = Graph(35)
    c = g.node("Conv", ["x", g.randn("w", (8, 3, 1, 1))], name="conv")
    r = g.node("Relu", [c], name="relu")
    p = g.node("GlobalAveragePool", [r], name="gap")
    m = g.node("ReduceMean", [r], name="mean", axes=[2, 3], keepdims=0)
    f = g.node("Flatten", [p], name="flat")
    g.node("Gemm", [f, g.randn("fc", (3, 8))], "y", name="fc", transB=1)
    g.node("Gemm", [m, g.randn("fc2", (3, 8))], "z", name="fc2", transB=1)
    net = check_reference(g.model({"x": ["N", 3, 40, 40]}, {"y": 2, "z": 2}))
    deployment = check_accelerator(net, "tiny")
    assert deployment.whole
    mappings = {layer.name: layer.mapping for layer in deployment.segments[0].program.layers}
    assert (
        mappings["gap"]["input"] == mappings["mean"]["input"] == "summed in 4 blocks of up to 10x40"
    )


# ---------------------------------------------------------------------------------------
# Dilated MaxPool


def dilated_max_pool(x: list[object], **attrs: object) -> onnx.ModelProto:
    """conv -> relu -> MaxPool(**attrs) over an input of shape ``x`` (1-D or 2-D)."""
    g = Graph(37)
    taps = [1] * (len(x) - 2)
    c = g.node("Conv", ["x", g.randn("w", (4, x[1], *taps))], name="conv")
    r = g.node("Relu", [c], name="relu")
    g.node("MaxPool", [r], "y", name="pool", **attrs)
    return g.model({"x": x}, {"y": len(x)})


@pytest.mark.parametrize(
    ("x", "attrs"),
    [
        (["N", 3, 9, 10], {"kernel_shape": [3, 3], "dilations": [2, 2], "pads": [1] * 4}),
        (
            ["N", 3, 11, 9],
            {"kernel_shape": [2, 3], "dilations": [3, 2], "strides": [2, 1], "pads": [1] * 4},
        ),
        (
            ["N", 3, 10, 10],
            {"kernel_shape": [3, 3], "dilations": [2, 2], "strides": [2, 2], "ceil_mode": 1},
        ),
        (["N", 3, 17], {"kernel_shape": [4], "dilations": [3], "strides": [2], "pads": [2, 2]}),
    ],
    ids=["3x3-d2", "2x3-d3x2-s2x1", "ceil-mode", "1-D"],
)
def test_a_dilated_max_pool_runs_on_the_accelerator(x, attrs):
    net = check(dilated_max_pool(x, **attrs))
    assert host_ops(net) == []
    (pool,) = (net.op(n) for n in net.order() if isinstance(net.op(n), graph.MaxPool2d))
    assert pool.dilation == tuple(([1] if len(x) == 3 else []) + attrs["dilations"])
    check_accelerator(net)


def test_a_dilated_average_pool_runs_on_the_host_naming_the_reason():
    g = Graph(38)
    g.node("AveragePool", ["x"], "y", name="pool", kernel_shape=[3, 3], dilations=[2, 2])
    net = check(g.model({"x": ["N", 3, 9, 9]}, {"y": 4}, opset=19))
    assert host_ops(net) == ["AveragePool"]
    (node,) = (n for n in net.order() if isinstance(net.op(n), graph.HostOp))
    assert "dilated average pooling is not supported" in net.meta(node)["host_reason"]
