# amaranth: UnusedElaboratable=no
"""hdl.dma, hdl.dram, hdl.buffers: bit-exact to sim.dma, cycle-exact to accel.timing.

A testbench system (the DRAM model, both DMA engines, the five buffers) runs LOAD and STORE
streams. Per instruction, the cycle it is taken (``start``) and the cycle after its
``complete`` pulse (``done``) must equal :func:`accel.timing.load_timing` /
:func:`~accel.timing.store_timing` chained as :func:`sim.controller.schedule` chains them, and
(when every instruction is granted at once) the fast and the trace model's schedules. Beat by
beat, read requests, read data and write beats must come in exactly the cycles the contract
implies. Afterwards the buffers and the DRAM must equal :func:`sim.dma.execute_load` /
``execute_store`` applied in program order to the same random initial contents.

Loads read one DRAM region and stores write another: the two channels run concurrently, and
that is what makes the final contents independent of how the two streams interleave.

An equivalence test (it sees :mod:`sim` and :mod:`hdl` together) rather than a block test
because one run of the system is checked against the contract, the two schedulers of the
model and sim.dma's contents at once; checking the contract alone would run the same benches
again. The block-only tests (the buffers' ports, construction, Verilog) are in
tests/test_hdl_dma.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.hdl import Elaboratable, Module
from amaranth.lib.wiring import connect

from accel import timing
from accel.config import AccelConfig
from accel.isa import Buffer, Engine, Load, Store
from hdl.buffers import (
    InputBuffer,
    OutputBuffer,
    ParamBuffer,
    TableBuffer,
    WeightBuffer,
    load_targets,
)
from hdl.dma import LoadEngine, StoreEngine
from hdl.dram import Dram
from sim import dma as model_dma
from sim.buffers import Buffers
from sim.controller import schedule
from sim.dram import Dram as ModelDram
from sim.trace import trace_schedule
from tests.hdl_support import raw, simulate
from tests.test_hdl_dma import make_config

DRAM_SIZE = 512
LOAD_REGION = 320  # loads read [0, 320), stores write [320, 512)
BUFFERS = ("in", "w", "p", "out", "t")
#: The LOAD destinations, by name.
LOADED = {"in": Buffer.INPUT, "w": Buffer.WEIGHT, "p": Buffer.PARAM, "t": Buffer.TABLE}


def word_bytes(config: AccelConfig) -> dict[str, int]:
    return {
        "in": config.input_word_bytes,
        "w": config.weight_word_bytes,
        "p": config.param_word_bytes,
        "out": config.output_word_bytes,
        "t": TableBuffer(config).word_bytes,
    }


def to_words(byte_rows: np.ndarray) -> list[int]:
    return [int.from_bytes(row.tobytes(), "little") for row in byte_rows]


def to_bytes(words: list[int], width: int) -> np.ndarray:
    return np.frombuffer(b"".join(w.to_bytes(width, "little") for w in words), np.uint8)


def random_contents(rng, config):
    """A random DRAM image and random initial bytes of every buffer."""
    image = rng.integers(0, 256, DRAM_SIZE, dtype=np.uint8)
    depths = {
        "in": InputBuffer(config).depth,
        "w": WeightBuffer(config).depth,
        "p": ParamBuffer(config).depth,
        "out": OutputBuffer(config).depth,
        "t": TableBuffer(config).depth,
    }
    widths = word_bytes(config)
    init = {k: rng.integers(0, 256, (depths[k], widths[k]), dtype=np.uint8) for k in BUFFERS}
    return image, init


def model_contents(config, loads, stores, image, init) -> dict[str, np.ndarray]:
    """sim.dma on the same initial contents, in program order."""
    dram = ModelDram(image)
    buffers = Buffers(config)
    for name, buffer in LOADED.items():
        buffers.byte_view(buffer)[...] = init[name]
    buffers.out.view(np.uint8)[...] = init["out"]
    for load in loads:
        model_dma.execute_load(load, dram, buffers)
    for store in stores:
        model_dma.execute_store(store, dram, buffers)
    return {
        "dram": dram.data,
        **{name: buffers.byte_view(buffer) for name, buffer in LOADED.items()},
        "out": buffers.out.view(np.uint8),
    }


async def read_buffers(ctx, buffers: dict) -> dict[str, np.ndarray]:
    out = {}
    for name, buffer in buffers.items():
        words = [ctx.get(buffer.word(k)) for k in range(buffer.depth)]
        out[name] = to_bytes(words, buffer.word_bytes).reshape(buffer.depth, -1)
    return out


# --- the system: DRAM model + LOAD + STORE + buffers -----------------------------------------


class DmaSystem(Elaboratable):
    """DRAM model + LOAD and STORE engines + input, weight, parameter, output and table
    buffers."""

    def __init__(self, config, image, init, *, load_depth=16, dram_depth=None) -> None:
        self.dram = Dram(config, DRAM_SIZE, init=image.tolist(), depth=dram_depth)
        self.load = LoadEngine(config, depth=load_depth)
        self.store = StoreEngine(config)
        self.buffers = {
            "in": InputBuffer(config, init=to_words(init["in"])),
            "w": WeightBuffer(config, init=to_words(init["w"])),
            "p": ParamBuffer(config, init=to_words(init["p"])),
            "out": OutputBuffer(config, init=to_words(init["out"])),
            "t": TableBuffer(config, init=to_words(init["t"])),
        }

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.dram = self.dram
        m.submodules.load = self.load
        m.submodules.store = self.store
        for name, buffer in self.buffers.items():
            m.submodules[f"buf_{name}"] = buffer
        connect(m, self.load.ar, self.dram.ar)
        connect(m, self.dram.r, self.load.r)
        connect(m, self.load.input_buf, self.buffers["in"].dma)
        connect(m, self.load.weight_buf, self.buffers["w"].dma)
        connect(m, self.load.param_buf, self.buffers["p"].dma)
        connect(m, self.load.table_buf, self.buffers["t"].dma)
        connect(m, self.store.output_buf, self.buffers["out"].store)
        connect(m, self.store.w, self.dram.w)
        m.d.comb += self.store.b.eq(self.dram.b)
        return m


class Run:
    """What the RTL did: per-instruction start/done, every channel event's cycle, contents."""

    def __init__(self) -> None:
        self.start = {Engine.LOAD: [], Engine.STORE: []}
        self.done = {Engine.LOAD: [], Engine.STORE: []}
        self.requests: list[int] = []
        self.read_beats: list[int] = []
        self.write_beats: list[int] = []
        self.buffer_writes: dict[int, tuple[Buffer, int]] = {}  # cycle -> LOAD write
        self.acks: list[int] = []  # cycles of the DRAM's write acknowledgement (b)
        self.max_outstanding = 0
        self.stalled = False
        self.contents: dict[str, np.ndarray] = {}


def run_system(config, streams, image, init, cycles, *, offers=None, **depths) -> Run:
    """Present instruction ``k`` of each engine from cycle ``offers[engine][k]`` (default 0)
    until it is taken; record everything for ``cycles`` cycles."""
    dut = DmaSystem(config, image, init, **depths)
    blocks = {Engine.LOAD: dut.load, Engine.STORE: dut.store}
    offers = offers or {e: [0] * len(streams[e]) for e in blocks}
    run = Run()
    load_ports = {
        Buffer.INPUT: dut.load.input_buf,
        Buffer.WEIGHT: dut.load.weight_buf,
        Buffer.PARAM: dut.load.param_buf,
        Buffer.TABLE: dut.load.table_buf,
    }

    async def bench(ctx):
        taken = dict.fromkeys(blocks, 0)
        for cycle in range(cycles):
            for engine, block in blocks.items():
                k = taken[engine]
                present = k < len(streams[engine]) and cycle >= offers[engine][k]
                ctx.set(block.i.valid, present)
                ctx.set(block.i.payload.as_value(), raw(streams[engine][k]) if present else 0)
            for engine, block in blocks.items():
                if ctx.get(block.i.valid) and ctx.get(block.i.ready):
                    run.start[engine].append(cycle)
                    taken[engine] += 1
                if ctx.get(block.complete):
                    run.done[engine].append(cycle + 1)
            for buffer, port in load_ports.items():
                if ctx.get(port.en):
                    run.buffer_writes[cycle] = (buffer, ctx.get(port.addr))
            if ctx.get(dut.dram.b):
                run.acks.append(cycle)
            if ctx.get(dut.dram.ar.valid) and ctx.get(dut.dram.ar.ready):
                run.requests.append(cycle)
            if ctx.get(dut.dram.r.valid):
                run.read_beats.append(cycle)
            if ctx.get(dut.store.w.valid):
                run.write_beats.append(cycle)
            run.max_outstanding = max(run.max_outstanding, ctx.get(dut.dram.outstanding))
            await ctx.tick()
        run.stalled = bool(ctx.get(dut.load.stalled))
        run.contents = await read_buffers(ctx, dut.buffers)
        run.contents["dram"] = np.array(
            [ctx.get(dut.dram.data[k]) for k in range(DRAM_SIZE)], np.uint8
        )

    simulate(dut, bench)
    return run


def contract(config, streams, offers=None):
    """Per-instruction (start, done) from accel.timing, chained as sim.controller chains
    them (instruction ``k`` granted from ``offers[engine][k]``), and the cycles of every read
    request, read beat and write beat that the contract implies."""
    latency = config.dram.latency
    offers = offers or {e: [0] * len(streams[e]) for e in (Engine.LOAD, Engine.STORE)}
    out = {Engine.LOAD: [], Engine.STORE: []}
    free = channel = 0
    requests, beats, writes = [], [], []
    last_beat = -1
    for load, offer in zip(streams[Engine.LOAD], offers[Engine.LOAD], strict=True):
        free = max(free, timing.load_queue_free([done for _, done in out[Engine.LOAD]]))
        t = timing.load_timing(load, offer, free, channel, config)
        out[Engine.LOAD].append((t.start, t.done))
        free, channel = t.next_start, t.done
        word = timing.load_unit_bytes(config, load.buffer)
        bandwidth = config.dram.bandwidth
        data = timing.run_beats(load.run_bytes, word, bandwidth)
        for r, addr in enumerate(timing.run_addresses(load).tolist()):
            requests.append(t.start + r)
            slots = timing.load_run_beats(addr, load.run_bytes, word, bandwidth)
            first = max(t.start + r + latency, last_beat + 1)
            beats.extend(range(first + slots - data, first + slots))  # a straddle's gap first
            last_beat = first + slots - 1
        assert last_beat + 1 == t.done
    free = 0
    for store, offer in zip(streams[Engine.STORE], offers[Engine.STORE], strict=True):
        t = timing.store_timing(store, offer, free, config)
        out[Engine.STORE].append((t.start, t.done))
        writes.extend(range(t.start, t.next_start))
        free = t.next_start
    return out, requests, beats, writes


def check(config, loads, stores, seed, *, offers=None, reference=None, **depths) -> Run:
    """Run the system (``depths`` as :func:`run_system`'s); compare timing with the contract
    (and the models when every instruction is granted at once) and contents with
    ``reference(image, init)`` (default: sim.dma)."""
    rng = np.random.default_rng(seed)
    image, init = random_contents(rng, config)
    streams = {Engine.LOAD: loads, Engine.COMPUTE: [], Engine.POST: [], Engine.STORE: stores}
    want, requests, beats, writes = contract(config, streams, offers)
    horizon = max(d for v in want.values() for _, d in v) + 4
    run = run_system(config, streams, image, init, horizon, offers=offers, **depths)

    models = []
    if offers is None:
        models = [trace_schedule(streams, config), schedule(streams, config)]
    for engine in (Engine.LOAD, Engine.STORE):
        assert len(run.start[engine]) == len(run.done[engine]) == len(streams[engine])
        assert list(zip(run.start[engine], run.done[engine], strict=True)) == want[engine]
        for model in models:
            assert list(zip(model.start[engine], model.done[engine], strict=True)) == want[engine]
    check_completes(config, loads, run)
    assert not run.stalled
    assert run.requests == requests
    assert run.read_beats == beats
    assert run.write_beats == writes

    if reference is None:
        expected = model_contents(config, loads, stores, image, init)
    else:
        expected = reference(image, init)
    for name in ("dram", *BUFFERS):
        np.testing.assert_array_equal(run.contents[name], expected[name], strict=True, err_msg=name)
    return run


def check_completes(config, loads, run) -> None:
    """Each LOAD's ``complete`` is the cycle of its last buffer write (its last word, as the
    buffer's write port shows it), each STORE's the DRAM's acknowledgement (``b``)."""
    targets = load_targets(config)
    for load, done in zip(loads, run.done[Engine.LOAD], strict=True):
        depth, word = targets[load.buffer]
        per_run = -(-load.run_bytes // word)
        last = (
            load.sram_addr
            + (load.outer_count - 1) * load.sram_outer_stride
            + load.inner_count * per_run
            - 1
        )
        if load.buffer == Buffer.WEIGHT:  # the port names a unit's first word
            last -= (per_run - 1) % config.buffers.weight_banks
        assert run.buffer_writes.get(done - 1) == (load.buffer, last % depth)
    assert [done - 1 for done in run.done[Engine.STORE]] == run.acks


# --- random streams ------------------------------------------------------------------------


def random_load(rng, config, *, buffer=None, max_beats=60) -> Load:
    """Runs shorter and longer than a word, 2-level strides (overlapping ones too), unaligned
    DRAM addresses, buffer rows that may overlap."""
    depth, word = load_targets(config)[Buffer(int(rng.integers(4)) if buffer is None else buffer)]
    buffer = next(b for b, g in load_targets(config).items() if g == (depth, word))
    bandwidth = config.dram.bandwidth
    while True:
        run_bytes = int(rng.choice([rng.integers(1, word + 1), word, rng.integers(word, 3 * word)]))
        inner, outer = (int(v) for v in rng.integers(1, 4, 2))
        beats = inner * outer * timing.run_beats(run_bytes, word, bandwidth)
        per_run = -(-run_bytes // word)
        if beats <= max_beats and inner * per_run <= depth:
            break
    row_words = inner * per_run
    sram_outer_stride = int(rng.integers(0, row_words + 4))
    while (outer - 1) * sram_outer_stride + row_words > depth:
        sram_outer_stride //= 2
    sram_addr = int(rng.integers(0, depth - (outer - 1) * sram_outer_stride - row_words + 1))
    inner_stride = int(rng.integers(0, run_bytes + 6))
    outer_stride = int(rng.integers(0, inner * (run_bytes + 6)))
    extent = (outer - 1) * outer_stride + (inner - 1) * inner_stride + run_bytes
    assert extent <= LOAD_REGION
    return Load(
        buffer=buffer,
        dram_addr=int(rng.integers(0, LOAD_REGION - extent + 1)),
        sram_addr=sram_addr,
        outer_count=outer,
        outer_stride=outer_stride,
        sram_outer_stride=sram_outer_stride,
        inner_count=inner,
        inner_stride=inner_stride,
        run_bytes=run_bytes,
    )


def random_store(rng, config, *, overlapping=False) -> Store:
    """Runs of 1..cols bytes; without ``overlapping``, the runs of one instruction never
    overlap in DRAM (see test_overlapping_store_runs_land_in_program_order)."""
    cols = config.array.cols
    depth = OutputBuffer(config).depth
    run_bytes = int(rng.integers(1, cols + 1))
    inner, outer = (int(v) for v in rng.integers(1, 4, 2))
    if overlapping:
        inner_stride = int(rng.integers(0, run_bytes + 1))
        outer_stride = int(rng.integers(0, inner * run_bytes + 1))
    else:
        inner_stride = int(rng.integers(run_bytes, run_bytes + 5))
        outer_stride = (inner - 1) * inner_stride + run_bytes + int(rng.integers(0, 5))
    extent = (outer - 1) * outer_stride + (inner - 1) * inner_stride + run_bytes
    return Store(
        out_base=int(rng.integers(0, depth - inner * outer + 1)),
        dram_addr=int(rng.integers(LOAD_REGION, DRAM_SIZE - extent + 1)),
        outer_count=outer,
        outer_stride=outer_stride,
        inner_count=inner,
        inner_stride=inner_stride,
        run_bytes=run_bytes,
    )


def random_config(rng) -> AccelConfig:
    rows, cols = (int(v) for v in rng.integers(2, 5, 2))
    return make_config(rows, cols, int(rng.integers(1, 9)), int(rng.integers(0, 11)))


def random_case(seed: int, *, buffer=None):
    rng = np.random.default_rng([seed, 7 if buffer is None else buffer])
    config = random_config(rng)
    loads = [random_load(rng, config, buffer=buffer) for _ in range(int(rng.integers(1, 6)))]
    stores = [random_store(rng, config) for _ in range(int(rng.integers(1, 6)))]
    return config, loads, stores


@pytest.mark.parametrize("seed", range(16))
def test_random_streams_are_bit_and_cycle_exact(seed):
    check(*random_case(seed), seed)


@pytest.mark.parametrize("buffer", list(Buffer))
@pytest.mark.parametrize("seed", range(2))
def test_random_loads_into_one_buffer_are_bit_and_cycle_exact(buffer, seed):
    check(*random_case(100 + seed, buffer=buffer), seed)


@pytest.mark.parametrize("seed", range(12))
def test_random_loads_into_a_banked_weight_buffer_are_bit_and_cycle_exact(seed):
    """Two weight banks: a beat carries up to two weight words (runs of any length, odd
    buffer addresses, units cut short by the run), DRAM busses narrower and wider than the
    pair."""
    rng = np.random.default_rng([seed, 800])
    rows, cols = 2 * int(rng.integers(1, 3)), int(rng.integers(2, 5))
    bandwidth = int(rng.choice([1, 2, cols, 2 * cols, 3 * cols]))
    config = make_config(rows, cols, bandwidth, int(rng.integers(0, 11)))
    config = config.replace(buffers={"weight_banks": 2})
    loads = [random_load(rng, config, buffer=Buffer.WEIGHT) for _ in range(int(rng.integers(2, 6)))]
    stores = [random_store(rng, config) for _ in range(int(rng.integers(1, 3)))]
    check(config, loads, stores, seed)


@pytest.mark.parametrize("seed", range(4))
def test_late_grants_start_instructions_when_granted(seed):
    """Instructions granted at random later cycles (idle engine and channel between them, or
    a grant while the channel is still busy): start = max(grant, free), and done follows."""
    config, loads, stores = random_case(200 + seed)
    rng = np.random.default_rng([seed, 200])
    offers = {
        Engine.LOAD: np.cumsum(rng.integers(0, 25, len(loads))).tolist(),
        Engine.STORE: np.cumsum(rng.integers(0, 25, len(stores))).tolist(),
    }
    check(config, loads, stores, seed, offers=offers)


# --- hand-written corners --------------------------------------------------------------------


def L(buffer, run_bytes, *, dram=0, sram=0, inner=1, outer=1, istride=0, ostride=0, sstride=0):
    return Load(
        buffer=buffer, dram_addr=dram, sram_addr=sram, outer_count=outer, outer_stride=ostride,
        sram_outer_stride=sstride, inner_count=inner, inner_stride=istride, run_bytes=run_bytes,
    )  # fmt: skip


def S(run_bytes, *, out=0, dram=LOAD_REGION, inner=1, outer=1, istride=0, ostride=0):
    return Store(
        out_base=out, dram_addr=dram, outer_count=outer, outer_stride=ostride, inner_count=inner,
        inner_stride=istride, run_bytes=run_bytes,
    )  # fmt: skip


IN, W, P = Buffer.INPUT, Buffer.WEIGHT, Buffer.PARAM
CORNERS = {
    # bandwidth 1, no latency: every path from a request to a buffer write is combinational.
    "b1_l0": (
        (2, 3, 1, 0),
        [L(IN, 1, dram=3), L(IN, 2, dram=5, sram=1), L(IN, 3, dram=7, sram=4), L(W, 1), L(P, 1)],
        [S(1, out=2), S(3, dram=400, inner=2, istride=3)],
    ),
    # A beat wider than every word: each beat carries at most one word.
    "b8_wide": (
        (2, 3, 8, 3),
        [L(IN, 5, dram=1, inner=3, istride=7), L(W, 7, dram=2, sram=3), L(P, 37, dram=11)],
        [S(3, out=5, inner=3, istride=4), S(2, outer=2, ostride=9)],
    ),
    # Bandwidth 5 against a 48-byte parameter word: 10 beats per word, the last of 3 bytes.
    "b5_param": (
        (4, 4, 5, 6),
        [
            L(P, 48, dram=3),
            L(P, 49, dram=60, sram=2),
            L(P, 100, dram=120, sram=4, outer=2, sstride=1),
        ],
        [S(4, out=1, inner=3, istride=5, outer=2, ostride=17)],
    ),
    # No latency, one-beat loads back to back: each LOAD's only beat comes in its own start
    # cycle, so the return side takes its descriptor straight from the instruction.
    "l0_back_to_back": (
        (3, 2, 4, 0),
        [L(IN, 3, dram=k, sram=k) for k in range(5)],
        [S(2, out=k, dram=LOAD_REGION + 3 * k) for k in range(5)],
    ),
    # One long LOAD then four short ones, all taken before the long one's data is back: four
    # descriptors wait in the FIFO and the channel is the bottleneck (done = previous done +
    # beats); runs of 6 beats issued one per cycle pile up in the DRAM's request queue.
    "backlog": (
        (3, 2, 1, 10),
        [
            L(IN, 6, inner=3, istride=6, outer=3, ostride=20, sstride=7),
            L(W, 1, dram=50),
            L(W, 2, dram=51, sram=1),
            L(P, 3, dram=52),
            L(IN, 1, dram=53, sram=40),
        ],
        [S(2, out=1, outer=3, ostride=2)],
    ),
    # The cycle tables of hdl/dma.py's and hdl/dram.py's docstrings.
    "dma_docstring": ((4, 2, 2, 1), [L(IN, 5, inner=2, istride=6)], [S(1)]),
    "dram_docstring": ((4, 2, 3, 2), [L(IN, 5), L(IN, 2, dram=9, sram=4)], [S(1)]),
    # Zero strides: the same DRAM bytes loaded repeatedly, the same buffer rows overwritten.
    "zero_strides": (
        (2, 4, 3, 2),
        [L(IN, 5, dram=9, inner=3, outer=2), L(W, 9, dram=4, inner=2, outer=3, sstride=0)],
        [S(4, out=3, inner=2, istride=4, outer=2, ostride=8)],
    ),
}


@pytest.mark.parametrize("name", sorted(CORNERS))
def test_corner_cases_are_bit_and_cycle_exact(name):
    (rows, cols, bandwidth, latency), loads, stores = CORNERS[name]
    run = check(make_config(rows, cols, bandwidth, latency), loads, stores, len(name))
    if name == "backlog":
        assert run.max_outstanding >= 5
    if name == "dma_docstring":
        assert (run.requests, run.read_beats) == ([0, 1], [1, 2, 3, 4, 5, 6])
        assert run.done[Engine.LOAD] == [7]
    if name == "dram_docstring":
        assert (run.requests, run.read_beats) == ([0, 1], [2, 3, 4, 5])


def test_the_descriptor_queue_holds_a_load_until_the_one_129_before_is_done():
    """accel.timing, LOAD: at most LOAD_QUEUE + 1 LOADs started and not done. LOADs issued a
    run per cycle whose data takes 8 beats each fill the RTL's queue of the contract's depth;
    it then takes each LOAD in the cycle the one LOAD_QUEUE + 1 before it is done, as the
    contract and the models say, and is not ``stalled``."""
    config = make_config(3, 2, 1, 4)
    loads = [L(IN, 8, dram=8 * (k % 8)) for k in range(timing.LOAD_QUEUE + 40)]
    want, *_ = contract(config, {Engine.LOAD: loads, Engine.STORE: []})
    start, done = zip(*want[Engine.LOAD], strict=True)
    window = timing.LOAD_QUEUE + 1
    held = [k for k in range(window, len(loads)) if start[k] == done[k - window] > start[k - 1] + 1]
    assert len(held) > 10  # the queue, not the issue of the LOAD before, sets these starts
    check(config, loads, [], 129, load_depth=timing.LOAD_QUEUE)


# --- beyond the contract ---------------------------------------------------------------------


def test_full_queues_slow_the_engine_but_lose_nothing():
    """With a 1-entry descriptor FIFO and a 2-request DRAM queue the LOAD engine must wait
    (later than accel.timing, which assumes unbounded queues) but every byte lands right."""
    config, loads, _ = random_case(300)
    loads = [*loads, L(IN, 1, dram=1), L(W, 2, dram=2), L(P, 3, dram=3)]
    streams = {Engine.LOAD: loads, Engine.STORE: []}
    rng = np.random.default_rng(300)
    image, init = random_contents(rng, config)
    want, *_ = contract(config, streams)
    run = run_system(config, streams, image, init, 400, load_depth=1, dram_depth=2)
    got = list(zip(run.start[Engine.LOAD], run.done[Engine.LOAD], strict=True))
    assert len(got) == len(loads)
    for (start, done), (want_start, want_done) in zip(got, want[Engine.LOAD], strict=True):
        assert start >= want_start and done >= want_done
    assert got != want[Engine.LOAD]
    assert run.stalled
    expected = model_contents(config, loads, [], image, init)
    for name in ("dram", *BUFFERS):
        np.testing.assert_array_equal(run.contents[name], expected[name], strict=True)


def sequential_stores(stores):
    """Program-order semantics of STORE: run by run, byte by byte."""

    def reference(image, init):
        dram = image.copy()
        for store in stores:
            r = 0
            for o in range(store.outer_count):
                for j in range(store.inner_count):
                    at = store.dram_addr + o * store.outer_stride + j * store.inner_stride
                    dram[at : at + store.run_bytes] = init["out"][store.out_base + r][
                        : store.run_bytes
                    ]
                    r += 1
        return {"dram": dram, **init}

    return reference


@pytest.mark.parametrize("seed", range(2))
def test_overlapping_store_runs_land_in_program_order(seed):
    """Runs of one STORE that overlap in DRAM: the later run wins, as the write channel
    orders them. (sim.dram.write_runs assigns through a numpy strided view, whose element
    order numpy may change for overlapping views; docs/rtl.md lists this.)"""
    rng = np.random.default_rng([seed, 400])
    config = random_config(rng)
    # 3 x 2 runs of 2 bytes, 1 byte apart between rows and 2 within: sim.dram.write_runs
    # gives [1 5 3 7 11 12] for output words 1 2, 3 4, ..., 11 12; program order [1 5 9 10 11 12].
    tangle = S(2, out=int(rng.integers(0, 8)), inner=2, istride=2, outer=3, ostride=1)
    stores = [random_store(rng, config, overlapping=True), tangle]
    stores.append(random_store(rng, config, overlapping=True))
    check(config, [], stores, seed, reference=sequential_stores(stores))


# --- the LOAD engine against a Python DRAM: any beat timing, garbage in unused lanes -----------


class LoadSystem(Elaboratable):
    def __init__(self, config, init) -> None:
        self.load = LoadEngine(config)
        self.buffers = {
            "in": InputBuffer(config, init=to_words(init["in"])),
            "w": WeightBuffer(config, init=to_words(init["w"])),
            "p": ParamBuffer(config, init=to_words(init["p"])),
            "t": TableBuffer(config, init=to_words(init["t"])),
        }

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.load = self.load
        for name, buffer in self.buffers.items():
            m.submodules[f"buf_{name}"] = buffer
        connect(m, self.load.input_buf, self.buffers["in"].dma)
        connect(m, self.load.weight_buf, self.buffers["w"].dma)
        connect(m, self.load.param_buf, self.buffers["p"].dma)
        connect(m, self.load.table_buf, self.buffers["t"].dma)
        return m


def request_beats(image, addr, size, word, bandwidth):
    """The beats of one read request, as the DRAM channel cuts them: (bytes, word_last)."""
    out = []
    offset = 0
    while offset < size:
        segment = min(word, size - offset)
        for b in range(0, segment, bandwidth):
            n = min(bandwidth, segment - b)
            start = addr + offset + b
            out.append((image[start : start + n].tolist(), b + n == segment))
        offset += segment
    return out


@pytest.mark.parametrize("seed", range(4))
def test_load_engine_writes_right_for_any_beat_timing(seed):
    """A Python DRAM answers with random delays (no sooner than ``min(latency, 2)`` cycles
    after the request, as the engine requires), withholds ``ar.ready`` at random and puts
    garbage in the lanes past ``count``; grants come at random. Requests must be the runs in
    order, ``complete`` must come with each instruction's last beat, and the buffers must
    equal sim.dma's."""
    rng = np.random.default_rng([seed, 500])
    config = random_config(rng)
    bandwidth = config.dram.bandwidth
    loads = [random_load(rng, config) for _ in range(int(rng.integers(2, 6)))]
    image, init = random_contents(rng, config)
    words = {b: w for b, (_, w) in load_targets(config).items()}
    want_requests = [
        (ld.dram_addr + o * ld.outer_stride + j * ld.inner_stride, ld.run_bytes, words[ld.buffer])
        for ld in loads
        for o in range(ld.outer_count)
        for j in range(ld.inner_count)
    ]
    last_request = np.cumsum([timing.load_runs(ld) for ld in loads]) - 1
    dut = LoadSystem(config, init)
    got_requests, completes, want_completes = [], [], []
    offers = np.cumsum(rng.integers(0, 6, len(loads))).tolist()
    soonest = min(config.dram.latency, 2)

    async def bench(ctx):
        pending = []  # [earliest cycle, request index, beats]
        taken = 0
        cycle = 0
        while len(completes) < len(loads):
            assert cycle < 3000
            present = taken < len(loads) and cycle >= offers[taken]
            ctx.set(dut.load.i.valid, present)
            ctx.set(dut.load.i.payload.as_value(), raw(loads[taken]) if present else 0)
            ctx.set(dut.load.ar.ready, rng.random() < 0.7)
            if ctx.get(dut.load.i.valid) and ctx.get(dut.load.i.ready):
                taken += 1
            if ctx.get(dut.load.ar.valid) and ctx.get(dut.load.ar.ready):
                p = ctx.get(dut.load.ar.payload)
                got_requests.append((p.addr, p.bytes, p.word))
                beats = request_beats(image, p.addr, p.bytes, p.word, bandwidth)
                pending.append(
                    [cycle + int(rng.integers(soonest, soonest + 4)), len(got_requests) - 1, beats]
                )
            beat = None
            if pending and pending[0][0] <= cycle and rng.random() < 0.7:
                _, index, beats = pending[0]
                data, word_last = beats.pop(0)
                last = not beats
                if last:
                    pending.pop(0)
                    if index in last_request:
                        want_completes.append(cycle)
                garbage = rng.integers(0, 256, bandwidth - len(data)).tolist()
                beat = {"data": data + garbage, "count": len(data), "word_last": word_last,
                        "last": last}  # fmt: skip
            ctx.set(dut.load.r.valid, beat is not None)
            if beat is not None:
                ctx.set(dut.load.r.payload, beat)
            if ctx.get(dut.load.complete):
                completes.append(cycle)
            cycle += 1
            await ctx.tick()
        contents.update(await read_buffers(ctx, dut.buffers))

    contents: dict[str, np.ndarray] = {}
    simulate(dut, bench)
    assert got_requests == want_requests
    assert completes == want_completes
    expected = model_contents(config, loads, [], image, init)
    for name in LOADED:
        np.testing.assert_array_equal(contents[name], expected[name], strict=True, err_msg=name)


def test_buffer_geometry_is_the_model_buffers():
    config = make_config(3, 2, 4, 1)
    sim_buffers = Buffers(config)
    for buffer, (depth, word) in load_targets(config).items():
        assert sim_buffers.byte_view(buffer).shape == (depth, word)


# --- scatter STOREs (lane_stride > 1: a channel shuffle) -------------------------------------


def random_scatter_store(rng, config) -> Store:
    """Runs of 1..cols lanes scattered to every ``lane_stride``-th byte (2..5), runs of one
    instruction interleaved or apart, never on one byte."""
    cols = config.array.cols
    depth = OutputBuffer(config).depth
    lanes = int(rng.integers(1, cols + 1))
    step = int(rng.integers(2, 6))
    run_bytes = (lanes - 1) * step + 1
    inner, outer = (int(v) for v in rng.integers(1, 4, 2))
    # Interleaved (a run starting 1..step-1 bytes after the one before) or apart.
    if rng.integers(2) and inner > 1:
        inner_stride = int(rng.integers(1, step))
        inner = min(inner, step)
        inner = max(1, min(inner, (step - 1) // inner_stride + 1))
    else:
        inner_stride = int(rng.integers(run_bytes, run_bytes + 5))
    outer_stride = (inner - 1) * inner_stride + run_bytes + int(rng.integers(0, 5))
    extent = (outer - 1) * outer_stride + (inner - 1) * inner_stride + run_bytes
    return Store(
        out_base=int(rng.integers(0, depth - inner * outer + 1)),
        dram_addr=int(rng.integers(LOAD_REGION, DRAM_SIZE - extent + 1)),
        outer_count=outer,
        outer_stride=outer_stride,
        inner_count=inner,
        inner_stride=inner_stride,
        run_bytes=run_bytes,
        lane_stride=step,
    )


@pytest.mark.parametrize("seed", range(12))
def test_scatter_stores_are_bit_and_cycle_exact(seed):
    """Scatter STOREs mixed with contiguous ones: only the enabled bytes change (the DRAM's
    other bytes keep their random contents), beats and cycles are a contiguous run's."""
    rng = np.random.default_rng([seed, 12])
    config = random_config(rng)
    loads = [random_load(rng, config) for _ in range(int(rng.integers(1, 3)))]
    stores = [
        random_scatter_store(rng, config) if rng.integers(3) else random_store(rng, config)
        for _ in range(int(rng.integers(2, 7)))
    ]
    check(config, loads, stores, seed)


@pytest.mark.parametrize(
    ("bandwidth", "lane_stride"), [(1, 2), (2, 3), (4, 2), (4, 3), (3, 7), (8, 5)]
)
def test_scatter_store_corners(bandwidth, lane_stride):
    """Strides below, at and above the bus width, aligned and unaligned starts, a full word."""
    config = make_config(2, 4, bandwidth, 3)
    stores = [
        Store(
            out_base=k,
            dram_addr=LOAD_REGION + k,
            run_bytes=(lanes - 1) * lane_stride + 1,
            lane_stride=lane_stride,
            outer_count=2,
            outer_stride=40,
        )
        for k, lanes in enumerate((4, 1, 3, 2))
    ]
    check(config, [L(IN, 1)], stores, bandwidth * 10 + lane_stride)


@pytest.mark.parametrize("lane_stride", [21846, 30000, 32768, 65534])
def test_scatter_store_with_a_stride_past_16_bits_of_multiples(lane_stride):
    """Two lanes ``lane_stride`` bytes apart, where ``u * lane_stride`` (u < bandwidth) no
    longer fits the 16 bits of a beat's byte ``r`` (the engine saturates its registered
    multiples; wrapped, 32768 * 2 would alias byte 0): every beat's enables and data are
    sim.dma's, beat for beat (the STORE engine alone; the DRAM of the system tests is too
    small for a 64 KiB run)."""
    bandwidth = 4
    config = make_config(2, 4, bandwidth, 3)
    store = Store(out_base=1, dram_addr=0, run_bytes=lane_stride + 1, lane_stride=lane_stride)
    word = [-3, 77, 5, -128]
    beats = -(-store.run_bytes // bandwidth)
    dut = StoreEngine(config)
    got = []

    async def bench(ctx):
        ctx.set(dut.w.ready, 1)
        ctx.set(dut.i.valid, 1)
        ctx.set(dut.i.payload.as_value(), raw(store))
        for _ in range(beats + 2):
            assert ctx.get(dut.output_buf.addr) in (store.out_base, store.out_base + 1)
            for k in range(len(word)):
                ctx.set(dut.output_buf.data[k], word[k])
            if ctx.get(dut.w.valid):
                got.append((ctx.get(dut.w.payload.en), ctx.get(dut.w.payload.data.as_value())))
            taken = ctx.get(dut.i.valid) and ctx.get(dut.i.ready)
            await ctx.tick()
            if taken:
                ctx.set(dut.i.valid, 0)

    simulate(dut, bench)
    assert len(got) == beats
    lanes = np.array(word, np.int8).view(np.uint8)
    want = np.zeros(beats * bandwidth, np.int64) - 1  # -1: byte not written
    want[0], want[lane_stride] = lanes[0], lanes[1]
    for k, (en, data) in enumerate(got):
        for b in range(bandwidth):
            expected = want[k * bandwidth + b]
            assert bool(en >> b & 1) == (expected >= 0), (k, b)
            if expected >= 0:
                assert data >> (8 * b) & 0xFF == expected, (k, b)
