"""accel.numerics: gemmlowp fixed point against a scalar transcription, hand-worked edge cases,
the zero-point folding of qconv2d (padding = zero point), and the error contract."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accel import golden, numerics
from accel.numerics import INT32_MAX, INT32_MIN
from tests.references import ref_rdbpot, ref_requantize, ref_srdhm, rng_for

HYPOTHESIS = settings(max_examples=100, deadline=None)
M_HALF = 2**30  # the multiplier of real scale 0.5 (shift 0)
M_MAX = 2**31 - 1


# --------------------------------------------------------------------------------------------
# scalar reference: gemmlowp's fixedpoint.h transcribed with Python ints
# --------------------------------------------------------------------------------------------


int32s = st.one_of(
    st.integers(INT32_MIN, INT32_MAX),
    st.sampled_from([INT32_MIN, INT32_MIN + 1, -1, 0, 1, INT32_MAX - 1, INT32_MAX]),
)


# --------------------------------------------------------------------------------------------
# SaturatingRoundingDoublingHighMul and RoundingDivideByPOT
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (INT32_MIN, INT32_MIN, INT32_MAX),  # the one overflow: saturates
        (INT32_MIN, INT32_MAX, -INT32_MAX),
        (INT32_MAX, INT32_MAX, INT32_MAX - 1),
        (7, INT32_MIN, -7),  # INT32_MIN is -1.0
        (3, M_HALF, 2),  # 1.5 -> 2
        (-3, M_HALF, -1),  # -1.5 -> -1: ties go toward +infinity (nudge 1 - 2**30)
        (5, M_HALF, 3),  # 2.5 -> 3
        (-5, M_HALF, -2),  # -2.5 -> -2
        (1, M_HALF, 1),  # 0.5 -> 1
        (-1, M_HALF, 0),  # -0.5 -> 0
        (-3, M_HALF + 1, -2),  # just below -1.5 -> -2
        (-1, 1, 0),
        (0, INT32_MIN, 0),
    ],
)
def test_srdhm_hand_cases(a, b, expected):
    assert ref_srdhm(a, b) == expected
    assert int(numerics.saturating_rounding_doubling_high_mul(a, b)) == expected


@pytest.mark.parametrize(
    ("x", "exponent", "expected"),
    [
        (5, 1, 3),  # 2.5 -> 3: ties away from zero
        (-5, 1, -3),
        (3, 1, 2),
        (-3, 1, -2),
        (1, 1, 1),  # 0.5 -> 1
        (-1, 1, -1),  # -0.5 -> -1
        (-2, 2, -1),  # -0.5 -> -1
        (6, 2, 2),  # 1.5 -> 2
        (-6, 2, -2),
        (5, 2, 1),  # 1.25 -> 1
        (-5, 2, -1),
        (7, 2, 2),  # 1.75 -> 2
        (-7, 2, -2),
        (-7, 0, -7),  # shift 0 is the identity
        (INT32_MIN, 0, INT32_MIN),
        (INT32_MAX, 0, INT32_MAX),
        (2**30, 31, 1),  # 0.5 -> 1
        (-(2**30), 31, -1),
        (2**30 - 1, 31, 0),
        (-(2**30) + 1, 31, 0),
        (INT32_MIN, 31, -1),
        (INT32_MAX, 31, 1),
    ],
)
def test_rdbpot_hand_cases(x, exponent, expected):
    assert ref_rdbpot(x, exponent) == expected
    assert int(numerics.rounding_divide_by_pot(x, exponent)) == expected


@HYPOTHESIS
@given(st.lists(st.tuples(int32s, int32s), min_size=1, max_size=50))
def test_srdhm_vectorised_equals_scalar(pairs):
    a, b = (np.array(v, dtype=np.int64) for v in zip(*pairs, strict=True))
    got = numerics.saturating_rounding_doubling_high_mul(a, b)
    assert got.dtype == np.int64
    assert got.tolist() == [ref_srdhm(x, y) for x, y in pairs]


@HYPOTHESIS
@given(st.lists(st.tuples(int32s, st.integers(0, 31)), min_size=1, max_size=50))
def test_rdbpot_vectorised_equals_scalar(pairs):
    x, e = (np.array(v, dtype=np.int64) for v in zip(*pairs, strict=True))
    got = numerics.rounding_divide_by_pot(x, e)
    assert got.tolist() == [ref_rdbpot(int(v), int(k)) for v, k in pairs]


# --------------------------------------------------------------------------------------------
# requantize
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("acc", "multiplier", "shift", "zero_point", "act", "expected"),
    [
        (100, M_HALF, 1, 0, (-128, 127), 25),  # 100 * 0.5 / 2
        (100, M_HALF, 1, -3, (-128, 127), 22),
        (5, M_HALF, 0, 0, (-128, 127), 3),  # SRDHM tie 2.5 -> 3
        (-5, M_HALF, 0, 0, (-128, 127), -2),  # SRDHM tie -2.5 -> -2 (toward +inf)
        (12, M_HALF, 2, 0, (-128, 127), 2),  # exact 6, shift tie 1.5 -> 2
        (-12, M_HALF, 2, 0, (-128, 127), -2),  # exact -6, shift tie -1.5 -> -2 (away from 0)
        (-4, M_HALF, 2, 0, (-128, 127), -1),  # -2 / 4 = -0.5 -> -1
        (5, M_HALF, 1, 0, (-128, 127), 2),  # real 1.25, but double rounding: 2.5 -> 3 -> 2
        (10**6, M_HALF, 0, 0, (-128, 127), 127),  # clamp high
        (-(10**6), M_HALF, 0, 0, (-128, 127), -128),  # clamp low
        (-100, M_HALF, 0, 5, (5, 127), 5),  # relu clamp at the zero point
        (300, M_HALF, 0, 5, (5, 100), 100),  # act_max
        (INT32_MAX, M_MAX, 31, 0, (-128, 127), 1),  # shift 31: ~1.0
        (INT32_MIN, M_MAX, 31, 0, (-128, 127), -1),
        (INT32_MAX, M_MAX, 0, 127, (-128, 127), 127),  # zp add beyond int32: no wrap, clamps
        (0, M_HALF, 7, -128, (-128, 127), -128),
    ],
)
def test_requantize_hand_cases(acc, multiplier, shift, zero_point, act, expected):
    assert ref_requantize(acc, multiplier, shift, zero_point, *act) == expected
    got = numerics.requantize(np.array([acc]), multiplier, shift, zero_point, *act)
    assert got.dtype == np.int8
    assert got.tolist() == [expected]


@HYPOTHESIS
@given(
    st.lists(int32s, min_size=1, max_size=40),
    st.integers(2**30, M_MAX),
    st.integers(0, 31),
    st.integers(-128, 127),
    st.tuples(st.integers(-128, 127), st.integers(-128, 127)).map(sorted),
)
def test_requantize_vectorised_equals_scalar(accs, multiplier, shift, zero_point, act):
    got = numerics.requantize(np.array(accs), multiplier, shift, zero_point, *act)
    assert got.tolist() == [ref_requantize(a, multiplier, shift, zero_point, *act) for a in accs]


@pytest.mark.parametrize(("shape", "axis"), [((2, 3, 4, 5), None), ((6, 3), None), ((3, 4, 5), 0)])
def test_requantize_per_channel(shape, axis):
    rng = rng_for(shape, axis)
    acc = rng.integers(-(2**20), 2**20, shape)
    channel_axis = {None: 1 if len(shape) == 4 else len(shape) - 1}.get(axis, axis)
    channels = shape[channel_axis]
    multipliers = rng.integers(2**30, 2**31, channels)
    shifts = rng.integers(0, 32, channels)
    got = numerics.requantize(acc, multipliers, shifts, -7, axis=axis)
    for c in range(channels):
        expected = numerics.requantize(
            np.take(acc, c, axis=channel_axis), multipliers[c], shifts[c], -7
        )
        np.testing.assert_array_equal(np.take(got, c, axis=channel_axis), expected, strict=True)


# --------------------------------------------------------------------------------------------
# quantize_multiplier and activation_range
# --------------------------------------------------------------------------------------------


def test_quantize_multiplier_round_trip_many_scales():
    rng = rng_for("scales")
    scales = np.concatenate(
        [np.geomspace(2**-32, 1, 20000, endpoint=False), 2.0 ** rng.uniform(-32, 0, 20000)]
    )
    multiplier, shift = numerics.quantize_multiplier(scales)
    assert multiplier.dtype == np.int64 and shift.dtype == np.int64
    assert multiplier.min() >= 2**30 and multiplier.max() <= M_MAX
    assert shift.min() >= 0 and shift.max() <= 31
    approx = multiplier * 2.0 ** -(31 + shift)
    assert np.max(np.abs(approx - scales) / scales) < 2**-30
    for i in rng.integers(0, scales.size, 50):  # the scalar form agrees with the array form
        assert numerics.quantize_multiplier(float(scales[i])) == (multiplier[i], shift[i])


@pytest.mark.parametrize(
    ("scale", "expected"),
    [
        *[(2.0**-k, (2**30, k - 1)) for k in range(1, 33)],  # exact powers of two
        (0.75, (3 * 2**29, 0)),
        (0.75 + 2**-32, (3 * 2**29 + 1, 0)),  # mantissa tie: half away from zero like TFLite
        (1 - 2**-53, (M_MAX, 0)),  # largest double below 1: saturates instead of a left shift
        (1 - 2**-33, (M_MAX, 0)),
        (1 - 2**-31, (M_MAX, 0)),
        (2**-32 * (1 - 2**-40), (2**30, 31)),  # rounds up to 2**-32: still representable
        (0.3, (1288490189, 1)),  # round(0.6 * 2**31) = 1288490188.8 -> ...189
    ],
)
def test_quantize_multiplier_edges(scale, expected):
    multiplier, shift = numerics.quantize_multiplier(scale)
    assert (multiplier, shift) == expected
    assert type(multiplier) is int and type(shift) is int
    assert abs(multiplier * 2.0 ** -(31 + shift) - scale) / scale < 2**-30


@pytest.mark.parametrize(
    ("scale", "match"),
    [
        (0.0, r"real_scale must be finite and in \(0, 1\), got 0.0"),
        (-0.5, r"real_scale must be finite and in \(0, 1\), got -0.5"),
        (float("nan"), r"real_scale must be finite and in \(0, 1\), got nan"),
        (float("inf"), r"real_scale must be finite and in \(0, 1\), got inf"),
        (1.0, r"real_scale must be finite and in \(0, 1\), got 1.0"),
        (1.5, r"real_scale must be finite and in \(0, 1\), got 1.5"),
        (2.0**-33, r"real_scale must be >= 2\*\*-32 \(a right shift <= 31\), got 1.16415"),
        ([0.5, 0.25, 2.0], r"real_scale\[2\] must be finite and in \(0, 1\), got 2.0"),
        ([[0.5], [1e-20]], r"real_scale\[1, 0\] must be >= 2\*\*-32 .* got 1e-20"),
    ],
)
def test_quantize_multiplier_errors(scale, match):
    with pytest.raises(ValueError, match=match):
        numerics.quantize_multiplier(scale)


def test_quantize_multiplier_rejects_non_numeric():
    with pytest.raises(TypeError, match="real_scale must be a float or an array of floats"):
        numerics.quantize_multiplier("0.5")


@pytest.mark.parametrize(
    ("activation", "zero_point", "scale", "expected"),
    [
        (None, 3, None, (-128, 127)),
        ("relu", -128, None, (-128, 127)),
        ("relu", 10, None, (10, 127)),
        ("relu6", -128, 6 / 255, (-128, 127)),  # the usual [0, 6] -> [-128, 127]
        ("relu6", -10, 0.05, (-10, 110)),
        ("relu6", 100, 0.1, (100, 127)),  # 6.0 is beyond int8: capped
        ("relu6", 0, 12.0, (0, 1)),  # round(0.5) is 1: half away from zero, not to even
    ],
)
def test_activation_range(activation, zero_point, scale, expected):
    assert numerics.activation_range(activation, zero_point, scale) == expected


# --------------------------------------------------------------------------------------------
# fold_zero_point_into_bias, qconv2d, qlinear
# --------------------------------------------------------------------------------------------


def test_fold_zero_point_into_bias_by_hand():
    w = np.array([[1, 2], [-3, 4]], dtype=np.int8).reshape(2, 1, 1, 2)  # sums 3 and 1
    bias = np.array([10, 20], dtype=np.int32)
    got = numerics.fold_zero_point_into_bias(w, bias, 5)
    np.testing.assert_array_equal(got, np.array([10 - 15, 20 - 5], dtype=np.int32), strict=True)
    got = numerics.fold_zero_point_into_bias(w, None, -2)
    np.testing.assert_array_equal(got, np.array([6, 2], dtype=np.int32), strict=True)


def quantized_layer(rng, x_shape, w_shape, x_zero_point):
    """Random int8 operands, int32 bias and per-channel multipliers of a plausible layer."""
    x = rng.integers(-128, 128, x_shape, dtype=np.int8)
    w = rng.integers(-127, 128, w_shape, dtype=np.int8)
    k = w_shape[0]
    bias = rng.integers(-(2**12), 2**12, k, dtype=np.int32)
    taps = int(np.prod(w_shape[1:]))
    # scale so that the accumulator's std (~ 64 * 73 * sqrt(taps)) maps to ~ 40 LSB
    scales = 40 / (64 * 73 * np.sqrt(taps)) * rng.uniform(0.5, 2, k)
    multiplier, shift = numerics.quantize_multiplier(scales)
    return x, w, bias, multiplier, shift, scales


@st.composite
def qconv_cases(draw):
    groups = draw(st.integers(1, 2))
    return dict(
        n=draw(st.integers(1, 2)),
        groups=groups,
        c=groups * draw(st.integers(1, 3)),
        k=groups * draw(st.integers(1, 3)),
        hw=(draw(st.integers(5, 8)), draw(st.integers(5, 8))),  # >= dilated 3x3 extent
        kernel=(draw(st.integers(1, 3)), draw(st.integers(1, 3))),
        stride=draw(st.integers(1, 2)),
        dilation=draw(st.integers(1, 2)),
        padding=draw(
            st.one_of(st.sampled_from(["same", "valid"]), st.tuples(*[st.integers(0, 2)] * 4))
        ),
        x_zero_point=draw(st.integers(-128, 127)),
        out_zero_point=draw(st.integers(-128, 127)),
        activation=draw(st.sampled_from([None, "relu", "relu6"])),
        seed=draw(st.integers(0, 2**32 - 1)),
    )


@HYPOTHESIS
@given(qconv_cases())
def test_qconv2d_equals_requantized_conv_of_real_zero_padded_input(case):
    rng = np.random.default_rng(case["seed"])
    c, k, groups = case["c"], case["k"], case["groups"]
    x, w, bias, multiplier, shift, _ = quantized_layer(
        rng, (case["n"], c, *case["hw"]), (k, c // groups, *case["kernel"]), case["x_zero_point"]
    )
    geometry = dict(
        stride=case["stride"], padding=case["padding"], dilation=case["dilation"], groups=groups
    )
    act = numerics.activation_range(case["activation"], case["out_zero_point"], 0.05)
    got = numerics.qconv2d(
        x,
        w,
        bias,
        x_zero_point=case["x_zero_point"],
        multiplier=multiplier,
        shift=shift,
        out_zero_point=case["out_zero_point"],
        activation=case["activation"],
        out_scale=0.05,
        **geometry,
    )
    # x - zp is the real input / input scale; golden pads it with 0, i.e. with real zero.
    acc = golden.conv2d(x.astype(np.int64) - case["x_zero_point"], w, bias, **geometry)
    expected = numerics.requantize(acc, multiplier, shift, case["out_zero_point"], *act)
    np.testing.assert_array_equal(got, expected, strict=True)


def test_qconv2d_padding_holds_the_zero_point_not_zero():
    rng = rng_for("pad-zp")
    zp = 50
    x = rng.integers(40, 61, (1, 2, 6, 6), dtype=np.int8)  # real values in [-10, 10]
    w = np.ones((1, 2, 3, 3), dtype=np.int8)
    q = dict(x_zero_point=zp, multiplier=2**30, shift=1, out_zero_point=0)  # scale 0.25
    got = numerics.qconv2d(x, w, None, padding=1, **q)
    expected = numerics.requantize(
        golden.conv2d(x.astype(np.int64) - zp, w, padding=1), 2**30, 1, 0
    )
    np.testing.assert_array_equal(got, expected, strict=True)
    # What padding the int8 input with 0 would give: the folded bias still subtracts zp for
    # the padded taps, so the border is off by zp * (padded taps) * C / 4 (here >= 75).
    folded = numerics.fold_zero_point_into_bias(w, None, zp)
    wrong = numerics.requantize(golden.conv2d(x, w, folded, padding=1), 2**30, 1, 0)
    border = np.ones((6, 6), dtype=bool)
    border[1:-1, 1:-1] = False
    np.testing.assert_array_equal(wrong[0, 0][~border], got[0, 0][~border], strict=True)
    assert np.all(wrong[0, 0][border] < got[0, 0][border] - 70)


def test_qconv2d_is_within_one_lsb_of_the_float_layer():
    rng = rng_for("float")
    x_zp, out_zp, x_scale, out_scale = 7, -20, 0.02, 0.05
    x, w, bias, multiplier, shift, scales = quantized_layer(rng, (2, 8, 9, 9), (16, 8, 3, 3), x_zp)
    w_scales = scales * out_scale / x_scale  # so that x_scale * w_scale / out_scale == scales
    got = numerics.qconv2d(
        x,
        w,
        bias,
        x_zero_point=x_zp,
        multiplier=multiplier,
        shift=shift,
        out_zero_point=out_zp,
        padding="same",
        stride=2,
    )
    real = golden.conv2d(
        (x.astype(np.float64) - x_zp) * x_scale,
        w * w_scales[:, None, None, None],
        bias * x_scale * w_scales,
        padding="same",
        stride=2,
    )
    reference = np.clip(np.round(real / out_scale) + out_zp, -128, 127)
    assert np.abs(got.astype(np.int64) - reference).max() <= 1
    assert np.mean(got == reference) > 0.99


def test_qconv2d_relu6_clamps_to_activation_range():
    rng = rng_for("relu6")
    x, w, bias, _, _, _ = quantized_layer(rng, (1, 4, 6, 6), (5, 4, 3, 3), 0)
    got = numerics.qconv2d(
        x,
        w,
        bias,
        x_zero_point=0,
        multiplier=M_MAX,
        shift=2,
        out_zero_point=-100,
        activation="relu6",
        out_scale=0.1,
    )
    assert got.min() == -100 and got.max() == -40  # -100 + round(6 / 0.1)


def test_qlinear_equals_requantized_linear():
    rng = rng_for("qlinear")
    x, w, bias, multiplier, shift, _ = quantized_layer(rng, (3, 20), (7, 20), -5)
    got = numerics.qlinear(
        x,
        w,
        bias,
        x_zero_point=-5,
        multiplier=multiplier,
        shift=shift,
        out_zero_point=4,
        activation="relu",
    )
    acc = golden.linear(x.astype(np.int64) + 5, w, bias)
    expected = numerics.requantize(acc, multiplier, shift, 4, 4, 127)
    assert got.shape == (3, 7)
    np.testing.assert_array_equal(got, expected, strict=True)


# --------------------------------------------------------------------------------------------
# errors: every message pinned
# --------------------------------------------------------------------------------------------

XQ = np.zeros((1, 2, 4, 4), dtype=np.int8)
WQ = np.zeros((3, 2, 3, 3), dtype=np.int8)
QARGS = dict(x_zero_point=0, multiplier=2**30, shift=0, out_zero_point=0)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (
            lambda: numerics.qconv2d(XQ.astype(np.int16), WQ, **QARGS),
            TypeError,
            "x_q must be a numpy array of dtype int8, got int16",
        ),
        (
            lambda: numerics.qconv2d(XQ, WQ.astype(np.float32), **QARGS),
            TypeError,
            "w_q must be a numpy array of dtype int8, got float32",
        ),
        (
            lambda: numerics.qconv2d(XQ.tolist(), WQ, **QARGS),
            TypeError,
            "x_q must be a numpy array of dtype int8, got list",
        ),
        (
            lambda: numerics.qconv2d(XQ, WQ, np.zeros(3, dtype=np.int64), **QARGS),
            TypeError,
            "bias_q must be a numpy array of dtype int32, got int64",
        ),
        (
            lambda: numerics.qconv2d(XQ, WQ, np.zeros(2, dtype=np.int32), **QARGS),
            ValueError,
            r"bias_q must have shape \(3,\), got shape \(2,\)",
        ),
        (
            lambda: numerics.qconv2d(XQ, WQ, **{**QARGS, "x_zero_point": 128}),
            ValueError,
            r"x_zero_point must be in \[-128, 127\], got 128",
        ),
        (
            lambda: numerics.qconv2d(XQ, WQ, **{**QARGS, "multiplier": [2**30] * 2}),
            ValueError,
            "multiplier has 2 channels but acc has 3 along axis 1",
        ),
        (
            lambda: numerics.qconv2d(XQ, WQ, **QARGS, activation="relu6"),
            ValueError,
            r"activation='relu6' needs a finite output scale > 0, got None",
        ),
        (
            lambda: numerics.qconv2d(XQ, WQ, **QARGS, stride=0),
            ValueError,
            "stride must be >= 1, got 0",
        ),
        (
            lambda: numerics.qconv2d(
                np.full((1, 140_000, 1, 1), -128, dtype=np.int8),
                np.full((1, 140_000, 1, 1), -128, dtype=np.int8),
                **QARGS,
            ),
            ValueError,
            "accumulator value 2293760000 overflows int32",
        ),
        (
            lambda: numerics.qlinear(XQ, WQ[:, :, 0, 0], **QARGS),
            ValueError,
            r"x_q must be 2-D, got shape \(1, 2, 4, 4\)",
        ),
        (
            lambda: numerics.qlinear(XQ[0, 0], WQ, **QARGS),
            ValueError,
            r"w_q must be 2-D, got shape \(3, 2, 3, 3\)",
        ),
        (
            lambda: numerics.fold_zero_point_into_bias(
                np.full((2, 1, 3, 3), 127, dtype=np.int8),
                np.array([0, INT32_MAX], dtype=np.int32),
                -128,
            ),
            ValueError,
            "folded bias of output channel 1 is 2147629951, outside int32",
        ),
        (
            lambda: numerics.requantize(np.array([2**31]), 2**30, 0, 0),
            ValueError,
            r"acc must be in \[-2147483648, 2147483647\], got 2147483648",
        ),
        (
            lambda: numerics.requantize(np.array([1.0]), 2**30, 0, 0),
            TypeError,
            "acc must be an integer array or int, got dtype float64",
        ),
        (
            lambda: numerics.requantize(np.array([1]), 2**30 - 1, 0, 0),
            ValueError,
            r"multiplier must be in \[1073741824, 2147483647\], got 1073741823",
        ),
        (
            lambda: numerics.requantize(np.array([1]), 2**30, 32, 0),
            ValueError,
            r"shift must be in \[0, 31\], got 32",
        ),
        (
            lambda: numerics.requantize(np.array([1]), 2**30, -1, 0),
            ValueError,
            r"shift must be in \[0, 31\], got -1",
        ),
        (
            lambda: numerics.requantize(np.array([1]), 2**30, 0, -129),
            ValueError,
            r"out_zero_point must be in \[-128, 127\], got -129",
        ),
        (
            lambda: numerics.requantize(np.array([1]), 2**30, 0, 0, 10, 5),
            ValueError,
            "act_min must be <= act_max, got act_min=10, act_max=5",
        ),
        (
            lambda: numerics.requantize(np.array([1]), 2**30, 0, 0, -129),
            ValueError,
            r"act_min must be in \[-128, 127\], got -129",
        ),
        (
            lambda: numerics.requantize(np.zeros((2, 3, 4), dtype=int), [2**30] * 3, 0, 0),
            ValueError,
            "axis must be given for a 3-D acc with per-channel multiplier",
        ),
        (
            lambda: numerics.requantize(np.zeros((2, 3), dtype=int), [[2**30]], 0, 0),
            ValueError,
            r"multiplier must be a scalar or 1-D, got shape \(1, 1\)",
        ),
        (
            lambda: numerics.requantize(np.zeros((2, 3), dtype=int), 2**30, [0] * 3, 0, axis=2),
            ValueError,
            r"axis must be a valid axis of acc with shape \(2, 3\), got 2",
        ),
        (
            lambda: numerics.saturating_rounding_doubling_high_mul(2**31, 1),
            ValueError,
            r"a must be in \[-2147483648, 2147483647\], got 2147483648",
        ),
        (
            lambda: numerics.rounding_divide_by_pot(1, 32),
            ValueError,
            r"exponent must be in \[0, 31\], got 32",
        ),
        (
            lambda: numerics.rounding_divide_by_pot(1.5, 1),
            TypeError,
            "x must be an integer array or int, got dtype float64",
        ),
        (
            lambda: numerics.activation_range("tanh", 0),
            ValueError,
            r"activation must be one of \(None, 'relu', 'relu6'\), got 'tanh'",
        ),
        (
            lambda: numerics.activation_range("relu6", 0, 0.0),
            ValueError,
            r"activation='relu6' needs a finite output scale > 0, got 0.0",
        ),
        (
            lambda: numerics.activation_range("relu", 200),
            ValueError,
            r"out_zero_point must be in \[-128, 127\], got 200",
        ),
        (
            lambda: numerics.activation_range("relu", 1.0),
            TypeError,
            "out_zero_point must be an int, got 1.0",
        ),
    ],
)
def test_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()
