# amaranth: UnusedElaboratable=no
"""hdl.compute, hdl.accumulator: the compute engine against accel.timing, sim.trace and the
model's data path.

An equivalence test (it sees :mod:`sim` and :mod:`hdl` together) rather than a block test
because one simulation of the engine is checked against the contract, the trace model and the
model's data path at once: the contract alone would need the same bench again (each example
of the random streams is a whole engine run), so the comparisons share it. The block-only
tests of the engine and the accumulator (construction, the accumulator against a Python
model, Verilog) are in tests/test_hdl_compute.py.

Every test runs a stream of COMPUTE instructions on the engine with its input and weight
buffers (``amaranth.lib.memory``, preloaded), all semaphores available from cycle 0 (the
controller grants an instruction whenever the engine is ready), and checks

* per instruction, the cycle it is taken (``start``) and its ``done`` pulse equal
  ``accel.timing.compute_timing`` (earliest 0, the running ``ComputeState``) and
  ``sim.trace.trace_schedule`` on the same stream;
* per pass, the weight-buffer reads (``wl[j] + i``, address ``w_base + j*rows + i``) and the
  feed cycles (``f[j] + v``; the array's switch on ``f[j]``) equal the recurrences of the
  accel.timing docstring, themselves checked against ``compute_timing``;
* the final accumulator contents, read through the POST port, equal what ``sim/run.py``'s data
  path computes (``read_windows``, ``weight_tiles`` / ``array_sums``, ``vector_result``) from
  the same initial buffers, element for element.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
import pytest
from amaranth.hdl import Elaboratable, Module, signed
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory, MemoryData
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from accel import isa, timing, window
from accel.config import AccelConfig
from accel.isa import Compute, ComputeMode, Engine
from hdl.accumulator import acc_depth
from hdl.array import WEIGHT_READ_LATENCY
from hdl.buffers import InputBuffer, WeightBuffer
from hdl.compute import ComputeEngine, weight_addr_bits
from sim import array as model_array
from sim import vector
from sim import window as sim_window
from sim.controller import schedule
from sim.trace import trace_schedule
from tests.hdl_support import raw, simulate
from tests.references import INT32_MAX, INT32_MIN
from tests.test_hdl_compute import ACC_ROWS, INPUT_WORDS, WEIGHT_WORDS, make_config

SHAPES = [(2, 2), (3, 4), (4, 4)]
RANDOM_SHAPES = [*SHAPES, (4, 3)]  # rows > cols: the vector unit has cols lanes


# --- the harness --------------------------------------------------------------------------


class Harness(Elaboratable):
    """The engine with its input and weight buffers: plain memories, or (``sram``) the
    buffers of :mod:`hdl.buffers` that the DMA fills."""

    def __init__(self, config: AccelConfig, inputs, weights, acc, *, sram=False) -> None:
        rows, cols = config.array.rows, config.array.cols
        self.engine = ComputeEngine(config, acc_init=acc)
        self.sram = None
        if sram:

            def words(array):
                return [int.from_bytes(w.astype(np.int8).tobytes(), "little") for w in array]

            self.sram = (
                InputBuffer(config, init=words(inputs)),
                WeightBuffer(config, init=words(weights)),
            )
        self.inputs = MemoryData(
            shape=data.ArrayLayout(signed(8), rows),
            depth=len(inputs),
            init=[[int(v) for v in word] for word in inputs],
        )
        self.weights = MemoryData(
            shape=data.ArrayLayout(signed(8), cols),
            depth=len(weights),
            init=[[int(v) for v in word] for word in weights],
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.engine = engine = self.engine
        if self.sram is not None:
            m.submodules.inputs, m.submodules.weights = inputs, weights = self.sram
            wiring.connect(m, engine.input_rd, inputs.window)
            wiring.connect(m, engine.weight_rd, weights.loader)
            if "is_rd" in engine.signature.members:  # the input-stationary reader's port
                wiring.connect(m, engine.is_rd, inputs.transpose)
            return m
        m.submodules.inputs = inputs = Memory(data=self.inputs)
        m.submodules.weights = weights = Memory(data=self.weights)
        wiring.connect(m, engine.input_rd, inputs.read_port())
        wiring.connect(m, engine.weight_rd, weights.read_port())
        if "is_rd" in engine.signature.members:
            wiring.connect(m, engine.is_rd, inputs.read_port())
        return m


@dataclass
class Run:
    """What the engine did, cycle by cycle."""

    starts: list[int] = field(default_factory=list)
    dones: list[int] = field(default_factory=list)
    completes: list[int] = field(default_factory=list)
    weight_reads: dict[int, int] = field(default_factory=dict)  # cycle -> address
    # cycle -> (row, weights) of each shadow-register write on the array's w port
    weight_writes: dict[int, tuple[int, list[int]]] = field(default_factory=dict)
    array_feeds: dict[int, bool] = field(default_factory=dict)  # cycle -> switch
    vector_feeds: list[int] = field(default_factory=list)
    os_steps: dict[int, list[int]] = field(default_factory=dict)  # cycle -> weights
    probed: dict[tuple[int, int], list[int]] = field(default_factory=dict)  # value per cycle
    # cycle -> row of each write to the accumulator's last bank (column cols - 1), as its
    # ports show it: an array sum on a[cols - 1] is written ACC_LATENCY later, a vector
    # unit's row (v_wr) in its cycle, to the row read VECTOR_LATENCY earlier.
    last_bank_writes: dict[int, int | None] = field(default_factory=dict)
    acc: np.ndarray | None = None  # final contents, read through the POST port


def run_engine(
    config, instrs, inputs, weights, acc, *, earliest=None, probes=(), sram=False, os_steps=False
) -> Run:
    """Offer the instructions in order, instruction k from cycle ``earliest[k]`` on (default
    0: all semaphores available); run until every one is done, then read the accumulators.
    ``probes``: (column, row) accumulators whose visible value is recorded every cycle;
    ``os_steps``: record the weights of every output-stationary step (an "os" machine)."""
    harness = Harness(config, inputs, weights, acc, sram=sram)
    dut = harness.engine
    earliest = earliest or [0] * len(instrs)
    depth = acc_depth(config)
    run = Run()
    limit = (
        40
        + max(earliest or [0])
        + sum(  # input-stationary k tiles: each streams its words past every stationary tile
            i.passes * i.k_tiles * (max(i.pixels, timing.VECTOR_MIN_PASS) + config.array.rows)
            for i in instrs
        )
        + len(instrs) * (2 * config.array.rows + config.array.cols + 8)
    )

    vector_reads: dict[int, int] = {}

    async def bench(ctx):
        cycle = 0
        while len(run.dones) < len(instrs) or cycle <= run.dones[-1] + 2:
            assert cycle < limit, f"stuck: {run}"
            k = len(run.starts)
            offer = k < len(instrs) and cycle >= earliest[k]
            ctx.set(dut.i.valid, offer)
            ctx.set(dut.i.payload.as_value(), raw(instrs[k]) if k < len(instrs) else 0)
            if ctx.get(dut.start):
                assert offer
                run.starts.append(cycle)
            if ctx.get(dut.done):
                run.dones.append(cycle)
            if ctx.get(dut.complete):
                run.completes.append(cycle)
            if ctx.get(dut.weight_rd.en):
                run.weight_reads[cycle] = ctx.get(dut.weight_rd.addr)
            if ctx.get(dut.array.w.valid):
                w = dut.array.w.payload
                run.weight_writes[cycle] = (ctx.get(w.row), [int(v) for v in ctx.get(w.data)])
            if ctx.get(dut.array.i.valid):
                run.array_feeds[cycle] = bool(ctx.get(dut.array.i.payload.switch))
            if ctx.get(dut.vector.i.valid):
                run.vector_feeds.append(cycle)
            if os_steps and ctx.get(dut.array.os_i.valid):
                run.os_steps[cycle] = [int(v) for v in ctx.get(dut.array.os_i.payload.w)]
            acc = dut.accumulator
            if ctx.get(acc.a[-1].valid):
                run.last_bank_writes[cycle + timing.ACC_LATENCY] = ctx.get(acc.a[-1].payload.addr)
            if ctx.get(acc.v_rd.valid):
                vector_reads[cycle] = ctx.get(acc.v_rd.payload.addr)
            if ctx.get(acc.v_wr.valid):
                run.last_bank_writes[cycle] = vector_reads.get(cycle - timing.VECTOR_LATENCY)
            for c, row in probes:
                run.probed.setdefault((c, row), []).append(ctx.get(dut.accumulator.banks[c][row]))
            await ctx.tick()
            cycle += 1
        ctx.set(dut.i.valid, 0)
        # Every row through the POST port: address in cycle k, data in k + 1.
        rows = []
        ctx.set(dut.post_rd.en, 1)
        for row in range(depth):
            ctx.set(dut.post_rd.addr, row)
            await ctx.tick()
            rows.append([int(v) for v in ctx.get(dut.post_rd.data)])
        assert ctx.get(dut.accumulator.banks[0][depth - 1]) == rows[-1][0]
        run.acc = np.array(rows, dtype=np.int64)

    simulate(harness, bench)
    return run


# --- what the contract and the model say --------------------------------------------------


@dataclass
class Expected:
    start: int
    done: int
    passes: list[tuple[int | None, int]]  # (wl, f) per pass; wl None in vector modes


def contract(instrs: list[Compute], config: AccelConfig) -> list[Expected]:
    """Per-pass weight-load and feed cycles by the recurrences of the accel.timing docstring,
    checked against compute_timing's start, first/last feed and done."""
    rows, cols = config.array.rows, config.array.cols
    state = timing.ComputeState()
    out = []
    for instr in instrs:
        t = timing.compute_timing(instr, 0, state, config)
        T = instr.pixels
        vector_mode = timing.is_vector(instr.mode)
        stream_free = state.stream_free
        if timing.compute_unit(instr) != state.unit:
            stream_free = max(stream_free, state.done)
        passes: list[tuple[int | None, int]] = []
        if vector_mode:
            slot = max(T, timing.VECTOR_MIN_PASS)
            first = max(t.take + 1, stream_free)
            passes = [(None, first + j * slot) for j in range(instr.passes)]
            done = passes[-1][1] + T - 1 + timing.VECTOR_LATENCY + 1
        else:
            wl_prev, f_prev = state.last_weight_load, state.last_feed
            for j in range(instr.passes):
                if j == 0:
                    wl = max(t.take, wl_prev + rows, f_prev)
                    f = max(wl + 1, stream_free)
                else:
                    wl = max(wl_prev + rows, f_prev)
                    f = max(wl + 1, f_prev + T)
                passes.append((wl, f))
                wl_prev, f_prev = wl, f
            done = passes[-1][1] + T - 1 + rows + cols - 1 + timing.ACC_LATENCY + 1
        assert (passes[0][1], passes[-1][1], done) == (t.first_feed, t.last_feed, t.done)
        out.append(Expected(t.start, t.done, passes))
        state = t.state
    return out


def model_acc(config, instrs, inputs, weights, acc) -> np.ndarray:
    """The accumulators after the instructions, as sim/run.py's data path computes them."""
    return model_states(config, instrs, inputs, weights, acc)[-1]


def model_states(config, instrs, inputs, weights, acc) -> list[np.ndarray]:
    """The accumulators after each instruction (sim/run.py's data path, in program order)."""
    rows = config.array.rows
    lanes = min(rows, config.array.cols)
    acc = np.array(acc, dtype=np.int32)
    states = []
    for instr in instrs:
        target = acc[instr.acc_base : instr.acc_base + instr.pixels]
        windows = sim_window.read_windows(instr, inputs)
        if instr.mode == ComputeMode.ARRAY:  # k tile q: its columns from acc_base + q*k_stride
            tiles = model_array.weight_tiles(instr, weights, rows)
            sums = model_array.array_sums(windows, tiles)
            cols = config.array.cols
            for q in range(instr.k_tiles):
                base = instr.acc_base + q * instr.k_stride
                target = acc[base : base + instr.pixels]
                part = sums[:, q * cols : (q + 1) * cols]
                target[...] = (part + target if instr.accumulate else part).astype(np.int32)
        else:
            result = vector.vector_result(instr, windows[..., :lanes], target[:, :lanes])
            target[:, :lanes] = result.astype(np.int32)
            target[:, lanes:] = 0
        states.append(acc.astype(np.int64))
    return states


def buffers(config, rng):
    rows, cols = config.array.rows, config.array.cols
    inputs = rng.integers(-128, 128, (INPUT_WORDS, rows), dtype=np.int8)
    weights = rng.integers(-128, 128, (WEIGHT_WORDS, cols), dtype=np.int8)
    acc = rng.integers(INT32_MIN, INT32_MAX + 1, (ACC_ROWS, cols), dtype=np.int64)
    return inputs, weights, acc


def acc_hazards(
    instrs: list[Compute], config: AccelConfig, want: list[Expected]
) -> tuple[list[int], list[int]]:
    """Cycles where the contract's schedule makes a word read an accumulator row whose value
    it uses (not an overwriting first pass): (reads before the row's previous write lands,
    reads in the cycle of that write). The engine's RMW read port is write-transparent, so
    the second are legal (docs/timing.md, "Accumulator hazards"); the first are a hazard of
    the program, which the model rejects."""
    rows = config.array.rows
    written: dict[int, int] = {}
    early, same = [], []
    for instr, e in zip(instrs, want, strict=True):
        for j, (wl, f) in enumerate(e.passes):
            uses = j > 0 or bool(instr.accumulate)
            for v in range(instr.pixels):
                row = instr.acc_base + v
                read = f + v if wl is None else f + v + rows  # column 0; the others alike
                if uses and written.get(row, -1) > read:
                    early.append(read)
                elif uses and written.get(row, -1) == read:
                    same.append(read)
                written[row] = read + (timing.VECTOR_LATENCY if wl is None else timing.ACC_LATENCY)
    return early, same


def run_timed(config, instrs, starts, dones, inputs, weights, acc, **options) -> Run:
    """The engine on ``instrs`` (:func:`run_engine` with ``options``), its start, done and
    complete (``done - 1``) per instruction checked against ``starts`` and ``dones`` (the
    contract) and against the model's cycle-stepped trace mode."""
    run = run_engine(config, instrs, inputs, weights, acc, **options)
    assert run.starts == list(starts)
    assert run.dones == list(dones)
    assert run.completes == [d - 1 for d in dones]
    streams = {e: [] for e in Engine}
    streams[Engine.COMPUTE] = list(instrs)
    sched = trace_schedule(streams, config)  # exact hazard check: none here
    assert run.starts == sched.start[Engine.COMPUTE]
    assert run.dones == sched.done[Engine.COMPUTE]
    return run


def check(config, instrs, rng) -> Run:
    """Run the stream and check timing (contract and trace model) and data (model)."""
    rows = config.array.rows
    want = contract(instrs, config)
    early, _ = acc_hazards(instrs, config, want)
    assert not early, "the stream reads an accumulator row before its write"
    inputs, weights, acc = buffers(config, rng)
    cols = config.array.cols
    last_rows = {instr.acc_base + instr.pixels - 1 for instr in instrs}
    probes = [(c, row) for row in sorted(last_rows) for c in range(cols)]
    starts, dones = [e.start for e in want], [e.done for e in want]
    run = run_timed(config, instrs, starts, dones, inputs, weights, acc, probes=probes)
    # Each complete is the accumulator's write of its instruction's last row.
    depth = acc_depth(config)
    for instr, complete in zip(instrs, run.completes, strict=True):
        assert run.last_bank_writes.get(complete) == (instr.acc_base + instr.pixels - 1) % depth
    # Per pass: weight reads and feeds.
    bits = weight_addr_bits(config)
    reads, writes, array_feeds, vector_feeds = {}, {}, {}, []
    for instr, e in zip(instrs, want, strict=True):
        for j, (wl, f) in enumerate(e.passes):
            if wl is not None:
                for i in range(rows):
                    # Row i of pass j is due in wl + i: the loader reads it a cycle ahead
                    # (its read port registered) and writes it into the array a cycle after.
                    addr = (instr.w_base + j * rows + i) % 2**bits
                    reads[wl + i - 1] = addr
                    writes[wl + i + WEIGHT_READ_LATENCY] = (i, [int(v) for v in weights[addr]])
                array_feeds.update({f + v: v == 0 for v in range(instr.pixels)})
            else:
                vector_feeds += [f + v for v in range(instr.pixels)]
    # The loader reads ahead speculatively (its port reads every cycle): the rows due are
    # among its reads, and exactly the rows due reach the array, in their cycles.
    assert {cycle: run.weight_reads.get(cycle) for cycle in reads} == reads
    assert run.weight_writes == writes
    assert run.array_feeds == array_feeds
    assert run.vector_feeds == sorted(vector_feeds)
    states = model_states(config, instrs, inputs, weights, acc)
    np.testing.assert_array_equal(run.acc, states[-1], strict=True)
    # The last pixel's row holds the instruction's result from its done on (column c of an
    # ARRAY instruction cols - 1 - c cycles earlier: the exits are skewed).
    for instr, e, state in zip(instrs, want, states, strict=True):
        row = instr.acc_base + instr.pixels - 1
        for c in range(cols):
            visible = e.done - (0 if timing.is_vector(instr.mode) else cols - 1 - c)
            assert run.probed[c, row][visible] == state[row, c]
    return run


# --- instruction streams ------------------------------------------------------------------


def fit(instr: Compute) -> Compute:
    """``instr`` with ``in_base`` and ``in_base_b`` moved so every read is in the buffer."""
    addr, valid = window.feed_addresses(isa.with_fields(instr, in_base=0, in_base_b=0))
    span = int(addr[valid].max()) + 1 if valid.any() else 1
    assert span <= INPUT_WORDS, instr
    room = INPUT_WORDS - span + 1
    return isa.with_fields(instr, in_base=instr.in_base % room, in_base_b=instr.in_base_b % room)


MULTIPLIERS = [0, 1, (1 << 30) - 1, 1 << 30, 1518500250, (1 << 31) - 1]


@st.composite
def computes(draw, config: AccelConfig):
    rows = config.array.rows
    mode = draw(st.sampled_from([ComputeMode.ARRAY] * 3 + list(ComputeMode)[1:]))
    out_h, out_w = draw(st.integers(1, 3)), draw(st.integers(1, 4))
    ct = draw(st.integers(1, 2))
    kh, kw = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    passes = 2 if mode == ComputeMode.VADD else ct * kh * kw
    mul = int(mode == ComputeMode.VADD and draw(st.booleans()))  # VMUL
    instr = Compute(
        mode=mode,
        mul=mul,
        broadcast_b=draw(st.integers(0, 1)),  # ignored outside VADD
        accumulate=0 if mul else draw(st.integers(0, 1)),
        in_base=draw(st.integers(0, INPUT_WORDS - 1)),
        in_base_b=draw(st.integers(0, INPUT_WORDS - 1)),
        ct_count=ct,
        ct_stride=draw(st.integers(0, 12)),
        tile_w=draw(st.integers(1, 6)),
        out_h=out_h,
        out_w=out_w,
        origin_h=draw(st.integers(-1, 1)),
        origin_w=draw(st.integers(-1, 1)),
        image_h=draw(st.integers(1, 5)),
        image_w=draw(st.integers(1, 5)),
        stride_h=draw(st.integers(1, 2)),
        stride_w=draw(st.integers(1, 2)),
        dil_h=draw(st.integers(1, 2)),
        dil_w=draw(st.integers(1, 2)),
        kernel_h=kh,
        kernel_w=kw,
        w_base=draw(st.integers(0, WEIGHT_WORDS - passes * rows)),
        acc_base=draw(st.integers(0, ACC_ROWS - out_h * out_w)),
        pad_value=draw(st.integers(-128, 127)),
        zero_point_a=draw(st.integers(-128, 127)),
        zero_point_b=draw(st.integers(-128, 127)),
        multiplier_a=draw(st.sampled_from(MULTIPLIERS) | st.integers(0, (1 << 31) - 1)),
        shift_a=draw(st.sampled_from([0, 1, 20, 31]) | st.integers(0, 31)),
        multiplier_b=draw(st.sampled_from(MULTIPLIERS) | st.integers(0, (1 << 31) - 1)),
        shift_b=draw(st.sampled_from([0, 1, 20, 31]) | st.integers(0, 31)),
    )
    return fit(instr)


@st.composite
def streams(draw):
    rows, cols = draw(st.sampled_from(RANDOM_SHAPES))
    config = make_config(rows, cols)
    return config, draw(st.lists(computes(config), min_size=1, max_size=4))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams(), st.integers(0, 2**32 - 1))
def test_compute_random_streams_match_the_contract_the_trace_and_the_model(stream, seed):
    config, instrs = stream
    early, same = acc_hazards(instrs, config, contract(instrs, config))
    assume(not early)
    rows = config.array.rows
    for a, b in itertools.pairwise(instrs):
        event(f"{'vector' if a.mode else 'array'} then {'vector' if b.mode else 'array'}")
    for instr in instrs:
        if instr.mode == ComputeMode.ARRAY:
            event(f"array pass with T {'<' if instr.pixels < rows else '>='} rows")
    if same:
        event("a row read in the cycle of its write")
    check(config, instrs, np.random.default_rng(seed))


# --- hand-written streams -------------------------------------------------------------------

V = ComputeMode
CONV = dict(  # a padded, strided, dilated 2x3 kernel over two channel tiles
    ct_count=2, ct_stride=30, tile_w=6, out_h=2, out_w=2, origin_h=-1, origin_w=-1,
    image_h=4, image_w=4, stride_h=2, stride_w=1, dil_h=1, dil_w=2, kernel_h=2, kernel_w=3,
)  # fmt: skip
POOL = Compute(
    mode=V.VMAX, kernel_h=2, kernel_w=2, out_h=2, out_w=2, tile_w=5, image_h=2, image_w=4,
    origin_h=-1, stride_h=2, stride_w=2, pad_value=-128, acc_base=8,
)  # fmt: skip
ADD = Compute(
    mode=V.VADD, out_w=3, in_base=20, in_base_b=30, zero_point_a=-7, zero_point_b=100,
    multiplier_a=1518500250, shift_a=1, multiplier_b=(1 << 31) - 1, shift_b=3, accumulate=1,
    acc_base=16,
)  # fmt: skip
PATTERNS = {
    # T < rows: the weight port sets the pace (f = wl + 1 after the first pass).
    "short": lambda rows: [
        Compute(ct_count=3, acc_base=0, w_base=1),
        Compute(ct_count=2, out_w=rows - 1, acc_base=2, w_base=0, in_base=9),
    ],
    # T >= rows: passes back to back, a load in the cycle its predecessor starts feeding.
    "long": lambda rows: [
        Compute(ct_count=3, out_w=rows, acc_base=0, in_base=4),
        Compute(ct_count=3, out_h=2, out_w=rows + 1, acc_base=10, w_base=5, ct_stride=3),
    ],
    "accumulate": lambda rows: [
        Compute(ct_count=2, out_w=3, acc_base=5, in_base=1),
        Compute(kernel_w=2, out_w=3, acc_base=5, accumulate=1, w_base=2 * rows, in_base=7),
        Compute(out_w=3, acc_base=6, accumulate=1, w_base=4 * rows),
    ],
    "conv": lambda rows: [
        Compute(**CONV, in_base=3, acc_base=1, w_base=0, pad_value=-3),
        Compute(**CONV, in_base=5, acc_base=1, w_base=1, accumulate=1, pad_value=5),
    ],
    # A vector instruction after an array one and back, each waiting for the other's done.
    "units": lambda rows: [
        Compute(ct_count=2, out_h=2, out_w=3, acc_base=0),
        POOL,
        ADD,
        Compute(ct_count=2, out_w=rows + 1, acc_base=0, accumulate=1, w_base=rows),
        Compute(mode=V.VSUM, kernel_w=3, out_w=2, zero_point_a=-128, acc_base=20),
    ],
    # Vector slots: T < VECTOR_MIN_PASS pads the slot, T >= it does not.
    "vector": lambda rows: [
        Compute(mode=V.VSUM, ct_count=3, ct_stride=1, acc_base=0, zero_point_a=3),
        Compute(mode=V.VMAX, kernel_w=2, out_w=2, acc_base=1, accumulate=1),
        Compute(mode=V.VADD, acc_base=4, multiplier_a=1 << 30, multiplier_b=1 << 30, shift_b=31),
        Compute(mode=V.VADD, out_w=5, acc_base=5, in_base_b=40, multiplier_a=1, shift_a=0),
    ],
    # Consecutive vector instructions on overlapping rows at the contract's limit: each one's
    # first two words read, in the very cycle they land, the rows the previous one's last two
    # words write (docs/timing.md, "Accumulator hazards"; one row further is rejected).
    "overlap": lambda rows: [
        Compute(mode=V.VSUM, out_w=3, acc_base=0, zero_point_a=5),
        Compute(mode=V.VSUM, out_w=3, acc_base=1, accumulate=1, zero_point_a=-9),
        Compute(mode=V.VMAX, out_w=3, acc_base=2, accumulate=1, pad_value=0),
    ],
}


@pytest.mark.parametrize("pattern", sorted(PATTERNS))
@pytest.mark.parametrize(("rows", "cols"), SHAPES)
def test_compute_streams_match_the_contract_the_trace_and_the_model(rows, cols, pattern):
    config = make_config(rows, cols)
    instrs = [fit(i) for i in PATTERNS[pattern](rows)]
    rng = np.random.default_rng([rows, cols, sorted(PATTERNS).index(pattern)])
    run = check(config, instrs, rng)
    want = contract(instrs, config)
    passes = [p for e in want for p in e.passes]
    if pattern == "overlap":  # the reads in the cycle of the write did happen
        _, same = acc_hazards(instrs, config, want)
        assert len(same) == 4
        with pytest.raises(timing.HazardError, match=r"COMPUTE\[1\] .* before COMPUTE\[0\]"):
            streams = {e: [] for e in Engine}
            streams[Engine.COMPUTE] = [instrs[0], isa.with_fields(instrs[1], acc_base=2)]
            schedule(streams, config)
    if pattern == "long":  # bubble-free, and wl[j] = f[j-1] is reached
        fed = sorted(run.array_feeds)
        assert fed == list(range(fed[0], fed[0] + len(fed)))
        assert any(b[0] == a[1] for a, b in itertools.pairwise(passes))
    if pattern == "short":  # the tightest load-to-feed distance
        assert all(f == wl + 1 for wl, f in passes)
    if pattern == "units":  # each unit switch waits for the previous instruction's done
        switches = 0
        for a, b, ea, eb in zip(instrs, instrs[1:], want, want[1:], strict=False):
            if timing.is_vector(a.mode) != timing.is_vector(b.mode):
                assert eb.passes[0][1] == ea.done
                switches += 1
        assert switches == 3


def test_compute_reads_a_row_in_the_cycle_of_its_write():
    """ARRAY passes one cycle apart (T = 1, after a long instruction) read an accumulator row in
    the cycle the previous pass writes it, and so do two instructions whose last and first
    pixel share a row. The contract allows both; the RMW read port is write-transparent, so
    the sums are right, and the model's hazard checks (exact) accept these streams."""
    config = make_config(2, 2)
    instrs = [
        Compute(out_w=8, acc_base=0),
        Compute(ct_count=2, acc_base=20, w_base=2),
        Compute(out_w=4, acc_base=20, in_base=3, w_base=6),
        Compute(out_w=2, acc_base=23, accumulate=1, in_base=9),
    ]
    early, same = acc_hazards(instrs, config, contract(instrs, config))
    assert not early and len(same) == 2
    check(config, instrs, np.random.default_rng(5))


@pytest.mark.parametrize(
    "instr",
    [
        Compute(ct_count=2, out_w=3, image_w=8, acc_base=4, in_base=1),
        Compute(mode=V.VSUM, kernel_w=2, out_w=4, image_w=8, acc_base=4, zero_point_a=-1),
        Compute(
            mode=V.VADD,
            out_w=2,
            image_w=8,
            acc_base=4,
            in_base_b=9,
            multiplier_a=1 << 30,
            multiplier_b=(1 << 31) - 1,
        ),
        Compute(mode=V.VADD, mul=1, out_w=2, image_w=8, acc_base=4, in_base_b=9, zero_point_b=3),
        Compute(
            mode=V.VADD,
            mul=1,
            broadcast_b=1,
            out_w=3,
            image_w=8,
            acc_base=4,
            in_base_b=9,
            zero_point_a=-2,
        ),
    ],
    ids=["array", "vsum", "vadd", "vmul", "vmul-broadcast"],
)
@pytest.mark.parametrize(("rows", "cols"), SHAPES)
def test_compute_done_is_the_first_cycle_the_last_write_is_visible(rows, cols, instr):
    """The last write of an instruction (its last pixel's row, last column) becomes visible
    exactly in ``done``; column c of an ARRAY instruction ``cols - 1 - c`` cycles earlier."""
    config = make_config(rows, cols)
    inputs, weights, acc = buffers(config, np.random.default_rng([rows, cols, instr.mode]))
    inputs[inputs == 0] = 1  # every word contributes
    weights[weights == 0] = 1
    row = instr.acc_base + instr.pixels - 1
    lanes = cols if instr.mode == ComputeMode.ARRAY else min(rows, cols)
    run = run_engine(config, [instr], inputs, weights, acc, probes=[(c, row) for c in range(lanes)])
    (done,) = run.dones
    final = model_acc(config, [instr], inputs, weights, acc)
    for c in range(lanes):
        visible = done - (0 if timing.is_vector(instr.mode) else cols - 1 - c)
        values = run.probed[c, row]
        assert values[visible] == final[row, c] != values[visible - 1]
        assert set(values[visible:]) == {final[row, c]}


def test_compute_vmul_streams_match_the_contract_the_trace_and_the_model():
    """VMUL (VADD with ``mul``), same shape and with operand b broadcast over the tile, after
    an ARRAY pass and a VADD, on rows that follow each other: data, starts and dones."""
    config = make_config(3, 4)
    instrs = [
        fit(i)
        for i in [
            Compute(ct_count=2, out_w=4, acc_base=0),
            Compute(mode=V.VADD, mul=1, out_h=2, out_w=3, tile_w=3, image_h=2, image_w=3,
                    in_base=0, in_base_b=20, zero_point_a=-128, zero_point_b=127, acc_base=8),
            Compute(mode=V.VADD, mul=1, broadcast_b=1, out_h=2, out_w=2, tile_w=2, image_h=2,
                    image_w=2, in_base=4, in_base_b=31, zero_point_a=5, acc_base=16),
            Compute(mode=V.VADD, out_w=2, acc_base=24, in_base_b=7, multiplier_a=1 << 30,
                    multiplier_b=1 << 30),
            Compute(mode=V.VADD, mul=1, broadcast_b=1, out_w=1, acc_base=30, in_base_b=3),
        ]
    ]  # fmt: skip
    run = check(config, instrs, np.random.default_rng(12))
    assert run.dones == [e.done for e in contract(instrs, config)]


def test_compute_runs_on_the_dma_buffers():
    """The engine's read ports connect straight to hdl.buffers' InputBuffer.window and
    WeightBuffer.loader (same signatures, same one-cycle read)."""
    config = make_config(3, 4)
    instrs = [fit(i) for i in PATTERNS["units"](3)]
    inputs, weights, acc = buffers(config, np.random.default_rng(9))
    run = run_engine(config, instrs, inputs, weights, acc, sram=True)
    assert run.dones == [e.done for e in contract(instrs, config)]
    np.testing.assert_array_equal(
        run.acc, model_acc(config, instrs, inputs, weights, acc), strict=True
    )


@pytest.mark.parametrize(("rows", "cols"), SHAPES)
def test_compute_starts_when_granted(rows, cols):
    """Instructions whose semaphores arrive late (the controller offers instruction k from
    cycle ``earliest[k]``) start in ``compute_timing(instr, earliest[k], state).start``, and
    every later cycle follows."""
    config = make_config(rows, cols)
    instrs = [fit(i) for i in PATTERNS["units"](rows)]
    earliest = [3, 4, 60, 61, 75]
    inputs, weights, acc = buffers(config, np.random.default_rng(rows * cols))
    run = run_engine(config, instrs, inputs, weights, acc, earliest=earliest)
    state = timing.ComputeState()
    starts, dones = [], []
    for instr, e in zip(instrs, earliest, strict=True):
        t = timing.compute_timing(instr, e, state, config)
        starts.append(t.start)
        dones.append(t.done)
        state = t.state
    assert run.starts == starts and run.dones == dones
    assert starts[0] == 3 and starts[2] == 60  # waited for the grant, not for the engine
    np.testing.assert_array_equal(
        run.acc, model_acc(config, instrs, inputs, weights, acc), strict=True
    )
