"""Trace mode: the same machine stepped cycle by cycle, for small programs and debugging.

Every engine is a small state machine advanced once per cycle, with real semaphore counters,
a DMA that counts latency and beats, a post-processor that counts rows, and a compute engine
made of the hardware's three parts: the front end (takes an instruction and its semaphores),
the weight loader (one array row per cycle into the shadow registers) and the feeder (one
input word per cycle into the array or vector unit). Nothing here uses the closed forms of
:mod:`accel.timing` except the pipeline constants; the tests hold this to the fast mode's
per-instruction start and done cycles. It also checks the physical invariants the closed
forms rely on (a shadow row is written before the array row switches to it and not
overwritten before that; an accumulator row is never read before its previous write).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import TextIO

from accel import isa, timing
from accel.config import AccelConfig
from accel.isa import Engine, Instruction, Load, Post, Store
from sim.controller import ComputeDetail, DeadlockError, Schedule


class HazardError(RuntimeError):
    """The machine would read a register or accumulator before it is written."""


def _run_beats(instr: Instruction, config: AccelConfig) -> Iterator[int]:
    """The DRAM beats of each run of a LOAD or STORE, counted byte by byte."""
    bandwidth = config.dram.bandwidth
    word = timing.word_bytes(config, instr.buffer) if isinstance(instr, Load) else instr.run_bytes
    for _ in range(instr.outer_count * instr.inner_count):
        beats = 0
        left = instr.run_bytes
        while left > 0:
            in_word = min(word, left)
            left -= in_word
            while in_word > 0:
                in_word -= bandwidth
                beats += 1
        yield beats


class _Engine:
    """LOAD, POST or STORE: busy for some cycles per instruction, then free for the next.

    LOAD issues one read request per run per cycle; each run's data comes back over the
    shared read channel no earlier than ``latency`` cycles after its request, in order, one
    beat per cycle. STORE sends its beats one per cycle, and its write response comes
    ``latency`` cycles after the last. POST feeds one row per cycle into its pipeline.
    """

    def __init__(self, engine: Engine, config: AccelConfig) -> None:
        self.engine = engine
        self.config = config
        self.busy = 0  # cycles until the engine can take its next instruction
        self.reads: deque[list[int]] = deque()  # [earliest data cycle, beats left, index]

    def begin(self, instr: Instruction, index: int, cycle: int, finish) -> None:
        latency = self.config.dram.latency
        if isinstance(instr, Load):
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


class _Pass:
    def __init__(self, index: int, instr_pos: int, pixels: int, vector: bool, last: bool) -> None:
        self.index = index  # position among all passes of the program
        self.instr_pos = instr_pos
        self.pixels = pixels
        self.vector = vector
        self.last = last  # last pass of its instruction
        self.first = False  # first pass of its instruction
        self.weights_at: int | None = None  # cycle its weight load began
        self.fed_from: int | None = None  # cycle its first word was fed


class _ComputeEngine:
    """Front end, weight loader and feeder of the compute engine."""

    def __init__(self) -> None:
        self.front: list[_Pass] | None = None  # passes of the instruction the front end holds
        self.loader_free_at = 0
        self.queue: deque[_Pass] = deque()  # passes whose weights are loading or loaded
        self.feeding: _Pass | None = None
        self.fed = 0
        self.slot_end = 0  # first cycle the feed slot is free
        self.last_vector = False
        self.last_done = 0
        self.fed_from: dict[int, int] = {}  # pass index -> cycle its feed began
        self.acc_write: dict[int, int] = {}  # accumulator row -> cycle of its last write


def trace_schedule(
    streams: dict[Engine, list[Instruction]],
    config: AccelConfig,
    *,
    dump: TextIO | None = None,
    max_cycles: int = 50_000_000,
) -> Schedule:
    """Step the machine cycle by cycle; returns the same :class:`Schedule` as fast mode."""
    rows, cols = config.array.rows, config.array.cols
    counters = [0] * len(isa.Sem)
    nonzero_since = [0] * len(isa.Sem)  # for stall attribution only
    out = Schedule()
    for e in Engine:
        out.start[e] = [0] * len(streams[e])
        out.done[e] = [0] * len(streams[e])
    position = dict.fromkeys(Engine, 0)
    simple = {e: _Engine(e, config) for e in (Engine.LOAD, Engine.POST, Engine.STORE)}
    last_started: dict[Engine, int] = {}
    completions: dict[int, list[tuple[Engine, int]]] = {}
    comp = _ComputeEngine()
    remaining = sum(len(s) for s in streams.values())
    pass_counter = 0
    cycle = 0

    def finish(at: int, index: int, engine: Engine) -> None:
        completions.setdefault(at, []).append((engine, index))

    def can_take(instr: Instruction) -> bool:
        return all(counters[s] > 0 for s in isa.sems_of(instr.wait))

    def take(instr: Instruction) -> None:
        for s in isa.sems_of(instr.wait):
            counters[s] -= 1

    while remaining:
        if cycle > max_cycles:
            raise DeadlockError(f"trace mode stopped after {max_cycles} cycles")
        # 1. Completions whose effects become visible this cycle.
        for engine, index in completions.pop(cycle, []):
            for s in isa.sems_of(streams[engine][index].signal):
                if counters[s] == 0:
                    nonzero_since[s] = cycle
                counters[s] += 1
            out.done[engine][index] = cycle
            remaining -= 1
        # 2. LOAD, POST, STORE take their next instruction when free.
        for engine, eng in simple.items():
            if not eng.busy and position[engine] < len(streams[engine]):
                instr = streams[engine][position[engine]]
                if can_take(instr):
                    take(instr)
                    eng.begin(instr, position[engine], cycle, finish)
                    last_started[engine] = position[engine]
                    out.start[engine][position[engine]] = cycle
                    position[engine] += 1
        # 3. Feeder: start the next pass once its weight load has begun (in an earlier cycle)
        #    and the feed slot is free; a switch between array and vector unit also waits for
        #    the previous instruction to finish. Then feed one word.
        stream = streams[Engine.COMPUTE]
        if comp.feeding is None and comp.queue and cycle >= comp.slot_end:
            p = comp.queue[0]
            switch_ok = p.vector == comp.last_vector or cycle >= comp.last_done
            if p.weights_at is not None and p.weights_at < cycle and switch_ok:
                if p.first:
                    out.compute[p.instr_pos].stream_free = comp.slot_end
                    out.compute[p.instr_pos].first_feed = cycle
                if p.last:
                    out.compute[p.instr_pos].last_feed = cycle
                comp.queue.popleft()
                p.fed_from = comp.fed_from[p.index] = cycle
                comp.feeding, comp.fed = p, 0
                slot = max(p.pixels, timing.VECTOR_MIN_PASS) if p.vector else p.pixels
                comp.slot_end = cycle + slot
                comp.last_vector = p.vector
        if comp.feeding is not None:
            p = comp.feeding
            row = stream[p.instr_pos].acc_base + comp.fed
            read_at = cycle if p.vector else cycle + rows  # column 0; the others are skewed alike
            if comp.acc_write.get(row, -1) >= read_at:
                raise HazardError(f"accumulator row {row} read in cycle {read_at} before its write")
            comp.acc_write[row] = read_at + (
                timing.VECTOR_LATENCY if p.vector else timing.ACC_LATENCY
            )
            comp.fed += 1
            if comp.fed == p.pixels:
                comp.feeding = None
                if p.last:
                    if p.vector:
                        done = cycle + timing.VECTOR_LATENCY + 1
                    else:
                        done = cycle + rows + cols - 1 + timing.ACC_LATENCY + 1
                    completions.setdefault(done, []).append((Engine.COMPUTE, p.instr_pos))
                    comp.last_done = done
        # 4. Front end: release the instruction once it has issued everything it owns (its
        #    last weight load is complete and its last pass is feeding; for the vector unit,
        #    in the last cycle of its last pass's slot), then take the next one.
        if comp.front is not None:
            last = comp.front[-1]
            if last.vector:
                free = last.fed_from is not None and cycle >= comp.slot_end - 1
            else:
                free = cycle >= comp.loader_free_at and last.fed_from is not None
            if free:
                comp.front = None
        if comp.front is None and position[Engine.COMPUTE] < len(stream):
            instr = stream[position[Engine.COMPUTE]]
            if can_take(instr):
                take(instr)
                pos = position[Engine.COMPUTE]
                out.start[Engine.COMPUTE][pos] = cycle
                ready = {int(s): nonzero_since[s] for s in isa.sems_of(instr.wait)}
                out.compute.append(ComputeDetail(0, ready, 0, 0))
                position[Engine.COMPUTE] += 1
                vector = timing.is_vector(instr.mode)
                comp.front = [
                    _Pass(pass_counter + j, pos, instr.pixels, vector, j == instr.passes - 1)
                    for j in range(instr.passes)
                ]
                comp.front[0].first = True
                pass_counter += instr.passes
                if vector:  # no weights: every pass is ready at once
                    for p in comp.front:
                        p.weights_at = cycle
                    comp.queue.extend(comp.front)
        # Weight loader: one pass at a time, rows cycles each; the shadow registers are free
        # once the previous pass has begun feeding (this cycle included).
        if comp.front is not None:
            pending = [p for p in comp.front if p.weights_at is None]
            if pending:
                p = pending[0]
                previous = comp.fed_from.get(p.index - 1) if p.index else -1
                if cycle >= comp.loader_free_at and previous is not None and previous <= cycle:
                    p.weights_at = cycle
                    comp.loader_free_at = cycle + rows
                    comp.queue.append(p)
        # 5. LOAD/POST/STORE advance one cycle.
        for eng in simple.values():
            eng.step(cycle, finish)
        if dump is not None:
            dump.write(
                f"{cycle:8d} sem={counters} "
                + " ".join(
                    f"{e.name}={last_started.get(e, '-')}"
                    for e in (Engine.LOAD, Engine.POST, Engine.STORE)
                )
                + f" COMPUTE feed={comp.feeding.index if comp.feeding else '-'}"
                f"/{comp.fed}\n"
            )
        cycle += 1
    return out
