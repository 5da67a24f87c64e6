"""The vector unit (VMAX, VSUM and VADD modes of the compute engine).

``min(rows, cols)`` lanes, one input word per cycle, reading and writing the accumulator row
of the pixel (read in the feed cycle, written ``VECTOR_LATENCY`` cycles later):

- VMAX: ``acc = max(acc, x)`` (the first pass overwrites unless ``accumulate``); padding
  reads as ``pad_value`` (-128, so it never wins).
- VSUM: ``acc += x - zero_point_a``; padding reads as the zero point, so it adds 0.
- VADD: two passes, operand a at ``in_base`` then operand b at ``in_base_b``;
  ``acc += MultiplyByQuantizedMultiplier((x - zp) << 20, multiplier, shift)`` with the
  operand's zero point, multiplier and shift (gemmlowp/TFLite ADD). With ``mul`` (VMUL):
  ``acc = (x_a - zero_point_a) * (x_b - zero_point_b)`` (exact, below ``2**16``); the first
  pass writes ``x_a - za``, the second multiplies it by ``x_b - zb``, so ``accumulate`` must
  be 0. ``broadcast_b`` only changes which words the window generator reads.

Lanes past ``min(rows, cols)`` are written as zero.
"""

from __future__ import annotations

import numpy as np

from accel import numerics
from accel.isa import Compute, ComputeMode


def vector_result(instr: Compute, windows: np.ndarray, previous: np.ndarray) -> np.ndarray:
    """(pixels, lanes) int64: the accumulator rows after the instruction."""
    x = windows.astype(np.int64)  # (passes, pixels, lanes)
    if instr.mode == ComputeMode.VMAX:
        result = x.max(axis=0)
        return np.maximum(result, previous) if instr.accumulate else result
    if instr.mode == ComputeMode.VSUM:
        result = (x - instr.zero_point_a).sum(axis=0)
    elif instr.mode == ComputeMode.VADD and instr.mul:
        if instr.accumulate:
            raise ValueError(f"layer {instr.layer}: VMUL (VADD with mul) cannot accumulate")
        return (x[0] - instr.zero_point_a) * (x[1] - instr.zero_point_b)
    elif instr.mode == ComputeMode.VADD:
        scaled = [
            numerics.rdbpot_unchecked(
                numerics.srdhm_unchecked((x[i] - zp) << numerics.ADD_LEFT_SHIFT, np.int64(m)),
                np.int64(sh),
            )
            for i, (zp, m, sh) in enumerate(
                [
                    (instr.zero_point_a, instr.multiplier_a, instr.shift_a),
                    (instr.zero_point_b, instr.multiplier_b, instr.shift_b),
                ]
            )
        ]
        result = scaled[0] + scaled[1]
    else:
        raise ValueError(f"not a vector mode: {instr.mode}")
    return result + previous if instr.accumulate else result
