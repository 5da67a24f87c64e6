# amaranth: UnusedElaboratable=no
"""hdl.compute on an output-stationary ("os") machine: COMPUTE streams with ``os = 1``
ARRAY instructions (and weight-stationary, depthwise-free ARRAY and vector ones beside them)
against the OS contract written out here and the model's data path.

Against ``accel.timing.compute_timing`` and ``sim.trace`` (the model, fast and trace mode)
and the contract (issue 16, the OS section of ``accel.timing``) written out::

    start = max(earliest, register_free);  take = max(start + COMPUTE_DECODE, front_free)
    F     = max(take + 1, stream_free)       (stream_free >= done of another unit before)
    done  = F + G*S - 1 + 2*rows + cols + ACC_LATENCY + 1   (last exit + ACC_LATENCY + 1)
    next: stream_free = F + G*S, front_free = F + G*S - 1, last_feed = F + G*S - 1

(the issue wrote ``+ 2`` beside the equality with the last exit; the exit cycles, and
``accel.timing``, say ``+ 1``) with ``G = ceil(T / rows)`` groups of ``S = passes * rows``
steps; step ``s`` of group ``g`` reads weight word ``w_base + s`` in ``F + g*S + s - 1`` and
reaches the array in ``F + g*S + s``. Weight-stationary and vector instructions follow
``accel.timing.compute_timing``, an OS instruction before them counting as a unit of its
own. Checked per instruction: ``start``, ``done``, ``complete`` (= ``done - 1``, the
accumulator's write of the instruction's last row), the OS weight reads and array steps
cycle by cycle, and the final accumulators element for element against ``sim``'s data path
(an OS instruction computes what the same instruction with ``os = 0`` computes).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from accel import isa, timing
from accel.isa import Compute, ComputeMode
from hdl.compute import weight_addr_bits
from tests.test_equivalence_compute import (
    CONV,
    POOL,
    buffers,
    computes,
    fit,
    model_acc,
    run_timed,
)
from tests.test_hdl_compute import make_config


def os_config(rows, cols):
    return make_config(rows, cols).replace(array={"dataflow": "os"})


def is_os(instr: Compute) -> bool:
    return instr.mode == ComputeMode.ARRAY and bool(instr.os)


def os_contract(instrs, config):
    """(start, F or None, done) per instruction: ``accel.timing.compute_timing``, and for
    every OS instruction the formulas above written out again (checked equal)."""
    rows, cols = config.array.rows, config.array.cols
    state = timing.ComputeState()
    out = []
    for instr in instrs:
        t = timing.compute_timing(instr, 0, state, config)
        if is_os(instr):
            start = max(0, state.register_free)
            take = max(start + timing.COMPUTE_DECODE, state.front_free)
            stream_free = state.stream_free
            if state.unit != timing.compute_unit(instr):
                stream_free = max(stream_free, state.done)
            F = max(take + 1, stream_free)
            end = F + -(-instr.pixels // rows) * instr.passes * rows
            done = end - 1 + 2 * rows + cols + timing.ACC_LATENCY + 1
            assert (t.start, t.take, t.first_feed, t.last_feed, t.done) == (
                start, take, F, end - 1, done,
            )  # fmt: skip
            assert (t.state.front_free, t.state.stream_free) == (end - 1, end)
            out.append((start, F, done))
        else:
            out.append((t.start, None, t.done))
        state = t.state
    return out


def check_os(config, instrs, rng):
    want = os_contract(instrs, config)
    inputs, weights, acc = buffers(config, rng)
    starts, dones = [s for s, _, _ in want], [d for _, _, d in want]
    run = run_timed(config, instrs, starts, dones, inputs, weights, acc, os_steps=True)
    depth = acc.shape[0]
    rows = config.array.rows
    for instr, complete in zip(instrs, run.completes, strict=True):
        # an OS instruction writes its last group's row 0 last (its drain: row 0 last)
        last = (-(-instr.pixels // rows) - 1) * rows if is_os(instr) else instr.pixels - 1
        assert run.last_bank_writes.get(complete) == (instr.acc_base + last) % depth
    # Every OS step: its weight word read in the cycle before it reaches the array.
    bits = weight_addr_bits(config)
    steps = {}
    for instr, (_, F, _) in zip(instrs, want, strict=True):
        if F is None:
            continue
        S = instr.passes * rows
        for g in range(-(-instr.pixels // rows)):
            for s in range(S):
                steps[F + g * S + s] = (instr.w_base + s) % 2**bits
    assert sorted(run.os_steps) == sorted(steps)
    for cycle, addr in steps.items():
        assert run.weight_reads.get(cycle - 1) == addr, f"weight read for cycle {cycle}"
        assert run.os_steps[cycle] == [int(v) for v in weights[addr]]
    want_acc = model_acc(config, instrs, inputs, weights, acc)
    np.testing.assert_array_equal(run.acc, want_acc, strict=True)
    return run, want


def as_os(instr: Compute) -> Compute:
    return isa.with_fields(instr, os=1) if instr.mode == ComputeMode.ARRAY else instr


PATTERNS = {
    # fewer pixels than rows (one group with dummy rows), FC-like (T = 1, one pass)
    "short": lambda rows: [
        Compute(ct_count=3, acc_base=0, w_base=1, os=1),
        Compute(ct_count=2, out_w=rows - 1, acc_base=2, w_base=0, in_base=9, os=1),
        Compute(out_w=1, acc_base=5, w_base=2, in_base=3, os=1),
    ],
    # several groups, the last one partial; one pass (S = rows); accumulate
    "groups": lambda rows: [
        Compute(out_h=2, out_w=rows + 1, acc_base=0, in_base=4, os=1),
        Compute(ct_count=2, out_w=2 * rows, acc_base=3, w_base=5, ct_stride=3, os=1),
        Compute(kernel_w=2, out_w=3, acc_base=3, accumulate=1, w_base=2, in_base=7, os=1),
    ],
    "conv": lambda rows: [
        Compute(**CONV, in_base=3, acc_base=1, w_base=0, pad_value=-3, os=1),
        Compute(**CONV, in_base=5, acc_base=1, w_base=1, accumulate=1, pad_value=5, os=1),
    ],
    # units: OS -> vector -> OS -> weight-stationary -> OS, each switch waiting for done
    "units": lambda rows: [
        Compute(ct_count=2, out_h=2, out_w=3, acc_base=0, os=1),
        POOL,
        Compute(ct_count=2, out_w=rows + 1, acc_base=0, accumulate=1, w_base=rows, os=1),
        Compute(ct_count=2, out_w=3, acc_base=10, w_base=3),
        Compute(kernel_w=3, out_w=2, acc_base=10, accumulate=1, w_base=1, os=1),
    ],
}
SHAPES = [(2, 2), (3, 4), (4, 4), (4, 3)]


@pytest.mark.parametrize("pattern", sorted(PATTERNS))
@pytest.mark.parametrize(("rows", "cols"), SHAPES)
def test_os_streams_match_the_contract_and_the_model(rows, cols, pattern):
    config = os_config(rows, cols)
    instrs = [fit(i) for i in PATTERNS[pattern](rows)]
    rng = np.random.default_rng([rows, cols, sorted(PATTERNS).index(pattern)])
    _, want = check_os(config, instrs, rng)
    if pattern in ("groups", "conv"):  # back to back: F' = F + G*S
        for (a, b), instr in zip(itertools.pairwise(want), instrs, strict=False):
            G = -(-instr.pixels // rows)
            assert b[1] == a[1] + G * instr.passes * rows
    if pattern == "units":  # every switch waits for the previous done
        assert want[2][1] >= want[1][2] and want[4][1] >= want[3][2]


@st.composite
def os_streams(draw):
    rows, cols = draw(st.sampled_from(SHAPES))
    config = os_config(rows, cols)
    instrs = draw(st.lists(computes(config), min_size=1, max_size=4))
    return config, [as_os(i) for i in instrs]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(os_streams(), st.integers(0, 2**32 - 1))
def test_os_random_streams_match_the_contract_and_the_model(stream, seed):
    config, instrs = stream
    # The contract forbids a vector instruction reading a row another vector one writes
    # later (accel.timing's hazard); OS and ARRAY words always write before a later read.
    for a, b in itertools.pairwise(instrs):
        assume(not (timing.is_vector(a.mode) and timing.is_vector(b.mode) and b.accumulate))
    check_os(config, instrs, np.random.default_rng(seed))
