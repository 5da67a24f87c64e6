"""Trace mode: the same machine stepped cycle by cycle, for small programs and debugging.

Every engine is a small state machine advanced once per cycle, with real semaphore counters:
a DMA that counts latency and beats, a post-processor that counts rows, and the compute
engine of :class:`sim.compute.ComputeEngine` (front end, weight loader, feeder). Nothing here
uses the closed forms of :mod:`accel.timing` except the pipeline constants; the tests hold
this to the fast mode's per-instruction start and done cycles (and its ``ready`` cycles, from
which the performance counters come).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import TextIO

from accel import isa, timing
from accel.config import AccelConfig
from accel.isa import Engine, Instruction, Load, Post, Store
from sim.compute import ComputeEngine
from sim.controller import DeadlockError, Schedule
from sim.fetch import Fetcher


def _run_beats(instr: Instruction, config: AccelConfig) -> Iterator[int]:
    """The DRAM channel cycles of each run of a LOAD or STORE, counted byte by byte: data
    beats cut at units (a word, or a banked weight buffer's words) and at ``bandwidth``, a
    LOAD's straddling first beat costing one more (its first bus block taken alone), a STORE
    sending one beat per bus block it touches."""
    bandwidth = config.dram.bandwidth
    load = isinstance(instr, Load)
    word = timing.load_unit_bytes(config, instr.buffer) if load else instr.run_bytes
    for addr in timing.run_addresses(instr).tolist():
        offset = addr % bandwidth
        if not load:
            yield -(-(offset + instr.run_bytes) // bandwidth)
            continue
        beats = 0
        left = instr.run_bytes
        first = True
        while left > 0:
            in_word = min(word, left)
            left -= in_word
            while in_word > 0:
                if first and offset + min(in_word, bandwidth) > bandwidth:
                    beats += 1
                first = False
                in_word -= bandwidth
                beats += 1
        yield beats


class _Engine:
    """LOAD, POST or STORE: busy for some cycles per instruction, then free for the next.

    LOAD issues one read request per run per cycle; each run's data comes back over the
    shared read channel no earlier than ``latency`` cycles after its request, in order, one
    beat per cycle. STORE sends its beats one per cycle, and its write response comes
    ``latency`` cycles after the last. POST feeds one row per cycle into its pipeline.
    LOAD takes an instruction only while at most ``accel.timing.LOAD_QUEUE`` LOADs are
    started and not done (its descriptor queue, :attr:`free`).
    """

    def __init__(self, engine: Engine, config: AccelConfig) -> None:
        self.engine = engine
        self.config = config
        self.busy = 0  # cycles until the engine can take its next instruction
        self.outstanding = 0  # LOADs started and not done
        self.reads: deque[list[int]] = deque()  # [earliest data cycle, beats left, index]

    @property
    def free(self) -> bool:
        """Whether the engine can take its next instruction in this cycle."""
        return not self.busy and self.outstanding <= timing.LOAD_QUEUE

    def begin(self, instr: Instruction, index: int, cycle: int, finish) -> None:
        latency = self.config.dram.latency
        if isinstance(instr, Load):
            self.outstanding += 1
            runs = list(_run_beats(instr, self.config))
            self.busy = len(runs)
            for i, beats in enumerate(runs):
                last = i == len(runs) - 1
                self.reads.append([cycle + i + latency, beats, index if last else -1])
        elif isinstance(instr, Store):
            beats = sum(_run_beats(instr, self.config))
            self.busy = beats
            finish(cycle + beats + latency, index, self.engine)
        elif isinstance(instr, Post):
            self.busy = instr.count
            finish(cycle + instr.count + timing.POST_LATENCY, index, self.engine)

    def step(self, cycle: int, finish) -> None:
        """One cycle of work: issue/send/feed, and one beat of read data."""
        if self.busy:
            self.busy -= 1
        if self.reads and self.reads[0][0] <= cycle:
            head = self.reads[0]
            head[1] -= 1
            if head[1] == 0:
                self.reads.popleft()
                if head[2] >= 0:
                    finish(cycle + 1, head[2], self.engine)


def trace_schedule(
    streams: dict[Engine, list[Instruction]],
    config: AccelConfig,
    *,
    dump: TextIO | None = None,
    max_cycles: int = 50_000_000,
    fetch: timing.Fetch | None = None,
) -> Schedule:
    """Step the machine cycle by cycle; returns the same :class:`Schedule` as fast mode
    (with ``fetch``, the AXI top's instruction fetch, :mod:`sim.fetch`)."""
    fetchers = {e: Fetcher(e, len(streams[e]), fetch, config) for e in Engine} if fetch else None
    counters = [0] * len(isa.Sem)
    out = Schedule()
    for e in Engine:
        out.start[e] = [0] * len(streams[e])
        out.done[e] = [0] * len(streams[e])
        out.ready[e] = [0] * len(streams[e])
    position = dict.fromkeys(Engine, 0)
    waiting = dict.fromkeys(Engine, -1)  # the instruction whose ready cycle is recorded
    simple = {e: _Engine(e, config) for e in (Engine.LOAD, Engine.POST, Engine.STORE)}
    last_started: dict[Engine, int] = {}
    completions: dict[int, list[tuple[Engine, int]]] = {}
    compute = ComputeEngine(config)
    computes = streams[Engine.COMPUTE]
    registered: tuple[Instruction, int, int] | None = None  # granted, and from when takeable
    remaining = sum(len(s) for s in streams.values())
    cycle = 0

    def finish(at: int, index: int, engine: Engine) -> None:
        completions.setdefault(at, []).append((engine, index))

    def try_take(engine: Engine) -> Instruction | None:
        """The engine is free: take its next instruction if its semaphores allow."""
        index = position[engine]
        if index >= len(streams[engine]):
            return None
        if fetchers and not fetchers[engine].present(index, cycle):
            return None
        if waiting[engine] != index:  # the first cycle the engine could take it
            waiting[engine] = index
            out.ready[engine][index] = cycle
        instr = streams[engine][index]
        waits = isa.sems_of(instr.wait)
        if not all(counters[s] > 0 for s in waits):
            return None
        for s in waits:
            counters[s] -= 1
        out.start[engine][index] = cycle
        if fetchers:
            fetchers[engine].granted()
        last_started[engine] = index
        position[engine] += 1
        return instr

    while remaining:
        if cycle > max_cycles:
            raise DeadlockError(f"trace mode stopped after {max_cycles} cycles")
        if fetchers:
            for fetcher in fetchers.values():
                fetcher.step(cycle)
        # 1. Completions whose effects become visible this cycle.
        for engine, index in completions.pop(cycle, []):
            for s in isa.sems_of(streams[engine][index].signal):
                counters[s] += 1
            out.done[engine][index] = cycle
            if engine == Engine.LOAD:
                simple[engine].outstanding -= 1
            remaining -= 1
        # 2. LOAD, POST, STORE take their next instruction when free.
        for engine, eng in simple.items():
            if eng.free:
                instr = try_take(engine)
                if instr is not None:
                    eng.begin(instr, position[engine] - 1, cycle, finish)
        # 3. The compute engine: feeder, front end, weight loader.
        fed_last = compute.feed(cycle, computes)
        if fed_last is not None:
            finish(*fed_last, Engine.COMPUTE)
        compute.release(cycle)
        # The instruction register (accel.timing.COMPUTE_DECODE): the front end takes the
        # granted instruction no earlier than COMPUTE_DECODE cycles after its grant, and the
        # register takes the next grant in the cycle it hands one on.
        if compute.idle and registered is not None and registered[2] <= cycle:
            compute.take(registered[0], registered[1], cycle)
            registered = None
        if registered is None:
            instr = try_take(Engine.COMPUTE)
            if instr is not None:
                index = position[Engine.COMPUTE] - 1
                registered = (instr, index, cycle + timing.COMPUTE_DECODE)
        compute.load_weights(cycle)
        # 4. LOAD/POST/STORE advance one cycle.
        for eng in simple.values():
            eng.step(cycle, finish)
        if dump is not None:
            dump.write(
                f"{cycle:8d} sem={counters} "
                + " ".join(
                    f"{e.name}={last_started.get(e, '-')}"
                    for e in (Engine.LOAD, Engine.POST, Engine.STORE)
                )
                + f" COMPUTE feed={compute.feeding}\n"
            )
        cycle += 1
    return out
