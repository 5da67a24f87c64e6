# amaranth: UnusedElaboratable=no
"""hdl.array, hdl.pe: the output-stationary datapath against numpy and the OS contract.

The contract (issue 16; ``accel.timing``'s OS section) written out here: an OS instruction of
``T`` pixels and ``P`` passes runs ``G = ceil(T / rows)`` groups of ``S = P * rows`` steps;
step ``s = k*rows + i`` of group ``g`` is fed in ``F + g*S + s`` (the input word of pass
``k`` for array row ``i``, weight word ``k*rows + i``). The sum of PE (p, c) (pixel
``g*rows + p``, channel ``c``) leaves column ``c`` in ``X = E_g + 2*rows + c + 1 - p`` with
``E_g = F + g*S + S - 1``, carrying accumulator row ``acc_base + g*rows + p``; dummy rows
(pixel >= T) never leave. Every cycle is checked: an exit in any other cycle, a missing one,
or a wrong value or row fails. Idle inputs carry random garbage.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from hdl.array import SystolicArray
from tests.hdl_support import simulate, small_config
from tests.test_hdl_array import expected_outputs, run_pattern


@dataclass
class OsInstr:
    F: int  # cycle of step 0 of group 0
    x: np.ndarray  # (T, P, rows) int8: pixel v's word of pass k
    w: np.ndarray  # (P, rows, cols) int8: weight word k*rows + i
    acc_base: int
    overwrite: bool

    @property
    def groups(self) -> int:
        rows = self.x.shape[2]
        return -(-self.x.shape[0] // rows)

    @property
    def steps(self) -> int:
        return self.x.shape[1] * self.x.shape[2]


def os_feeds(instr: OsInstr, rng) -> dict[int, dict]:
    """The ``os_i`` payload of every step of ``instr``, by cycle."""
    T, _, rows = instr.x.shape
    S = instr.steps
    out = {}
    for g in range(instr.groups):
        mask = sum(1 << p for p in range(rows) if g * rows + p < T)
        for s in range(S):
            k, i = divmod(s, rows)
            v = g * rows + i  # the pixel of row i (the word fed this step is row i's)
            x = instr.x[v, k] if v < T else rng.integers(-128, 128, rows)
            out[instr.F + g * S + s] = {
                "x": [int(a) for a in x],
                "row": i,
                "w": [int(b) for b in instr.w[k, i]],
                "first": s == 0,
                "last": s == S - 1,
                "rec": {
                    "acc_row": instr.acc_base + g * rows,
                    "mask": mask,
                    "overwrite": instr.overwrite,
                    "last": g == instr.groups - 1,
                },
            }
    return out


def os_expected(instr: OsInstr, cols: int) -> dict[int, list[tuple]]:
    """{column: [(cycle, sum, acc_row, overwrite, last)]} of ``instr``'s exits."""
    T, _, rows = instr.x.shape
    S = instr.steps
    sums = np.einsum(
        "vki,kic->vc", instr.x.astype(np.int64), instr.w.astype(np.int64)
    )  # no overflow: at most 2**14 * P * rows
    want: dict[int, list[tuple]] = {c: [] for c in range(cols)}
    for g in range(instr.groups):
        E = instr.F + g * S + S - 1
        for p in range(rows):
            v = g * rows + p
            if v >= T:
                continue
            for c in range(cols):
                X = E + 2 * rows + c + 1 - p
                last = g == instr.groups - 1 and p == 0
                want[c].append((X, int(sums[v, c]), instr.acc_base + v, instr.overwrite, last))
    return want


def run_os(config, instrs: list[OsInstr], rng, ws_passes=()):
    """Drive OS instructions (and weight-stationary passes, optional) into an "os" array;
    returns the OS exits and the weight-stationary outputs per column."""
    rows, cols = config.array.rows, config.array.cols
    dut = SystolicArray(config)
    feeds: dict[int, dict] = {}
    for instr in instrs:
        f = os_feeds(instr, rng)
        assert not set(f) & set(feeds)
        feeds.update(f)
    loads, vectors = {}, {}
    for p in ws_passes:
        for i in range(rows):
            loads[p.wl + i + 1] = (i, p.weights[i])
        for v, x in enumerate(p.vectors):
            vectors[p.f + v] = (x, v == 0)
    end = max([*feeds, *vectors]) + 2 * rows + cols + 4
    os_seen: dict[int, list[tuple]] = {c: [] for c in range(cols)}
    ws_seen: dict[int, list[tuple]] = {c: [] for c in range(cols)}
    layout_rec = {"acc_row": 0, "mask": 0, "overwrite": 0, "last": 0}

    async def bench(ctx):
        for cycle in range(end):
            step = feeds.get(cycle)
            ctx.set(dut.os_i.valid, step is not None)
            if step is None:  # garbage
                step = {
                    "x": [int(a) for a in rng.integers(-128, 128, rows)],
                    "row": int(rng.integers(rows)),
                    "w": [int(b) for b in rng.integers(-128, 128, cols)],
                    "first": bool(rng.integers(2)),
                    "last": bool(rng.integers(2)),
                    "rec": layout_rec,
                }
            ctx.set(dut.os_i.payload, step)
            row, weights = loads.get(cycle, (0, np.zeros(cols, dtype=np.int8)))
            ctx.set(dut.w.valid, cycle in loads)
            ctx.set(dut.w.payload, {"row": row, "data": [int(w) for w in weights]})
            x, switch = vectors.get(cycle, (np.zeros(rows, dtype=np.int8), False))
            ctx.set(dut.i.valid, cycle in vectors)
            ctx.set(dut.i.payload, {"x": [int(v) for v in x], "switch": switch})
            for c in range(cols):
                if ctx.get(dut.os_o[c].valid):
                    e = ctx.get(dut.os_o[c].payload)
                    os_seen[c].append((cycle, e.sum, e.acc_row, bool(e.overwrite), bool(e.last)))
                if ctx.get(dut.o[c].valid):
                    ws_seen[c].append((cycle, ctx.get(dut.o[c].payload)))
            await ctx.tick()

    simulate(dut, bench)
    return os_seen, ws_seen


def make_instr(rng, rows, cols, T, P, F, *, acc_base=0, extreme=False):
    if extreme:  # the largest products: -128 * -128 everywhere
        x = np.full((T, P, rows), -128, dtype=np.int8)
        w = np.full((P, rows, cols), -128, dtype=np.int8)
    else:
        x = rng.integers(-128, 128, (T, P, rows), dtype=np.int8)
        w = rng.integers(-128, 128, (P, rows, cols), dtype=np.int8)
    return OsInstr(F, x, w, acc_base, bool(rng.integers(2)))


def back_to_back(rng, rows, cols, shapes, F0=3, gaps=None):
    """OS instructions (T, P) one after the other: F' = F + G*S (+ a gap)."""
    out, F = [], F0
    for n, (T, P) in enumerate(shapes):
        instr = make_instr(rng, rows, cols, T, P, F, acc_base=3 * n)
        out.append(instr)
        F += instr.groups * instr.steps + (gaps[n] if gaps else 0)
    return out


SHAPES = [(2, 2), (3, 4), (4, 4), (4, 2)]
# (T, P) per instruction: fewer pixels than rows, whole groups, a partial last group, one
# pass (S = rows: the drains of consecutive groups touch), FC (T = 1).
PATTERNS = {
    "short": lambda r: [(1, 1), (r - 1, 2), (1, 3)],
    "groups": lambda r: [(2 * r, 1), (2 * r + 1, 2), (3 * r - 1, 1)],
    "long": lambda r: [(r + 1, 3), (3 * r, 2)],
}


def check(config, instrs, seen):
    cols = config.array.cols
    want: dict[int, list[tuple]] = {c: [] for c in range(cols)}
    for instr in instrs:
        for c, w in os_expected(instr, cols).items():
            want[c] += w
    for c in range(cols):
        assert seen[c] == sorted(want[c]), f"column {c}"


@pytest.mark.parametrize("pattern", sorted(PATTERNS))
@pytest.mark.parametrize(("rows", "cols"), SHAPES)
def test_os_array_matches_numpy_and_the_exit_cycles(rows, cols, pattern):
    config = small_config(rows, cols).replace(array={"dataflow": "os"})
    rng = np.random.default_rng([rows, cols, sorted(PATTERNS).index(pattern)])
    instrs = back_to_back(rng, rows, cols, PATTERNS[pattern](rows))
    seen, _ = run_os(config, instrs, rng)
    check(config, instrs, seen)
    assert sum(len(s) for s in seen.values()) == cols * sum(i.x.shape[0] for i in instrs)


def test_os_array_gaps_and_extreme_products():
    """Idle cycles between instructions (garbage on the inputs) are ignored; -128 * -128
    products everywhere sum exactly."""
    rows, cols = 3, 4
    config = small_config(rows, cols).replace(array={"dataflow": "os"})
    rng = np.random.default_rng(11)
    instrs = back_to_back(rng, rows, cols, [(4, 2), (2, 1), (5, 3)], gaps=[5, 1, 0])
    big = make_instr(rng, rows, cols, 2, 3, instrs[-1].F + 60, extreme=True)
    seen, _ = run_os(config, [*instrs, big], rng)
    assert all(e[1] == 2**14 * 3 * rows for e in seen[0][-2:])
    check(config, [*instrs, big], seen)


def test_os_array_one_cycle_late_step_is_wrong():
    """The exit cycles are the contract's, not merely some cycles: shifting an instruction by
    one cycle moves every exit by one (the checker sees it)."""
    rows, cols = 3, 3
    config = small_config(rows, cols).replace(array={"dataflow": "os"})
    rng = np.random.default_rng(5)
    instrs = back_to_back(rng, rows, cols, [(4, 2)])
    seen, _ = run_os(config, instrs, rng)
    instrs[0].F += 1
    with pytest.raises(AssertionError):
        check(config, instrs, seen)


@pytest.mark.parametrize(("rows", "cols"), [(3, 4), (4, 4)])
def test_os_array_keeps_the_weight_stationary_datapath(rows, cols):
    """An "os" array runs weight-stationary passes as a "ws" one does, before and after
    an OS instruction (the units meet only after the previous one is done)."""
    _, _, schedule, _ = run_pattern(rows, cols, "long")
    passes = [p for instr in schedule for p in instr]
    config = small_config(rows, cols).replace(array={"dataflow": "os"})
    ws_done = max(p.f + len(p.vectors) for p in passes) + rows + cols + 1
    rng = np.random.default_rng(3)
    instr = make_instr(rng, rows, cols, rows + 2, 2, ws_done)
    seen, ws_seen = run_os(config, [instr], rng, ws_passes=passes)
    check(config, [instr], seen)
    want = expected_outputs(config, passes)
    for c in range(cols):
        assert ws_seen[c] == want[c], f"column {c}"


def test_the_os_ports_exist_only_on_os_machines():
    """A "ws" machine's blocks are the weight-stationary ones (their Verilog unchanged)."""
    from hdl.feeder import Feeder
    from hdl.pe import ProcessingElement
    from hdl.weight_loader import WeightLoader

    ws, os = small_config(3, 4), small_config(3, 4).replace(array={"dataflow": "os"})
    for block, port in [
        (SystolicArray, "os_i"),
        (ProcessingElement, "wt_in"),
        (Feeder, "os_weight_rd"),
        (WeightLoader, "blocked"),
    ]:
        assert port not in block(ws).signature.members
        assert port in block(os).signature.members
