"""Synchronisation: per-engine instruction streams equivalent to one sequential program order.

``synchronise(log) -> {engine: [instruction]}``. Engines run their streams in order and
concurrently; for every instruction this finds the latest instruction of every other engine
it conflicts with (read-after-write, write-after-read, write-after-write on the same buffer
words or DRAM bytes, as recorded in the :class:`~accel.compiler.ops.OpLog`) and turns that
into one semaphore wait/signal pair. The parallel execution is therefore equivalent to the
sequential program order, and free of deadlock. Nothing else of the compiler is needed here:
the input is the abstract instructions, the output the streams.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from accel import isa
from accel.compiler.ops import Op, OpLog
from accel.isa import Engine, Instruction


def synchronise(log: OpLog) -> dict[Engine, list[Instruction]]:
    """Per-engine streams whose semaphores make them equivalent to the program order of
    ``log``."""
    return synchronise_reference(log.ops())


@dataclass
class _Entry:
    """A range of a space: its last writer and, per engine, its latest reader since then."""

    lo: int
    hi: int
    writer: int | None
    readers: dict[Engine, int] = field(default_factory=dict)


class _Space:
    """Disjoint entries of one buffer or DRAM tensor, sorted by address."""

    def __init__(self) -> None:
        self.los: list[int] = []
        self.entries: list[_Entry] = []

    def overlapping(self, lo: int, hi: int) -> tuple[int, int]:
        """Index range [first, last) of the entries overlapping [lo, hi)."""
        first = bisect.bisect_right(self.los, lo) - 1
        if first < 0 or self.entries[first].hi <= lo:
            first += 1
        last = bisect.bisect_left(self.los, hi, lo=max(first, 0))
        return max(first, 0), last

    def replace(self, first: int, last: int, entries: list[_Entry]) -> None:
        self.entries[first:last] = entries
        self.los[first:last] = [e.lo for e in entries]


def synchronise_reference(ops: list[Op]) -> dict[Engine, list[Instruction]]:
    """Per-engine streams whose semaphores make them equivalent to the order of ``ops``:
    the reference, one instruction and one range at a time."""
    spaces: dict[str, _Space] = {}
    deps: list[dict[Engine, int]] = []
    engines = [op.instr.engine for op in ops]
    for index, op in enumerate(ops):
        engine = engines[index]
        needs: dict[Engine, int] = {}

        def need(j: int | None, engine: Engine = engine, needs: dict = needs) -> None:
            if j is not None:
                other = engines[j]
                if other != engine and needs.get(other, -1) < j:
                    needs[other] = j

        for name, lo, hi in op.reads:
            # Every space has a single writer engine (DRAM: STORE; each buffer: one engine),
            # and engines run in order, so the entries a read covers merge into one whose
            # writer and readers are the latest: later accesses need exactly those.
            space = spaces.setdefault(name, _Space())
            first, last = space.overlapping(lo, hi)
            merged = _Entry(lo, hi, None, {engine: index})
            pieces = []
            for entry in space.entries[first:last]:
                need(entry.writer)
                if entry.writer is not None and (
                    merged.writer is None or entry.writer > merged.writer
                ):
                    merged.writer = entry.writer
                for other, j in entry.readers.items():
                    if other != engine and merged.readers.get(other, -1) < j:
                        merged.readers[other] = j
                if entry.lo < lo:
                    pieces.append(_Entry(entry.lo, lo, entry.writer, dict(entry.readers)))
            pieces.append(merged)
            if last > first and space.entries[last - 1].hi > hi:
                tail = space.entries[last - 1]
                pieces.append(_Entry(hi, tail.hi, tail.writer, dict(tail.readers)))
            space.replace(first, last, pieces)
        for name, lo, hi in op.writes:
            space = spaces.setdefault(name, _Space())
            first, last = space.overlapping(lo, hi)
            kept = []
            for entry in space.entries[first:last]:
                need(entry.writer)
                for reader in entry.readers.values():
                    need(reader)
                # The overlapped part is superseded (later accesses are ordered through this
                # write); what sticks out on either side keeps its history.
                if entry.lo < lo:
                    kept.append(_Entry(entry.lo, lo, entry.writer, dict(entry.readers)))
            kept.append(_Entry(lo, hi, index))
            if last > first and space.entries[last - 1].hi > hi:
                tail = space.entries[last - 1]
                kept.append(_Entry(hi, tail.hi, tail.writer, dict(tail.readers)))
            space.replace(first, last, kept)
        deps.append(needs)

    channel = {pair: sem for sem, pair in isa.SEMAPHORES.items()}
    waits = [0] * len(ops)
    signals = [0] * len(ops)
    last_waited: dict[tuple[Engine, Engine], int] = {}
    for index, needs in enumerate(deps):
        engine = ops[index].instr.engine
        for producer, j in needs.items():
            if j <= last_waited.get((producer, engine), -1):
                continue
            sem = channel.get((producer, engine))
            if sem is None:
                raise AssertionError(f"no semaphore from {producer.name} to {engine.name}")
            waits[index] |= 1 << sem
            signals[j] |= 1 << sem
            last_waited[(producer, engine)] = j
    streams: dict[Engine, list[Instruction]] = {e: [] for e in Engine}
    for op, wait, signal in zip(ops, waits, signals, strict=True):
        streams[op.instr.engine].append(isa.with_fields(op.instr, wait=wait, signal=signal))
    return streams
