"""Elementwise Mul: the float golden op and its int8 form (TFLite ``MUL``), ``docs/numerics.md``."""

import numpy as np
import pytest

from accel import golden, numerics
from tests.references import ref_requantize, rng_for


def _int8(rng, shape):
    return rng.integers(-128, 128, size=shape, dtype=np.int8)


@pytest.mark.parametrize("b_shape", [(2, 5, 3, 4), (2, 5, 1, 1)], ids=["same", "per-channel"])
def test_qmul_equals_the_scalar_reference_element_by_element(b_shape):
    rng = rng_for("qmul", b_shape)
    a, b = _int8(rng, (2, 5, 3, 4)), _int8(rng, b_shape)
    za, zb, zy = -7, 100, 3
    multiplier, shift = numerics.quantize_multiplier(0.0123)
    out = numerics.qmul(
        a, b, za, zb, multiplier=multiplier, shift=shift, out_zero_point=zy, act_min=-100
    )
    bb = np.broadcast_to(b, a.shape)
    expected = [
        ref_requantize((int(x) - za) * (int(y) - zb), multiplier, shift, zy, -100, 127)
        for x, y in zip(a.ravel(), bb.ravel(), strict=True)
    ]
    assert out.dtype == np.int8 and out.shape == a.shape
    assert out.ravel().tolist() == expected


def test_qmul_extremes_are_exact():
    # (-128 - 127) * (-128 - 127) = 65025: the largest product, exact in int32.
    a = np.full((1, 1, 1, 2), -128, dtype=np.int8)
    b = np.array([[[[-128, 127]]]], dtype=np.int8)
    m, sh = numerics.quantize_multiplier(2.0**-9)
    out = numerics.qmul(a, b, 127, 127, multiplier=m, shift=sh, out_zero_point=0)
    assert out.ravel().tolist() == [127, 0]  # 65025 / 512 = 127.0 (clamped); 0


def test_qmul_is_within_one_lsb_of_the_float_product():
    rng = rng_for("qmul-float")
    sa, za, sb, zb = 0.05, -10, 1 / 256, -128  # a sigmoid gate's output quantisation
    a, b = _int8(rng, (1, 8, 5, 5)), _int8(rng, (1, 8, 1, 1))
    real = golden.mul(sa * (a.astype(np.float64) - za), sb * (b.astype(np.float64) - zb))
    sy, zy = 0.04, 0
    m, sh = numerics.quantize_multiplier(sa * sb / sy)
    out = numerics.qmul(a, b, za, zb, multiplier=m, shift=sh, out_zero_point=zy)
    ideal = np.clip(np.round(real / sy) + zy, -128, 127)
    assert np.abs(out.astype(np.int64) - ideal).max() <= 1
    assert (out != zy).any()


@pytest.mark.parametrize(
    "a_shape, b_shape",
    [((1, 4, 3, 3), (1, 4, 3, 1)), ((1, 4, 3, 3), (1, 1, 1, 1)), ((1, 4, 1, 1), (1, 4, 3, 3))],
)
def test_mul_rejects_other_broadcasts(a_shape, b_shape):
    with pytest.raises(ValueError, match="must have one shape"):
        golden.mul(np.zeros(a_shape), np.zeros(b_shape))
    with pytest.raises(ValueError, match="must have one shape"):
        numerics.qmul(
            np.zeros(a_shape, np.int8),
            np.zeros(b_shape, np.int8),
            0,
            0,
            multiplier=2**30,
            shift=0,
            out_zero_point=0,
        )


def test_golden_mul_broadcasts_per_channel():
    a = np.arange(24, dtype=np.float64).reshape(1, 2, 3, 4)
    s = np.array([2.0, -1.0]).reshape(1, 2, 1, 1)
    out = golden.mul(a, s)
    assert np.array_equal(out[0, 0], 2 * a[0, 0]) and np.array_equal(out[0, 1], -a[0, 1])
