# amaranth: UnusedElaboratable=no
"""hdl.transposer, hdl.rotation: the input-stationary datapath (transposer -> weight-stationary
array <- streamed weight words; columns -> rotation -> accumulator banks) against numpy and
the IS contract.

The contract (issue 16; ``accel.timing``'s INPUT-STATIONARY section) for one k tile, written
out here: an IS instruction of ``T`` pixels and ``P`` passes on an ``R`` x ``R`` array (``Cc =
R``) runs ``G = ceil(T / Cc)`` pixel groups times ``P`` passes as tiles ``j = (g, k)``, ``g = j
// P``, ``k = j % P``::

    rd[0] = take
    rd[j] = max(rd[j-1] + Cc, wl[j-2] + R)             (wl[-2] = -inf in an instruction)
    wl[j] = max(rd[j] + Cc + 1, wl[j-1] + R, f[j-1])    (wl[-1], f[-1]: the previous one's)
    f[j]  = max(wl[j] + 1, f[j-1] + Cc, stream_free if j == 0)
    done  = f[last] + Cc - 1 + R + Cc - 1 + ACC_LATENCY + 1

Column ``c``'s window word of tile ``j`` is read in ``rd[j] + c`` (here: its data is on the
transposer's ``wr`` one cycle later, as from the input buffer), row ``i`` of the tile is read
from the transposer in ``wl[j] + i``, weight word ``n`` of pass ``k`` is fed in ``f[j] + n``,
and ``out[g*Cc + c][n]`` is written to bank ``n``, row ``acc_base + g*Cc + c``, in ``f[j] + n
+ R + c + ACC_LATENCY``; the accumulator's ``complete`` pulses in ``done - 1`` and only then.
Idle inputs carry random garbage; dummy columns (pixel >= T) get random words and must not
write.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pytest
from amaranth.hdl import Elaboratable, Module, Signal

from accel import timing
from accel.timing import ACC_LATENCY
from hdl.accumulator import AccumulatorBuffer
from hdl.array import SystolicArray
from hdl.flow.generate import verilog
from hdl.rotation import Rotation, column_records, is_meta_layout
from hdl.transposer import Transposer
from tests.hdl_support import assert_lints_clean, simulate, small_config

NEG = -(1 << 40)


def is_config(rows: int):
    return small_config(rows, rows).replace(array={"dataflow": "is"})


@dataclass
class IsInstr:
    x: np.ndarray  # (T, P, R) int8: pixel v's window word of pass k
    w: np.ndarray  # (P, Cc, R) int8: weight word w_base + k*R + n (channel n, lane i)
    acc_base: int
    accumulate: bool

    @property
    def tiles(self) -> int:
        T, P, R = self.x.shape
        return -(-T // R) * P


@dataclass
class Sched:
    rd: list[int]
    wl: list[int]
    f: list[int]
    done: int


def contract_schedule(instrs: list[IsInstr], takes: list[int], R: int) -> list[Sched]:
    """The contract's recurrences, instruction after instruction (one unit)."""
    Cc = R
    wl_prev, f_prev, stream_free = NEG, NEG, NEG
    out = []
    for instr, take in zip(instrs, takes, strict=True):
        rd, wl, f = [], [], []
        for j in range(instr.tiles):
            wl2 = wl[j - 2] if j >= 2 else NEG
            rd.append(take if j == 0 else max(rd[j - 1] + Cc, wl2 + R))
            wl1 = wl[j - 1] if j else wl_prev
            f1 = f[j - 1] if j else f_prev
            wl.append(max(rd[j] + Cc + 1, wl1 + R, f1))
            f.append(max(wl[j] + 1, f1 + Cc, stream_free if j == 0 else NEG))
        done = f[-1] + Cc - 1 + R + Cc - 1 + ACC_LATENCY + 1
        out.append(Sched(rd, wl, f, done))
        wl_prev, f_prev, stream_free = wl[-1], f[-1], f[-1] + Cc
    return out


class Harness(Elaboratable):
    """Transposer, array, rotation and accumulator joined as the compute engine joins them,
    with the vector records' delay line (tap ``R + c`` for column ``c``)."""

    def __init__(self, config, acc_init):
        self.config = config
        R = config.array.rows
        self.tr = Transposer(config)
        self.array = SystolicArray(config)
        self.rot = Rotation(config)
        self.acc = AccumulatorBuffer(config, init=acc_init)
        self.meta = Signal(is_meta_layout(config))
        self.meta_valid = Signal()
        self.R = R

    def elaborate(self, platform):
        m = Module()
        R = Cc = self.R
        m.submodules.tr = self.tr
        m.submodules.array = self.array
        m.submodules.rot = self.rot
        m.submodules.acc = self.acc
        m.d.comb += [
            self.array.w.valid.eq(self.tr.w.valid),
            self.array.w.payload.eq(self.tr.w.payload),
        ]
        records = column_records(m, self.meta, self.meta_valid, R, Cc)
        for c, (record, valid) in enumerate(records):
            m.d.comb += [
                self.rot.col[c].valid.eq(valid),
                self.rot.col[c].payload.meta.eq(record),
                self.rot.col[c].payload.sum.eq(self.array.o[c].payload),
                self.acc.a[c].valid.eq(self.rot.a[c].valid),
                self.acc.a[c].payload.eq(self.rot.a[c].payload),
            ]
        m.d.comb += self.acc.a_end.eq(self.rot.end)
        return m


def run(config, instrs: list[IsInstr], takes: list[int], seed: int, read_shift: int = 0):
    """Drive ``instrs`` by the contract's schedule; returns (schedules, accumulator contents,
    the cycles ``complete`` was high)."""
    R = Cc = config.array.rows
    rng = np.random.default_rng(seed)
    depth = config.acc_rows
    init = rng.integers(-(1 << 20), 1 << 20, (depth, Cc))
    scheds = contract_schedule(instrs, takes, R)
    writes: dict[int, dict] = {}
    reads: dict[int, dict] = {}
    feeds: dict[int, tuple] = {}
    for instr, s in zip(instrs, scheds, strict=True):
        T, P, _ = instr.x.shape
        for j in range(instr.tiles):
            g, k = divmod(j, P)
            for c in range(Cc):
                v = g * Cc + c
                word = instr.x[v, k] if v < T else rng.integers(-128, 128, R)
                t = s.rd[j] + c + 1
                assert t not in writes
                writes[t] = {"buf": j % 2, "col": c, "word": [int(a) for a in word]}
            for i in range(R):
                assert s.wl[j] + i + read_shift not in reads
                reads[s.wl[j] + i + read_shift] = {"buf": j % 2, "row": i}
            for n in range(Cc):
                meta = {
                    "n": n,
                    "acc_row": (instr.acc_base + g * Cc) % depth,
                    "width": min(Cc, T - g * Cc),
                    "overwrite": k == 0 and not instr.accumulate,
                    "last": j == instr.tiles - 1 and n == Cc - 1,
                }
                assert s.f[j] + n not in feeds
                feeds[s.f[j] + n] = ([int(b) for b in instr.w[k, n]], n == 0, meta)
    end = scheds[-1].done + 3
    h = Harness(config, init)
    complete: list[int] = []

    async def bench(ctx):
        for cycle in range(end):
            wr = writes.get(cycle)
            ctx.set(h.tr.wr.valid, wr is not None)
            ctx.set(
                h.tr.wr.payload,
                wr or {"buf": int(rng.integers(2)), "col": int(rng.integers(Cc)),
                       "word": [int(a) for a in rng.integers(-128, 128, R)]},
            )  # fmt: skip
            rd = reads.get(cycle)
            ctx.set(h.tr.rd.valid, rd is not None)
            ctx.set(
                h.tr.rd.payload, rd or {"buf": int(rng.integers(2)), "row": int(rng.integers(R))}
            )
            feed = feeds.get(cycle)
            ctx.set(h.array.i.valid, feed is not None)
            ctx.set(h.meta_valid, feed is not None)
            if feed is None:
                feed = (
                    [int(b) for b in rng.integers(-128, 128, R)],
                    bool(rng.integers(2)),
                    {"n": int(rng.integers(Cc)), "acc_row": int(rng.integers(depth)),
                     "width": int(rng.integers(1, Cc + 1)), "overwrite": bool(rng.integers(2)),
                     "last": bool(rng.integers(2))},
                )  # fmt: skip
            ctx.set(h.array.i.payload, {"x": feed[0], "switch": feed[1], "dw": 0})
            ctx.set(h.meta, feed[2])
            if ctx.get(h.acc.complete):
                complete.append(cycle)
            await ctx.tick()
        got = np.array(
            [[ctx.get(h.acc.banks[n][r]) for n in range(Cc)] for r in range(depth)],
            dtype=np.int64,
        )
        result.append(got)

    result: list[np.ndarray] = []
    simulate(h, bench)
    want = init.astype(np.int64).copy()
    for instr in instrs:
        T = instr.x.shape[0]
        out = np.einsum("vki,kni->vn", instr.x.astype(np.int64), instr.w.astype(np.int64))
        rows = (instr.acc_base + np.arange(T)) % depth
        want[rows] = (want[rows] if instr.accumulate else 0) + out
    return scheds, result[0], want, complete


def random_instr(rng, R: int, T: int, P: int, acc_base: int, accumulate: bool) -> IsInstr:
    return IsInstr(
        x=rng.integers(-128, 128, (T, P, R)),
        w=rng.integers(-128, 128, (P, R, R)),
        acc_base=acc_base,
        accumulate=accumulate,
    )


CASES = {
    # (T, P, accumulate) per instruction, back to back
    "one_tile": [(2, 1, False)],
    "groups_and_passes": [(7, 3, False)],
    "fewer_pixels_than_columns": [(1, 2, True), (3, 1, False)],
    "accumulate_chain": [(5, 2, False), (5, 1, True), (6, 4, True)],
}


@pytest.mark.parametrize(
    ("R", "case"),
    [(R, case) for R in (2, 4) for case in sorted(CASES)]
    + [(8, "groups_and_passes"), (8, "fewer_pixels_than_columns")],
)
def test_is_path_matches_numpy_and_the_contract(R, case):
    config = is_config(R)
    rng = np.random.default_rng([R, sorted(CASES).index(case)])
    instrs, base = [], 0
    for T, P, acc in CASES[case]:
        if acc and instrs:
            base = instrs[-1].acc_base  # accumulate onto the previous instruction's rows
        instrs.append(random_instr(rng, R, T, P, base, acc))
        base += T
    # takes: the first at 0, each next at the previous one's front_free (back to back)
    takes, scheds = [0], None
    while len(takes) < len(instrs):
        scheds = contract_schedule(instrs[: len(takes)], takes, R)
        s = scheds[-1]
        takes.append(max(s.wl[-1] + R, s.f[-1]))
    scheds, got, want, complete = run(config, instrs, takes, seed=R * 100 + len(case))
    np.testing.assert_array_equal(got, want, strict=True)
    assert complete == [s.done - 1 for s in scheds]
    if case == "groups_and_passes":
        # Tiles in flight together: back to back (gap Cc) and with a bubble (gap > Cc, so
        # the two tiles' columns name the banks with different rotations).
        gaps = {b - a for a, b in itertools.pairwise(scheds[0].f)}
        assert R in gaps and max(gaps) > R, gaps
    # The written-out recurrences are accel.timing's (first feed, last load, last feed).
    wl_prev, f_prev, stream_free = NEG, NEG, NEG
    for instr, take, s in zip(instrs, takes, scheds, strict=True):
        got_t = timing.is_schedule(instr.tiles, take, stream_free, wl_prev, f_prev, R)
        assert got_t == (s.f[0], s.wl[-1], s.f[-1])
        wl_prev, f_prev, stream_free = s.wl[-1], s.f[-1], s.f[-1] + R


def test_a_row_read_one_cycle_early_misses_the_last_word():
    """``wl[j] >= rd[j] + Cc + 1`` is tight: the transposer holds the last word from then."""
    R = 3
    config = is_config(R)
    rng = np.random.default_rng(5)
    instr = random_instr(rng, R, R, 1, 0, False)
    scheds = contract_schedule([instr], [0], R)
    assert scheds[0].wl[0] == scheds[0].rd[0] + R + 1  # the bound is reached
    _, got, want, _ = run(config, [instr], [0], seed=1)
    np.testing.assert_array_equal(got, want, strict=True)
    _, got, want, _ = run(config, [instr], [0], seed=1, read_shift=-1)
    # row 0 is read before the last column's word is in: that column's sums are wrong
    assert (got[R - 1] != want[R - 1]).any()


@pytest.mark.parametrize("block", ["transposer", "rotation"])
def test_the_is_blocks_lint_clean(block, tmp_path):
    cls = {"transposer": Transposer, "rotation": Rotation}[block]
    assert_lints_clean(verilog(cls(is_config(4)), block), block, tmp_path)


def test_the_is_blocks_need_a_square_array():
    config = small_config(3, 4).replace(array={"dataflow": "ws"})
    for cls in (Transposer, Rotation):
        with pytest.raises(ValueError, match=r"input-stationary needs a square array, not 3x4"):
            cls(config)
