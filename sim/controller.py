"""The controller: four in-order engines synchronised by counting semaphores.

Fast mode. Each engine takes the instructions of its stream in order. An instruction starts
at the earliest cycle at which its engine can take it and every semaphore of its ``wait``
mask is non-zero; each semaphore has exactly one consumer engine, so its k-th wait is
satisfied by the ``done`` cycle of its k-th signal. Per-instruction times come from the
closed forms of :mod:`accel.timing`; the loop below is an event simulation over
instructions, not cycles, and costs O(instructions).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from accel import isa, timing
from accel.backend import Feed
from accel.config import AccelConfig
from accel.isa import Engine, Instruction


class DeadlockError(RuntimeError):
    """No engine can make progress: the program's semaphores are inconsistent."""


@dataclass
class Schedule:
    """Start and done cycle of every instruction, per engine, in stream order."""

    start: dict[Engine, list[int]] = field(default_factory=lambda: {e: [] for e in Engine})
    done: dict[Engine, list[int]] = field(default_factory=lambda: {e: [] for e in Engine})
    #: The cycle from which the engine could have taken the instruction (ignoring semaphores).
    ready: dict[Engine, list[int]] = field(default_factory=lambda: {e: [] for e in Engine})
    #: Fast mode: the feed slots of every compute instruction (``accel.backend.feeds``).
    feeds: list[Feed] | None = None

    @property
    def total_cycles(self) -> int:
        return max((max(d) for d in self.done.values() if d), default=0)


def schedule(
    streams: dict[Engine, list[Instruction]],
    config: AccelConfig,
    fetch: timing.Fetch | None = None,
) -> Schedule:
    """Event-simulate the engines; raises :class:`DeadlockError` if they block forever.

    With ``fetch`` the instructions come from DRAM as the AXI top fetches them (the module
    docstring of :mod:`accel.timing`, INSTRUCTION FETCH): none starts before it is fetched.

    Each engine runs until its next instruction waits for a token no other engine has
    signalled yet; each semaphore having one producer and one consumer, the order in which the
    engines take turns does not change the schedule.
    """
    out = Schedule(feeds=[])
    fetched = {e: timing.FetchTimes(e, fetch, config) for e in Engine} if fetch else None
    signals: list[list[int]] = [[] for _ in isa.Sem]
    consumed = [0] * len(isa.Sem)
    position = dict.fromkeys(Engine, 0)
    free = dict.fromkeys(Engine, 0)
    read_channel_free = 0
    compute_state = timing.ComputeState()
    previous: tuple[Instruction, int] | None = None  # last compute instruction, its last feed
    remaining = sum(len(s) for s in streams.values())
    while remaining:
        progressed = False
        for engine in Engine:
            stream = streams[engine]
            k, n = position[engine], len(stream)
            starts, dones, ready = out.start[engine], out.done[engine], out.ready[engine]
            taken = fetched[engine].started if fetched else None
            while k < n:
                instr = stream[k]
                waits = _SEMS[instr.wait]
                earliest, blocked = 0, False
                for s in waits:
                    if consumed[s] == len(signals[s]):
                        blocked = True
                        break
                    earliest = max(earliest, signals[s][consumed[s]])
                if blocked:
                    break
                avail = fetched[engine].available() if fetched else 0
                if avail > earliest:
                    earliest = avail
                if engine == Engine.COMPUTE:
                    tokens = {s: signals[s][consumed[s]] for s in waits}
                    ready.append(max(compute_state.register_free, avail))
                    t = timing.compute_timing(instr, earliest, compute_state, config)
                    out.feeds.append(Feed(t.first_feed, t.last_feed, tokens))
                    if previous is not None:
                        check_vector_rows(previous, instr, k, t.first_feed)
                    previous = (instr, t.last_feed)
                    compute_state = t.state
                    start, done = t.start, t.done
                else:
                    engine_free = free[engine]
                    if engine == Engine.LOAD:  # the descriptor queue frees at a LOAD's done
                        engine_free = max(engine_free, timing.load_queue_free(dones))
                    ready.append(max(engine_free, avail))
                    if engine == Engine.LOAD:
                        t = timing.load_timing(
                            instr, earliest, engine_free, read_channel_free, config
                        )
                        read_channel_free = t.done
                    elif engine == Engine.STORE:
                        t = timing.store_timing(instr, earliest, engine_free, config)
                    else:
                        t = timing.post_timing(instr, earliest, engine_free)
                    start, done, free[engine] = t.start, t.done, t.next_start
                for s in waits:
                    consumed[s] += 1
                starts.append(start)
                dones.append(done)
                if taken:
                    taken(start)
                for s in _SEMS[instr.signal]:
                    signals[s].append(done)
                k += 1
            if k != position[engine]:
                remaining -= k - position[engine]
                position[engine] = k
                progressed = True
        if not progressed:
            blocked = [
                f"{e.name}[{position[e]}] waits on "
                + "|".join(s.name for s in isa.sems_of(streams[e][position[e]].wait))
                for e in Engine
                if position[e] < len(streams[e])
            ]
            raise DeadlockError("deadlock: " + "; ".join(blocked))
    check_semaphore_depth(streams, out)
    return out


#: The semaphores of each mask as plain ints (list indices), on the scheduler's hot path.
_SEMS = [tuple(int(s) for s in isa.sems_of(bits)) for bits in range(1 << len(isa.Sem))]


def check_vector_rows(
    previous: tuple[Instruction, int], instr: Instruction, index: int, first_feed: int
) -> None:
    """Raise :class:`accel.timing.HazardError` naming both instructions if ``instr``
    (COMPUTE[index]) reads a row before the previous vector instruction's write lands."""
    before, last_feed = previous
    row = timing.vector_row_hazard(before, last_feed, instr, first_feed)
    if row is None:
        return
    read = first_feed + row - instr.acc_base
    written = last_feed + row - before.acc_base + timing.VECTOR_LATENCY
    raise timing.HazardError(
        f"COMPUTE[{index}] (layer {instr.layer}) reads accumulator row {row} in cycle {read}, "
        f"before COMPUTE[{index - 1}] (layer {before.layer}) writes it in cycle {written}: "
        "consecutive vector instructions on a common row (docs/timing.md)"
    )


def engine_counters(sched: Schedule) -> dict[str, int]:
    """The controller's performance counters, as the RTL counts them (``hdl/controller.py``).

    ``<engine>_busy_cycles``: cycles in which some instruction of the engine is between its
    start and its done (the length of the union of ``[start, done)``);
    ``<engine>_blocked_cycles``: cycles in which the engine could take its next instruction but
    waits for a semaphore (the sum of ``start - ready``).
    """
    counters = {}
    for engine in Engine:
        name = engine.name.lower()
        start, done, ready = (
            np.asarray(x[engine], np.int64) for x in (sched.start, sched.done, sched.ready)
        )
        # Each instruction adds the part of [start, done) after every earlier one's done.
        covered = np.maximum.accumulate(np.concatenate(([0], done[:-1])))
        busy = np.maximum(done - np.maximum(start, covered), 0).sum() if done.size else 0
        counters[f"{name}_busy_cycles"] = int(busy)
        counters[f"{name}_blocked_cycles"] = int((start - ready).sum())
    return counters


def check_semaphore_depth(streams: dict[Engine, list[Instruction]], sched: Schedule) -> None:
    """Raise if a semaphore would need more than :data:`accel.isa.SEMAPHORE_BITS` bits.

    The count right after the k-th signal is k+1 minus the waits that started before it
    (a wait in the same cycle is counted after the signal, which over-estimates).
    """
    signal = {e: np.array([i.signal for i in s], np.int64) for e, s in streams.items()}
    wait = {e: np.array([i.wait for i in s], np.int64) for e, s in streams.items()}
    done = {e: np.asarray(sched.done[e], np.int64) for e in streams}
    start = {e: np.asarray(sched.start[e], np.int64) for e in streams}

    def cycles(sem: int, masks: dict[Engine, np.ndarray], times: dict[Engine, np.ndarray]):
        """The sorted ``times`` of the instructions whose ``masks`` have ``sem``."""
        return np.sort(np.concatenate([times[e][masks[e] >> sem & 1 == 1] for e in streams]))

    limit = (1 << isa.SEMAPHORE_BITS) - 1
    for sem in map(int, isa.Sem):
        signalled, started = cycles(sem, signal, done), cycles(sem, wait, start)
        if signalled.size == 0:
            continue
        level = np.arange(1, signalled.size + 1) - np.searchsorted(started, signalled, side="left")
        if level.max() > limit:
            raise OverflowError(
                f"semaphore {isa.Sem(sem).name} would hold more than {limit} tokens"
            )
