"""The post-processor: accumulators -> int8 outputs, one accumulator row per cycle.

REQUANT: ``out = clamp(requantize(acc + bias, multiplier, shift) + out_zero_point, act_min,
act_max)`` per lane with the lane's (bias, multiplier, shift) from parameter word
``param_base`` (gemmlowp rounding, ``docs/numerics.md``). PASS: ``out = clamp(acc, act_min,
act_max)``. The hardware uses bits [4:0] of the shift. With ``prelu`` (REQUANT), a lane
whose ``acc + bias`` is negative uses the multiplier ``(shift >> 10) << 10`` and the shift
``(shift >> 5) & 31`` instead (:func:`accel.numerics.pack_prelu_shift`). With ``lut``, each
clamped value ``v`` then becomes entry ``v + 128`` of table slot ``table``
(:class:`accel.isa.Post`). Pipeline latency ``accel.timing.POST_LATENCY``, with or without
the table or PRelu.
"""

from __future__ import annotations

import numpy as np

from accel import numerics
from accel.isa import TABLE_WORDS, Post, PostMode
from sim.buffers import Buffers


def postprocess(post: Post, acc: np.ndarray, params: np.ndarray) -> np.ndarray:
    """(count, cols) int8 from (count, cols) int32 accumulators and (cols, 3) parameters."""
    if post.mode == PostMode.PASS:
        return np.minimum(np.maximum(acc, post.act_min), post.act_max).astype(np.int8)
    params = params.astype(np.int32, copy=False)  # the lane words, sign-extended below
    # The hardware adder wraps, and so does int32 + int32 in numpy.
    total = (acc.astype(np.int32, copy=False) + params[:, 0]).astype(np.int64)
    multiplier, shift = params[:, 1].astype(np.int64), params[:, 2].astype(np.int64)
    if post.prelu:
        return numerics.requantize_two_slope(
            total,
            multiplier,
            shift & 31,
            (shift >> 10) << 10,
            (shift >> 5) & 31,
            post.out_zero_point,
            post.act_min,
            post.act_max,
        )
    return numerics.requantize_unchecked(
        total,
        multiplier,
        shift & 31,
        post.out_zero_point,
        post.act_min,
        post.act_max,
    )


def execute(post: Post, buffers: Buffers) -> None:
    """Apply one POST instruction: accumulator rows to output words."""
    buffers.check("acc", post.acc_base, post.count)
    buffers.check("out", post.out_base, post.count)
    acc = buffers.acc[post.acc_base : post.acc_base + post.count]
    params = buffers.param[post.param_base]
    out = postprocess(post, acc, params)
    if post.lut:
        base = post.table * TABLE_WORDS
        buffers.check("t", base, TABLE_WORDS)
        out = numerics.table_lookup(out, buffers.table[base : base + TABLE_WORDS].reshape(-1))
    buffers.out[post.out_base : post.out_base + post.count] = out
