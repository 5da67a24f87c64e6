"""accel.ptq and accel.synthetic: random weights, post-training quantisation parameters by
hand, shared quantisation of concat groups, and the error contract (every error names the
node)."""

import math

import numpy as np
import pytest

from accel import executor, models, numerics, ptq, synthetic
from accel.graph import (
    Activation,
    Add,
    AvgPool2d,
    Concat,
    Conv2d,
    GlobalAvgPool,
    Input,
    Linear,
    MaxPool2d,
    Network,
)
from accel.quantized import IDENTITY_MULTIPLIER, AddQuant, ConvQuant, PoolQuant, TensorQuant


def ramp(shape):
    """Deterministic calibration input: ``linspace(-1, 1)`` over ``(1, *shape)``."""
    return np.linspace(-1.0, 1.0, math.prod(shape)).reshape(1, *shape)


def one_input_net(*layers, shape=(2, 4, 4)):
    """``x -> layers[0] -> layers[1] -> ...``; each layer is (name, op)."""
    net = Network("t")
    src = net.add("x", Input(shape))
    for name, op in layers:
        src = net.add(name, op, [src])
    return net


def all_weights(network):
    return {n: network.weights(n) for n in network.order() if network.weights(n)}


# --------------------------------------------------------------------------------------------
# random_weights / random_inputs
# --------------------------------------------------------------------------------------------


def test_random_weights_are_deterministic_per_seed():
    net = models.get("tinynet")
    first, again, other = (all_weights(synthetic.random_weights(net, s)) for s in (0, 0, 1))
    assert set(first) == {"conv1", "conv2", "dw", "pw", "fc"}
    for name, weights in first.items():
        for key, value in weights.items():
            np.testing.assert_array_equal(value, again[name][key], strict=True)
            assert not np.array_equal(value, other[name][key])


def test_random_weights_of_a_node_depend_only_on_seed_and_name():
    full = synthetic.random_weights(models.get("tinynet"), 3)
    conv1 = Conv2d(3, 8, 3, padding=1, activation="relu")
    alone = synthetic.random_weights(one_input_net(("conv1", conv1), shape=(3, 16, 16)), 3)
    np.testing.assert_array_equal(alone.weights("conv1")["weight"], full.weights("conv1")["weight"])


def test_random_weights_keep_existing_weights_and_copy_the_network():
    net = models.get("tinynet")
    mine = np.ones((10, 16))
    net.set_weights("fc", mine, np.zeros(10))
    net.meta("fc")["note"] = 1
    filled = synthetic.random_weights(net)
    np.testing.assert_array_equal(filled.weights("fc")["weight"], mine, strict=True)
    assert filled.meta("fc") == {"note": 1}
    assert filled.weights("conv1") and not net.weights("conv1")  # the original is untouched
    assert filled.order() == net.order() and filled.name == net.name


@pytest.mark.parametrize(
    ("name", "gain2"),
    [
        ("layer1.0.conv1", 2.0),  # relu: He
        ("layer1.0.conv2", 0.5),  # linear (1) into an Add of 2 inputs (/2)
        ("layer2.0.downsample.0", 0.5),  # linear into the Add
        ("fc", 1.0),  # linear
    ],
)
def test_weight_std(name, gain2):
    net = models.get("resnet18", 64)
    fan_in = math.prod(net.op(name).weight_shape[1:])
    assert synthetic.weight_std(net, name) == pytest.approx(math.sqrt(gain2 / fan_in), rel=1e-12)


def test_random_weights_have_the_stated_distribution():
    net = one_input_net(("conv", Conv2d(64, 256, 3, activation="relu")), shape=(64, 5, 5))
    weights = synthetic.random_weights(net).weights("conv")
    assert weights["weight"].std() == pytest.approx(math.sqrt(2 / (64 * 9)), rel=0.01)
    assert abs(weights["weight"].mean()) < 1e-3
    assert weights["bias"].std() == pytest.approx(synthetic.BIAS_STD, rel=0.2)


@pytest.mark.parametrize(
    ("model", "size"),
    [
        ("resnet50", 64),
        ("mobilenet_v2", 64),
        pytest.param("vgg16", 224, marks=pytest.mark.slow),
    ],
)
def test_random_weights_keep_deep_activations_in_range(model, size):
    """Every tensor's RMS stays within 0.1x..10x of the input's (measured 0.2x..5x)."""
    net = models.get(model, size)
    values = executor.trace_network(net, synthetic.random_inputs(net, 0))
    rms = {name: np.sqrt(np.mean(v**2)) for name, v in values.items()}
    ratio = {name: r / rms["input"] for name, r in rms.items()}
    assert min(ratio.values()) > 0.1 and max(ratio.values()) < 10, ratio


def test_random_inputs():
    net = models.get("tinynet")
    x = synthetic.random_inputs(net, 5, batch=3)
    assert list(x) == ["input"] and x["input"].shape == (3, 3, 16, 16)
    np.testing.assert_array_equal(x["input"], synthetic.random_inputs(net, 5, batch=3)["input"])
    assert not np.array_equal(x["input"], synthetic.random_inputs(net, 6, batch=3)["input"])


# --------------------------------------------------------------------------------------------
# TensorQuant
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lo", "hi", "scale", "zero_point"),
    [
        (0.0, 2.55, 0.01, -128),  # a ReLU output: zero point -128
        (-1.0, 1.55, 0.01, -28),
        (-2.55, 0.0, 0.01, 127),
        (0.5, 2.55, 0.01, -128),  # the range is widened to include 0
        (-2.55, -1.0, 0.01, 127),
        (0.0, 0.0, 1 / 255, -128),  # identically 0: taken as [0, 1]
    ],
)
def test_tensor_quant_from_range(lo, hi, scale, zero_point):
    t = TensorQuant.from_range(lo, hi)
    assert t.scale == pytest.approx(scale, rel=1e-12)
    assert t.zero_point == zero_point and type(t.zero_point) is int


def test_tensor_quant_quantize_rounds_half_to_even_then_clamps():
    t = TensorQuant(0.5, 3)
    x = np.array([0.25, 0.75, -0.25, -0.75, 0.3, 100.0, -100.0])  # / 0.5: .5 1.5 -.5 -1.5 .6
    q = t.quantize(x)
    assert q.dtype == np.int8
    np.testing.assert_array_equal(q, [3, 5, 3, 1, 4, 127, -128])
    np.testing.assert_array_equal(t.dequantize(q), [0.0, 1.0, 0.0, -1.0, 0.5, 62.0, -65.5])


def test_tensor_quant_rejects_non_finite_range():
    with pytest.raises(ValueError, match=r"range \[-inf, 1.0\] is not finite"):
        TensorQuant.from_range(-math.inf, 1.0)


def test_quantize_input_and_dequantize_use_the_tensor_quant():
    qnet = ptq.quantize(models.get("tinyconv"))
    x = synthetic.random_inputs(qnet.network, 9)["input"]
    t = qnet.tensors["input"]
    np.testing.assert_array_equal(qnet.quantize_input("input", x), t.quantize(x), strict=True)
    q = np.arange(-128, 128, dtype=np.int8)
    np.testing.assert_array_equal(qnet.dequantize("conv", q), qnet.tensors["conv"].dequantize(q))
    with pytest.raises(ValueError, match=r"network 'tinyconv' has no quantised tensor named 'z'"):
        qnet.quantize_input("z", x)
    with pytest.raises(ValueError, match=r"no quantised tensor named 'z'"):
        qnet.dequantize("z", q)


# --------------------------------------------------------------------------------------------
# quantize: parameters by hand
# --------------------------------------------------------------------------------------------


def test_conv_quant_by_hand():
    """Per-channel symmetric weights (ties to even; an all-zero channel gets the scale of
    rescale factor 0.5), bias in accumulator units, multiplier/shift of s_in * s_w[k] / s_out,
    clamp from the activation. Here s_in is 10x s_out: a weight scale of 1 would not do."""
    net = one_input_net(("conv", Conv2d(2, 3, 1, activation="relu6")))
    w = np.array([[0.5, -1.0], [0.0, 0.0], [2.0, -0.25]]).reshape(3, 2, 1, 1)
    b = np.array([0.1, 0.2, -0.3])
    net.set_weights("conv", w, b)
    qnet = ptq.quantize(net, calibration={"x": ramp((2, 4, 4))})

    t_in, t_out = qnet.tensors["x"], qnet.tensors["conv"]
    assert t_in == TensorQuant(2 / 255, 0)  # [-1, 1]: zero point rint(-0.5) = 0
    real = executor.trace_network(qnet.network, {"x": ramp((2, 4, 4))})["conv"]
    # relu6: min 0, zero point -128; the max rounded up to float32 (step 2)
    assert t_out == TensorQuant.from_range(*ptq._outward_float32(0.0, real.max()))
    assert t_out.zero_point == -128

    layer = qnet.layers["conv"]
    assert isinstance(layer, ConvQuant)
    w_scale = np.array([1 / 127, t_out.scale / (2 * t_in.scale), 2 / 127])
    np.testing.assert_allclose(layer.weight_scale, w_scale, rtol=1e-15)
    assert (layer.multiplier[1], layer.shift[1]) == (2**30, 0)  # 0.5
    # 0.5 * 127 = 63.5 -> 64 (even); -0.25 * 127 / 2 = -15.875 -> -16
    expected_w = np.array([[64, -127], [0, 0], [127, -16]], dtype=np.int8).reshape(3, 2, 1, 1)
    np.testing.assert_array_equal(layer.weight, expected_w, strict=True)
    expected_b = np.rint(b / (t_in.scale * w_scale)).astype(np.int32)
    np.testing.assert_array_equal(layer.bias, expected_b, strict=True)
    multiplier, shift = numerics.quantize_multiplier(t_in.scale * w_scale / t_out.scale)
    np.testing.assert_array_equal(layer.multiplier, multiplier, strict=True)
    np.testing.assert_array_equal(layer.shift, shift, strict=True)
    expected_act = numerics.activation_range("relu6", -128, t_out.scale)
    assert (layer.act_min, layer.act_max) == expected_act


def test_linear_quant_without_bias_has_zero_bias():
    net = one_input_net(("gap", GlobalAvgPool()), ("fc", Linear(2, 3, bias=False)))
    qnet = ptq.quantize(net, calibration={"x": ramp((2, 4, 4))})
    layer = qnet.layers["fc"]
    assert layer.weight.shape == (3, 2) and layer.weight.dtype == np.int8
    np.testing.assert_array_equal(layer.bias, np.zeros(3, dtype=np.int32), strict=True)
    assert (layer.act_min, layer.act_max) == (-128, 127)


@pytest.mark.parametrize(
    ("model", "node", "count"),
    [("lenet5", "pool1", 4), ("lenet5", "pool2", 4), ("tinynet", "gap", 16)],
)
def test_pool_quant_is_one_over_the_window_area(model, node, count):
    qnet = ptq.quantize(models.get(model))
    assert qnet.layers[node] == PoolQuant(*numerics.quantize_multiplier(1 / count))
    assert qnet.layers[node] == PoolQuant(2**30, int(math.log2(count)) - 1)
    (src,) = qnet.network.inputs(node)
    assert qnet.tensors[node] == qnet.tensors[src]


def test_add_quant_by_hand():
    qnet = ptq.quantize(models.get("tinynet"))
    s_a, s_b = (qnet.tensors[src].scale for src in qnet.network.inputs("add"))
    t_out = qnet.tensors["add"]
    assert s_a != s_b
    twice_max = 2 * max(s_a, s_b)
    expected = AddQuant(
        tuple(numerics.quantize_multiplier(s / twice_max)[0] for s in (s_a, s_b)),
        tuple(numerics.quantize_multiplier(s / twice_max)[1] for s in (s_a, s_b)),
        *numerics.quantize_multiplier(twice_max / (2**20 * t_out.scale)),
        left_shift=20,
        act_min=t_out.zero_point,  # Add("relu")
        act_max=127,
    )
    assert qnet.layers["add"] == expected
    assert 2**30 in expected.input_multipliers  # the larger scale: real multiplier 0.5
    assert t_out.zero_point == -128


def test_layers_without_parameters():
    qnet = ptq.quantize(models.get("tinynet"))
    assert set(qnet.layers) == {"conv1", "conv2", "dw", "pw", "add", "gap", "fc"}
    assert set(qnet.tensors) == set(qnet.network.order())
    for node in ("pool", "flatten"):
        (src,) = qnet.network.inputs(node)
        assert qnet.tensors[node] == qnet.tensors[src]


def test_concat_forces_one_quantisation_on_all_its_inputs():
    """The group {a, pool(a), b, cat} gets the union of its ranges: a = relu(x) in [0, 1],
    b = 3x in [-3, 3]; the producers requantise straight to it."""
    net = Network("cat")
    net.add("x", Input((1, 4, 4)))
    net.add("a", Conv2d(1, 1, 1, bias=False, activation="relu"), ["x"])
    net.add("pool", MaxPool2d(1, 1), ["a"])
    net.add("b", Conv2d(1, 1, 1, bias=False), ["x"])
    net.add("cat", Concat(), ["pool", "b"])
    net.set_weights("a", np.ones((1, 1, 1, 1)))
    net.set_weights("b", np.full((1, 1, 1, 1), 3.0))
    qnet = ptq.quantize(net, calibration={"x": ramp((1, 4, 4))})
    shared = TensorQuant.from_range(-3.0, 3.0)
    for name in ("a", "pool", "b", "cat"):
        assert qnet.tensors[name] == shared, name
    assert qnet.tensors["x"] == TensorQuant.from_range(-1.0, 1.0)
    assert qnet.layers["a"].act_min == shared.zero_point  # relu clamps at real 0
    multiplier, shift = numerics.quantize_multiplier(qnet.tensors["x"].scale / 127 / shared.scale)
    assert (int(qnet.layers["a"].multiplier[0]), int(qnet.layers["a"].shift[0])) == (
        multiplier,
        shift,
    )


def test_standalone_activation_shares_its_input_quantisation():
    net = one_input_net(("conv", Conv2d(2, 2, 1)), ("act", Activation("relu6")))
    qnet = ptq.quantize(net)
    assert qnet.tensors["act"] == qnet.tensors["conv"]
    assert "act" not in qnet.layers


def test_quantize_is_deterministic_and_keeps_the_network():
    net = models.get("tinynet")
    first, again, other = (ptq.quantize(net, seed=s) for s in (0, 0, 1))
    assert not net.weights("conv1")
    assert first.tensors == again.tensors and first.tensors != other.tensors
    for name in ("conv1", "fc"):
        for field in ("weight", "bias", "multiplier", "shift"):
            a, b = getattr(first.layers[name], field), getattr(again.layers[name], field)
            np.testing.assert_array_equal(a, b, strict=True)
        assert not np.array_equal(first.layers[name].weight, other.layers[name].weight)
    assert first.network.weights("conv1")  # the float weights that were quantised


def test_calibrated_ranges_are_float32_rounded_outward():
    """Step 2: a range of float64 noise (a BLAS summing in another order) gives the same
    TensorQuant; the range still contains what was observed."""
    net = one_input_net(("conv", Conv2d(2, 1, 1, bias=False)))
    net.set_weights("conv", np.array([1.0, 1.0]).reshape(1, 2, 1, 1))
    x = 2 * ramp((2, 4, 4)) + 0.1
    quants = []
    for noise in (0.0, 2.0**-50, -(2.0**-50)):
        quants.append(ptq.quantize(net, calibration={"x": x * (1 + noise)}).tensors["x"])
    assert quants[0] == quants[1] == quants[2]
    lo, hi = ptq._outward_float32(-1.9 + 1e-12, 2.1 - 1e-12)
    assert lo <= -1.9 + 1e-12 and hi >= 2.1 - 1e-12
    assert np.float32(lo) == lo and np.float32(hi) == hi
    assert hi - 2.1 < 2.0**-22 and -1.9 - lo < 2.0**-22
    assert ptq._outward_float32(-1e300, 1.0) == (-1e300, 1.0)  # beyond float32: kept


def test_quantize_uses_given_weights_and_calibration():
    net = one_input_net(("conv", Conv2d(2, 1, 1, bias=False)))
    net.set_weights("conv", np.array([1.0, 1.0]).reshape(1, 2, 1, 1))
    x = {"x": 2 * ramp((2, 4, 4))}  # [-2, 2]; the conv output x0 + x1 is in [-2, 2] too
    qnet = ptq.quantize(net, calibration=x)
    assert qnet.tensors["x"] == TensorQuant.from_range(-2.0, 2.0)
    np.testing.assert_array_equal(qnet.layers["conv"].weight.ravel(), [127, 127])


# --------------------------------------------------------------------------------------------
# errors: every one names the node
# --------------------------------------------------------------------------------------------


def self_feeding_conv():
    """conv reads and writes one shared quantisation (a Concat joins its input and output) and
    its weight 300 makes s_in * s_w / s_out = 300 / 127 whatever the range: no widening helps."""
    net = Network("loop")
    net.add("x", Input((1, 4, 4)))
    net.add("conv", Conv2d(1, 1, 1, bias=False), ["x"])
    net.add("cat", Concat(), ["x", "conv"])
    net.set_weights("conv", np.full((1, 1, 1, 1), 300.0))
    return net, {"x": ramp((1, 4, 4))}


def infinite_range():
    net = one_input_net(("conv", Conv2d(2, 1, 1, bias=False)))
    net.set_weights("conv", np.ones((1, 2, 1, 1)))
    x = ramp((2, 4, 4))
    x[0, 0, 0, 0] = np.inf
    return net, {"x": x}


def pool_net(op, size=4):
    return one_input_net(("pool", op), shape=(1, size, size)), None


@pytest.mark.parametrize(
    ("case", "match"),
    [
        (
            self_feeding_conv,
            r"node 'conv' \(Conv2d\): requantisation scale is not representable: "
            r"real_scale\[0\] must be finite and in \(0, 1\)",
        ),
        (
            infinite_range,
            r"node 'x' \(Input\): output range \[-0.9\d+, inf\] is not finite",
        ),
        (
            lambda: pool_net(AvgPool2d(3, 1, padding=1, count_include_pad=False)),
            r"node 'pool' \(AvgPool2d\): count_include_pad=False with padding=\(1, 1, 1, 1\) "
            r"is not supported in int8",
        ),
        (
            lambda: pool_net(AvgPool2d(2, 2, ceil_mode=True), size=5),
            r"node 'pool' \(AvgPool2d\): ceil_mode=True makes the last window overhang",
        ),
        (
            lambda: pool_net(AvgPool2d(3, 1, padding=(1, 0, 1, 1))),
            r"node 'pool' \(AvgPool2d\): asymmetric padding=\(1, 0, 1, 1\)",
        ),
        (
            lambda: (one_input_net(("conv", Conv2d(2, 1, 1))), {"nope": ramp((2, 4, 4))}),
            r"unknown input names \['nope'\], missing input names \['x'\]",
        ),
    ],
)
def test_quantize_errors(case, match):
    net, calibration = case()
    with pytest.raises(ValueError, match=match):
        ptq.quantize(net, calibration=calibration)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda net: synthetic.random_weights(net, -1), r"seed must be an int >= 0, got -1"),
        (lambda net: synthetic.random_weights(net, 1.5), r"seed must be an int >= 0, got 1.5"),
        (lambda net: synthetic.random_inputs(net, 0, batch=0), r"batch must be an int >= 1, got 0"),
    ],
)
def test_argument_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call(models.get("tinyconv"))


# --------------------------------------------------------------------------------------------
# real weights: never an int32 overflow or an unrepresentable scale for a valid network
# --------------------------------------------------------------------------------------------


def assert_within_one_lsb(qnet, calibration):
    """Every layer's int8 output is within 1 LSB of the float layer run on its dequantised
    int8 inputs with its dequantised weights and bias, quantised with its TensorQuant: the
    contract of docs/numerics.md ("Comparing with float"), saturation included."""
    got = executor.trace_network(qnet, calibration)
    network = qnet.network
    for name in network.layers():
        op, srcs = network.op(name), network.inputs(name)
        alone = Network(name)
        for src in srcs:
            alone.add(src, Input(network.shape(src)))
        alone.add(name, op, srcs)
        layer = qnet.layers.get(name)
        if isinstance(layer, ConvQuant):
            s_w = layer.weight_scale.reshape(-1, *[1] * (layer.weight.ndim - 1))
            bias = layer.bias * qnet.tensors[srcs[0]].scale * layer.weight_scale
            alone.set_weights(name, layer.weight * s_w, bias if op.bias else None)
        feeds = {src: qnet.dequantize(src, got[src]) for src in srcs}
        real = executor.run_network(alone, feeds)[name]
        expected = qnet.tensors[name].quantize(real).astype(np.int64)
        diff = np.abs(got[name].astype(np.int64) - expected).max()
        assert diff <= 1, f"{name}: {diff} LSB"


def test_near_zero_weight_channel_floors_its_weight_scale_as_tflite():
    """GoogLeNet's `quantised bias of output channel 778 ... outside int32`: a channel with
    weights ~1e-12 and a bias of 1 gets s_w = 2 |b| / (s_in (2**31 - 1)), its bias half of
    int32, its weights 0."""
    net = one_input_net(("conv", Conv2d(2, 3, 1)))
    w = np.array([[0.5, -1.0], [1e-12, -2e-12], [0.0, 0.0]]).reshape(3, 2, 1, 1)
    net.set_weights("conv", w, np.array([0.1, 1.0, 0.2]))
    calibration = {"x": ramp((2, 4, 4))}
    qnet = ptq.quantize(net, calibration=calibration)
    layer, s_in = qnet.layers["conv"], qnet.tensors["x"].scale
    assert layer.weight_scale[1] == 2 * 1.0 / (s_in * numerics.INT32_MAX)
    assert layer.bias[1] == 2**30 and not layer.weight[1].any()
    assert layer.weight_scale[0] == 1 / 127  # untouched
    assert layer.weight_scale[2] == qnet.tensors["conv"].scale / (2 * s_in)  # all-zero: 0.5
    assert_within_one_lsb(qnet, calibration)


def test_a_bias_beyond_the_clamp_saturates():
    """relu6 clamps the output at 6, so a bias of 1e9 would need a weight scale whose rescale
    factor is far above 1: the scale is capped (factor 0.5) and the bias saturates at 2**30;
    the output is the clamp either way."""
    net = one_input_net(("conv", Conv2d(2, 2, 1, activation="relu6")))
    w = np.array([[0.5, -1.0], [0.0, 0.0]]).reshape(2, 2, 1, 1)
    net.set_weights("conv", w, np.array([1e9, -1e9]))
    calibration = {"x": ramp((2, 4, 4))}
    qnet = ptq.quantize(net, calibration=calibration)
    layer = qnet.layers["conv"]
    np.testing.assert_array_equal(layer.bias, [2**30, -(2**30)])
    half = qnet.tensors["conv"].scale / (2 * qnet.tensors["x"].scale)
    np.testing.assert_allclose(layer.weight_scale, [half, half], rtol=1e-15)
    out = executor.run_network(qnet, calibration)["conv"]
    np.testing.assert_array_equal(out[:, 0], np.full((1, 4, 4), layer.act_max))
    np.testing.assert_array_equal(out[:, 1], np.full((1, 4, 4), layer.act_min))


@pytest.mark.parametrize(
    ("op", "size"),
    [(AvgPool2d(1, 1), 4), (AvgPool2d(1, 2), 4), (GlobalAvgPool(), 1)],
    ids=["avg_k1_s1", "avg_k1_s2", "global_1x1"],
)
def test_identity_pools_use_the_identity_multiplier(op, size):
    """AlexNet's AveragePool of kernel 1 (adaptive pooling exports it): the rescale factor is
    1, which `M = 2**31 - 1, shift = 0` computes exactly; the int8 output is the input."""
    net = one_input_net(("pool", op), shape=(2, size, size))
    calibration = {"x": ramp((2, size, size))}
    qnet = ptq.quantize(net, calibration=calibration)
    assert qnet.layers["pool"] == PoolQuant(*IDENTITY_MULTIPLIER)
    x = qnet.quantize_input("x", calibration["x"])
    stride = op.stride if isinstance(op, AvgPool2d) else (1, 1)
    out = executor.run_network(qnet, {"x": x})["pool"]
    np.testing.assert_array_equal(out, x[:, :, :: stride[0], :: stride[1]], strict=True)


def test_zoo_model_whose_global_pool_sees_one_pixel():
    """ResNet-18 at 32x32 pools a 1x1 map globally: the identity."""
    qnet = ptq.quantize(models.get("resnet18", 32))
    assert qnet.layers["avgpool"] == PoolQuant(*IDENTITY_MULTIPLIER)


def test_constant_output_widens_the_output_range():
    """Two equal input channels and weights (1, -1): the output is the bias only, so its
    calibrated range is 16x too narrow for s_in * s_w / s_out < 1; the range is widened to
    s_in * max|w| / 127 (times 1 + 2**-20)."""
    net = one_input_net(("conv", Conv2d(2, 1, 1)))
    net.set_weights("conv", np.array([1.0, -1.0]).reshape(1, 2, 1, 1), np.array([0.001]))
    calibration = {"x": np.repeat(ramp((1, 4, 4)), 2, axis=1)}
    qnet = ptq.quantize(net, calibration=calibration)
    s_in, s_out = qnet.tensors["x"].scale, qnet.tensors["conv"].scale
    assert s_out == pytest.approx(s_in / 127 * (1 + 2**-20) ** 2, rel=1e-12)
    assert qnet.tensors["conv"].zero_point == -128  # the range [0, 0.001] scaled: still >= 0
    assert_within_one_lsb(qnet, calibration)


def homogeneous_net(magnitude):
    """conv-relu-conv whose biases scale with the input: f(m x) = m f(x)."""
    net = one_input_net(
        ("conv1", Conv2d(2, 4, 3, padding=1, activation="relu")),
        ("conv2", Conv2d(4, 2, 3, padding=1)),
    )
    rng = np.random.default_rng(7)
    for name in ("conv1", "conv2"):
        op = net.op(name)
        w = rng.standard_normal(op.weight_shape) * 0.3
        net.set_weights(name, w, rng.standard_normal(op.bias_shape) * 0.1 * magnitude)
    return net, {"x": magnitude * ramp((2, 4, 4))}


@pytest.mark.parametrize("exponent", [-66, -20, 20, 66])
def test_huge_and_tiny_activations_quantise_like_unit_ones(exponent):
    """Scaled by 2**exponent (1e-20 to 7e19), inputs and biases included, the network
    quantises to the same integers as at scale 1: nothing overflows or underflows."""
    net, calibration = homogeneous_net(1.0)
    unit = ptq.quantize(net, calibration=calibration)
    net, calibration = homogeneous_net(2.0**exponent)
    scaled = ptq.quantize(net, calibration=calibration)
    for name in ("conv1", "conv2"):
        for field in ("weight", "bias", "multiplier", "shift"):
            a, b = getattr(unit.layers[name], field), getattr(scaled.layers[name], field)
            np.testing.assert_array_equal(a, b, strict=True)
        assert scaled.tensors[name].scale == unit.tensors[name].scale * 2.0**exponent
    x = unit.quantize_input("x", ramp((2, 4, 4)))
    np.testing.assert_array_equal(
        executor.run_network(unit, {"x": x})["conv2"],
        executor.run_network(scaled, {"x": x})["conv2"],
        strict=True,
    )


@pytest.mark.parametrize("magnitude", [1e-20, 1e20])
def test_tiny_or_huge_inputs_to_a_conv_with_ordinary_biases(magnitude):
    """Tiny inputs: the bias dominates and sets the weight scale (the bias rule); huge ones:
    the bias vanishes. Either way each output is within 1 LSB of the float layer."""
    net = one_input_net(("conv", Conv2d(2, 3, 3, padding=1)))
    rng = np.random.default_rng(5)
    net.set_weights("conv", rng.standard_normal((3, 2, 3, 3)), np.array([0.5, -0.2, 0.1]))
    calibration = {"x": magnitude * ramp((2, 4, 4))}
    qnet = ptq.quantize(net, calibration=calibration)
    assert np.abs(qnet.layers["conv"].bias).max() <= 2**30
    assert_within_one_lsb(qnet, calibration)


def two_branch_add(scale_b, extra=None):
    """a = conv(x) (weight 1), b = conv(x) * scale_b, add = a + b; ``extra`` concatenates
    the add with a conv(x) of that weight (one quantisation group)."""
    net = Network("add")
    net.add("x", Input((1, 4, 4)))
    net.add("a", Conv2d(1, 1, 1, bias=False), ["x"])
    net.add("b", Conv2d(1, 1, 1, bias=False), ["x"])
    net.add("add", Add(), ["a", "b"])
    net.set_weights("a", np.ones((1, 1, 1, 1)))
    net.set_weights("b", np.full((1, 1, 1, 1), scale_b))
    if extra is not None:
        net.add("big", Conv2d(1, 1, 1, bias=False), ["x"])
        net.add("cat", Concat(), ["add", "big"])
        net.set_weights("big", np.full((1, 1, 1, 1), extra))
    return net, {"x": ramp((1, 4, 4))}


def test_near_cancelling_add_widens_its_output():
    """a + b with b = -(1 - 1e-9) a: the sum is ~1e-9, twice_max / (2**20 s_out) ~ 2000. The
    widened output is as exact as its int8 inputs allow (their rounding is ~1e7 times the
    sum, so the output mostly saturates, as the float add of those inputs does)."""
    net, calibration = two_branch_add(-(1 - 1e-9))
    qnet = ptq.quantize(net, calibration=calibration)
    s_a, s_b = (qnet.tensors[n].scale for n in ("a", "b"))
    assert qnet.tensors["add"].scale == pytest.approx(2 * max(s_a, s_b) * 2**-20 * (1 + 2**-20))
    assert_within_one_lsb(qnet, calibration)


def test_add_of_a_tiny_input_widens_that_input():
    """b's range is 1e-12 of a's: its multiplier s_b / (2 s_a) would be below 2**-32."""
    net, calibration = two_branch_add(1e-12)
    qnet = ptq.quantize(net, calibration=calibration)
    s_a, s_b = qnet.tensors["a"].scale, qnet.tensors["b"].scale
    assert s_b == pytest.approx(s_a * 2**-30 * (1 + 2**-20), rel=1e-12)
    assert_within_one_lsb(qnet, calibration)


def test_add_sharing_a_huge_range_widens_its_largest_input():
    """The add joins a Concat whose other input is 1e6 times larger: the add's output scale
    exceeds 2**11 * twice_max, so its larger input is widened to s_out * 2**-12."""
    net, calibration = two_branch_add(0.5, extra=1e6)
    qnet = ptq.quantize(net, calibration=calibration)
    s_out = qnet.tensors["add"].scale
    assert qnet.tensors["a"].scale == pytest.approx(s_out * 2**-12 * (1 + 2**-20), rel=1e-12)
    assert_within_one_lsb(qnet, calibration)
