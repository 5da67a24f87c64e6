# amaranth: UnusedElaboratable=no
"""hdl.post: the POST engine, cycle-exact to accel.timing.post_timing, bit-exact to an
independent reference of the arithmetic (tests/references.py; against sim.postproc:
tests/test_equivalence_post.py).

A bench of an accumulator buffer, a parameter buffer, an output buffer and a table buffer
(random initial contents) around the engine runs streams of POST instructions, each offered
(``i.valid``) from a given cycle until taken. Per instruction, the handshake cycle
(``start``) and the cycle after its ``complete`` pulse (``done``) must equal
:func:`accel.timing.post_timing` chained (earliest = the offer, free = the previous
``next_start``), and ``complete`` must be high in the very cycle of the output buffer write
of the instruction's last word; every accumulator and parameter read must be issued in
exactly ``start + k``; the output buffer, read in every cycle, must hold in cycle ``c``
exactly the initial contents with every expected write of an earlier cycle applied in order,
word ``k`` of an instruction being the reference's row ``k``, written in ``start + k +
POST_LATENCY`` (so visible in ``start + k + POST_LATENCY + 1``); with ``lut``, the
reference's word through the instruction's table slot, at the same cycle.
"""

from __future__ import annotations

import functools
import re

import numpy as np
import pytest
from amaranth.hdl import Elaboratable, Module
from amaranth.lib.wiring import connect

from accel import timing
from accel.config import AccelConfig
from accel.isa import TABLE_SLOTS, TABLE_WORD_BYTES, Post, PostMode
from hdl.accumulator import AccumulatorBuffer, acc_depth
from hdl.buffers import OutputBuffer, ParamBuffer, TableBuffer
from hdl.compute import ComputeEngine
from hdl.flow.generate import ports, verilog
from hdl.isa import POST_LAYOUT
from hdl.post import PostEngine
from tests.hdl_support import (
    assert_lints_clean,
    raw,
    simulate,
    small_config,
    verilog_in_fresh_processes,
)
from tests.references import INT32_MAX, INT32_MIN, ref_post_row


def make_config(rows: int, cols: int) -> AccelConfig:
    """The ``tiny`` preset with a ``rows x cols`` array and small buffers: 32 accumulator
    rows, 6 parameter words (not a power of two), 24 output words."""
    return small_config(
        rows, cols, acc_rows=32, param_words=6, output_words=24, name=f"post{rows}x{cols}"
    )


CONFIGS = {"2x2": make_config(2, 2), "3x4": make_config(3, 4), "4x4": make_config(4, 4)}


def reference(post: Post, acc: np.ndarray, params: np.ndarray) -> list[list[int]]:
    """The output words of ``post`` from its (count, cols) accumulator rows and its (cols, 3)
    parameter word, by tests/references.py (the signature of sim.postproc.postprocess)."""
    return [
        ref_post_row(
            row, params, requant=post.mode == PostMode.REQUANT,
            out_zero_point=post.out_zero_point, act_min=post.act_min, act_max=post.act_max,
        )
        for row in acc
    ]  # fmt: skip


def param_words(params: np.ndarray) -> list[int]:
    """Parameter buffer words from a (depth, cols, 3) array of (bias, multiplier, shift)."""
    return [int.from_bytes(w.astype("<i4").tobytes(), "little") for w in params]


def out_words(words: np.ndarray) -> list[int]:
    return [int.from_bytes(w.astype(np.int8).tobytes(), "little") for w in words]


def table_words(tables: np.ndarray) -> list[int]:
    """Table buffer words from a (slots, 256) int8 array."""
    flat = tables.astype(np.int8).reshape(-1, TABLE_WORD_BYTES)
    return [int.from_bytes(w.tobytes(), "little") for w in flat]


def out_row(word: int, cols: int) -> list[int]:
    return [int(v) for v in np.frombuffer(word.to_bytes(cols, "little"), np.int8)]


class PostBench(Elaboratable):
    """Accumulator, parameter, output and table buffers and the engine, wired as the top
    wires them."""

    def __init__(self, config, acc, params, out, tables) -> None:
        self.acc = AccumulatorBuffer(config, init=acc)
        self.params = ParamBuffer(config, init=param_words(params))
        self.out = OutputBuffer(config, init=out_words(out))
        self.tables = TableBuffer(config, init=table_words(tables))
        self.engine = PostEngine(config)

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.acc = self.acc
        m.submodules.params = self.params
        m.submodules.out = self.out
        m.submodules.tables = self.tables
        m.submodules.engine = self.engine
        connect(m, self.engine.acc_rd, self.acc.post)
        connect(m, self.engine.param_rd, self.params.post)
        connect(m, self.engine.out_wr, self.out.post)
        connect(m, self.engine.table_rd, self.tables.post)
        return m


class Contents:
    """Random initial contents of the four buffers of ``config``."""

    def __init__(self, config: AccelConfig, rng) -> None:
        cols = config.array.cols
        edges = [INT32_MIN, INT32_MIN + 1, -1, 0, 1, INT32_MAX]
        acc = rng.integers(INT32_MIN, INT32_MAX, (acc_depth(config), cols), endpoint=True)
        acc[rng.random(acc.shape) < 0.3] = rng.integers(-5000, 5000)
        acc[rng.random(acc.shape) < 0.1] = rng.choice(edges)
        self.acc = acc
        depth = ParamBuffer(config).depth
        self.params = np.stack(
            [
                rng.integers(INT32_MIN, INT32_MAX, (depth, cols), endpoint=True),  # bias
                rng.integers(2**30, INT32_MAX, (depth, cols), endpoint=True),  # multiplier
                rng.integers(0, 32, (depth, cols)),  # shift
            ],
            axis=-1,
        )
        self.out = rng.integers(-128, 128, (OutputBuffer(config).depth, cols))
        self.tables = rng.integers(-128, 128, (TABLE_SLOTS, 256))

    def looked_up(self, post: Post, words) -> list[list[int]]:
        """The words through ``post``'s table (the slot modulo the buffer's), if ``lut``."""
        words = [[int(v) for v in word] for word in words]
        if not post.lut:
            return words
        table = self.tables[post.table % TABLE_SLOTS]
        return [[int(table[v + 128]) for v in word] for word in words]


class Run:
    """What the bench saw, cycle by cycle."""

    def __init__(self) -> None:
        self.start: list[int] = []
        self.done: list[int] = []
        self.ready: list[bool] = []
        self.acc_reads: list[tuple[int, int]] = []  # (cycle, addr)
        self.param_reads: list[tuple[int, int]] = []
        self.writes: list[tuple[int, int, list[int]]] = []  # (cycle, addr, word)
        self.memory: list[list[list[int]]] = []  # output buffer contents per cycle


def run_bench(config, posts, offers, contents, cycles, *, seed=0) -> Run:
    """Offer ``posts[k]`` from cycle ``offers[k]`` until taken (random bits on the payload
    when nothing is offered); record everything for ``cycles`` cycles."""
    cols = config.array.cols
    dut = PostBench(config, contents.acc, contents.params, contents.out, contents.tables)
    engine, out = dut.engine, dut.out
    rng = np.random.default_rng([seed, 99])
    run = Run()

    async def bench(ctx):
        taken = 0
        for cycle in range(cycles):
            present = taken < len(posts) and cycle >= offers[taken]
            junk = int(rng.integers(0, 2**62)) << 62 | int(rng.integers(0, 2**62))
            ctx.set(engine.i.valid, present)
            ctx.set(
                engine.i.payload.as_value(),
                raw(posts[taken], POST_LAYOUT) if present else junk & ((1 << POST_LAYOUT.size) - 1),
            )
            ready = bool(ctx.get(engine.i.ready))
            run.ready.append(ready)
            if present and ready:
                run.start.append(cycle)
                taken += 1
            if ctx.get(engine.complete):
                run.done.append(cycle + 1)
            if ctx.get(engine.acc_rd.en):
                run.acc_reads.append((cycle, ctx.get(engine.acc_rd.addr)))
            if ctx.get(engine.param_rd.en):
                run.param_reads.append((cycle, ctx.get(engine.param_rd.addr)))
            if ctx.get(engine.out_wr.en):
                word = [int(v) for v in ctx.get(engine.out_wr.data)]
                run.writes.append((cycle, ctx.get(engine.out_wr.addr), word))
            run.memory.append([out_row(ctx.get(out.data[k]), cols) for k in range(out.depth)])
            await ctx.tick()

    simulate(dut, bench)
    return run


def contract(posts, offers) -> list[timing.EngineTiming]:
    """accel.timing.post_timing chained: instruction k granted from offers[k]."""
    out, free = [], 0
    for post, offer in zip(posts, offers, strict=True):
        t = timing.post_timing(post, offer, free)
        out.append(t)
        free = t.next_start
    return out


def expected_writes(posts, schedule, contents, reference):
    """(cycle, out addr, word) of every output buffer write, words from ``reference``."""
    writes = []
    for post, t in zip(posts, schedule, strict=True):
        acc = contents.acc[post.acc_base : post.acc_base + post.count]
        words = contents.looked_up(post, reference(post, acc, contents.params[post.param_base]))
        for k, word in enumerate(words):
            writes.append(
                (t.start + k + timing.POST_LATENCY, post.out_base + k, [int(v) for v in word])
            )
    return writes


def check(config, posts, offers, seed, *, reference=reference) -> Run:
    """Run the stream and check timing (the contract), ``complete`` (the write strobe of each
    instruction's last word) and data (``reference``, the signature of
    sim.postproc.postprocess), cycle by cycle."""
    rng = np.random.default_rng([seed, 1])
    contents = Contents(config, rng)
    schedule = contract(posts, offers)
    horizon = schedule[-1].done + 3
    run = run_bench(config, posts, offers, contents, horizon, seed=seed)

    # Timing: start, done, every read in its cycle, every write in its cycle.
    assert run.start == [t.start for t in schedule]
    assert run.done == [t.done for t in schedule]
    issues = [
        (t.start + k, p, k) for p, t in zip(posts, schedule, strict=True) for k in range(p.count)
    ]
    assert run.acc_reads == [(c, p.acc_base + k) for c, p, k in issues]
    assert run.param_reads == [(c, p.param_base) for c, p, _ in issues]
    want = expected_writes(posts, schedule, contents, reference)
    assert run.writes == want
    # complete is the write strobe of each instruction's last word, as the RTL wrote it.
    written = {cycle: addr for cycle, addr, _ in run.writes}
    depth = 1 << len(PostEngine(config).out_wr.addr)
    for post, done in zip(posts, run.done, strict=True):
        assert written.get(done - 1) == (post.out_base + post.count - 1) % depth
    # ready: high exactly when no instruction is between its start and next_start.
    busy = {c for t in schedule for c in range(t.start + 1, t.next_start)}
    assert run.ready == [c not in busy for c in range(horizon)]

    # Visibility: in every cycle the output buffer holds the writes of earlier cycles.
    memory = [[int(v) for v in row] for row in contents.out]
    pending = list(want)
    for cycle, seen in enumerate(run.memory):
        while pending and pending[0][0] < cycle:
            _, addr, word = pending.pop(0)
            memory[addr] = word
        assert seen == memory, f"cycle {cycle}"
    assert not pending
    return run


# --- random streams ------------------------------------------------------------------------


def random_post(rng, config) -> Post:
    acc_rows = acc_depth(config)
    out_depth = OutputBuffer(config).depth
    count = int(rng.integers(1, 9))
    lo = int(rng.integers(-128, 128))
    hi = int(rng.integers(lo, 128)) if rng.random() < 0.9 else int(rng.integers(-128, 128))
    return Post(
        mode=PostMode.PASS if rng.random() < 0.3 else PostMode.REQUANT,
        acc_base=int(rng.integers(0, acc_rows - count + 1)),
        count=count,
        param_base=int(rng.integers(0, ParamBuffer(config).depth)),
        out_base=int(rng.integers(0, out_depth - count + 1)),
        out_zero_point=int(rng.integers(-128, 128)),
        act_min=lo,
        act_max=hi,
        lut=int(rng.random() < 0.5),
        table=int(rng.integers(0, TABLE_SLOTS)),
        wait=int(rng.integers(0, 2**16)),
        signal=int(rng.integers(0, 2**16)),
        layer=int(rng.integers(0, 2**16)),
    )


def random_offers(rng, n: int, back_to_back: bool) -> list[int]:
    if back_to_back:
        return [0] * n
    # Gaps of 0 (back to back), a grant while the engine is still busy, or an idle engine.
    return np.cumsum(rng.choice([0, 1, 3, 7, 12], n)).tolist()


def check_random(shape: str, seed: int, back_to_back: bool, *, reference=reference) -> Run:
    """A random stream of 1-4 instructions on ``CONFIGS[shape]``, seeded from the arguments."""
    config = CONFIGS[shape]
    rng = np.random.default_rng([seed, back_to_back, config.array.cols, config.array.rows])
    posts = [random_post(rng, config) for _ in range(int(rng.integers(1, 5)))]
    offers = random_offers(rng, len(posts), back_to_back)
    return check(config, posts, offers, seed, reference=reference)


#: (shape, seed, back_to_back) of the random streams.
RANDOM_STREAMS = pytest.mark.parametrize(
    ("shape", "seed", "back_to_back"),
    [(shape, seed, b2b) for shape in sorted(CONFIGS) for seed in range(4) for b2b in (True, False)],
)


@RANDOM_STREAMS
def test_random_streams_are_cycle_and_bit_exact(shape, seed, back_to_back):
    check_random(shape, seed, back_to_back)


# --- hand-written streams ---------------------------------------------------------------------

#: name -> (shape, instructions, offers, seed)
HAND_WRITTEN = {
    "docstring": (
        "3x4",
        [
            Post(acc_base=4, count=3, param_base=1, out_base=2),
            Post(mode=PostMode.PASS, acc_base=20, count=1, param_base=5, out_base=9, act_min=0),
        ],
        [0, 0],
        5,
    ),
    "four_instructions": (
        "2x2",
        [
            Post(acc_base=0, count=1, param_base=0, out_base=5, out_zero_point=-9),
            Post(mode=PostMode.PASS, acc_base=1, count=1, param_base=3, out_base=6, act_max=0),
            Post(acc_base=2, count=1, param_base=5, out_base=5, act_min=7, act_max=7),
            Post(mode=PostMode.PASS, acc_base=3, count=2, param_base=2, out_base=7, act_min=-3),
        ],
        [0, 0, 0, 0],
        6,
    ),
    "tables": (
        "3x4",
        [
            Post(acc_base=0, count=2, param_base=0, out_base=0, lut=1, table=0),
            Post(acc_base=2, count=1, param_base=1, out_base=2, lut=1, table=1),
            Post(mode=PostMode.PASS, acc_base=3, count=2, out_base=3, lut=1, table=1),
            Post(mode=PostMode.PASS, acc_base=3, count=2, out_base=5, lut=0, table=1),
            Post(acc_base=5, count=1, param_base=2, out_base=7, lut=1, table=0),
        ],
        [0, 0, 0, 0, 0],
        11,
    ),
    "granted_while_busy": (
        "4x4",
        [Post(count=8, out_base=0), Post(acc_base=9, count=2, out_base=8)],
        [2, 4],
        7,
    ),
}


def check_hand_written(name: str, *, reference=reference) -> Run:
    shape, posts, offers, seed = HAND_WRITTEN[name]
    return check(CONFIGS[shape], posts, offers, seed, reference=reference)


def test_the_docstring_cycle_table():
    """hdl/post.py's table: A (count 3) taken in 0, B (count 1) in 3."""
    run = check_hand_written("docstring")
    latency = timing.POST_LATENCY
    assert run.start == [0, 3] and run.done == [3 + latency, 4 + latency]
    assert run.ready[:5] == [True, False, False, True, True]
    assert run.acc_reads == [(0, 4), (1, 5), (2, 6), (3, 20)]
    assert run.param_reads == [(0, 1), (1, 1), (2, 1), (3, 5)]
    writes = [(c, a) for c, a, _ in run.writes]
    assert writes == [(k + latency, a) for k, a in enumerate((2, 3, 4, 9))]


def test_rows_of_four_instructions_follow_each_other_with_no_bubble():
    """One-row instructions back to back: a new instruction (new fields, mode, clamp) in
    every cycle; the same output word written by two of them lands in program order."""
    run = check_hand_written("four_instructions")
    assert run.start == [0, 1, 2, 3]
    assert run.done == [d + timing.POST_LATENCY - 4 for d in (5, 6, 7, 9)]
    assert run.writes[2][2] == [7, 7]


def test_tables_in_both_slots_cost_no_cycle():
    """Instructions with and without a table, in slot 0 and 1, back to back: the timing of
    instructions without one (start = the previous next_start, done = start + count +
    POST_LATENCY) and the words through the right slot (``check``)."""
    run = check_hand_written("tables")
    assert run.start == [0, 2, 3, 5, 7]
    counts = (2, 1, 2, 2, 1)
    assert run.done == [s + c + timing.POST_LATENCY for s, c in zip(run.start, counts, strict=True)]
    # The same rows, PASS, with and without the table: written differently.
    words = {addr: word for _, addr, word in run.writes}
    assert [words[3], words[4]] != [words[5], words[6]]


def test_an_instruction_granted_while_busy_waits_for_next_start():
    run = check_hand_written("granted_while_busy")
    assert run.start == [2, 10]
    assert run.ready[2:11] == [True] + [False] * 7 + [True]


def run_wrapping(reference=reference):
    """A POST whose fields are wider than the addresses: they wrap (row 31 is followed by
    row 0 of a 32-row accumulator buffer). Returns the run and the expected writes."""
    config = CONFIGS["2x2"]
    engine = PostEngine(config)
    acc_bits, param_bits, out_bits = (
        len(engine.acc_rd.addr),
        len(engine.param_rd.addr),
        len(engine.out_wr.addr),
    )
    assert (acc_bits, param_bits, out_bits) == (5, 3, 5)
    post = Post(
        acc_base=(1 << 20) - 2,
        count=4,
        param_base=(1 << 16) - (1 << param_bits) + 4,
        out_base=(1 << 20) - (1 << out_bits) + 3,
    )
    rng = np.random.default_rng(8)
    contents = Contents(config, rng)
    run = run_bench(config, [post], [1], contents, 12)
    rows = contents.acc[[30, 31, 0, 1]]
    words = contents.looked_up(post, reference(post, rows, contents.params[4]))
    return run, [
        (1 + timing.POST_LATENCY + k, 3 + k, [int(v) for v in w]) for k, w in enumerate(words)
    ]


def test_addresses_wrap_modulo_the_port_widths():
    """Instruction fields are wider than the addresses: they wrap (row 31 is followed by
    row 0 of a 32-row accumulator buffer)."""
    run, writes = run_wrapping()
    assert run.start == [1] and run.done == [1 + 4 + timing.POST_LATENCY]
    assert run.acc_reads == [(1, 30), (2, 31), (3, 0), (4, 1)]
    assert run.param_reads == [(c, 4) for c in range(1, 5)]
    assert run.writes == writes


# --- interface -------------------------------------------------------------------------------


def test_ports_connect_to_the_compute_engine_and_the_buffers():
    """The signatures are exactly those of the ports the top connects them to."""
    config = CONFIGS["3x4"]
    engine = PostEngine(config)
    m = Module()
    connect(m, engine.acc_rd, ComputeEngine(config).post_rd)
    connect(m, engine.acc_rd, AccumulatorBuffer(config).post)
    connect(m, engine.param_rd, ParamBuffer(config).post)
    connect(m, engine.out_wr, OutputBuffer(config).post)
    connect(m, engine.table_rd, TableBuffer(config).post)
    assert engine.i.payload.shape() == POST_LAYOUT
    assert engine.latency == timing.POST_LATENCY
    assert set(ports(engine)) == {
        "i_valid", "i_ready", "i_payload", "complete",
        *(f"{p}_{m}" for p in ("acc_rd", "param_rd", "out_wr") for m in ("addr", "en", "data")),
        "table_rd_addr", "table_rd_data",
    }  # fmt: skip


def test_constructor_rejects_a_bad_config(monkeypatch):
    with pytest.raises(TypeError, match=r"config must be an AccelConfig, not 'tiny'"):
        PostEngine("tiny")
    monkeypatch.setattr(timing, "POST_LATENCY", 5)
    with pytest.raises(ValueError, match=r"POST_LATENCY = 5, but the post engine takes 1 .* 6"):
        PostEngine(CONFIGS["2x2"])


# --- Verilog ----------------------------------------------------------------------------------

VERILOG_CONFIG = CONFIGS["3x4"]


@functools.cache
def converted() -> str:
    return verilog(PostEngine(VERILOG_CONFIG), "post")


def test_verilog_is_deterministic_with_single_underscore_ports():
    text = converted()
    assert text == verilog(PostEngine(VERILOG_CONFIG), "post")
    assert f"digest {VERILOG_CONFIG.digest}" in text
    header = re.search(r"module post\((.*?)\);", text, re.S).group(1)
    names = {name.strip() for name in header.split(",")}
    assert names - {"clk", "rst"} == set(ports(PostEngine(VERILOG_CONFIG)))
    assert not any("__" in name for name in names)


def test_verilog_is_the_same_in_another_process_with_another_hash_seed():
    script = "from tests.test_hdl_post import converted\nprint(converted(), end='')\n"
    texts = verilog_in_fresh_processes(script, ("5", "6"))
    assert texts[0] == texts[1] == converted()


def test_verilator_lint_passes(tmp_path):
    assert_lints_clean(converted(), "post", tmp_path)
