"""accel.golden against naive loop references, hand-worked examples, and its error contract."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accel import golden
from tests.references import rng_for

HYPOTHESIS = settings(max_examples=100, deadline=None)


def random_array(rng, shape, kind):
    """int8 ints, "wide" ints (products up to 2**52: golden's int64 path), or floats."""
    if kind == "int8":
        return rng.integers(-128, 128, shape, dtype=np.int8)
    if kind == "wide":
        return rng.integers(-(2**26), 2**26, shape, dtype=np.int32)
    return rng.standard_normal(shape).astype(np.float32)


def assert_matches(actual, expected, kind):
    if kind == "float":
        assert actual.dtype == np.float64
        np.testing.assert_allclose(actual, expected, rtol=1e-9, atol=1e-9)
    else:
        np.testing.assert_array_equal(actual, expected.astype(np.int64), strict=True)


# --------------------------------------------------------------------------------------------
# naive references: loops over every index, Python scalars (exact for ints)
# --------------------------------------------------------------------------------------------


def ref_conv2d(x, w, bias, stride, pads, dilation, groups):
    n_, _, h_, w_ = x.shape
    k_, cg, r_, s_ = w.shape
    (sh, sw), (dh, dw), (top, bottom, left, right) = stride, dilation, pads
    p_ = (h_ + top + bottom - dh * (r_ - 1) - 1) // sh + 1
    q_ = (w_ + left + right - dw * (s_ - 1) - 1) // sw + 1
    xs, ws = x.tolist(), w.tolist()
    kg = k_ // groups
    out = np.zeros((n_, k_, p_, q_), dtype=object)
    for n in range(n_):
        for k in range(k_):
            g = k // kg
            for p in range(p_):
                for q in range(q_):
                    acc = 0 if bias is None else bias.tolist()[k]
                    for c in range(cg):
                        for r in range(r_):
                            for s in range(s_):
                                i, j = p * sh + r * dh - top, q * sw + s * dw - left
                                if 0 <= i < h_ and 0 <= j < w_:
                                    acc += xs[n][g * cg + c][i][j] * ws[k][c][r][s]
                    out[n, k, p, q] = acc
    return np.array(out.tolist())


def ref_conv_transpose2d(x, w, bias, stride, pads, output_padding, dilation, groups):
    n_, c_, h_, w_ = x.shape
    _, kg, r_, s_ = w.shape
    (sh, sw), (dh, dw), (top, bottom, left, right) = stride, dilation, pads
    ho = (h_ - 1) * sh - top - bottom + dh * (r_ - 1) + output_padding[0] + 1
    wo = (w_ - 1) * sw - left - right + dw * (s_ - 1) + output_padding[1] + 1
    cg = c_ // groups
    xs, ws = x.tolist(), w.tolist()
    out = np.zeros((n_, kg * groups, ho, wo), dtype=object)
    if bias is not None:
        out += np.array(bias.tolist(), dtype=object)[None, :, None, None]
    for n in range(n_):
        for c in range(c_):
            g = c // cg
            for i in range(h_):
                for j in range(w_):
                    for k in range(kg):
                        for r in range(r_):
                            for s in range(s_):
                                oi, oj = i * sh - top + r * dh, j * sw - left + s * dw
                                if 0 <= oi < ho and 0 <= oj < wo:
                                    out[n, g * kg + k, oi, oj] += xs[n][c][i][j] * ws[c][k][r][s]
    return np.array(out.tolist())


def ref_pool(x, kernel, stride, pad, ceil_mode, mode, count_include_pad=True):
    """Transcription of PyTorch's CPU pooling kernels (dilation 1)."""

    def out_size(size, k, s, p):
        o = (-(-(size + 2 * p - k) // s) if ceil_mode else (size + 2 * p - k) // s) + 1
        if ceil_mode and (o - 1) * s >= size + p:
            o -= 1
        return o

    n_, c_, h_, w_ = x.shape
    p_, q_ = out_size(h_, kernel[0], stride[0], pad[0]), out_size(w_, kernel[1], stride[1], pad[1])
    out = np.zeros((n_, c_, p_, q_), dtype=object)
    for n in range(n_):
        for c in range(c_):
            for p in range(p_):
                for q in range(q_):
                    hs, ws = p * stride[0] - pad[0], q * stride[1] - pad[1]
                    he, we = min(hs + kernel[0], h_ + pad[0]), min(ws + kernel[1], w_ + pad[1])
                    pool_size = (he - hs) * (we - ws)
                    hs, ws, he, we = max(hs, 0), max(ws, 0), min(he, h_), min(we, w_)
                    vals = [x[n, c, i, j].item() for i in range(hs, he) for j in range(ws, we)]
                    if mode == "max":
                        out[n, c, p, q] = max(vals)
                    else:
                        divisor = pool_size if count_include_pad else (he - hs) * (we - ws)
                        out[n, c, p, q] = sum(vals) / divisor
    return np.array(out.tolist())


# --------------------------------------------------------------------------------------------
# conv2d
# --------------------------------------------------------------------------------------------


@st.composite
def conv_cases(draw):
    groups = draw(st.integers(1, 3))
    cg, kg = draw(st.integers(1, 3)), draw(st.integers(1, 2))  # cg == 1: depthwise
    kernel = (draw(st.integers(1, 7)), draw(st.integers(1, 7)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    pads = tuple(draw(st.integers(0, 3)) for _ in range(4))
    hw = []
    for axis in range(2):
        extent = dilation[axis] * (kernel[axis] - 1) + 1
        hw.append(max(extent - pads[2 * axis] - pads[2 * axis + 1], 1) + draw(st.integers(0, 3)))
    return dict(
        n=draw(st.integers(1, 2)),
        groups=groups,
        c=groups * cg,
        k=groups * kg,
        hw=tuple(hw),
        kernel=kernel,
        stride=stride,
        dilation=dilation,
        pads=pads,
        kind=draw(st.sampled_from(["int8", "wide", "float"])),
        bias=draw(st.booleans()),
        seed=draw(st.integers(0, 2**32 - 1)),
    )


@HYPOTHESIS
@given(conv_cases())
def test_conv2d_matches_loops(case):
    rng = np.random.default_rng(case["seed"])
    kind = case["kind"]
    x = random_array(rng, (case["n"], case["c"], *case["hw"]), kind)
    w = random_array(rng, (case["k"], case["c"] // case["groups"], *case["kernel"]), kind)
    bias = random_array(rng, (case["k"],), kind) if case["bias"] else None
    args = (case["stride"], case["pads"], case["dilation"], case["groups"])
    got = golden.conv2d(
        x, w, bias, stride=args[0], padding=args[1], dilation=args[2], groups=args[3]
    )
    assert_matches(got, ref_conv2d(x, w, bias, *args), kind)


def test_conv2d_9x9_with_3x3_gives_7x7_box_sums():
    x = np.arange(81).reshape(1, 1, 9, 9)
    out = golden.conv2d(x, np.ones((1, 1, 3, 3), dtype=np.int64))
    assert out.shape == (1, 1, 7, 7)
    assert out[0, 0, 0, 0] == 0 + 1 + 2 + 9 + 10 + 11 + 18 + 19 + 20
    assert out[0, 0, 6, 6] == 60 + 61 + 62 + 69 + 70 + 71 + 78 + 79 + 80


def test_conv2d_5x5_3x3_stride2_valid_by_hand():
    x = np.arange(25).reshape(1, 1, 5, 5)
    w = np.array([[1, 0, 0], [0, 0, 0], [0, 0, 2]]).reshape(1, 1, 3, 3)
    # out[p, q] = x[2p, 2q] + 2 * x[2p + 2, 2q + 2]  (cross-correlation: no kernel flip)
    expected = np.array([[0 + 2 * 12, 2 + 2 * 14], [10 + 2 * 22, 12 + 2 * 24]])
    out = golden.conv2d(x, w, stride=2, padding="valid")
    np.testing.assert_array_equal(out[0, 0], expected, strict=True)


def test_conv2d_identity_kernel_with_padding_1_returns_input():
    x = np.arange(2 * 3 * 5 * 4).reshape(2, 3, 5, 4)
    w = np.zeros((3, 1, 3, 3), dtype=np.int8)
    w[:, 0, 1, 1] = 1
    np.testing.assert_array_equal(golden.conv2d(x, w, padding=1, groups=3), x, strict=True)


def test_conv2d_float_inputs_compute_in_float64():
    x = np.full((1, 1, 1, 2), 2**-30, dtype=np.float32)
    w = np.array([1.0, 1.0], dtype=np.float32).reshape(1, 1, 1, 2)
    out = golden.conv2d(x, w, np.array([1.0], dtype=np.float32))
    assert out.dtype == np.float64 and out[0, 0, 0, 0] == 1 + 2**-29  # lost in float32


def test_conv2d_int_int64_path_is_exact():
    big = 2**28 + 1  # dot products near 2**57.6: float64 would drop the low bits
    x = np.full((1, 1, 1, 3), big, dtype=np.int64)
    out = golden.conv2d(x, x)
    assert out.dtype == np.int64 and int(out[0, 0, 0, 0]) == 3 * big * big
    assert float(3 * big * big) != 3 * big * big
    with pytest.raises(OverflowError, match=r"integer dot products may overflow int64 \(bound"):
        golden.conv2d(x * 2**4, x * 2**4)


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "dilation", "expected_pads"),
    [
        (5, 3, 1, 1, (1, 1)),
        (5, 4, 1, 1, (1, 2)),  # odd total: extra on bottom/right
        (5, 3, 2, 1, (1, 1)),
        (6, 3, 2, 1, (0, 1)),
        (7, 3, 1, 2, (2, 2)),
        (4, 1, 2, 1, (0, 0)),
        (224, 7, 2, 1, (2, 3)),
    ],
)
def test_same_padding(size, kernel, stride, dilation, expected_pads):
    pads = golden.normalize_padding("same", kernel, stride, dilation, (size, size))
    assert pads == expected_pads * 2
    x = np.zeros((1, 1, size, size))
    out = golden.conv2d(
        x, np.zeros((1, 1, kernel, kernel)), stride=stride, dilation=dilation, padding="same"
    )
    assert out.shape[2:] == (-(-size // stride),) * 2


@pytest.mark.parametrize(
    ("padding", "expected"),
    [(2, (2, 2, 2, 2)), ((1, 2), (1, 1, 2, 2)), ((0, 1, 2, 3), (0, 1, 2, 3)), ("valid", (0,) * 4)],
)
def test_normalize_padding_forms(padding, expected):
    assert golden.normalize_padding(padding, 3, 1, 1, (8, 8)) == expected


@pytest.mark.parametrize(
    ("args", "expected"),
    [((9, 3, 1, 0, 1), 7), ((5, 3, 2, 0, 1), 2), ((224, 7, 2, 6, 1), 112), ((5, 3, 1, 0, 2), 1)],
)
def test_conv_output_size(args, expected):
    assert golden.conv_output_size(*args) == expected


def test_pair():
    assert golden.pair(3, "stride") == (3, 3)
    assert golden.pair((1, np.int64(2)), "stride") == (1, 2)
    assert golden.pair([4, 5], "kernel", minimum=1) == (4, 5)


# --------------------------------------------------------------------------------------------
# conv_transpose2d
# --------------------------------------------------------------------------------------------


@st.composite
def conv_transpose_cases(draw):
    groups = draw(st.integers(1, 2))
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    hw = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    output_padding, pads = [], []
    for axis in range(2):
        op = draw(st.integers(0, max(stride[axis], dilation[axis]) - 1))
        full = (hw[axis] - 1) * stride[axis] + dilation[axis] * (kernel[axis] - 1) + op + 1
        first = draw(st.integers(0, min(3, full - 1)))
        pads += [first, draw(st.integers(0, min(3, full - 1 - first)))]
        output_padding.append(op)
    return dict(
        n=draw(st.integers(1, 2)),
        groups=groups,
        c=groups * draw(st.integers(1, 2)),
        kg=draw(st.integers(1, 2)),
        hw=hw,
        kernel=kernel,
        stride=stride,
        dilation=dilation,
        pads=tuple(pads),
        output_padding=tuple(output_padding),
        kind=draw(st.sampled_from(["int8", "float"])),
        bias=draw(st.booleans()),
        seed=draw(st.integers(0, 2**32 - 1)),
    )


@HYPOTHESIS
@given(conv_transpose_cases())
def test_conv_transpose2d_matches_scatter_loops(case):
    rng = np.random.default_rng(case["seed"])
    kind = case["kind"]
    x = random_array(rng, (case["n"], case["c"], *case["hw"]), kind)
    w = random_array(rng, (case["c"], case["kg"], *case["kernel"]), kind)
    bias = random_array(rng, (case["kg"] * case["groups"],), kind) if case["bias"] else None
    got = golden.conv_transpose2d(
        x,
        w,
        bias,
        stride=case["stride"],
        padding=case["pads"],
        output_padding=case["output_padding"],
        dilation=case["dilation"],
        groups=case["groups"],
    )
    expected = ref_conv_transpose2d(
        x,
        w,
        bias,
        case["stride"],
        case["pads"],
        case["output_padding"],
        case["dilation"],
        case["groups"],
    )
    assert_matches(got, expected, kind)


def test_conv_transpose2d_stride2_2x2_tiles_by_hand():
    x = np.array([[1, 2], [3, 4]]).reshape(1, 1, 2, 2)
    w = np.array([[1, 10], [100, 1000]]).reshape(1, 1, 2, 2)
    expected = [[1, 10, 2, 20], [100, 1000, 200, 2000], [3, 30, 4, 40], [300, 3000, 400, 4000]]
    out = golden.conv_transpose2d(x, w, stride=2)
    np.testing.assert_array_equal(out[0, 0], np.array(expected), strict=True)


def test_conv_transpose2d_is_the_adjoint_of_conv2d():
    rng = rng_for("adjoint")
    x, w = rng.standard_normal((2, 4, 7, 6)), rng.standard_normal((6, 2, 3, 2))
    kw = dict(stride=2, padding=(1, 0), dilation=(1, 2), groups=2)
    y = golden.conv2d(x, w, **kw)
    g = rng.standard_normal(y.shape)
    xt = golden.conv_transpose2d(g, w, output_padding=(0, 1), **kw)
    assert xt.shape == x.shape
    np.testing.assert_allclose(np.vdot(y, g), np.vdot(x, xt), rtol=1e-12)


# --------------------------------------------------------------------------------------------
# pooling, linear, element-wise
# --------------------------------------------------------------------------------------------


@st.composite
def pool_cases(draw):
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    pad = (draw(st.integers(0, kernel[0] // 2)), draw(st.integers(0, kernel[1] // 2)))
    hw = tuple(
        max(k - 2 * p, 1) + draw(st.integers(0, 5)) for k, p in zip(kernel, pad, strict=True)
    )
    return dict(
        shape=(draw(st.integers(1, 2)), draw(st.integers(1, 2)), *hw),
        kernel=kernel,
        stride=(draw(st.integers(1, 3)), draw(st.integers(1, 3))),
        pad=pad,
        ceil_mode=draw(st.booleans()),
        count_include_pad=draw(st.booleans()),
        kind=draw(st.sampled_from(["int8", "float"])),
        seed=draw(st.integers(0, 2**32 - 1)),
    )


@HYPOTHESIS
@given(pool_cases())
def test_pools_match_loops(case):
    x = random_array(np.random.default_rng(case["seed"]), case["shape"], case["kind"])
    geometry = (case["kernel"], case["stride"], case["pad"], case["ceil_mode"])
    got = golden.max_pool2d(x, *geometry)
    assert_matches(got, ref_pool(x, *geometry, "max"), case["kind"])
    got = golden.avg_pool2d(x, *geometry, count_include_pad=case["count_include_pad"])
    expected = ref_pool(x, *geometry, "avg", case["count_include_pad"])
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_pool_ceil_mode_drops_window_starting_in_padding():
    # H=6, k=3, s=4, p=1: ceil((6 + 2 - 3) / 4) + 1 = 3 windows, but the third would start at
    # 8 - 1 = 7 >= H + p, inside the bottom padding, so PyTorch keeps 2.
    x = np.arange(36.0).reshape(1, 1, 6, 6)
    out = golden.max_pool2d(x, 3, 4, 1, ceil_mode=True)
    assert out.shape == (1, 1, 2, 2)
    np.testing.assert_array_equal(out[0, 0], [[7.0, 11.0], [31.0, 35.0]], strict=True)
    assert golden.max_pool2d(x, 3, 4, 1).shape == (1, 1, 2, 2)
    assert golden.max_pool2d(x, 2, 4, 1, ceil_mode=True).shape == (1, 1, 2, 2)  # 8 >= 7: drop
    # H=6, k=3, s=2, p=0: ceil keeps a third, partial window [4, 7) that starts inside x.
    assert golden.max_pool2d(x, 3, 2).shape == (1, 1, 2, 2)
    out = golden.max_pool2d(x, 3, 2, ceil_mode=True)
    np.testing.assert_array_equal(out[0, 0, 2], [32.0, 34.0, 35.0], strict=True)


def test_avg_pool_divisors_by_hand():
    x = np.ones((1, 1, 3, 3))
    # k=2, s=2, p=1: windows [-1, 1), [1, 3); corner window has 1 real pixel of 4.
    np.testing.assert_array_equal(golden.avg_pool2d(x, 2, 2, 1)[0, 0], [[0.25, 0.5], [0.5, 1.0]])
    np.testing.assert_array_equal(
        golden.avg_pool2d(x, 2, 2, 1, count_include_pad=False)[0, 0], np.ones((2, 2))
    )
    # ceil_mode, no padding: the last window [2, 4) hangs off the input and counts only 1 row.
    out = golden.avg_pool2d(np.arange(9.0).reshape(1, 1, 3, 3), 2, 2, 0, ceil_mode=True)
    np.testing.assert_array_equal(out[0, 0], [[2.0, 3.5], [6.5, 8.0]])


def test_max_pool_int_input_is_exact_int64():
    x = np.array([-128, -127, 5, 127], dtype=np.int8).reshape(1, 1, 2, 2)
    out = golden.max_pool2d(x, 2, 1, 1)
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out[0, 0], [[-128, -127, -127], [5, 127, 127], [5, 127, 127]])


def test_global_avg_pool2d():
    x = rng_for("gap").integers(-128, 128, (2, 3, 5, 4), dtype=np.int8)
    out = golden.global_avg_pool2d(x)
    assert out.shape == (2, 3, 1, 1) and out.dtype == np.float64
    expected = [[sum(x[n, c].ravel().tolist()) / 20 for c in range(3)] for n in range(2)]
    np.testing.assert_allclose(out[:, :, 0, 0], expected, rtol=1e-15)


@pytest.mark.parametrize("kind", ["int8", "wide", "float"])
def test_linear_matches_loops(kind):
    rng = rng_for("linear", kind)
    x, w, b = (random_array(rng, shape, kind) for shape in ((3, 7), (5, 7), (5,)))
    expected = [
        [sum(x[n, i].item() * w[o, i].item() for i in range(7)) + b[o].item() for o in range(5)]
        for n in range(3)
    ]
    assert_matches(golden.linear(x, w, b), np.array(expected), kind)
    assert golden.linear(x, w).shape == (3, 5)


def test_relu_relu6_add():
    x = np.array([-7, -1, 0, 3, 6, 9], dtype=np.int8)
    np.testing.assert_array_equal(golden.relu(x), np.array([0, 0, 0, 3, 6, 9]), strict=True)
    np.testing.assert_array_equal(golden.relu6(x), np.array([0, 0, 0, 3, 6, 6]), strict=True)
    np.testing.assert_array_equal(golden.relu6(x / 2), [0, 0, 0, 1.5, 3, 4.5], strict=True)
    np.testing.assert_array_equal(golden.add(x, x), 2 * x.astype(np.int64), strict=True)  # no wrap
    assert golden.add(x, x / 2).dtype == np.float64


# --------------------------------------------------------------------------------------------
# errors: every message pinned
# --------------------------------------------------------------------------------------------

X = np.zeros((1, 4, 5, 5), dtype=np.int8)
W = np.zeros((2, 4, 3, 3), dtype=np.int8)


@pytest.mark.parametrize(
    ("x", "w", "kwargs", "error", "match"),
    [
        (X[0], W, {}, ValueError, r"x must be 4-D \(N, C, H, W\), got shape \(4, 5, 5\)"),
        (X, W[0], {}, ValueError, r"w must be 4-D \(K, C/groups, R, S\), got shape \(4, 3, 3\)"),
        (
            X,
            W[:, :3],
            {},
            ValueError,
            r"w has 3 input channels per group \(w.shape=\(2, 3, 3, 3\)\) but x has C=4 with "
            r"groups=1, which needs 4",
        ),
        (X, W, {"groups": 3}, ValueError, "groups=3 must divide the input channels of x, C=4"),
        (
            X,
            np.zeros((3, 1, 3, 3)),
            {"groups": 4},
            ValueError,
            "groups=4 must divide the output channels of w, K=3",
        ),
        (X, W, {"groups": 0}, ValueError, "groups must be >= 1, got 0"),
        (X, W, {"groups": 1.0}, TypeError, "groups must be an int, got 1.0"),
        (
            X,
            np.zeros((2, 4, 7, 3)),
            {},
            ValueError,
            r"kernel extent 7 \(kernel=7, dilation=1\) is larger than the padded input 5 "
            r"\(size=5, padding_total=0\)",
        ),
        (
            X,
            W,
            {"dilation": 3, "padding": (0, 1, 0, 0)},
            ValueError,
            r"kernel extent 7 \(kernel=3, dilation=3\) is larger than the padded input 6 "
            r"\(size=5, padding_total=1\)",
        ),
        (X, W, {"stride": 0}, ValueError, "stride must be >= 1, got 0"),
        (X, W, {"stride": (1, 0)}, ValueError, r"stride must be >= 1, got \(1, 0\)"),
        (X, W, {"stride": 1.5}, TypeError, "stride must be an int or a pair of ints, got 1.5"),
        (X, W, {"dilation": 0}, ValueError, "dilation must be >= 1, got 0"),
        (X, W, {"padding": -1}, ValueError, "padding must be >= 0, got -1"),
        (
            X,
            W,
            {"padding": (0, 0, 0, -2)},
            ValueError,
            r"padding must be >= 0, got \(0, 0, 0, -2\)",
        ),
        (X, W, {"padding": "full"}, ValueError, "padding must be 'valid' or 'same' .* got 'full'"),
        (X, W, {"padding": (1, 2, 3)}, TypeError, r"padding must be an int, .* got \(1, 2, 3\)"),
        (
            X,
            W,
            {"padding": (1, 2, 3, 4.0)},
            TypeError,
            r"padding must be ints, got \(1, 2, 3, 4.0\)",
        ),
        (X, W, {"bias": np.zeros(3)}, ValueError, r"bias must have shape \(2,\), got shape \(3,\)"),
        (X.astype(bool), W, {}, TypeError, "x must have an integer or float dtype, got bool"),
        (X, W.astype(complex), {}, TypeError, "w must have an integer or float dtype, got complex"),
    ],
)
def test_conv2d_errors(x, w, kwargs, error, match):
    with pytest.raises(error, match=match):
        golden.conv2d(x, w, **kwargs)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((3, 5, 1, 0, 1), r"kernel extent 5 \(kernel=5, dilation=1\) is larger than the padded"),
        ((3, 3, 0, 0, 1), "stride must be >= 1, got 0"),
        ((3, 0, 1, 0, 1), "kernel must be >= 1, got 0"),
        ((3, 3, 1, -1, 1), "padding_total must be >= 0, got -1"),
        ((3, 3, 1, 0, 0), "dilation must be >= 1, got 0"),
    ],
)
def test_conv_output_size_errors(args, match):
    with pytest.raises(ValueError, match=match):
        golden.conv_output_size(*args)


@pytest.mark.parametrize(
    ("value", "error", "match"),
    [
        ("ab", TypeError, "kernel must be an int or a pair of ints, got 'ab'"),
        ((1, 2, 3), TypeError, r"kernel must be an int or a pair of ints, got \(1, 2, 3\)"),
        (True, TypeError, "kernel must be an int or a pair of ints, got True"),
        ((1, 2.0), TypeError, r"kernel must be an int or a pair of ints, got \(1, 2.0\)"),
        ((1, 0), ValueError, r"kernel must be >= 1, got \(1, 0\)"),
    ],
)
def test_pair_errors(value, error, match):
    with pytest.raises(error, match=match):
        golden.pair(value, "kernel", minimum=1)


WT = np.zeros((4, 1, 3, 3))


@pytest.mark.parametrize(
    ("x", "w", "kwargs", "error", "match"),
    [
        (
            X,
            WT[:3],
            {},
            ValueError,
            r"w has 3 input channels \(w.shape=\(3, 1, 3, 3\)\) but x has C=4",
        ),
        (X[0], WT, {}, ValueError, r"x must be 4-D"),
        (
            X,
            WT,
            {"groups": 3},
            ValueError,
            "groups=3 must be >= 1 and divide the input channels C=4",
        ),
        (
            X,
            WT,
            {"stride": 2, "output_padding": 2},
            ValueError,
            "output_padding must be smaller than max\\(stride, dilation\\) per axis, got "
            "output_padding=2 with stride=2, dilation=1",
        ),
        (X, WT, {"output_padding": -1}, ValueError, "output_padding must be >= 0, got -1"),
        (X, WT, {"padding": "same"}, TypeError, "padding of conv_transpose2d must be ints"),
        (X, WT, {"padding": 4}, ValueError, r"conv_transpose2d output size \(-1, -1\) is < 1"),
    ],
)
def test_conv_transpose2d_errors(x, w, kwargs, error, match):
    with pytest.raises(error, match=match):
        golden.conv_transpose2d(x, w, **kwargs)


@pytest.mark.parametrize("pool", [golden.max_pool2d, golden.avg_pool2d])
@pytest.mark.parametrize(
    ("x", "args", "error", "match"),
    [
        (X, (3, 1, 2), ValueError, "padding must be at most half the kernel 3, got 2"),
        (X, (6, 1, 0), ValueError, r"kernel extent 6 \(kernel=6, dilation=1\) is larger"),
        (X, (0,), ValueError, "kernel must be >= 1, got 0"),
        (X, (2, 0), ValueError, "stride must be >= 1, got 0"),
        (X, (2, 1, -1), ValueError, "padding must be >= 0, got -1"),
        (X[0], (2,), ValueError, r"x must be 4-D \(N, C, H, W\), got shape \(4, 5, 5\)"),
    ],
)
def test_pool_errors(pool, x, args, error, match):
    with pytest.raises(error, match=match):
        pool(x, *args)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (
            lambda: golden.linear(np.zeros((2, 3)), np.zeros((4, 5))),
            ValueError,
            r"w has 5 input features \(w.shape=\(4, 5\)\) but x has 3",
        ),
        (lambda: golden.linear(np.zeros(3), np.zeros((4, 3))), ValueError, r"x must be 2-D"),
        (
            lambda: golden.linear(np.zeros((2, 3)), np.zeros((4, 3)), np.zeros(3)),
            ValueError,
            r"bias must have shape \(4,\), got shape \(3,\)",
        ),
        (
            lambda: golden.add(np.zeros((1, 2)), np.zeros((2, 1))),
            ValueError,
            r"a and b must have the same shape, got \(1, 2\) and \(2, 1\)",
        ),
        (
            lambda: golden.global_avg_pool2d(np.zeros((2, 3))),
            ValueError,
            r"x must be 4-D \(N, C, H, W\), got shape \(2, 3\)",
        ),
        (
            lambda: golden.relu(np.zeros(2, dtype=np.uint64)),
            TypeError,
            "x must have an integer or float dtype, got uint64",
        ),
    ],
)
def test_other_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


@pytest.mark.parametrize("pad_value", [0.5, -2.25, float("inf")])
def test_a_fractional_pad_value_makes_an_integer_conv_float(pad_value):
    """The pad value is an operand: it is never truncated to the integers' dtype."""
    x = np.arange(2 * 3 * 3, dtype=np.int8).reshape(1, 2, 3, 3)
    w = np.ones((1, 2, 3, 3), dtype=np.int8)
    got = golden.conv2d(x, w, padding=1, pad_value=pad_value)
    want = golden.conv2d(x.astype(np.float64), w, padding=1, pad_value=pad_value)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, want, strict=True)
    corner = pad_value * 10 + x[0, :, :2, :2].sum()  # 5 of 9 taps, 2 channels: padding
    assert got[0, 0, 0, 0] == corner
