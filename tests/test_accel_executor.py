"""accel.executor.run_network: int8 ops against hand-written loops, every zoo layer within one
LSB of its real-arithmetic value, whole networks against float, inputs and errors.

Float versus int8, the tolerances
---------------------------------
Two comparisons, both calibrated on the evaluated input itself so that no value falls outside
its calibrated range (saturation on unseen inputs is a property of the calibration set, not
of the arithmetic; see the end of this docstring).

1. **Layer by layer, exact bound.** Each int8 layer is compared with the same layer computed
   in float64 on the *dequantised* int8 inputs with the *dequantised* int8 weights and bias:
   every output is within 1 LSB of that real value rounded to the output grid. This is the
   bound of ``docs/numerics.md`` (two roundings in the requantisation, multiplier error below
   2**-30); MaxPool2d, Concat, Flatten and Activation are exact. It holds for every layer of
   every zoo model and catches any arithmetic slip (a zero point, a shift, a rounding mode).
2. **Whole network, measured drift.** The dequantised int8 output against the float network
   (float weights): weight rounding and per-layer rounding noise accumulate with depth. The
   bounds below are about 1.5x the worst value measured over several seeds (20 for tinynet
   and lenet5, 2..6 for the larger models), relative L2 error ``|q - f| / |f|`` and Pearson
   correlation of the output vector:

   ============= ====== ============== ========== ===========
   model         size   worst rel err  bound      worst corr
   ============= ====== ============== ========== ===========
   tinynet       16     0.013          0.02       0.99992
   lenet5        32     0.027          0.04       0.99962
   resnet18      64     0.026          0.04       0.99973
   resnet34 (s)  64     0.024          0.04       0.99974
   resnet50      64     0.027          0.04       0.99966
   mobilenet_v2  64     0.049          0.075      0.99880
   alexnet (s)   224    0.026          0.04       0.99966
   vgg16 (s)     224    0.038          0.06       0.99929
   ============= ====== ============== ========== ===========

   (s): in the ``slow`` tier. Correlation must exceed 0.998 for all; tinynet's max error is
   at most 3 output LSBs (worst measured 2.2). MobileNetV2 drifts most (depthwise layers,
   52 layers deep).

On a held-out input (calibrated on a different sample) the relative error grows where
small tensors saturate: median 0.05 for tinynet, 0.13 for lenet5, 0.07 for mobilenet_v2,
0.03 for the ResNets, AlexNet and VGG-16. Not asserted: it measures the one-sample
calibration.
"""

import dataclasses
import functools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accel import executor, golden, models, numerics, ptq, quantized, synthetic
from accel.graph import (
    Activation,
    Add,
    AvgPool2d,
    Concat,
    Conv2d,
    Flatten,
    GlobalAvgPool,
    Input,
    Linear,
    MaxPool2d,
    Network,
)
from accel.quantized import PoolQuant, QuantizedNetwork, TensorQuant
from tests.references import ref_rdbpot, ref_requantize, ref_srdhm, rng_for

INT32_MIN = -(2**31)
HYPOTHESIS = settings(max_examples=40, deadline=None)


def random_int8(rng, shape):
    return rng.integers(-128, 128, shape, dtype=np.int8)


# --------------------------------------------------------------------------------------------
# scalar references: gemmlowp transcribed with Python ints, and loops over every index
# --------------------------------------------------------------------------------------------


def ref_window_loop(x, kernel, stride, pads, out_hw, reduce, dilation=(1, 1)):
    """``out[n, c, p, q] = reduce(list of (value or None for padding) over the window)``."""
    (kh, kw), (sh, sw), (top, left), (p_, q_) = kernel, stride, pads, out_hw
    dh, dw = dilation
    n_, c_, h_, w_ = x.shape
    out = np.zeros((n_, c_, p_, q_), dtype=np.int64)
    for n in range(n_):
        for c in range(c_):
            for p in range(p_):
                for q in range(q_):
                    window = []
                    for r in range(kh):
                        for s in range(kw):
                            i, j = p * sh + r * dh - top, q * sw + s * dw - left
                            inside = 0 <= i < h_ and 0 <= j < w_
                            window.append(int(x[n, c, i, j]) if inside else None)
                    out[n, c, p, q] = reduce(window)
    return out


# --------------------------------------------------------------------------------------------
# each int8 op against hand-written loops
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("activation", "ranges"),
    [
        (None, [(-1.0, 1.0), (-5.0, 3.0)]),
        ("relu", [(-0.2, 0.1), (-3.0, 7.0)]),
        ("relu6", [(-2.0, 2.0), (-8.0, 1.0), (0.0, 0.5)]),
    ],
)
def test_add_of_different_scales_equals_gemmlowp_loop(activation, ranges):
    rng = rng_for("add", activation, len(ranges))
    net = Network("add")
    names = [net.add(f"x{i}", Input((2, 3, 5))) for i in range(len(ranges))]
    net.add("add", Add(activation), names)
    calibration = {
        n: rng.uniform(lo, hi, (1, 2, 3, 5)) for n, (lo, hi) in zip(names, ranges, strict=True)
    }
    qnet = ptq.quantize(net, calibration=calibration)
    assert len({qnet.tensors[n] for n in names}) == len(names)  # different scales
    x_q = {n: random_int8(rng, (2, 2, 3, 5)) for n in names}
    out = executor.run_network(qnet, x_q)["add"]

    p, t_out = qnet.layers["add"], qnet.tensors["add"]
    expected = np.zeros(out.shape, dtype=np.int64)
    for index in np.ndindex(out.shape):
        total = 0
        for n, m, sh in zip(names, p.input_multipliers, p.input_shifts, strict=True):
            shifted = (int(x_q[n][index]) - qnet.tensors[n].zero_point) << p.left_shift
            total += ref_rdbpot(ref_srdhm(shifted, m), sh)
        expected[index] = ref_requantize(
            total, p.multiplier, p.shift, t_out.zero_point, p.act_min, p.act_max
        )
    assert out.dtype == np.int8
    np.testing.assert_array_equal(out, expected.astype(np.int8), strict=True)


def test_qadd_rounding_by_hand():
    """left_shift 0 and input multipliers 0.5 * 2**-1 expose the per-input rounding that a
    left shift of 20 hides: a - zp = 5, -5, -7, 3 -> SRDHM (x 0.5, ties up) 3, -2, -3, 2 ->
    RDBPOT (/ 2, ties away) 2, -1, -2, 1; b - zp = 2 -> 1 -> 1 (0.5 away from zero); the
    output multiplier 2**31 - 1 (about 1) keeps the sums 3, 0, -1, 2. Truncating shifts would
    give 2, 0, -1, 2 (the real sums are 1.75, -0.75, -1.25, 1.25)."""
    a = np.array([[6, -4, -6, 4]], dtype=np.int8)
    b = np.full((1, 4), 3, dtype=np.int8)
    out = numerics.qadd(
        [a, b], [1, 1], [2**30, 2**30], [1, 1], left_shift=0, multiplier=2**31 - 1, shift=0,
        out_zero_point=0,
    )  # fmt: skip
    np.testing.assert_array_equal(out, np.array([[3, 0, -1, 2]], dtype=np.int8), strict=True)


MULTIPLIERS = st.integers(2**30, 2**31 - 1)
INT8 = st.integers(-128, 127)


@HYPOTHESIS
@given(
    data=st.data(),
    count=st.integers(2, 3),
    left_shift=st.integers(0, 20),
    shift=st.integers(0, 31),
)
def test_qadd_equals_gemmlowp_loop_for_any_parameters(data, count, left_shift, shift):
    """Any zero points, multipliers, shifts and clamp (|x - zp| << 20 < 2**28: int32 sums)."""
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    xs = [random_int8(rng, (2, 3)) for _ in range(count)]
    zps = data.draw(st.lists(INT8, min_size=count, max_size=count))
    ms = data.draw(st.lists(MULTIPLIERS, min_size=count + 1, max_size=count + 1))
    shifts = data.draw(st.lists(st.integers(0, 31), min_size=count, max_size=count))
    act_min, act_max = sorted(data.draw(st.lists(INT8, min_size=2, max_size=2)))
    out_zp = data.draw(INT8)
    out = numerics.qadd(
        xs, zps, ms[:count], shifts, left_shift=left_shift, multiplier=ms[-1],
        shift=shift, out_zero_point=out_zp, act_min=act_min, act_max=act_max,
    )  # fmt: skip
    for index in np.ndindex(out.shape):
        total = sum(
            ref_rdbpot(ref_srdhm((int(x[index]) - zp) << left_shift, m), sh)
            for x, zp, m, sh in zip(xs, zps, ms[:count], shifts, strict=True)
        )
        assert out[index] == ref_requantize(total, ms[-1], shift, out_zp, act_min, act_max)


@HYPOTHESIS
@given(
    seed=st.integers(0, 2**32 - 1),
    kernel=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    pad=st.tuples(st.booleans(), st.booleans()),
    ceil_mode=st.booleans(),
    zps=st.tuples(INT8, INT8),
    multiplier=MULTIPLIERS,
    shift=st.integers(0, 31),
)
def test_qavg_pool2d_equals_loop_for_any_parameters(
    seed, kernel, stride, pad, ceil_mode, zps, multiplier, shift
):
    rng = np.random.default_rng(seed)
    x_q = random_int8(rng, (1, 2, 5, 4))
    pads = (kernel[0] // 2 * pad[0], kernel[1] // 2 * pad[1])
    out = numerics.qavg_pool2d(
        x_q, kernel, stride, pads, ceil_mode, x_zero_point=zps[0], multiplier=multiplier,
        shift=shift, out_zero_point=zps[1],
    )  # fmt: skip

    def average(window):
        acc = sum(v - zps[0] for v in window if v is not None)
        return ref_requantize(acc, multiplier, shift, zps[1])

    expected = ref_window_loop(x_q, kernel, stride, pads, out.shape[2:], average)
    np.testing.assert_array_equal(out, expected.astype(np.int8), strict=True)


def manual_pool_net(op, shape, t_in, t_out, layer):
    net = Network("pool")
    net.add("x", Input(shape))
    net.add("pool", op, ["x"])
    return QuantizedNetwork(net, {"x": t_in, "pool": t_out}, {"pool": layer} if layer else {})


def test_avg_pool_rounding_by_hand():
    """Window sums 2, -2, 5, -5, 6, -6 over 4 (real averages 0.5, -0.5, 1.25, -1.25, 1.5, -1.5)
    with M = 2**30, shift 1: SRDHM rounds ties up, RDBPOT away from zero, so 1.25 -> 2 (double
    rounding: 2.5 -> 3, then 1.5 -> 2) but -1.25 -> -1."""
    top = [1, 1, -1, -1, 2, 2, -2, -2, 2, 2, -2, -2]
    bottom = [0, 0, 0, 0, 1, 0, -1, 0, 1, 1, -1, -1]
    zp_in, zp_out = 3, -7
    x_q = (np.array([[top, bottom]]) + zp_in).astype(np.int8)[None]  # (1, 1, 2, 12)
    assert numerics.quantize_multiplier(1 / 4) == (2**30, 1)
    qnet = manual_pool_net(
        AvgPool2d(2, 2), (1, 2, 12), TensorQuant(1.0, zp_in), TensorQuant(1.0, zp_out),
        PoolQuant(2**30, 1),
    )  # fmt: skip
    out = executor.run_network(qnet, {"x": x_q})["pool"]
    np.testing.assert_array_equal(
        out, np.array([[[[1, -1, 2, -1, 2, -2]]]], dtype=np.int8) + zp_out, strict=True
    )


@pytest.mark.parametrize(
    ("op", "size"),
    [
        (AvgPool2d(2, 2), 6),
        (AvgPool2d(3, 2, padding=1), 7),  # padded taps contribute real 0, divisor 9
        (AvgPool2d(3, 1, padding=1, ceil_mode=True), 5),  # ceil_mode with no overhang
        (AvgPool2d((2, 3), (1, 2), padding=(1, 1)), 6),
        (GlobalAvgPool(), 5),
    ],
)
def test_avg_pool_equals_loop(op, size):
    rng = rng_for("avg", op, size)
    net = Network("pool")
    net.add("x", Input((3, size, size)))
    net.add("pool", op, ["x"])
    qnet = ptq.quantize(net, calibration={"x": rng.standard_normal((1, 3, size, size))})
    x_q = random_int8(rng, (2, 3, size, size))
    out = executor.run_network(qnet, {"x": x_q})["pool"]

    zp_in, zp_out = qnet.tensors["x"].zero_point, qnet.tensors["pool"].zero_point
    p = qnet.layers["pool"]
    if isinstance(op, GlobalAvgPool):
        kernel, stride, pads = (size, size), (1, 1), (0, 0)
    else:
        kernel, stride, pads = op.kernel, op.stride, (op.padding[0], op.padding[2])

    def average(window):
        acc = sum(v - zp_in for v in window if v is not None)
        return ref_requantize(acc, p.multiplier, p.shift, zp_out, p.act_min, p.act_max)

    expected = ref_window_loop(x_q, kernel, stride, pads, out.shape[2:], average)
    np.testing.assert_array_equal(out, expected.astype(np.int8), strict=True)


@pytest.mark.parametrize(
    ("op", "size"),
    [
        (MaxPool2d(3, 2, padding=1), 7),
        (MaxPool2d(2, 2), 6),
        (MaxPool2d(3, 2, padding=1, ceil_mode=True), 6),
        (MaxPool2d(3, 1, padding=1, dilation=2), 7),
        (MaxPool2d((2, 3), (2, 1), padding=(1, 1), dilation=(3, 2)), 9),
        (MaxPool2d(3, 2, padding=1, ceil_mode=True, dilation=2), 8),
    ],
)
def test_max_pool_equals_loop_and_padding_never_wins(op, size):
    rng = rng_for("max", op, size)
    t = TensorQuant(0.1, 5)
    qnet = manual_pool_net(op, (2, size, size), t, t, None)
    x_q = random_int8(rng, (2, 2, size, size))
    x_q[0] = -128  # an all-minimum image: a pad value of 0 or zp would win at the borders
    out = executor.run_network(qnet, {"x": x_q})["pool"]

    def maximum(window):
        return max(v for v in window if v is not None)

    pads = (op.padding[0], op.padding[2])
    expected = ref_window_loop(x_q, op.kernel, op.stride, pads, out.shape[2:], maximum, op.dilation)
    np.testing.assert_array_equal(out, expected.astype(np.int8), strict=True)
    assert (out[0] == -128).all()


def conv_loop(x_q, layer, zp_in, zp_out, op):
    """Quantised conv by loops: acc = bias + sum (x - zp_in) * w over the taps inside the
    input (padding is real 0), then per-channel requantisation and the layer's clamp."""
    n_, _, h_, w_ = x_q.shape
    k_, cg, r_, s_ = layer.weight.shape
    top, _, left, _ = op.padding
    (sh, sw), (dh, dw) = op.stride, op.dilation
    p_ = (h_ + sum(op.padding[:2]) - dh * (r_ - 1) - 1) // sh + 1
    q_ = (w_ + sum(op.padding[2:]) - dw * (s_ - 1) - 1) // sw + 1
    out = np.zeros((n_, k_, p_, q_), dtype=np.int64)
    kg = k_ // op.groups
    for n, k, p, q in np.ndindex(out.shape):
        acc = int(layer.bias[k])
        for c, r, s in np.ndindex(cg, r_, s_):
            i, j = p * sh + r * dh - top, q * sw + s * dw - left
            if 0 <= i < h_ and 0 <= j < w_:
                acc += (int(x_q[n, k // kg * cg + c, i, j]) - zp_in) * int(layer.weight[k, c, r, s])
        out[n, k, p, q] = ref_requantize(
            acc, int(layer.multiplier[k]), int(layer.shift[k]), zp_out, layer.act_min, layer.act_max
        )
    return out.astype(np.int8)


@pytest.mark.parametrize(
    "op",
    [
        Conv2d(4, 6, 3, padding=1, activation="relu"),
        Conv2d(4, 4, 3, stride=2, padding=(1, 0, 2, 1), groups=4, activation="relu6"),
        Conv2d(4, 2, (2, 3), dilation=(2, 1), groups=2),
    ],
)
def test_conv_equals_loop_and_uses_the_layer_clamp(op):
    rng = rng_for("conv", op)
    net = Network("conv")
    net.add("x", Input((4, 6, 7)))
    net.add("conv", op, ["x"])
    qnet = ptq.quantize(net, calibration={"x": rng.standard_normal((1, 4, 6, 7))}, seed=2)
    x_q = random_int8(rng, (2, 4, 6, 7))
    zp_in, zp_out = qnet.tensors["x"].zero_point, qnet.tensors["conv"].zero_point
    out = executor.run_network(qnet, {"x": x_q})["conv"]
    np.testing.assert_array_equal(out, conv_loop(x_q, qnet.layers["conv"], zp_in, zp_out, op))
    # the clamp comes from the ConvQuant, whatever the op's activation says
    qnet.layers["conv"] = dataclasses.replace(qnet.layers["conv"], act_min=-3, act_max=4)
    clamped = executor.run_network(qnet, {"x": x_q})["conv"]
    np.testing.assert_array_equal(clamped, conv_loop(x_q, qnet.layers["conv"], zp_in, zp_out, op))
    assert clamped.min() == -3 and clamped.max() == 4


def test_linear_takes_a_pooled_image_in_c_h_w_order():
    """Linear directly after a GlobalAvgPool, (N, C, 1, 1), and after a Flatten of (C, H, W)."""
    rng = rng_for("linear")
    net = Network("fc")
    net.add("x", Input((3, 2, 2)))
    net.add("gap", GlobalAvgPool(), ["x"])
    net.add("fc1", Linear(3, 4, activation="relu"), ["gap"])
    net.add("flat", Flatten(), ["x"])
    net.add("fc2", Linear(12, 5), ["flat"])
    qnet = ptq.quantize(net, calibration={"x": rng.standard_normal((1, 3, 2, 2))})
    x_q = random_int8(rng, (3, 3, 2, 2))
    values = executor.trace_network(qnet, {"x": x_q})
    np.testing.assert_array_equal(values["flat"], x_q.reshape(3, 12), strict=True)
    for fc, src in (("fc1", "gap"), ("fc2", "flat")):
        layer = qnet.layers[fc]
        flat = values[src].reshape(3, -1, 1, 1)
        weight = dataclasses.replace(layer, weight=layer.weight[:, :, None, None])
        expected = conv_loop(
            flat, weight, qnet.tensors[src].zero_point, qnet.tensors[fc].zero_point, Conv2d(1, 1, 1)
        )
        np.testing.assert_array_equal(values[fc], expected[:, :, 0, 0], strict=True)


def test_concat_shares_quant_params_and_copies_int8_channels():
    rng = rng_for("concat")
    net = Network("cat")
    net.add("x", Input((2, 4, 4)))
    net.add("a", Conv2d(2, 3, 3, padding=1, activation="relu"), ["x"])
    net.add("b", Conv2d(2, 2, 1), ["x"])
    net.add("pool", MaxPool2d(1, 1), ["b"])
    net.add("cat", Concat(), ["a", "pool", "x"])
    qnet = ptq.quantize(net, calibration={"x": rng.standard_normal((1, 2, 4, 4))})
    assert len({qnet.tensors[n] for n in ("x", "a", "b", "pool", "cat")}) == 1
    values = executor.trace_network(qnet, {"x": random_int8(rng, (2, 2, 4, 4))})
    expected = np.concatenate([values["a"], values["pool"], values["x"]], axis=1)
    np.testing.assert_array_equal(values["cat"], expected, strict=True)


def test_standalone_activation_clamps_to_its_range():
    rng = rng_for("act")
    net = Network("act")
    net.add("x", Input((2, 3, 3)))
    net.add("relu", Activation("relu"), ["x"])
    net.add("relu6", Activation("relu6"), ["x"])
    qnet = ptq.quantize(net, calibration={"x": 10 * rng.standard_normal((1, 2, 3, 3))})
    t = qnet.tensors["x"]
    x_q = random_int8(rng, (1, 2, 3, 3))
    out = executor.run_network(qnet, {"x": x_q})
    np.testing.assert_array_equal(out["relu"], np.maximum(x_q, t.zero_point), strict=True)
    high = t.zero_point + round(6 / t.scale)
    assert high < 127  # relu6 really clamps above
    np.testing.assert_array_equal(out["relu6"], np.clip(x_q, t.zero_point, high), strict=True)


# --------------------------------------------------------------------------------------------
# zoo models: layer by layer and end to end
# --------------------------------------------------------------------------------------------

# model -> (input size, bound on the relative L2 error of the output); see the module docstring
ZOO = {
    "tinynet": (16, 0.02),
    "lenet5": (32, 0.04),
    "resnet18": (64, 0.04),
    "resnet34": (64, 0.04),
    "resnet50": (64, 0.04),
    "mobilenet_v2": (64, 0.075),
    "alexnet": (224, 0.04),
    "vgg16": (224, 0.06),
}
# The slow tier keeps this file under 20 s. VGG-16: random weights (138M), quantisation and
# the int8 run at 224 take about 15 s. AlexNet: its int8 run takes 0.5 s, but generating and
# quantising its 61M weights about 4 s. ResNet-34 (about 3 s): ResNet-18's blocks, twice as
# many.
END_TO_END_SLOW = {"vgg16", "alexnet", "resnet34"}
# Every op kind of the zoo (strided, padded and depthwise conv, linear, padded max pool, avg
# pool, global pool, add with and without relu, flatten) occurs in the four fast models.
LAYER_BY_LAYER_SLOW = END_TO_END_SLOW | {"resnet50"}


def zoo_params(slow):
    return [pytest.param(m, marks=pytest.mark.slow) if m in slow else m for m in ZOO]


@functools.cache
def zoo_run(model, seed=0):
    """(qnet, float trace, int8 trace) of a zoo model, calibrated on its evaluated input."""
    net = models.get(model, ZOO[model][0])
    x = synthetic.random_inputs(net, seed)
    qnet = ptq.quantize(net, seed=seed, calibration=x)
    return qnet, executor.trace_network(qnet.network, x), executor.trace_network(qnet, x)


def image_shape(shape):
    """An Input shape for a tensor: images as they are, vectors (F,) as (F, 1, 1)."""
    return shape if len(shape) == 3 else (*shape, 1, 1)


def real_layer(qnet, name):
    """Node ``name`` alone in a float network, with the dequantised int8 weights and bias."""
    net = qnet.network
    single = Network(name)
    srcs = [single.add(f"in{i}", Input(image_shape(net.shape(s)))) for i, s in enumerate(
        net.inputs(name))]  # fmt: skip
    single.add(name, net.op(name), srcs)
    layer = qnet.layers.get(name)
    if isinstance(layer, quantized.ConvQuant):
        scale = layer.weight_scale.reshape(-1, *[1] * (layer.weight.ndim - 1))
        bias = layer.bias * qnet.tensors[net.inputs(name)[0]].scale * layer.weight_scale
        single.set_weights(name, layer.weight * scale, bias if net.op(name).bias else None)
    return single


@pytest.mark.parametrize("model", zoo_params(LAYER_BY_LAYER_SLOW))
def test_every_int8_layer_is_within_one_lsb_of_its_real_value(model):
    qnet, _, q = zoo_run(model)
    net = qnet.network
    for name in net.layers():
        inputs = {
            f"in{i}": qnet.dequantize(src, q[src]).reshape(-1, *image_shape(net.shape(src)))
            for i, src in enumerate(net.inputs(name))
        }
        real = executor.run_network(real_layer(qnet, name), inputs)[name]
        expected = qnet.quantize_input(name, real).astype(np.int64)
        diff = np.abs(q[name].astype(np.int64) - expected).max()
        exact = isinstance(net.op(name), MaxPool2d | Concat | Flatten | Activation)
        assert diff <= (0 if exact else 1), (name, diff)


@pytest.mark.parametrize("model", zoo_params(END_TO_END_SLOW))
def test_int8_network_tracks_the_float_network(model):
    qnet, f, q = zoo_run(model)
    (out,) = qnet.network.output_names
    real, approx = f[out], qnet.dequantize(out, q[out])
    rel = np.linalg.norm(approx - real) / np.linalg.norm(real)
    corr = np.corrcoef(real.ravel(), approx.ravel())[0, 1]
    assert rel < ZOO[model][1] and corr > 0.998, (rel, corr)
    assert q[out].dtype == np.int8 and real.shape == approx.shape == (1, 10 if model in (
        "tinynet", "lenet5") else 1000)  # fmt: skip


@pytest.mark.parametrize("seed", range(5))
def test_tinynet_output_is_within_three_lsb_of_float(seed):
    qnet, f, q = zoo_run("tinynet", seed)
    t = qnet.tensors["fc"]
    assert np.abs(qnet.dequantize("fc", q["fc"]) - f["fc"]).max() <= 3 * t.scale


# --------------------------------------------------------------------------------------------
# inputs, batches, determinism
# --------------------------------------------------------------------------------------------


def test_float_run_uses_random_weights_of_the_seed():
    net = models.get("tinyconv")
    x = synthetic.random_inputs(net, 4)
    out = executor.run_network(net, x)
    assert list(out) == ["conv"]
    weights = synthetic.random_weights(net, 0).weights("conv")
    expected = golden.conv2d(x["input"], weights["weight"], weights["bias"], padding=1)
    np.testing.assert_array_equal(out["conv"], expected, strict=True)
    np.testing.assert_array_equal(executor.run_network(net, x, seed=0)["conv"], out["conv"])
    assert not np.array_equal(executor.run_network(net, x, seed=1)["conv"], out["conv"])
    assert not net.weights("conv")


def test_int8_run_is_deterministic_per_seed():
    net = models.get("tinynet")
    x = synthetic.random_inputs(net, 7)
    runs = [executor.run_network(ptq.quantize(net, seed=s), x)["fc"] for s in (0, 0, 1)]
    np.testing.assert_array_equal(runs[0], runs[1], strict=True)
    assert not np.array_equal(runs[0], runs[2])


def test_float_inputs_are_quantised_with_quantize_input():
    qnet, _, _ = zoo_run("tinynet")
    x = synthetic.random_inputs(qnet.network, 8, batch=2)
    as_float = executor.run_network(qnet, x)
    as_int8 = executor.run_network(qnet, {"input": qnet.quantize_input("input", x["input"])})
    np.testing.assert_array_equal(as_float["fc"], as_int8["fc"], strict=True)


@pytest.mark.parametrize("int8", [False, True])
def test_batch_elements_are_independent(int8):
    qnet, _, _ = zoo_run("tinynet")
    target = qnet if int8 else qnet.network
    x = synthetic.random_inputs(qnet.network, 11, batch=3)
    batch = executor.run_network(target, x)["fc"]
    assert batch.shape == (3, 10)
    for i in range(3):
        single = executor.run_network(target, {"input": x["input"][i : i + 1]})["fc"]
        if int8:
            np.testing.assert_array_equal(batch[i : i + 1], single, strict=True)
        else:  # BLAS may sum in another order for another batch size
            np.testing.assert_allclose(batch[i : i + 1], single, rtol=1e-12, atol=1e-12)


def test_trace_network_returns_every_node_in_order():
    qnet, f, q = zoo_run("tinynet")
    assert list(f) == list(q) == qnet.network.order()
    assert all(v.dtype == np.int8 for v in q.values())
    assert all(v.dtype == np.float64 for v in f.values())


# --------------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------------


def two_input_net():
    net = Network("two")
    net.add("a", Input((1, 2, 2)))
    net.add("b", Input((1, 2, 2)))
    net.add("add", Add(), ["a", "b"])
    return net


X = np.zeros((1, 1, 2, 2))


@pytest.mark.parametrize(
    ("inputs", "error", "match"),
    [
        (
            {"a": X, "b": X, "c": X},
            ValueError,
            r"network 'two' has inputs \['a', 'b'\]: unknown input names \['c'\], "
            r"missing input names \[\]",
        ),
        ({"a": X}, ValueError, r"unknown input names \[\], missing input names \['b'\]"),
        ({"a": X, "b": X[0]}, ValueError, r"input 'b' must have shape \(N, 1, 2, 2\) with N >= 1"),
        ({"a": X, "b": X[:0]}, ValueError, r"got shape \(0, 1, 2, 2\)"),
        ({"a": X, "b": np.zeros((1, 1, 2, 3))}, ValueError, r"got shape \(1, 1, 2, 3\)"),
        ({"a": X, "b": np.zeros((2, 1, 2, 2))}, ValueError, r"share the batch size N"),
        ({"a": X, "b": X.astype(bool)}, TypeError, r"input 'b' must be a float array"),
        ([X, X], TypeError, r"inputs must be a mapping"),
    ],
)
def test_float_input_errors(inputs, error, match):
    with pytest.raises(error, match=match):
        executor.run_network(two_input_net(), inputs)


def test_int8_input_errors():
    qnet = ptq.quantize(two_input_net())
    with pytest.raises(TypeError, match=r"input 'a' must be an int8 or a float array, got dtype"):
        executor.run_network(qnet, {"a": X.astype(np.int32), "b": X})
    with pytest.raises(ValueError, match=r"unknown input names \['x'\]"):
        executor.run_network(qnet, {"a": X, "b": X, "x": X})


def test_run_network_rejects_other_objects():
    with pytest.raises(TypeError, match=r"expected an accel.graph.Network or"):
        executor.run_network("tinynet", {})


@pytest.mark.parametrize(
    ("op", "layer", "match"),
    [
        (
            AvgPool2d(3, 1, padding=1, count_include_pad=False),
            PoolQuant(2**30, 3),
            r"node 'pool' \(AvgPool2d\): count_include_pad=False with padding=\(1, 1, 1, 1\) "
            r"is not supported in int8",
        ),
        (AvgPool2d(2, 2), None, r"node 'pool' \(AvgPool2d\): layer parameters must be PoolQuant"),
        (
            MaxPool2d(3, 1, padding=(1, 0, 1, 1)),
            None,
            r"node 'pool' \(MaxPool2d\): asymmetric padding=\(1, 0, 1, 1\) is not supported",
        ),
    ],
)
def test_int8_executor_errors(op, layer, match):
    t = TensorQuant(0.1, 0)
    qnet = manual_pool_net(op, (1, 4, 4), t, t, layer)
    with pytest.raises(ValueError, match=match):
        executor.run_network(qnet, {"x": np.zeros((1, 1, 4, 4), dtype=np.int8)})


def test_int8_executor_rejects_unshared_quantisation():
    """A hand-built QuantizedNetwork whose concat inputs are not on the output's grid."""
    net = Network("cat")
    net.add("a", Input((1, 2, 2)))
    net.add("b", Input((1, 2, 2)))
    net.add("cat", Concat(), ["a", "b"])
    t = TensorQuant(0.1, 0)
    qnet = QuantizedNetwork(net, {"a": t, "b": TensorQuant(0.2, 0), "cat": t})
    x = np.zeros((1, 1, 2, 2), dtype=np.int8)
    with pytest.raises(
        ValueError, match=r"node 'cat' \(Concat\): int8 execution needs the inputs'"
    ):
        executor.run_network(qnet, {"a": x, "b": x})


def test_float_executor_rejects_asymmetric_pool_padding():
    net = Network("pool")
    net.add("x", Input((1, 4, 4)))
    net.add("pool", AvgPool2d(3, 1, padding=(0, 1, 1, 1)), ["x"])
    with pytest.raises(ValueError, match=r"node 'pool' \(AvgPool2d\): asymmetric padding"):
        executor.run_network(net, {"x": np.zeros((1, 1, 4, 4))})
