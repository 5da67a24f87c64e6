# amaranth: UnusedElaboratable=no
"""hdl.postproc: bit-exact to accel.numerics' gemmlowp primitives, latency exact (against
sim.postproc: tests/test_equivalence_postproc.py).

Rows stream in back to back (with random idle cycles between them); every row carries its
own parameters and instruction fields, so one simulation checks many unrelated rows. The
post-processor looks its tables up in a :class:`hdl.buffers.TableBuffer` holding
:data:`TABLES` (random: both slots differ everywhere).
"""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.hdl import Elaboratable, Module
from amaranth.lib.wiring import connect
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accel import numerics, timing
from accel.config import preset
from accel.isa import TABLE_SLOTS, TABLE_WORD_BYTES, Post, PostMode
from hdl.buffers import TableBuffer
from hdl.postproc import ACC_READ_LATENCY, PostProcessor
from tests import test_hdl_post as post_bench
from tests.hdl_support import simulate
from tests.references import INT32_MAX, INT32_MIN, wrap32

CONFIG = preset("tiny")  # 4 lanes
LANES = CONFIG.array.cols
#: The table buffer's contents: (slot, entry) int8; slot 1 differs from slot 0 everywhere.
TABLES = np.random.default_rng(2026).integers(-128, 128, (TABLE_SLOTS, 256))
TABLES[1] = np.where(TABLES[1] == TABLES[0], (TABLES[0] + 129) % 256 - 128, TABLES[1])


def table_words() -> list[int]:
    flat = TABLES.astype(np.int8).reshape(-1, TABLE_WORD_BYTES)
    return [int.from_bytes(w.tobytes(), "little") for w in flat]


def looked_up(r: dict, word: list[int]) -> list[int]:
    """``word`` (the clamped values) through the row's table, if it has ``lut`` (the slot
    wraps modulo the buffer's slots, as the hardware's address does)."""
    if not r.get("lut"):
        return word
    return [int(TABLES[r.get("table", 0) % TABLE_SLOTS][v + 128]) for v in word]


class TableBench(Elaboratable):
    """The post-processor and a table buffer holding :data:`TABLES`."""

    def __init__(self) -> None:
        self.pp = PostProcessor(CONFIG)
        self.tables = TableBuffer(CONFIG, init=table_words())

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.pp = self.pp
        m.submodules.tables = self.tables
        connect(m, self.pp.table, self.tables.post)
        return m


def row(
    acc, bias, multiplier, shift, *, mode=PostMode.REQUANT, zp=0, lo=-128, hi=127, lut=0, table=0
):
    """One input row; scalars are broadcast to every lane."""

    def lanes(v):
        return [int(x) for x in np.broadcast_to(v, LANES)]

    return {
        "acc": lanes(acc),
        "params": [
            {"bias": b, "multiplier": m, "shift": s}
            for b, m, s in zip(lanes(bias), lanes(multiplier), lanes(shift), strict=True)
        ],
        "mode": mode,
        "out_zero_point": zp,
        "act_min": lo,
        "act_max": hi,
        "lut": lut,
        "table": table,
    }


def reference_any_multiplier(r: dict) -> list[int]:
    """The same pipeline composed from numerics' primitives: accepts any int32 multiplier
    (requantize checks multiplier >= 2**30, the hardware does not), then the table."""
    if r["mode"] == PostMode.PASS:
        return looked_up(r, [int(np.clip(a, r["act_min"], r["act_max"])) for a in r["acc"]])
    out = []
    for a, p in zip(r["acc"], r["params"], strict=True):
        high = numerics.saturating_rounding_doubling_high_mul(
            wrap32(a + p["bias"]), p["multiplier"]
        )
        y = int(numerics.rounding_divide_by_pot(high, p["shift"]))
        out.append(int(np.clip(y + r["out_zero_point"], r["act_min"], r["act_max"])))
    return looked_up(r, out)


def run_rows(rows: list[dict], gaps: list[int] | None = None) -> list[tuple[int, list[int]]]:
    """Feed the rows (``gaps[k]`` idle cycles before row k); returns (cycle, word) per output
    and checks each word leaves exactly ``latency`` cycles after its row entered."""
    bench_dut = TableBench()
    dut = bench_dut.pp
    gaps = gaps or [0] * len(rows)
    fed: list[int] = []
    out: list[tuple[int, list[int]]] = []
    junk = row(-1, INT32_MIN, INT32_MIN, 31, zp=-1, lo=5, hi=-5, lut=1, table=1)

    async def bench(ctx):
        plan = []
        for gap, r in zip(gaps, rows, strict=True):
            plan += [None] * gap + [r]
        plan += [None] * (dut.latency + 1)
        for cycle, r in enumerate(plan):
            ctx.set(dut.i.valid, r is not None)
            ctx.set(dut.i.payload, r if r is not None else junk)
            if r is not None:
                fed.append(cycle)
            if ctx.get(dut.o.valid):
                out.append((cycle, [int(v) for v in ctx.get(dut.o.payload)]))
            await ctx.tick()

    simulate(bench_dut, bench)
    assert [t for t, _ in out] == [t + dut.latency for t in fed]
    return out


# --- edge cases, by hand ------------------------------------------------------------------

M_MAX = 2**31 - 1
EDGES = [
    # (acc, bias, multiplier, shift, zp): what it exercises
    (INT32_MIN, 0, INT32_MIN, 0, 0),  # SRDHM saturation: INT32_MIN * INT32_MIN -> INT32_MAX
    (INT32_MIN, 0, INT32_MIN, 31, -128),  # ... then the largest shift
    (INT32_MIN, 0, INT32_MIN + 1, 0, 0),  # next to saturation: no saturation
    (INT32_MAX, 0, INT32_MIN, 0, 0),  # most negative product
    (3, 0, 2**30, 0, 0),  # SRDHM tie 1.5 -> 2 (toward +inf)
    (-3, 0, 2**30, 0, 0),  # SRDHM tie -1.5 -> -1
    (-5, 0, 2**30, 0, 0),  # SRDHM tie -2.5 -> -2
    (5, 0, 2**30, 1, 0),  # both roundings: 1.25 -> 2.5 -> 3 -> 2
    (5, 0, M_MAX, 1, 0),  # RDBPOT tie 2.5 -> 3
    (-5, 0, M_MAX, 1, 0),  # RDBPOT tie -2.5 -> -3 (away from zero)
    (-2, 0, M_MAX, 2, 0),  # RDBPOT -0.5 -> -1
    (-45, 0, 1717986918, 3, 0),  # docs/numerics.md: -4.5 -> -5
    (234, 0, 1717986918, 3, -5),  # docs/numerics.md worked example: 18
    (INT32_MIN, 0, M_MAX, 31, 0),  # RDBPOT(INT32_MIN + 1, 31) -> -1
    (2**30, 0, M_MAX, 31, 0),  # RDBPOT(2**30, 31) -> 1 (a tie away from zero)
    (INT32_MAX, 0, M_MAX, 0, 127),  # shift 0, zp 127: 2**31 - 2 + 127 saturates, no wrap
    (INT32_MIN, 0, M_MAX, 0, -128),  # shift 0, most negative + zp: no wrap
    (INT32_MAX, 1, M_MAX, 0, 0),  # acc + bias wraps to INT32_MIN
    (INT32_MIN, -1, M_MAX, 0, 0),  # acc + bias wraps to INT32_MAX
    (0, 0, 2**30, 31, 0),
    (-1, 0, 2**30, 31, 0),
]


def test_postproc_edge_cases_bit_exact():
    rows = [row(a, b, m, s, zp=zp) for a, b, m, s, zp in EDGES]
    out = run_rows(rows)
    for r, (_, word), case in zip(rows, out, EDGES, strict=True):
        assert word == reference_any_multiplier(r), case
    # The documented values.
    assert out[0][1][0] == 127
    assert [out[k][1][0] for k in (4, 5, 6)] == [2, -1, -2]
    assert out[11][1][0] == -5 and out[12][1][0] == 18
    assert out[15][1][0] == 127


def pass_rows() -> list[dict]:
    accs = [INT32_MIN, -129, -128, -5, 0, 7, 127, 128, INT32_MAX]
    return [
        row(a, 12345, INT32_MIN, 7, mode=PostMode.PASS, zp=99, lo=lo, hi=hi)
        for a in accs
        for lo, hi in [(-128, 127), (0, 127), (-3, 6)]
    ]


def test_postproc_pass_mode_clamps_the_raw_accumulator():
    rows = pass_rows()
    for r, (_, word) in zip(rows, run_rows(rows), strict=True):
        assert word == reference_any_multiplier(r)
        assert word == [min(max(a, r["act_min"]), r["act_max"]) for a in r["acc"]]


def test_postproc_table_lookup_on_and_off_in_both_slots_at_no_cycle_cost():
    """Every entry of both slots (PASS rows of four consecutive int8 values), each row again
    without the table and REQUANT rows with one, back to back: the word is the clamped value
    or its entry of the row's slot, still ``latency`` cycles after the row (run_rows checks).
    Slot 3 is slot 1: the 4-bit field wraps modulo the buffer's two slots."""
    rows = []
    for slot in (0, 1, 3):
        for first in range(-128, 128, LANES):
            acc = list(range(first, first + LANES))
            rows.append(row(acc, 0, 0, 0, mode=PostMode.PASS, lut=1, table=slot))
            rows.append(row(acc, 0, 0, 0, mode=PostMode.PASS, lut=0, table=slot))
    rows += [row(a, 5, 2**30, 1, zp=-3, lut=1, table=t) for a in (-300, 7, 300) for t in (0, 1)]
    out = run_rows(rows)
    for r, (_, word) in zip(rows, out, strict=True):
        assert word == reference_any_multiplier(r)
    for k in range(0, 3 * 128, 2):
        slot = rows[k]["table"] % TABLE_SLOTS
        assert out[k][1] == [int(TABLES[slot][v + 128]) for v in rows[k]["acc"]]
        assert out[k + 1][1] == rows[k + 1]["acc"]


def test_postproc_clamp_follows_numpy_clip_order_for_inverted_bounds():
    rows = [row(a, 0, 2**30, 0, lo=10, hi=-10) for a in (-50, 0, 50)]
    for r, (_, word) in zip(rows, run_rows(rows), strict=True):
        assert word == reference_any_multiplier(r) == [-10] * LANES


def test_postproc_zero_point_and_clamp_for_every_shift_sign_and_bound():
    """Stage 5 folds the zero point into the rounding shift (``(x + (zp << e | half - (x <
    0 and e > 0))) >> e``) and stage 6 compares with both bounds side by side: 2,048 random rows
    with every shift 0..31, zero points over the whole int8 range, results near and far
    outside int8, exact ties, and bounds drawn independently (a quarter of them inverted)."""
    rng = np.random.default_rng(2048)
    n = 2048
    # Products near a tie of the shift (x = q * 2**e + 2**(e-1) + {-1, 0, 1}) or anywhere.
    shifts = np.arange(n) % 32
    rows = []
    for k in range(n):
        e = int(shifts[k])
        acc = []
        for _ in range(LANES):
            if rng.integers(2) and e > 0:
                q = int(rng.integers(-(2 ** (31 - e)), 2 ** (31 - e)))
                x = q * 2**e + (1 << (e - 1)) + int(rng.integers(-1, 2))
            else:
                x = int(rng.choice([rng.integers(-300, 300), rng.integers(INT32_MIN, INT32_MAX)]))
            acc.append(min(max(x, INT32_MIN), INT32_MAX))
        lo, hi = (int(v) for v in rng.integers(-128, 128, 2))
        if rng.random() < 0.75:
            lo, hi = min(lo, hi), max(lo, hi)
        rows.append(
            row(
                acc, 0, M_MAX, e,  # SRDHM by 2**31 - 1: x within one of acc
                mode=PostMode.REQUANT if k % 8 else PostMode.PASS,
                zp=int(rng.integers(-128, 128)), lo=lo, hi=hi,
            )
        )  # fmt: skip
    for r, (_, word) in zip(rows, run_rows(rows), strict=True):
        assert word == reference_any_multiplier(r), r


# --- hypothesis ------------------------------------------------------------------------------


def edgy_int32():
    return st.one_of(
        st.sampled_from([INT32_MIN, INT32_MIN + 1, -(2**30), -1, 0, 1, 2**30, INT32_MAX]),
        st.integers(-1000, 1000),
        st.integers(INT32_MIN, INT32_MAX),
    )


def multipliers(any_int32: bool):
    if any_int32:
        return edgy_int32()
    return st.one_of(st.sampled_from([2**30, 2**30 + 1, M_MAX]), st.integers(2**30, M_MAX))


@st.composite
def rows_strategy(draw, any_multiplier: bool):
    lanes = range(LANES)
    lo = draw(st.integers(-128, 127))
    hi = draw(st.integers(lo, 127))
    return {
        "acc": [draw(edgy_int32()) for _ in lanes],
        "params": [
            {
                "bias": draw(edgy_int32()),
                "multiplier": draw(multipliers(any_multiplier)),
                "shift": draw(st.one_of(st.sampled_from([0, 1, 30, 31]), st.integers(0, 31))),
            }
            for _ in lanes
        ],
        "mode": draw(st.sampled_from([PostMode.REQUANT, PostMode.REQUANT, PostMode.PASS])),
        "out_zero_point": draw(st.one_of(st.sampled_from([-128, 0, 127]), st.integers(-128, 127))),
        "act_min": lo,
        "act_max": hi,
        "lut": draw(st.integers(0, 1)),
        "table": draw(st.integers(0, 1)),
    }


HYPOTHESIS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@HYPOTHESIS
@given(st.lists(rows_strategy(any_multiplier=True), min_size=1, max_size=24))
def test_postproc_equals_the_gemmlowp_primitives_for_any_int32_multiplier(rows):
    for r, (_, word) in zip(rows, run_rows(rows), strict=True):
        assert word == reference_any_multiplier(r)


# --- latency in the post engine -------------------------------------------------------------


@pytest.mark.parametrize(("count_a", "count_b"), [(1, 1), (2, 3), (5, 1)])
def test_post_instructions_back_to_back_are_done_at_start_plus_count_plus_post_latency(
    count_a, count_b
):
    """Two POST instructions through :class:`hdl.post.PostEngine` (accumulator read -> this
    block -> output buffer), the second entering right behind the first (next_start), with
    different parameters: every word becomes visible exactly in ``start + k + POST_LATENCY +
    1`` (``post_bench.check`` reads the output buffer in every cycle), the last one of each
    instruction in its ``done``."""
    assert PostProcessor(CONFIG).latency + ACC_READ_LATENCY == timing.POST_LATENCY
    posts = [
        Post(acc_base=0, count=count_a, param_base=1, out_base=0, out_zero_point=3),
        Post(
            acc_base=count_a, count=count_b, param_base=4, out_base=count_a,
            out_zero_point=-7, act_min=0,
        ),
    ]  # fmt: skip
    offers = [2, 0]
    a, b = post_bench.contract(posts, offers)
    assert b.start == a.start + count_a  # pipelined: no bubble between the two
    run = post_bench.check(post_bench.CONFIGS["4x4"], posts, offers, seed=10 * count_a + count_b)
    visible = [cycle + 1 for cycle, _, _ in run.writes]
    issued = [t.start + k for t, p in ((a, posts[0]), (b, posts[1])) for k in range(p.count)]
    assert visible == [t + timing.POST_LATENCY + 1 for t in issued]
    assert (visible[count_a - 1], visible[-1]) == (a.done, b.done)


def test_postproc_rejects_a_config_that_is_not_an_accel_config():
    with pytest.raises(TypeError, match=r"config must be an AccelConfig, not 'tiny'"):
        PostProcessor("tiny")
