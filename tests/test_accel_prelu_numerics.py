"""The int8 PRelu of accel.numerics (``docs/numerics.md``, "PRelu"): the negative-side
multiplier, its packing into a parameter lane's shift word, the two-slope requantisation
(hand-computed cases) and ``qprelu`` against the float PRelu (within 1 LSB)."""

from __future__ import annotations

import numpy as np
import pytest

from accel import golden, numerics, quantized


@pytest.mark.parametrize(
    ("real", "multiplier", "shift"),
    [
        (0.25, 2**30, 1),
        (-0.25, -(2**30), 1),
        (0.5, 2**30, 0),
        (-0.75, -(3 * 2**29), 0),
        (0.0, 0, 0),
        (1e-20, 0, 0),  # below 2**-32: the negative side outputs the zero point
        (0.9999999, (2**21 - 1) * 2**10, 0),  # saturates rather than shift left
        (-(2.0**-32), -(2**30), 31),
    ],
)
def test_prelu_multiplier_hand_cases(real, multiplier, shift):
    m, s = numerics.prelu_multiplier(real)
    assert (int(m), int(s)) == (multiplier, shift)


def test_prelu_multiplier_is_22_bits_with_relative_error_below_2_to_minus_21():
    rng = np.random.default_rng(0)
    real = rng.uniform(-1, 1, 10_000) * 2.0 ** -rng.integers(0, 30, 10_000)
    m, s = numerics.prelu_multiplier(real)
    assert np.all(m % 1024 == 0) and np.all(np.abs(m) < 2**31) and np.all((s >= 0) & (s <= 31))
    nonzero = m != 0
    assert np.all(np.abs(m[nonzero]) >= 2**30)
    got = m * 2.0 ** (-31 - s)
    assert np.all(np.abs(got - real)[nonzero] <= np.abs(real[nonzero]) * 2.0**-21)
    assert np.all(np.sign(m) == np.sign(real) * nonzero)


@pytest.mark.parametrize("bad", [1.0, -1.0, 1.5, np.nan, np.inf])
def test_prelu_multiplier_rejects_factors_of_one_and_more(bad):
    with pytest.raises(ValueError, match="negative-side scale"):
        numerics.prelu_multiplier(bad)


def test_packed_shift_words_unpack_as_the_hardware_reads_them():
    rng = np.random.default_rng(1)
    shift, shift_neg = rng.integers(0, 32, 1000), rng.integers(0, 32, 1000)
    m_neg = rng.integers(-(2**21), 2**21, 1000) * 1024
    word = numerics.pack_prelu_shift(shift, m_neg, shift_neg)
    assert np.all((word >= numerics.INT32_MIN) & (word <= numerics.INT32_MAX))
    word32 = word.astype(np.int32).astype(np.int64)  # as the parameter buffer holds it
    assert np.array_equal(word32 & 31, shift)  # what a POST without prelu reads
    assert np.array_equal((word32 >> 5) & 31, shift_neg)
    assert np.array_equal((word32 >> 10) << 10, m_neg)
    with pytest.raises(ValueError, match="multiple of 2"):
        numerics.pack_prelu_shift(3, 1000, 1)
    with pytest.raises(ValueError, match="shift_neg must be in"):
        numerics.pack_prelu_shift(3, 1024, 32)


def test_two_slope_requantisation_hand_cases():
    acc = np.array([46, -46, 0, -1, numerics.INT32_MIN], dtype=np.int64)
    m, s = np.int64(2**30), np.int64(1)  # * 1/4
    m_neg, s_neg = np.int64(-(2**30)), np.int64(0)  # * -1/2
    got = numerics.requantize_two_slope(acc, m, s, m_neg, s_neg, 3, -128, 127)
    # 46/4 = 11.5 -> 12 (ties away); -46 * -1/2 = 23; 0 -> 0 (positive side); -1 * -1/2 =
    # 0.5 -> 1 (SRDHM ties up); INT32_MIN * -1/2 = 2**30 -> clamped
    assert got.tolist() == [15, 26, 3, 4, 127]
    assert got.dtype == np.int8


def test_qprelu_is_within_one_lsb_of_the_float_prelu():
    rng = np.random.default_rng(2)
    slope = np.array([0.25, -0.5, 0.0, 0.9, 1.0, 0.01, 2.5, -1.2])
    t_in = quantized.TensorQuant(0.05, 7)
    t_out = quantized.TensorQuant(0.05 * 2.5 * (1 + 2**-20), -20)
    pq = quantized.PReluQuant.for_slopes(slope, t_in, t_out)
    x = rng.integers(-128, 128, (3, 8, 5, 5)).astype(np.int8)
    got = numerics.qprelu(
        x, t_in.zero_point, pq.multiplier, pq.shift, pq.multiplier_neg, pq.shift_neg, -20
    )
    want = t_out.quantize(golden.prelu(t_in.dequantize(x), slope))
    diff = np.abs(got.astype(np.int64) - want)
    assert diff.max() <= 1 and (diff == 0).mean() > 0.99
