# amaranth: UnusedElaboratable=no
"""hdl.pe, hdl.array: the systolic array against numpy and accel.timing (against sim.array:
tests/test_equivalence_array.py).

Every test drives the array with the per-pass schedule of the ARRAY-mode contract
(``wl[j]``, ``f[j]`` of accel.timing, checked against ``compute_timing``), and checks in every
cycle that each column's valid bit is high exactly in the cycles ``t + rows + c`` and that the
value is the int32 dot product. Idle cycles carry random garbage, which must be ignored.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

import numpy as np
import pytest

from accel import timing
from accel.config import AccelConfig, preset
from accel.isa import Compute
from hdl.array import WEIGHT_READ_LATENCY, SystolicArray
from hdl.pe import ProcessingElement
from tests.hdl_support import simulate, small_config
from tests.references import INT32_MAX, INT32_MIN

# --- the schedule of the contract ---------------------------------------------------------


@dataclass
class Pass:
    wl: int  # cycle its first weight row is read from the weight buffer (on `w` one later)
    f: int  # cycle its first vector is fed
    weights: np.ndarray  # (rows, cols) int8
    vectors: np.ndarray  # (T, rows) int8


def contract_schedule(
    instrs: list[tuple[int, int]], config: AccelConfig, rng: np.random.Generator
) -> list[list[Pass]]:
    """Per-pass weight-load and feed cycles of back-to-back ARRAY instructions (passes, T),
    by the recurrences of the accel.timing docstring, checked against compute_timing."""
    rows, cols = config.array.rows, config.array.cols
    state = timing.ComputeState()
    out: list[list[Pass]] = []
    prev_wl = prev_f = None
    stream_free = 0
    for passes, T in instrs:
        instr = Compute(ct_count=passes, out_h=1, out_w=T)
        ct = timing.compute_timing(instr, 0, state, config)
        start = ct.take  # the front end takes it (accel.timing.COMPUTE_DECODE)
        passes_of: list[Pass] = []
        for j in range(passes):
            if j == 0:
                wl = start if prev_wl is None else max(start, prev_wl + rows, prev_f)
                f = max(wl + 1, stream_free)
            else:
                wl = max(prev_wl + rows, prev_f)
                f = max(wl + 1, prev_f + T)
            passes_of.append(
                Pass(
                    wl,
                    f,
                    rng.integers(-128, 128, (rows, cols), dtype=np.int8),
                    rng.integers(-128, 128, (T, rows), dtype=np.int8),
                )
            )
            prev_wl, prev_f = wl, f
        stream_free = prev_f + T
        assert passes_of[0].f == ct.first_feed and passes_of[-1].f == ct.last_feed
        last_output = passes_of[-1].f + T - 1 + rows + cols - 1
        assert last_output + timing.ACC_LATENCY + 1 == ct.done
        state = ct.state
        out.append(passes_of)
    return out


def run_array(config: AccelConfig, passes: list[Pass], rng: np.random.Generator):
    """Drive the passes; returns {column: [(cycle, value), ...]} of every valid output."""
    rows, cols = config.array.rows, config.array.cols
    dut = SystolicArray(config)
    loads: dict[int, tuple[int, np.ndarray]] = {}
    feeds: dict[int, tuple[np.ndarray, bool]] = {}
    for p in passes:
        for i in range(rows):
            on_w = p.wl + i + WEIGHT_READ_LATENCY
            assert on_w not in loads, "two weight rows in one cycle"
            loads[on_w] = (i, p.weights[i])
        for v, x in enumerate(p.vectors):
            assert p.f + v not in feeds, "two vectors in one cycle"
            feeds[p.f + v] = (x, v == 0)
    end = max(feeds) + rows + cols + 2
    seen: dict[int, list[tuple[int, int]]] = {c: [] for c in range(cols)}

    async def bench(ctx):
        for cycle in range(end):
            row, weights = loads.get(
                cycle, (int(rng.integers(rows)), rng.integers(-128, 128, cols))
            )
            ctx.set(dut.w.valid, cycle in loads)
            ctx.set(dut.w.payload, {"row": row, "data": [int(w) for w in weights]})
            x, switch = feeds.get(cycle, (rng.integers(-128, 128, rows), bool(rng.integers(2))))
            ctx.set(dut.i.valid, cycle in feeds)
            ctx.set(dut.i.payload, {"x": [int(v) for v in x], "switch": switch})
            for c in range(cols):
                if ctx.get(dut.o[c].valid):
                    seen[c].append((cycle, ctx.get(dut.o[c].payload)))
            await ctx.tick()

    simulate(dut, bench)
    return seen


def expected_outputs(config: AccelConfig, passes: list[Pass]):
    rows, cols = config.array.rows, config.array.cols
    want: dict[int, list[tuple[int, int]]] = {c: [] for c in range(cols)}
    for p in passes:
        sums = p.vectors.astype(np.int64) @ p.weights.astype(np.int64)
        for v in range(len(p.vectors)):
            for c in range(cols):
                want[c].append((p.f + v + rows + c, int(sums[v, c])))
    return {c: sorted(w) for c, w in want.items()}


# --- the array ------------------------------------------------------------------------------

SHAPES = [(2, 2), (3, 4), (4, 4)]
# (passes, T) of two back-to-back instructions: T < rows, T >= rows, and both.
PATTERNS = {
    "short": lambda rows: [(3, 1), (2, rows - 1)],
    "long": lambda rows: [(3, rows), (3, rows + 3)],
    "mixed": lambda rows: [(2, 1), (3, rows + 1)],
}


def run_pattern(rows: int, cols: int, pattern: str):
    """The instructions of ``PATTERNS[pattern]`` scheduled by the contract and run on the
    array: (config, instructions, per-instruction passes, outputs per column)."""
    config = small_config(rows, cols)
    rng = np.random.default_rng([rows, cols, sorted(PATTERNS).index(pattern)])
    instrs = PATTERNS[pattern](rows)
    schedule = contract_schedule(instrs, config, rng)
    passes = [p for instr in schedule for p in instr]
    return config, instrs, schedule, run_array(config, passes, rng)


def instruction_sums(config, instrs, schedule, seen) -> list[np.ndarray]:
    """Per instruction, the (T, cols) sums of its passes as the array's outputs give them."""
    rows, cols = config.array.rows, config.array.cols
    by_cycle = {c: dict(seen[c]) for c in range(cols)}
    return [
        np.array(
            [
                [sum(by_cycle[c][p.f + v + rows + c] for p in instr_passes) for c in range(cols)]
                for v in range(T)
            ],
            dtype=np.int64,
        )
        for (_, T), instr_passes in zip(instrs, schedule, strict=True)
    ]


@pytest.mark.parametrize("pattern", sorted(PATTERNS))
@pytest.mark.parametrize(("rows", "cols"), SHAPES)
def test_array_matches_numpy_cycle_for_cycle(rows, cols, pattern):
    config, instrs, schedule, seen = run_pattern(rows, cols, pattern)
    passes = [p for instr in schedule for p in instr]
    want = expected_outputs(config, passes)
    for c in range(cols):
        assert seen[c] == want[c], f"column {c}"
    # The patterns reach both bounds of the contract: "long" is bubble-free (consecutive
    # passes feed in consecutive cycles) and loads a pass in the cycle its predecessor starts
    # feeding (wl[j] = f[j-1]); "short" feeds a pass in the cycle after its load (f = wl + 1).
    if pattern == "long":
        fed = sorted(p.f + v for p in passes for v in range(len(p.vectors)))
        assert fed == list(range(fed[0], fed[0] + len(fed)))
        assert any(b.wl == a.f for a, b in itertools.pairwise(passes))
    if pattern == "short":
        assert all(p.f == p.wl + 1 for p in passes)
    # Summed over the passes of each instruction, the outputs are the sums of the products.
    for got, instr_passes in zip(
        instruction_sums(config, instrs, schedule, seen), schedule, strict=True
    ):
        want_sums = sum(
            p.vectors.astype(np.int64) @ p.weights.astype(np.int64) for p in instr_passes
        )
        np.testing.assert_array_equal(got, want_sums, strict=True)


def test_array_weight_load_one_cycle_early_corrupts_the_running_pass():
    """The contract's bound wl[j+1] >= f[j] is tight: loading pass 2 in cycle f[1] is fine
    (the "long" pattern), in f[1] - 1 its row 0 reaches PE (0, 0) with pass 1's switch."""
    rows, cols = 3, 4
    config = small_config(rows, cols)
    rng = np.random.default_rng(7)
    schedule = contract_schedule([(3, rows + 3)], config, rng)[0]
    assert schedule[2].wl == schedule[1].f
    schedule[2].wl -= 1
    seen = run_array(config, schedule, rng)
    want = expected_outputs(config, schedule)
    assert [t for t, _ in seen[0]] == [t for t, _ in want[0]]
    # Only pass 1 (the one whose switch met pass 2's first row) is wrong.
    wrong = [t for (t, v), (_, w) in zip(seen[0], want[0], strict=True) if v != w]
    assert wrong and all(schedule[1].f + rows <= t < schedule[2].f + rows for t in wrong)


def test_array_feed_one_cycle_early_uses_stale_weights():
    """The contract's bound f[j] >= wl[j] + 1 is tight: feeding in wl[j] + 1 is fine (the
    "short" pattern), in wl[j] the switch reaches PE (0, 0) before its row does."""
    rows, cols = 3, 4
    config = small_config(rows, cols)
    rng = np.random.default_rng(8)
    schedule = contract_schedule([(2, 1)], config, rng)[0]
    assert schedule[1].f == schedule[1].wl + 1 > schedule[0].f + 1
    schedule[1].f -= 1
    seen = run_array(config, schedule, rng)
    want = expected_outputs(config, schedule)
    assert [t for t, _ in seen[0]] == [t for t, _ in want[0]]
    assert seen[0][0] == want[0][0] and seen[0][1] != want[0][1]


def test_array_reports_its_shape_and_latency():
    dut = SystolicArray(small_config(3, 4))
    assert (dut.rows, dut.cols, dut.latency) == (3, 4, 3)
    assert len(dut.o) == 4


@pytest.mark.parametrize("bad", [None, "tiny", (4, 4)])
def test_array_rejects_a_config_that_is_not_an_accel_config(bad):
    with pytest.raises(TypeError, match=re.escape(f"config must be an AccelConfig, not {bad!r}")):
        SystolicArray(bad)


# --- one PE ---------------------------------------------------------------------------------


@pytest.mark.parametrize("top", [False, True], ids=["below", "top"])
def test_pe_switch_takes_the_shadow_or_the_weight_written_in_its_cycle(top):
    """A top PE (operands registered, product combinational) gives the same products in the
    same cycles as the others."""
    dut = ProcessingElement(preset("tiny"), top=top)
    steps = [
        # inputs of the cycle; prod_out of the next cycle (x_in * the weight of the cycle)
        (dict(w_we=1, w_in=5, sw_in=0, x_in=0), 0),
        (dict(w_we=0, w_in=0, sw_in=1, x_in=3), 15),  # shadow 5 -> active
        (dict(w_we=1, w_in=-7, sw_in=0, x_in=2), 10),  # active 5; shadow <- -7
        (dict(w_we=0, w_in=0, sw_in=0, x_in=2), 10),  # still active 5
        (dict(w_we=1, w_in=9, sw_in=1, x_in=2), 18),  # write-through: 9, not -7
        (dict(w_we=0, w_in=0, sw_in=0, x_in=-128), -1152),  # active is 9
        (dict(w_we=1, w_in=-128, sw_in=1, x_in=-128), 16384),  # the widest product
        (dict(w_we=0, w_in=0, sw_in=0, x_in=127), -16256),
    ]

    async def bench(ctx):
        for inputs, prod in steps:
            for name, value in inputs.items():
                ctx.set(getattr(dut, name), value)
            await ctx.tick()
            assert ctx.get(dut.prod_out) == prod, inputs
            assert ctx.get(dut.x_out) == inputs["x_in"]
            assert ctx.get(dut.sw_out) == inputs["sw_in"]

    simulate(dut, bench)


@pytest.mark.parametrize("top", [False, True], ids=["below", "top"])
def test_pe_adds_the_product_from_above_to_the_partial_sum_from_above(top):
    """psum_out is psum_in + prod_in of the previous cycle, wrapping to int32; the PE's own
    product does not enter it."""
    dut = ProcessingElement(preset("tiny"), top=top)
    steps = [
        # psum_in, prod_in, x_in (with weight 3 written through) -> psum_out next cycle
        (10, 15, 1, 25),
        (0, -16256, 2, -16256),
        (INT32_MAX, 16384, 3, INT32_MAX + 16384 - 2**32),
        (INT32_MIN, -16256, 4, INT32_MIN - 16256 + 2**32),
        (-1, 0, 5, -1),
    ]

    async def bench(ctx):
        ctx.set(dut.w_we, 1)
        ctx.set(dut.w_in, 3)
        ctx.set(dut.sw_in, 1)
        for psum_in, prod_in, x_in, psum in steps:
            ctx.set(dut.psum_in, psum_in)
            ctx.set(dut.prod_in, prod_in)
            ctx.set(dut.x_in, x_in)
            await ctx.tick()
            assert ctx.get(dut.psum_out) == psum, (psum_in, prod_in)
            assert ctx.get(dut.prod_out) == 3 * x_in

    simulate(dut, bench)


def test_pe_rejects_a_config_that_is_not_an_accel_config():
    with pytest.raises(TypeError, match=r"config must be an AccelConfig, not 3"):
        ProcessingElement(3)
