"""ConvTranspose2d above the compiler: the graph op, its int8 arithmetic, its quantisation
and its ONNX import (against onnxruntime for random layers, 1-D and 2-D, every attribute).

The cycle model and the RTL are checked in ``test_sim_conv_transpose.py`` and
``test_equivalence_conv_transpose.py``.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnxruntime.quantization import QuantFormat

from accel import executor, numerics, ptq
from accel.frontends.onnx import load, tensor_map
from accel.graph import ConvTranspose2d, HostOp, Input, Network
from tests.test_accel_golden import ref_conv_transpose2d
from tests.test_accel_onnx import (
    INT8,
    Graph,
    compare_int8,
    int8_weights,
    int32_bias,
    ort_quantize,
    ort_run,
    qdq,
    record,
)
from tests.test_accel_onnx_mapped import check_accelerator

# ---------------------------------------------------------------------------------------
# The graph op


@pytest.mark.parametrize(
    ("op", "in_shape", "out_shape"),
    [
        (ConvTranspose2d(3, 4, 2, 2), (3, 5, 6), (4, 10, 12)),
        (ConvTranspose2d(3, 4, 3, 2, 1, 1), (3, 5, 6), (4, 10, 12)),
        (
            ConvTranspose2d(4, 6, (3, 1), (3, 1), (0, 2, 0, 0), (1, 0), (2, 1), 2),
            (4, 3, 7),
            (6, 10, 7),
        ),
        (ConvTranspose2d(2, 2, (1, 5), (1, 3), (0, 0, 2, 1)), (2, 1, 7), (2, 1, 20)),
    ],
)
def test_shape_inference_is_pytorchs(op, in_shape, out_shape):
    net = Network("t")
    net.add("x", Input(in_shape))
    net.add("y", op, ["x"])
    assert net.shape("y") == out_shape
    assert op.input_hw(out_shape) == in_shape[1:]
    assert op.weight_shape == (op.in_channels, op.out_channels // op.groups, *op.kernel)
    assert Network.from_dict(net.to_dict()).op("y") == op


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: ConvTranspose2d(3, 4, 2, groups=2), r"groups=2 does not divide in_channels=3"),
        (
            lambda: ConvTranspose2d(4, 4, 3, 2, output_padding=2),
            r"ConvTranspose2d.output_padding=\(2, 2\) must be smaller than max\(stride, "
            r"dilation\) per axis",
        ),
        (
            lambda: ConvTranspose2d(4, 4, 3, output_padding=-1),
            r"ConvTranspose2d.output_padding must be an int or 2 ints >= 0, got -1",
        ),
    ],
)
def test_invalid_fields_are_named(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_an_output_cropped_away_is_rejected_naming_the_node():
    net = Network("t")
    net.add("x", Input((2, 1, 1)))
    with pytest.raises(ValueError, match=r"node 'y' \(ConvTranspose2d\): output size \(1, -1\)"):
        net.add("y", ConvTranspose2d(2, 2, 1, padding=(0, 0, 1, 1)), ["x"])


def test_macs_count_the_products_that_land_in_the_output():
    op = ConvTranspose2d(6, 4, 3, 2, 1, 1, groups=2)
    x = np.ones((1, 6, 5, 7))
    w = np.ones((6, 2, 3, 3))
    out = ref_conv_transpose2d(x, w, None, (2, 2), (1, 1, 1, 1), (1, 1), (1, 1), 2)
    # Every product is 1, so the output sums count them.
    assert op.macs(out.shape[1:]) == int(out.sum())


# ---------------------------------------------------------------------------------------
# int8 arithmetic and quantisation


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), stride=st.integers(1, 3), groups=st.sampled_from([1, 2]))
def test_qconv_transpose2d_is_the_scatter_of_x_minus_zero_point(seed, stride, groups):
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, (2, 2 * groups, 3, 4), dtype=np.int8)
    w = rng.integers(-127, 128, (2 * groups, 3, 3, 2), dtype=np.int8)
    bias = rng.integers(-3000, 3000, 3 * groups).astype(np.int32)
    multiplier, shift = numerics.quantize_multiplier(rng.uniform(1e-3, 0.9, 3 * groups))
    zp, out_zp = int(rng.integers(-128, 128)), int(rng.integers(-128, 128))
    got = numerics.qconv_transpose2d(
        x, w, bias, x_zero_point=zp, multiplier=multiplier, shift=shift, out_zero_point=out_zp,
        stride=stride, padding=(1, 0, 0, 1), output_padding=stride - 1, groups=groups,
    )  # fmt: skip
    acc = ref_conv_transpose2d(
        x.astype(np.int64) - zp, w, bias, (stride,) * 2, (1, 0, 0, 1), (stride - 1,) * 2,
        (1, 1), groups,
    )  # fmt: skip
    expected = numerics.requantize(acc.astype(np.int64), multiplier, shift, out_zp, axis=1)
    np.testing.assert_array_equal(got, expected, strict=True)


def test_ptq_scales_weights_per_output_channel():
    """Output channel 1 of group 1 has weights 100x larger than the rest: it alone gets a
    large scale, in the (C, K/groups, R, S) layout the float network keeps."""
    op = ConvTranspose2d(4, 4, 2, 2, groups=2)
    net = Network("t")
    net.add("x", Input((4, 3, 3)))
    net.add("y", op, ["x"])
    w = np.random.default_rng(0).uniform(-1, 1, (4, 2, 2, 2)) * 0.01
    w[2:, 1] *= 100  # group 1 (input channels 2, 3), its output channel 1: channel 3
    net.set_weights("y", w, np.zeros(4))
    cq = ptq.quantize(net).layers["y"]
    assert cq.weight.shape == (4, 2, 2, 2)
    assert np.argmax(cq.weight_scale) == 3
    assert np.abs(cq.weight[2:, 1]).max() == 127 and np.abs(cq.weight[:2, 0]).max() == 127
    real = op.input_channel_major(
        op.output_channel_major(cq.weight) * cq.weight_scale[:, None, None, None]
    )
    np.testing.assert_allclose(real, w, atol=cq.weight_scale.max() / 2)


# ---------------------------------------------------------------------------------------
# ONNX import against onnxruntime


def convt_model(c, k, kernel, in_dims, attrs, bias=True, seed=0):
    g = Graph(seed)
    inputs = ["x", g.randn("w", (c, k // attrs.get("group", 1), *kernel))]
    if bias:
        inputs.append(g.randn("b", (k,), 0.1))
    g.node("ConvTranspose", inputs, "y", name="convt", **attrs)
    return g.model({"x": ["N", c, *in_dims]}, {"y": len(in_dims) + 2})


def check_against_onnxruntime(model, c, in_dims) -> Network:
    net = load(model)
    x = np.random.default_rng(1).standard_normal((2, c, *in_dims)).astype(np.float32)
    expected = ort_run(model, {"x": x})["y"]
    got = executor.run_network(net, {"x": x.reshape(2, *net.shape("x"))})[tensor_map(net)["y"]]
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(got.reshape(expected.shape), expected, rtol=1e-5, atol=1e-6 * scale)
    return net


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_conv_transpose_layers_match_onnxruntime(data):
    spatial = data.draw(st.sampled_from([1, 2, 2]))
    groups = data.draw(st.sampled_from([1, 2, 3]))
    c = groups * data.draw(st.integers(1, 3))
    k = groups * data.draw(st.integers(1, 3))
    kernel = [data.draw(st.integers(1, 5)) for _ in range(spatial)]
    stride = [data.draw(st.integers(1, 3)) for _ in range(spatial)]
    dilation = [data.draw(st.integers(1, 2)) for _ in range(spatial)]
    in_dims = [data.draw(st.integers(1, 6)) for _ in range(spatial)]
    attrs = {"strides": stride, "dilations": dilation, "group": groups}
    form = data.draw(st.sampled_from(["pads", "SAME_UPPER", "SAME_LOWER", "output_shape"]))
    # output_padding < stride: onnxruntime rejects PyTorch's wider < max(stride, dilation)
    extra = [data.draw(st.integers(0, s - 1)) for s in stride]
    full = [
        (n - 1) * s + d * (r - 1) + 1
        for n, s, d, r in zip(in_dims, stride, dilation, kernel, strict=True)
    ]
    if form == "pads":
        span = [d * (r - 1) for r, d in zip(kernel, dilation, strict=True)]
        pads = [data.draw(st.integers(0, span[i % spatial])) for i in range(2 * spatial)]
        if any(
            f + e - pads[i] - pads[i + spatial] < 1
            for i, (f, e) in enumerate(zip(full, extra, strict=True))
        ):
            pads = [0] * 2 * spatial
        attrs.update(pads=pads, output_padding=extra)
    elif form == "output_shape":
        # (with output_padding too, onnxruntime checks a different formula than ONNX's)
        attrs["output_shape"] = [data.draw(st.integers(1, f)) for f in full]
    else:
        if any(n * s > f for n, s, f in zip(in_dims, stride, full, strict=True)):
            attrs["kernel_shape"] = kernel  # SAME would need negative pads: use the default
        else:
            attrs["auto_pad"] = form
    if data.draw(st.booleans()):
        attrs["kernel_shape"] = kernel
    net = check_against_onnxruntime(
        convt_model(c, k, kernel, in_dims, attrs, data.draw(st.booleans())), c, in_dims
    )
    assert [type(net.op(n)).__name__ for n in net.order()] == ["Input", "ConvTranspose2d"]


@pytest.mark.parametrize(
    ("attrs", "padding"),
    [
        ({"strides": [2, 2], "pads": [1, 0, 2, 1]}, (1, 2, 0, 1)),  # ONNX [t, l, b, r]
        ({"strides": [2, 2], "auto_pad": "SAME_UPPER"}, (0, 1, 0, 1)),  # total 1 per axis
        ({"strides": [2, 2], "auto_pad": "SAME_LOWER"}, (1, 0, 1, 0)),
        ({"strides": [2, 2], "output_shape": [10, 11]}, (1, 0, 0, 0)),  # totals 1, 0
        ({"strides": [2, 2], "output_shape": [10, 11], "auto_pad": "SAME_UPPER"}, (0, 1, 0, 0)),
    ],
)
def test_padding_attributes_map_to_top_bottom_left_right(attrs, padding):
    net = check_against_onnxruntime(convt_model(2, 3, (3, 3), (5, 5), attrs), 2, (5, 5))
    assert net.op("convt").padding == padding


def test_relu_after_conv_transpose_is_fused():
    g = Graph()
    y = g.node("ConvTranspose", ["x", g.randn("w", (3, 2, 2, 2))], name="up", strides=[2, 2])
    g.node("Relu", [y], "y", name="relu")
    model = g.model({"x": ["N", 3, 4, 4]}, {"y": 4})
    net = check_against_onnxruntime(model, 3, (4, 4))
    assert [type(net.op(n)).__name__ for n in net.order()] == ["Input", "ConvTranspose2d"]
    assert net.op("up").activation == "relu"


NEGATIVE_PADS = {"strides": [2, 2], "output_shape": [12, 11]}  # the full output is 11 x 11


def test_an_output_larger_than_the_full_one_runs_on_the_host():
    net = check_against_onnxruntime(convt_model(2, 3, (3, 3), (5, 5), NEGATIVE_PADS), 2, (5, 5))
    (host,) = [n for n in net.order() if isinstance(net.op(n), HostOp)]
    assert "negative padding" in net.meta(host)["host_reason"]


@pytest.mark.parametrize(
    ("model", "match"),
    [
        (
            lambda: convt_model(2, 3, (3, 3), (5, 5), NEGATIVE_PADS),
            r"node 'convt' \(ConvTranspose\): attribute output_shape=\[12, 11\] is not "
            r"supported: the output would be 1 larger than the full transposed convolution",
        ),
        (
            lambda: convt_model(2, 3, (3, 3), (5, 5), {"kernel_shape": [3, 2]}),
            r"node 'convt' \(ConvTranspose\): attribute kernel_shape=\[3, 2\] is not "
            r"supported: weight shape is \(2, 3, 3, 3\)",
        ),
        (
            lambda: convt_model(2, 3, (3,), (5,), {"strides": [2, 2]}),
            r"node 'convt' \(ConvTranspose\): attribute strides=\[2, 2\] is not supported: "
            r"expected 1 value for a 1-D \(N, C, L\) input",
        ),
    ],
)
def test_rejections_name_node_attribute_and_value(model, match):
    with pytest.raises(ValueError, match=match):
        load(model(), host=False)


def test_a_conv_transpose_on_an_unsqueezed_1d_tensor_swaps_its_axes():
    """Conv1d, Unsqueeze(-1) to (N, C, L, 1) (stored as (C, 1, L)), a (3, 1) ConvTranspose
    with stride (2, 1), pads and output_padding on the first axis: it runs along the stored
    width, as onnxruntime computes it along H."""
    g = Graph(4)
    a = g.node("Conv", ["x", g.randn("w1", (3, 2, 3))], name="conv", pads=[1, 1])
    u = g.node("Unsqueeze", [a, g.init("axes", [-1], np.int64)], name="unsqueeze")
    g.node(
        "ConvTranspose",
        [u, g.randn("w2", (3, 4, 3, 1)), g.randn("b2", (4,), 0.1)],
        "y",
        name="convt",
        strides=[2, 1],
        pads=[1, 0, 0, 0],
        output_padding=[1, 0],
    )
    model = g.model({"x": ["N", 2, 6]}, {"y": 4})
    net = check_against_onnxruntime(model, 2, (6,))
    op = net.op("convt")
    assert (op.kernel, op.stride, op.padding, op.output_padding) == (
        (1, 3),
        (1, 2),
        (0, 0, 1, 0),
        (0, 1),
    )
    assert net.shape("convt") == (4, 1, 13)


# ---------------------------------------------------------------------------------------
# A quantised (QDQ) ConvTranspose


def qdq_upsampler(group: int, stride: int, spatial: int = 2) -> onnx.ModelProto:
    """conv -> relu -> ConvTranspose(stride, group, output_padding 1) -> relu, float."""
    g = Graph(5 + group + stride)
    ones = [1] * spatial
    c = g.node("Conv", ["x", g.randn("w", (4, 3, *[3] * spatial))], name="conv", pads=ones * 2)
    r = g.node("Relu", [c], name="relu")
    w, b = g.randn("wt", (4, 6 // group, *[3] * spatial)), g.randn("bt", (6,), 0.1)
    attrs = {"strides": [stride] * spatial, "pads": ones * 2, "output_padding": ones}
    t = g.node("ConvTranspose", [r, w, b], name="up", group=group, **attrs)
    g.node("Relu", [t], "y", name="relu2")
    return g.model({"x": ["N", 3, *([5, 6] if spatial == 2 else [7])]}, {"y": spatial + 2})


def hand_quantised_grouped_upsampler() -> onnx.ModelProto:
    """A QDQ ConvTranspose with 2 groups, built by hand (onnxruntime's quantiser fails on
    grouped ConvTranspose biases): per-channel weight scales along axis 1, shared by the
    groups, an int32 bias of scale ``x_scale * weight scale`` per output channel."""
    g = Graph(9)
    x = qdq(g, "x", 0.02, 3)
    wt = g.rng.standard_normal((4, 3, 3, 3)) * 0.3
    w, w_scale = int8_weights(g, "W", wt, axis=1)
    b = int32_bias(g, "B", g.rng.standard_normal(6) * 0.1, 0.02 * np.tile(w_scale, 2))
    attrs = {"strides": [2, 2], "pads": [1, 1, 1, 1], "output_padding": [1, 1], "group": 2}
    g.node("ConvTranspose", [x, w, b], "up", name="up", **attrs)
    qdq(g, "up", 0.05, -4, dequantize=False)
    return g.model({"x": ["N", 4, 4, 5]}, {"up_q": 4}, out_type=INT8)


def runs_on_the_cycle_model_bit_exact(qnet) -> None:
    deployment = check_accelerator(qnet)
    assert len(deployment.segments) == 1 and not deployment.host_steps


@pytest.mark.parametrize(
    ("group", "stride", "spatial"), [(1, 2, 2), (1, 3, 2), (1, 2, 1)], ids=["s2", "s3", "1-D"]
)
def test_an_onnxruntime_quantised_conv_transpose_runs_on_the_accelerator(
    group, stride, spatial, tmp_path
):
    model = ort_quantize(qdq_upsampler(group, stride, spatial), tmp_path, QuantFormat.QDQ)
    qnet, max_diff, exact = compare_int8(model)
    record(f"QDQ ConvTranspose stride {stride} {spatial}-D", max_diff, exact, 0.99)
    (up,) = [n for n in qnet.network.order() if isinstance(qnet.network.op(n), ConvTranspose2d)]
    layer = qnet.layers[up]
    assert layer.weight.dtype == np.int8 and layer.weight.shape == qnet.network.op(up).weight_shape
    runs_on_the_cycle_model_bit_exact(qnet)


def test_a_grouped_qdq_conv_transpose_shares_scales_across_groups():
    qnet, max_diff, exact = compare_int8(hand_quantised_grouped_upsampler(), optimize=False)
    record("QDQ ConvTranspose 2 groups", max_diff, exact, 0.99)
    layer = qnet.layers["up"]
    assert layer.weight.shape == (4, 3, 3, 3) and layer.multiplier.shape == (6,)
    np.testing.assert_array_equal(layer.weight_scale[:3], layer.weight_scale[3:])
    runs_on_the_cycle_model_bit_exact(qnet)
