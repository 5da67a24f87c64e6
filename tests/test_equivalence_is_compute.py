# amaranth: UnusedElaboratable=no
"""hdl.compute on an input-stationary ("is") machine: COMPUTE streams with ``is_ = 1`` ARRAY
instructions (and weight-stationary ARRAY and vector ones beside them) against the IS
contract written out here, the model (fast and trace mode) and the model's data path.

The contract (``accel.timing``, INPUT-STATIONARY) written out again, for an instruction of
``T`` pixels, ``P`` passes and ``KT`` k tiles on an ``R`` x ``R`` array, ``G = ceil(T / R)``
groups, tiles ``j = (j // P, j % P)`` of ``L = KT*R`` words::

    rd[0] = take
    rd[j] = max(rd[j-1] + R, wl[j-2] + R)
    wl[j] = max(rd[j] + R + 1, wl[j-1] + R, f[j-1])     (wl[-1], f[-1]: the previous one's)
    f[j]  = max(wl[j] + 1, f[j-1] + L if j > 0 else stream_free)
    done  = f[last] + L - 1 + R + R - 1 + ACC_LATENCY + 1

Checked per instruction: ``start``, ``done`` and ``complete`` (``done - 1``) against
``accel.timing.compute_timing`` and ``sim.trace``; for every IS instruction its first and
last feed against the recurrences above, and every streamed weight word (``w_base + k*L +
n`` read in ``f[j] + n - 1``, on the array in ``f[j] + n``); the final accumulators element
for element against ``sim``'s data path (k tile ``q`` in the rows from ``acc_base +
q*k_stride``).
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
from tests.test_hdl_compute import ACC_ROWS, WEIGHT_WORDS, make_config

NEG = -(1 << 40)


def is_config(rows):
    return make_config(rows, rows).replace(array={"dataflow": "is"})


def is_is(instr: Compute) -> bool:
    return timing.compute_unit(instr) == timing.IS_UNIT


def is_contract(instrs, config):
    """(start, [f[j]] or None, done) per instruction: ``accel.timing.compute_timing``, and
    for every IS instruction the recurrences above (checked equal)."""
    R = config.array.rows
    state = timing.ComputeState()
    out = []
    for instr in instrs:
        t = timing.compute_timing(instr, 0, state, config)
        if is_is(instr):
            stream_free = state.stream_free
            if state.unit != timing.IS_UNIT:
                stream_free = max(stream_free, state.done)
            rd, wl, f = [], [], []
            L = instr.k_tiles * R
            for j in range(timing.is_tiles(instr, R)):
                wl2 = wl[j - 2] if j >= 2 else NEG
                rd.append(t.take if j == 0 else max(rd[j - 1] + R, wl2 + R))
                wl1 = wl[j - 1] if j else state.last_weight_load
                f1 = f[j - 1] if j else state.last_feed
                wl.append(max(rd[j] + R + 1, wl1 + R, f1))
                f.append(max(wl[j] + 1, f[j - 1] + L if j else stream_free))
            done = f[-1] + L - 1 + R + R - 1 + timing.ACC_LATENCY + 1
            assert (t.first_feed, t.last_feed, t.done) == (f[0], f[-1], done)
            assert t.state.front_free == max(wl[-1] + R, f[-1])
            out.append((t.start, f, done))
        else:
            out.append((t.start, None, t.done))
        state = t.state
    return out


def check_is(config, instrs, rng):
    want = is_contract(instrs, config)
    inputs, weights, acc = buffers(config, rng)
    starts, dones = [s for s, _, _ in want], [d for _, _, d in want]
    run = run_timed(config, instrs, starts, dones, inputs, weights, acc)
    # Every streamed weight word: read in the cycle before it reaches the array.
    R = config.array.rows
    bits = weight_addr_bits(config)
    for instr, (_, f, _) in zip(instrs, want, strict=True):
        if f is None:
            continue
        L = instr.k_tiles * R
        for j, fj in enumerate(f):
            k = j % instr.passes
            for n in range(L):
                assert run.array_feeds.get(fj + n) == (n == 0), f"feed {fj + n}"
                addr = (instr.w_base + k * L + n) % 2**bits
                assert run.weight_reads.get(fj + n - 1) == addr, f"weight read {fj + n - 1}"
    want_acc = model_acc(config, instrs, inputs, weights, acc)
    np.testing.assert_array_equal(run.acc, want_acc, strict=True)
    return run, want


def as_is(instr: Compute, rows: int, k_extra: int = 0, gap: int = 0) -> Compute:
    """``instr`` input-stationary (an ARRAY one) with up to ``k_extra`` more k tiles (as many
    as its buffers hold), ``k_stride = pixels + gap``, its weight and accumulator bases moved
    so its k tiles' weight words and accumulator rows are in the buffers."""
    if instr.mode != ComputeMode.ARRAY:
        return instr
    stride = instr.pixels + gap
    k_extra = min(
        k_extra,
        WEIGHT_WORDS // (instr.passes * rows) - 1,
        (ACC_ROWS - instr.pixels) // stride,
    )
    words = instr.passes * (k_extra + 1) * rows
    span = k_extra * stride + instr.pixels
    return isa.with_fields(
        instr,
        is_=1,
        k_extra=k_extra,
        k_stride=stride if k_extra else 0,
        w_base=instr.w_base % (WEIGHT_WORDS - words + 1),
        acc_base=instr.acc_base % (ACC_ROWS - span + 1),
    )


PATTERNS = {
    # fewer pixels than columns (dummy columns), FC-like (T = 1, one pass)
    "short": lambda R: [
        Compute(ct_count=3, acc_base=0, w_base=1, is_=1),
        Compute(ct_count=2, out_w=R - 1, acc_base=2, w_base=0, in_base=9, is_=1),
        Compute(out_w=1, acc_base=5, w_base=2, in_base=3, is_=1),
    ],
    # several groups, the last one partial; one pass; accumulate
    "groups": lambda R: [
        Compute(out_h=2, out_w=R + 1, acc_base=0, in_base=4, is_=1),
        Compute(ct_count=2, out_w=2 * R, acc_base=3, w_base=5, ct_stride=3, is_=1),
        Compute(kernel_w=2, out_w=3, acc_base=3, accumulate=1, w_base=2, in_base=7, is_=1),
    ],
    "conv": lambda R: [
        Compute(**CONV, in_base=3, acc_base=1, w_base=0, pad_value=-3, is_=1),
        Compute(**CONV, in_base=5, acc_base=1, w_base=1, accumulate=1, pad_value=5, is_=1),
    ],
    # several k tiles per stationary tile: one group, several groups, accumulating, T = 1
    "k_tiles": lambda R: [
        Compute(ct_count=2, out_w=R - 1, acc_base=0, is_=1, k_extra=1, k_stride=R),
        Compute(out_h=2, out_w=R + 1, acc_base=0, w_base=1, is_=1, k_extra=2, k_stride=2 * R + 2),
        Compute(out_w=R + 1, acc_base=0, accumulate=1, is_=1, k_extra=1, k_stride=2 * R + 2),
        Compute(ct_count=3, acc_base=1, w_base=2, is_=1, k_extra=3, k_stride=7),
    ],
    # units: IS -> vector -> IS -> weight-stationary -> IS, each switch waiting for done
    "units": lambda R: [
        Compute(ct_count=2, out_h=2, out_w=3, acc_base=0, is_=1),
        POOL,
        Compute(ct_count=2, out_w=R + 1, acc_base=0, accumulate=1, w_base=R, is_=1),
        Compute(ct_count=2, out_w=3 * R, acc_base=10, w_base=3),
        Compute(
            kernel_w=3, out_w=2, acc_base=10, accumulate=1, w_base=1, is_=1, k_extra=1, k_stride=2
        ),
    ],
}
SIZES = [2, 3, 4]


@pytest.mark.parametrize("pattern", sorted(PATTERNS))
@pytest.mark.parametrize("rows", SIZES)
def test_is_streams_match_the_contract_and_the_model(rows, pattern):
    config = is_config(rows)
    instrs = [fit(i) for i in PATTERNS[pattern](rows)]
    rng = np.random.default_rng([rows, sorted(PATTERNS).index(pattern)])
    _, want = check_is(config, instrs, rng)
    if pattern == "units":  # every switch waits for the previous done
        assert want[2][1][0] >= want[1][2] and want[4][1][0] >= want[3][2]


@st.composite
def is_streams(draw):
    config = is_config(draw(st.sampled_from(SIZES)))
    rows = config.array.rows
    instrs = draw(st.lists(computes(config), min_size=1, max_size=4))
    return config, [
        as_is(i, rows, draw(st.integers(0, 3)), draw(st.integers(0, 2)))
        if draw(st.booleans())
        else i
        for i in instrs
    ]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(is_streams(), st.integers(0, 2**32 - 1))
def test_is_random_streams_match_the_contract_and_the_model(stream, seed):
    config, instrs = stream
    for a, b in itertools.pairwise(instrs):
        assume(not (timing.is_vector(a.mode) and timing.is_vector(b.mode) and b.accumulate))
    check_is(config, instrs, np.random.default_rng(seed))
