"""ONNX Resize (and Upsample, upgraded to it) imported as :class:`accel.graph.Upsample`.

A nearest Resize whose integer factors make it plain replication runs on the accelerator
(:mod:`accel.compiler.lower_layout`); every other form runs on the host, its reason naming
the attribute. The rule (:data:`accel.frontends.onnx._NEAREST_REPLICATES`) is checked in
both directions against onnxruntime: a Resize imports as an Upsample exactly when
onnxruntime's output is replication, and then the golden output equals onnxruntime's.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnxruntime.quantization import QuantFormat

from accel import executor
from accel.frontends.onnx import load, tensor_map
from accel.graph import HostOp, Upsample
from tests.test_accel_onnx import Graph, compare_int8, ort_quantize, ort_run
from tests.test_accel_onnx_mapped import check_accelerator
from tests.test_accel_onnx_prepare import host_ops, onnx_inputs, our_feeds

MODES = (
    "asymmetric",
    "half_pixel",
    "pytorch_half_pixel",
    "half_pixel_symmetric",
    "tf_half_pixel_for_nn",
    "align_corners",
)
NEAREST = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")
FACTORS = ((2, 2), (3, 1), (1, 4), (3, 2), (1, 1))


def resize(
    scales=None, sizes=None, shape=("N", 2, 3, 4), opset: int = 19, conv: bool = False, **attrs
) -> onnx.ModelProto:
    """[conv ->] Resize(x, scales or sizes) [-> conv]: ``y``."""
    g = Graph(7)
    rank = len(shape)
    x = "x"
    if conv:
        w = g.randn("w1", (shape[1], shape[1], *[3] * (rank - 2)))
        x = g.node("Conv", [x, w], name="conv1", pads=[1] * 2 * (rank - 2))
    inputs = [x, "" if opset >= 13 else g.init("roi", [], np.float32)]
    if scales is not None:
        inputs.append(g.init("scales", scales, np.float32))
    else:
        inputs += ["" if opset >= 13 else g.init("scales", [], np.float32)]
        inputs.append(g.init("sizes", sizes, np.int64))
    r = g.node("Resize", inputs, None if conv else "y", name="resize", **attrs)
    if conv:
        w = g.randn("w2", (3, shape[1], *[1] * (rank - 2)))
        g.node("Conv", [r, w], "y", name="conv2")
    return g.model({"x": list(shape)}, {"y": rank}, opset=opset)


def golden_equals_onnxruntime(model: onnx.ModelProto):
    net = load(model)
    feeds = onnx_inputs(model, 2, 3)
    (expected,) = ort_run(model, feeds).values()
    got = executor.run_network(net, our_feeds(net, feeds))[tensor_map(net)["y"]]
    np.testing.assert_allclose(got.reshape(expected.shape), expected, rtol=1e-6, atol=1e-6)
    return net


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("nearest", NEAREST)
def test_a_resize_is_an_upsample_exactly_when_onnxruntime_replicates(mode, nearest):
    """Upsample implies replication; the host implies none, except for align_corners, which
    replicates or not depending on the size (mapped only at factor 1). onnx.reference has
    no tf_half_pixel_for_nn (deprecated since opset 13): on the host it is an error; and
    onnxruntime copies a resize by 1 where that mode's spec shifts by one pixel (not
    compared)."""
    tf = mode == "tf_half_pixel_for_nn"
    opset = 11 if tf else 19
    for fh, fw in FACTORS[:-1] if tf else FACTORS:
        model = resize(
            [1, 1, fh, fw], opset=opset, coordinate_transformation_mode=mode, nearest_mode=nearest
        )
        feeds = onnx_inputs(model, 1, 0)
        (y,) = ort_run(model, feeds).values()
        replicated = np.array_equal(y, feeds["x"].repeat(fh, axis=2).repeat(fw, axis=3))
        if mode == "tf_half_pixel_for_nn" and not replicated:
            with pytest.raises(ValueError, match="Invalid coordinate_transformation_mode"):
                load(model)
            continue
        net = load(model)
        (node,) = (n for n in net.order() if n != "x")
        if isinstance(net.op(node), Upsample):
            assert net.op(node).factor == (fh, fw)
            assert replicated, (mode, nearest, fh, fw)
        else:
            assert isinstance(net.op(node), HostOp)
            assert mode == "align_corners" or not replicated, (mode, nearest, fh, fw)
            reason = net.meta(node)["host_reason"]
            assert f"coordinate_transformation_mode={mode!r}" in reason


@pytest.mark.parametrize(
    ("case", "model", "factor"),
    [
        ("sizes, opset 13", resize(sizes=[2, 2, 6, 12], shape=(2, 2, 3, 4), opset=13), (2, 3)),
        (
            "sizes with an empty scales, opset 11",
            resize(sizes=[2, 2, 3, 8], shape=(2, 2, 3, 4), opset=11),
            (1, 2),
        ),
        ("scales, opset 11 default half_pixel", resize([1, 1, 2, 2], opset=11), (2, 2)),
        (
            "PyTorch's nearest export (asymmetric, floor)",
            resize(
                [1, 1, 3, 3],
                opset=13,
                coordinate_transformation_mode="asymmetric",
                nearest_mode="floor",
            ),
            (3, 3),
        ),
        ("1-D (N, C, L)", resize([1, 1, 3], shape=("N", 2, 5), opset=13), (1, 3)),
        ("axes (opset 18)", resize([2, 3], opset=18, axes=[2, 3]), (2, 3)),
    ],
)
def test_resize_forms_import_as_upsample_equal_to_onnxruntime(case, model, factor):
    net = golden_equals_onnxruntime(model)
    assert host_ops(net) == []
    (op,) = (net.op(n) for n in net.order() if isinstance(net.op(n), Upsample))
    assert op.factor == factor


def test_opset_9_upsample_is_upgraded_and_mapped():
    g = Graph(3)
    g.node("Upsample", ["x", g.init("scales", [1, 1, 2, 2], np.float32)], "y", mode="nearest")
    model = g.model({"x": ["N", 3, 4, 5]}, {"y": 4}, opset=9)
    net = golden_equals_onnxruntime(model)
    assert [type(net.op(n)).__name__ for n in net.order()] == ["Input", "Upsample"]


@pytest.mark.parametrize(
    ("model", "reason"),
    [
        (resize([1, 1, 2, 2], mode="linear"), "attribute mode='linear' is not supported"),
        (resize([1, 1, 1.5, 2]), "scales [1.0, 1.0, 1.5, 2.0] are not integers >= 1"),
        (resize([1, 1, 0.5, 0.5]), "scales [1.0, 1.0, 0.5, 0.5] are not integers >= 1"),
        (resize([1, 2, 2, 2]), "factors [1, 2, 2, 2] resize the batch or the channels"),
    ],
)
def test_other_resizes_run_on_the_host_naming_the_reason(model, reason):
    net = golden_equals_onnxruntime(model)
    (node,) = (n for n in net.order() if isinstance(net.op(n), HostOp))
    assert reason in net.meta(node)["host_reason"]
    with pytest.raises(ValueError, match=reason.replace("[", r"\[").replace(".", r"\.")):
        load(model, host=False)


def test_sizes_that_fix_a_static_batch_are_rejected_by_name():
    """``sizes`` name the batch (2): the host cannot run the op on one image (nor on three)."""
    model = resize(sizes=[2, 2, 5, 8], shape=(2, 2, 3, 4))
    with pytest.raises(ValueError, match=r"sizes \[2, 2, 5, 8\] are not integer multiples"):
        load(model, host=False)
    with pytest.raises(
        ValueError,
        match=r"node 'resize' \(Resize\): output 0 \('y'\) is \[2, 2, 5, 8\] for the batch of 2 "
        r"but \[2, 2, 5, 8\] for one image: the op depends on the number of images",
    ):
        load(model)


def test_sizes_with_a_symbolic_batch_are_rejected_by_name():
    with pytest.raises(ValueError, match=r"sizes \[2, 2, 6, 8\] fix the symbolic batch"):
        load(resize(sizes=[2, 2, 6, 8]), host=False)


@pytest.mark.parametrize("shape", [("N", 4, 5, 6), ("N", 4, 7)])
def test_float_upsampler_quantised_runs_bit_exact_on_the_cycle_model(shape):
    factors = [1, 1, 2, 2][: len(shape)]
    model = resize(factors, shape=shape, opset=13, conv=True)
    net = golden_equals_onnxruntime(model)
    assert host_ops(net) == []
    deployment = check_accelerator(net)
    (layer,) = (x for s in deployment.segments for x in s.program.layers if x.kind == "Upsample")
    assert layer.macs == 0


def test_onnxruntime_quantised_resize_keeps_its_quantisation(tmp_path):
    model = resize([1, 1, 2, 2], shape=("N", 4, 5, 6), opset=13, conv=True)
    qmodel = ort_quantize(model, tmp_path, QuantFormat.QDQ)
    qnet, worst, _ = compare_int8(qmodel)
    assert any(isinstance(qnet.network.op(n), Upsample) for n in qnet.network.order())
    assert host_ops(qnet) == []
    assert worst <= 1
