# amaranth: UnusedElaboratable=no
"""hdl.array against sim.array: summed over the passes of each instruction, the array's
outputs (driven by the contract's schedule, tests/test_hdl_array.py's bench) are the model's
``array_sums`` of the same windows and weight tiles."""

from __future__ import annotations

import numpy as np
import pytest

from sim import array as model_array
from tests.test_hdl_array import PATTERNS, SHAPES, instruction_sums, run_pattern


@pytest.mark.parametrize("pattern", sorted(PATTERNS))
@pytest.mark.parametrize(("rows", "cols"), SHAPES)
def test_array_sums_equal_the_model(rows, cols, pattern):
    config, instrs, schedule, seen = run_pattern(rows, cols, pattern)
    got = instruction_sums(config, instrs, schedule, seen)
    for sums, instr_passes in zip(got, schedule, strict=True):
        windows = np.stack([p.vectors for p in instr_passes])  # (passes, T, rows)
        tiles = np.concatenate([p.weights for p in instr_passes])
        np.testing.assert_array_equal(sums, model_array.array_sums(windows, tiles), strict=True)
