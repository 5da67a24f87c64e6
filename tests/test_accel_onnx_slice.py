"""ONNX Slice and Split of the channels imported as :class:`accel.graph.ChannelSlice`.

Each model's golden float output equals onnxruntime's, it has no host op, and quantised it
runs bit-exact on the cycle model, the slices read in place where the layout allows (a
view) and copied where they feed a Concat (ShuffleNetV2's split). Slices of other axes,
other steps, and splits of other axes run on the host with their reason.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnxruntime.quantization import QuantFormat

from accel.frontends.onnx import load
from accel.graph import ChannelSlice, HostOp
from tests.test_accel_onnx import Graph, compare_int8, ort_quantize
from tests.test_accel_onnx_mapped import check_accelerator
from tests.test_accel_onnx_prepare import check, host_ops

BIG = 2**63 - 1


def conv(g: Graph, x: str, c: int, k: int, name: str, output: str | None = None, rank=4) -> str:
    w = g.randn(f"{name}_w", (k, c, *[3] * (rank - 2)))
    return g.node("Conv", [x, w], output, name=name, pads=[1] * 2 * (rank - 2))


def split_add(opset: int, sizes=(4, 4), rank: int = 4) -> onnx.ModelProto:
    """conv (8 channels) -> Split -> a conv of each part -> Add."""
    g = Graph(5)
    c = g.node("Relu", [conv(g, "x", 3, 8, "conv", rank=rank)], name="relu")
    if opset >= 18:
        inputs, attrs = [c], {"num_outputs": len(sizes)}
    elif opset >= 13:
        inputs, attrs = [c, g.init("split", list(sizes), np.int64)], {}
    else:
        inputs, attrs = [c], {"split": list(sizes)}
    g.nodes.append(
        onnx.helper.make_node("Split", inputs, ["p0", "p1"], name="split", axis=1, **attrs)
    )
    a = conv(g, "p0", sizes[0], 4, "left", rank=rank)
    b = conv(g, "p1", sizes[1], 4, "right", rank=rank)
    g.node("Add", [a, b], "y", name="add")
    shape = ["N", 3, 6, 5][:rank]
    return g.model({"x": shape}, {"y": rank}, opset=opset)


def shuffle_unit(opset: int = 13) -> onnx.ModelProto:
    """ShuffleNetV2's stride-1 unit up to its concat: x1, x2 = split(x); cat(x1, branch(x2))."""
    g = Graph(6)
    c = g.node("Relu", [conv(g, "x", 3, 8, "conv")], name="relu")
    g.nodes.append(
        onnx.helper.make_node(
            "Split", [c, g.init("split", [4, 4], np.int64)], ["x1", "x2"], name="split", axis=1
        )
    )
    b = g.node("Relu", [conv(g, "x2", 4, 4, "branch")], name="brelu")
    cat = g.node("Concat", ["x1", b], name="cat", axis=1)
    conv(g, cat, 8, 4, "head", "y")
    return g.model({"x": ["N", 3, 5, 6]}, {"y": 4}, opset=opset)


def slice_model(starts, ends, axes=None, steps=None, opset: int = 13) -> onnx.ModelProto:
    """conv (8 channels) -> Slice -> conv."""
    g = Graph(7)
    c = g.node("Relu", [conv(g, "x", 3, 8, "conv")], name="relu")
    inputs = [c, g.init("starts", starts, np.int64), g.init("ends", ends, np.int64)]
    if axes is not None or steps is not None:
        inputs.append(g.init("axes", axes, np.int64) if axes is not None else "")
    if steps is not None:
        inputs.append(g.init("steps", steps, np.int64))
    s = g.node("Slice", inputs, name="slice")
    g.node("Relu", [s], "y", name="out")
    return g.model({"x": ["N", 3, 6, 5]}, {"y": 4}, opset=opset)


@pytest.mark.parametrize("opset", [11, 13, 18])
def test_split_into_convs_runs_as_views(opset):
    net = check(split_add(opset))
    assert host_ops(net) == []
    slices = [net.op(n) for n in net.order() if isinstance(net.op(n), ChannelSlice)]
    assert slices == [ChannelSlice(0, 4), ChannelSlice(4, 8)]
    deployment = check_accelerator(net)
    units = {x.name: x.mapping["unit"] for s in deployment.segments for x in s.program.layers}
    assert units["split"].startswith("none (view")
    assert units["split_1"].startswith("none (view")


def test_split_of_a_1d_tensor():
    net = check(split_add(13, (3, 5), rank=3))
    assert host_ops(net) == []
    check_accelerator(net)


def test_shufflenet_split_into_a_concat_is_copied():
    net = check(shuffle_unit())
    assert host_ops(net) == []
    deployment = check_accelerator(net)
    units = {x.name: x.mapping["unit"] for s in deployment.segments for x in s.program.layers}
    assert units["split"].startswith("vector (identity pass: a copy of channels 0..4)")
    assert units["split_1"].startswith("none (view")


@pytest.mark.parametrize(
    ("starts", "ends", "axes", "steps", "expected"),
    [
        ([2], [7], [1], None, ChannelSlice(2, 7)),
        ([-3], [BIG], [-3], [1], ChannelSlice(5, 8)),
        ([0, 1, 0], [BIG, 6, 100], [0, 1, 2], None, ChannelSlice(1, 6)),
        ([0, 3, 0, -100], [BIG, 8, 6, 5], None, None, ChannelSlice(3, 8)),
    ],
)
def test_channel_slices(starts, ends, axes, steps, expected):
    net = check(slice_model(starts, ends, axes, steps))
    assert host_ops(net) == []
    (op,) = (net.op(n) for n in net.order() if isinstance(net.op(n), ChannelSlice))
    assert op == expected
    check_accelerator(net)


@pytest.mark.parametrize(
    ("model", "reason"),
    [
        (slice_model([1], [5], [2]), "axis 2 sliced to 1..5 of 6: only channels"),
        (slice_model([0], [8], [1], [2]), "steps [2]: only 1 runs on the accelerator"),
    ],
)
def test_other_slices_run_on_the_host_naming_the_reason(model, reason):
    net = load(model)
    (node,) = (n for n in net.order() if isinstance(net.op(n), HostOp))
    assert reason in net.meta(node)["host_reason"]


def test_a_slice_of_the_batch_is_rejected_by_name():
    with pytest.raises(ValueError, match=r"starts \[1\] / ends \[3\] slice the batch"):
        load(slice_model([1], [3], [0]), host=False)


def test_a_split_of_another_axis_runs_on_the_host():
    g = Graph(8)
    g.nodes.append(onnx.helper.make_node("Split", ["x"], ["a", "b"], name="split", axis=2))
    g.node("Add", ["a", "b"], "y", name="add")
    net = check(g.model({"x": ["N", 3, 6, 5]}, {"y": 4}, opset=13))
    assert host_ops(net) == ["Split", "Split"]
    reason = net.meta(next(n for n in net.order() if isinstance(net.op(n), HostOp)))
    assert "attribute axis=2 is not supported: only the channel axis (1)" in reason["host_reason"]


def test_onnxruntime_quantised_split_keeps_its_quantisation(tmp_path):
    qmodel = ort_quantize(split_add(13), tmp_path, QuantFormat.QDQ)
    qnet, worst, _ = compare_int8(qmodel)
    assert host_ops(qnet) == []
    assert any(isinstance(qnet.network.op(n), ChannelSlice) for n in qnet.network.order())
    assert worst <= 1
