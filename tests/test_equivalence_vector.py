# amaranth: UnusedElaboratable=no
"""hdl.vector against sim.vector: an instruction's passes, fed word by word through the
vector unit (tests/test_hdl_vector.py's bench), end in the model's ``vector_result``."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from accel.isa import Compute, ComputeMode
from sim import vector as model_vector
from tests.hdl_support import small_config
from tests.test_hdl_vector import SHAPES, run_words, word


@settings(max_examples=10, deadline=None)
@given(st.data())
def test_vector_passes_equal_sim_vector(data):
    """An instruction's passes, word by word as the compute engine feeds them (operand a then
    b in VADD; overwrite on the first pass unless accumulate), end in
    ``sim.vector.vector_result``."""
    rows, cols = data.draw(st.sampled_from(SHAPES))
    config = small_config(rows, cols)
    lanes = min(rows, cols)
    mode = data.draw(st.sampled_from([ComputeMode.VMAX, ComputeMode.VSUM, ComputeMode.VADD]))
    mul = int(mode == ComputeMode.VADD and data.draw(st.booleans()))  # VMUL
    passes = 2 if mode == ComputeMode.VADD else data.draw(st.integers(1, 3))
    pixels = data.draw(st.integers(1, 3))
    seed = data.draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    instr = Compute(
        mode=mode,
        accumulate=0 if mul else int(rng.integers(2)),
        mul=mul,
        ct_count=passes if mode != ComputeMode.VADD else 1,
        out_w=pixels,
        zero_point_a=int(rng.integers(-128, 128)),
        zero_point_b=int(rng.integers(-128, 128)),
        multiplier_a=int(rng.integers(1 << 30, 1 << 31)),
        shift_a=int(rng.integers(0, 32)),
        multiplier_b=int(rng.integers(1 << 30, 1 << 31)),
        shift_b=int(rng.integers(0, 32)),
    )
    windows = rng.integers(-128, 128, (passes, pixels, rows))
    previous = rng.integers(-(2**20), 2**20, (pixels, cols))
    # One pass at a time: each word's row is the result of the previous pass.
    current = previous.copy()
    for j in range(passes):
        vadd_b = mode == ComputeMode.VADD and j == 1
        words = [
            word(
                windows[j, v],
                mode,
                overwrite=int(j == 0 and not instr.accumulate),
                zp=instr.zero_point_b if vadd_b else instr.zero_point_a,
                multiplier=instr.multiplier_b if vadd_b else instr.multiplier_a,
                shift=instr.shift_b if vadd_b else instr.shift_a,
                mul=mul,
            )
            for v in range(pixels)
        ]
        current = np.array(run_words(config, words, [list(r) for r in current], [0] * pixels))
    want = model_vector.vector_result(instr, windows[..., :lanes], previous[:, :lanes])
    np.testing.assert_array_equal(current[:, :lanes], want.astype(np.int32).astype(np.int64))
    assert not current[:, lanes:].any()
