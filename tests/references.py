"""Independent integer references shared by the tests: gemmlowp's fixed-point primitives
transcribed with Python ints, the int32 wrap, the POST engine's per-row arithmetic built from
them, and the seeding convention of parametrised tests.

Nothing here imports :mod:`accel.numerics`, :mod:`sim` or :mod:`hdl`: these are what those
are checked against.
"""

from __future__ import annotations

import zlib

import numpy as np

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def rng_for(*params):
    """A generator seeded from the test's parameters (stable across runs and processes)."""
    return np.random.default_rng(zlib.crc32(repr(params).encode()))


def wrap32(v: int) -> int:
    """``v`` wrapped to int32 (two's complement)."""
    return (v - INT32_MIN) % 2**32 + INT32_MIN


def ref_srdhm(a, b):
    """SaturatingRoundingDoublingHighMul(int32 a, int32 b)."""
    overflow = a == b and a == INT32_MIN
    ab_64 = a * b
    nudge = (1 << 30) if ab_64 >= 0 else (1 - (1 << 30))
    total = ab_64 + nudge
    ab_x2_high32 = abs(total) // (1 << 31) * (1 if total >= 0 else -1)  # C '/': toward zero
    return INT32_MAX if overflow else ab_x2_high32


def ref_rdbpot(x, exponent):
    """RoundingDivideByPOT(int32 x, int exponent)."""
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


def ref_requantize(acc, multiplier, shift, zero_point, act_min=-128, act_max=127):
    """clamp(RDBPOT(SRDHM(acc, multiplier), shift) + zero_point, act_min, act_max)."""
    return min(max(ref_rdbpot(ref_srdhm(acc, multiplier), shift) + zero_point, act_min), act_max)


def ref_post_row(acc, params, *, requant, out_zero_point, act_min, act_max) -> list[int]:
    """One accumulator row through the post-processor, lane by lane (any int32 multiplier;
    the hardware reads bits [4:0] of the shift). REQUANT: ``clamp(RDBPOT(SRDHM(wrap32(acc +
    bias), multiplier), shift) + out_zero_point)``; PASS: ``clamp(acc)``, the clamp being
    ``min(max(v, act_min), act_max)`` (numpy.clip's order)."""
    out = []
    for a, (bias, multiplier, shift) in zip(acc, params, strict=True):
        a, bias, multiplier, shift = int(a), int(bias), int(multiplier), int(shift)
        if not requant:
            out.append(min(max(a, act_min), act_max))
            continue
        high = ref_srdhm(wrap32(a + bias), multiplier)
        out.append(min(max(ref_rdbpot(high, shift & 31) + out_zero_point, act_min), act_max))
    return out
