"""Synchronisation: per-engine instruction streams equivalent to one sequential program order.

``synchronise(log) -> {engine: [instruction]}``. Engines run their streams in order and
concurrently; for every instruction this finds the latest instruction of every other engine
it conflicts with (read-after-write, write-after-read, write-after-write on the same buffer
words or DRAM bytes, as recorded in the :class:`~accel.compiler.ops.OpLog`) and turns that
into one semaphore wait/signal pair. The parallel execution is therefore equivalent to the
sequential program order, and free of deadlock. Nothing else of the compiler is needed here:
the input is the abstract instructions, the output the streams.

Two implementations give the same streams. :func:`synchronise_reference` walks the
instructions one by one, keeping per space the disjoint ranges with their last writer and
latest readers. :func:`synchronise` works on whole columns with numpy, using what the
lowering guarantees: every space has one writer engine and one reader engine, different
(an input slot is written by LOAD and read by COMPUTE, a DRAM tensor written by STORE and
read by LOAD, ...). Then an instruction's need from the other engine is simply the latest
earlier access of the other kind whose range overlaps its own (for a read, the latest
overlapping write; for a write, the latest overlapping read), and a wait is emitted when that
is later than everything this engine already waited for from that engine. Where the
reference keeps less (a read merges the ranges it covers; a write forgets older readers),
the difference is always at or below what the engine already waited for, so the waits are
the same. When a program breaks the guarantee, :func:`synchronise` falls back to the
reference.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

import numpy as np

from accel import isa
from accel.compiler.ops import READ, WRITE, Op, OpLog, starts
from accel.isa import Engine, Instruction

#: (query, target range) pairs per step of the pairwise search (bounds its memory).
_CHUNK = 1 << 22
#: Accesses above which a space is searched alone (below, with the others of its engines).
_ALONE = 1 << 16

# Masks of all semaphores fit the wait and signal fields of every instruction.
assert all(
    (1 << len(isa.Sem)) - 1 <= isa.field_max(cls, name)
    for cls in isa.FIELDS
    for name in ("wait", "signal")
)


def synchronise(log: OpLog) -> dict[Engine, list[Instruction]]:
    """Per-engine streams whose semaphores make them equivalent to the program order of
    ``log`` (the same streams as :func:`synchronise_reference` of its ops)."""
    log.seal()
    blocks = [b for b in log.blocks if len(b)]
    count = len(log)
    engine = np.full(count, -1, dtype=np.int64)
    # The accesses of every space: (kind, block, engine, lo, hi).
    spaces: dict[str, list[tuple]] = {}
    for b, block in enumerate(blocks):
        engine[block.column("op")] = block.cls.engine
        for space, kind, lo, hi in block.ranges():
            spaces.setdefault(space, []).append((kind, b, block.cls.engine, lo, hi))
    if count and engine.min() < 0:
        raise AssertionError("an instruction index was handed out twice or not at all")

    # Per block and engine: each instruction's latest conflicting instruction of the engine,
    # found per space (one writer engine and one reader engine each); the small spaces of
    # an engine pair together (the DRAM tensors), each moved past the one before.
    groups: dict[object, list[tuple]] = {}  # (kind, block, producer, lo, hi)
    ends: dict[object, int] = {}  # per group: above every range in it
    for space, parts in spaces.items():
        readers = {e for kind, _, e, _, _ in parts if kind == READ}
        writers = {e for kind, _, e, _, _ in parts if kind == WRITE}
        if len(readers) > 1 or len(writers) > 1 or readers & writers:
            return synchronise_reference(log.ops())  # not what lowering makes
        if not readers or not writers:
            continue  # only read (a network input) or only written: nothing to order
        (reader,), (writer,) = readers, writers
        key = space if sum(len(p[3]) for p in parts) > _ALONE else (writer, reader)
        shift = ends[key] - min(int(p[3].min()) for p in parts) if key in ends else 0
        ends[key] = shift + max(int(p[4].max()) for p in parts)
        for kind, b, _, lo, hi in parts:
            if shift:
                lo, hi = lo + shift, hi + shift
            groups.setdefault(key, []).append((kind, b, writer if kind == READ else reader, lo, hi))
    need: list[dict[Engine, np.ndarray]] = [{} for _ in blocks]
    for group in groups.values():
        got = _conflicts([(kind, blocks[b].column("op"), lo, hi) for kind, b, _, lo, hi in group])
        if got is None:
            return synchronise_reference(log.ops())  # not what lowering makes
        for (_, b, producer, _, _), part in zip(group, got, strict=True):
            have = need[b].get(producer)
            need[b][producer] = part if have is None else np.maximum(have, part)

    waits = np.zeros(count, dtype=np.int64)
    signals = np.zeros(count, dtype=np.int64)
    of_engine = {e: np.flatnonzero(engine == e) for e in Engine}
    position = np.empty(count, dtype=np.int64)  # of every instruction in its engine's stream
    for ops in of_engine.values():
        position[ops] = np.arange(len(ops))
    channel = {pair: sem for sem, pair in isa.SEMAPHORES.items()}
    pairs = {(p, b.cls.engine) for b, of_block in zip(blocks, need, strict=True) for p in of_block}
    for producer, consumer in sorted(pairs):
        ops = of_engine[consumer]
        needs = np.full(len(ops), -1, dtype=np.int64)
        for block, of_block in zip(blocks, need, strict=True):
            if block.cls.engine == consumer and producer in of_block:
                needs[position[block.column("op")]] = of_block[producer]
        if not (needs >= 0).any():
            continue
        sem = channel.get((producer, consumer))
        if sem is None:
            return synchronise_reference(log.ops())  # raises, naming the engines
        # Wait when the need is later than everything waited for on this channel.
        waited = np.maximum.accumulate(needs)
        hit = needs[1:] > waited[:-1]
        hit = np.concatenate([needs[:1] >= 0, hit])
        waits[ops[hit]] |= 1 << sem
        signals[needs[hit]] |= 1 << sem  # distinct: the needs that hit increase

    instructions = np.empty(count, dtype=object)
    for block in blocks:
        instructions[block.column("op")] = block.instructions(waits, signals)
    return {e: instructions[of_engine[e]].tolist() for e in Engine}


def _conflicts(parts: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]]) -> list | None:
    """For the accesses of one space (or of several, their ranges apart), given in parts
    (READ or WRITE, program indices in increasing order, and the ``lo``/``hi`` of each), per
    part and access the latest earlier access of the other kind whose range overlaps its
    own (-1 if none); None if a range is empty (not what lowering makes).

    Accesses are taken in runs: rows of one part with consecutive program indices and one
    range (no other access falls between them), then runs that follow each other among
    the accesses of the space with one kind and one range (the input loads of every channel
    tile into one slot, the STOREs of every k tile of one output tile, ...). Every access of
    a run has the answer of its first (no access of the other kind falls between them), and
    as the earlier access of the other kind, only the last of a run can be the latest. So
    the question is asked of runs.
    """
    lengths = np.array([len(p[1]) for p in parts])
    ops = np.concatenate([p[1] for p in parts])
    lo = np.concatenate([p[2] for p in parts])
    hi = np.concatenate([p[3] for p in parts])
    if (hi <= lo).any():
        return None
    kind = np.repeat(np.array([p[0] for p in parts], dtype=np.int8), lengths)
    new = np.empty(len(ops), dtype=bool)
    np.not_equal(ops[1:], ops[:-1] + 1, out=new[1:])
    new[1:] |= (lo[1:] != lo[:-1]) | (hi[1:] != hi[:-1])
    new[starts(lengths)] = True
    merged = not new.all()  # (the input loads of one slot are all distinct planes)
    if merged:
        first = np.flatnonzero(new)
        first_op, last_op = ops[first], ops[np.append(first[1:], len(ops)) - 1]
        kind, lo, hi = kind[first], lo[first], hi[first]
    else:
        first_op = last_op = ops
    del ops

    order = np.argsort(first_op, kind="stable")  # program order
    s_kind, s_lo, s_hi = kind[order], lo[order], hi[order]
    join = np.ones(len(order), dtype=bool)
    join[1:] = (s_kind[1:] != s_kind[:-1]) | (s_lo[1:] != s_lo[:-1]) | (s_hi[1:] != s_hi[:-1])
    joined = not join.all()
    if joined:
        heads = np.flatnonzero(join)
        tails = np.append(heads[1:], len(order)) - 1
        r_first, r_last = first_op[order[heads]], last_op[order[tails]]
        s_kind, s_lo, s_hi = s_kind[heads], s_lo[heads], s_hi[heads]
    else:
        r_first = first_op[order]
        r_last = r_first if last_op is first_op else last_op[order]
    reads = s_kind == READ
    got = np.full(len(reads), -1, dtype=np.int64)
    if reads.any() and not reads.all():
        writes = ~reads
        r_ranges = _distinct(s_lo[reads], s_hi[reads])
        w_ranges = _distinct(s_lo[writes], s_hi[writes])
        # Runs are in program order: the targets that overlap a range come sorted by index.
        got[reads] = _latest(r_first[reads], r_ranges, r_last[writes], w_ranges)
        got[writes] = _latest(r_first[writes], w_ranges, r_last[reads], r_ranges)
    out = np.empty(len(order), dtype=np.int64)
    out[order] = got[np.cumsum(join, dtype=np.int64) - 1] if joined else got
    if merged:
        out = out[np.cumsum(new, dtype=np.int64) - 1]
    return np.split(out, np.cumsum(lengths)[:-1])


def latest_overlapping(
    q_op: np.ndarray,
    q_lo: np.ndarray,
    q_hi: np.ndarray,
    t_op: np.ndarray,
    t_lo: np.ndarray,
    t_hi: np.ndarray,
) -> np.ndarray:
    """For every query (program index ``q_op``, range ``[q_lo, q_hi)``), the largest target
    index ``t_op`` below it among the targets whose range overlaps the query's; -1 if none.
    """
    if not len(q_op) or not len(t_op):
        return np.full(len(q_op), -1, dtype=np.int64)
    order = np.argsort(t_op)
    t_ranges = _distinct(t_lo[order], t_hi[order])
    return _latest(q_op, _distinct(q_lo, q_hi), t_op[order], t_ranges)


Ranges = tuple[np.ndarray, np.ndarray, np.ndarray]  # distinct lo, distinct hi, index per access


def _latest(q_op: np.ndarray, q_ranges: Ranges, t_op: np.ndarray, t_ranges: Ranges) -> np.ndarray:
    """:func:`latest_overlapping` of ranges given by :func:`_distinct`, the targets whose
    ranges overlap one query range sorted by index.

    Ranges repeat (the slots of a ring, the pixels of a tile), so the overlaps are found
    between distinct ranges first. Then, per distinct query range, whichever is cheaper:
    take the targets that overlap it between its first and last query (in index order) and
    the latest one before those, and look every query up in them at once; or look each
    query up in the targets of each overlapping range separately.
    """
    out = np.full(len(q_op), -1, dtype=np.int64)
    v_lo, v_hi, q_vid = q_ranges
    u_lo, u_hi, t_uid = t_ranges
    pair_v, pair_u = _overlaps(v_lo, v_hi, u_lo, u_hi)
    counts = np.bincount(pair_v, minlength=len(v_lo))
    starts = np.cumsum(counts) - counts
    queries = np.bincount(q_vid, minlength=len(v_lo))
    # Per query range: scanning the targets from its first query to its last costs about
    # their number (a range is used by a layer or two); looking each of its queries up in
    # each overlapping range costs a binary search per pair.
    first_q = np.full(len(v_lo), np.iinfo(np.int64).max, dtype=np.int64)
    last_q = np.full(len(v_lo), -1, dtype=np.int64)
    np.minimum.at(first_q, q_vid, q_op)
    np.maximum.at(last_q, q_vid, q_op)
    a_of, b_of = np.searchsorted(t_op, first_q), np.searchsorted(t_op, last_q)
    scan = (counts > 0) & (b_of - a_of + 1024 < 8 * queries * counts)
    if scan.any():
        q_order = np.argsort(q_vid, kind="stable")
        q_first = np.cumsum(queries) - queries
        # Every target's range, from the first target address, in as few bytes as they
        # fit: the scan compares them all with each query range.
        base = int(u_lo[0])
        small = np.int32 if int(u_hi.max()) - base < 1 << 31 else np.int64
        t_lo, t_hi = ((u - base).astype(small)[t_uid] for u in (u_lo, u_hi))
        for v in np.flatnonzero(scan).tolist():
            lo, hi = int(v_lo[v]) - base, int(v_hi[v]) - base
            chosen = q_order[q_first[v] : q_first[v] + queries[v]]
            # The targets between its first and last query, and the latest before those
            # (looked for backwards in doubling steps).
            queried = q_op[chosen]
            a, b = int(a_of[v]), int(b_of[v])
            window = t_op[a:b][(t_lo[a:b] < hi) & (t_hi[a:b] > lo)]
            before, step = -1, max(b - a, 1024)
            while a > 0 and before < 0:
                step = min(step, a)
                found = np.flatnonzero((t_lo[a - step : a] < hi) & (t_hi[a - step : a] > lo))
                if len(found):
                    before = int(t_op[a - step + found[-1]])
                a, step = a - step, 2 * step
            latest = np.concatenate([[before], window])  # below every query
            out[chosen] = latest[np.searchsorted(latest, queried) - 1]
        del t_lo, t_hi

    # The other queries: per (query, overlapping target range) pair, in the targets sorted
    # by (range, index); in steps, to bound the memory of the pairs.
    rest = np.flatnonzero(~scan[q_vid] & (counts[q_vid] > 0))
    if not len(rest):
        return out
    scale = int(max(q_op.max(), t_op.max())) + 1
    # Keys range * scale + index, sorted by range (stably: a radix sort when the range
    # numbers fit 16 bits), after a -1 below every key.
    by_range = np.argsort(t_uid.astype(np.uint16) if len(u_lo) <= 1 << 16 else t_uid, kind="stable")
    t_key = np.empty(len(t_op) + 1, dtype=np.int64)
    t_key[0] = -1
    np.add((t_uid * scale)[by_range], t_op[by_range], out=t_key[1:])
    step = max(1, _CHUNK // max(1, int(counts.max(initial=1))))
    for first in range(0, len(rest), step):
        chunk = rest[first : first + step]
        reps = counts[q_vid[chunk]]
        if (reps == 1).all():  # one target range each (a plane the reads of one range cover)
            base = pair_u[starts[q_vid[chunk]]] * scale
            found = t_key[np.searchsorted(t_key, base + q_op[chunk]) - 1]
            out[chunk] = np.where(found >= base, found - base, -1)
            continue
        total = int(reps.sum())
        group = np.cumsum(reps) - reps
        within = np.arange(total) - np.repeat(group, reps)
        base = pair_u[np.repeat(starts[q_vid[chunk]], reps) + within] * scale
        found = t_key[np.searchsorted(t_key, base + np.repeat(q_op[chunk], reps)) - 1]
        out[chunk] = np.maximum.reduceat(np.where(found >= base, found - base, -1), group)
    return out


def _distinct(lo: np.ndarray, hi: np.ndarray) -> Ranges:
    """The distinct ranges sorted by (lo, hi), and each range's index among them."""
    base, width = int(lo.min()), int((hi - lo).max()) + 1
    size = (int(lo.max()) - base + 1) * width
    if size < 1 << 62:
        key = lo - base  # orders as (lo, hi): (lo - base) * width + hi - lo, in place
        key *= width - 1
        key += hi
        key -= base
        if size <= 4 * len(lo):  # few addresses for many ranges (a buffer): a table, no sort
            present = np.zeros(size, dtype=bool)
            present[key] = True
            ids = (np.cumsum(present, dtype=np.int64) - 1)[key]
            found = np.flatnonzero(present)
            d_lo = found // width + base
            return d_lo, d_lo + found % width, ids
        order = np.argsort(key, kind="stable")
        sorted_key = key[order]
        new = np.ones(len(order), dtype=bool)
        np.not_equal(sorted_key[1:], sorted_key[:-1], out=new[1:])
    else:
        order = np.lexsort((hi, lo))
        s_lo, s_hi = lo[order], hi[order]
        new = np.ones(len(order), dtype=bool)
        new[1:] = (s_lo[1:] != s_lo[:-1]) | (s_hi[1:] != s_hi[:-1])
    ids = np.empty(len(order), dtype=np.int64)
    ids[order] = np.cumsum(new, dtype=np.int64) - 1
    first = order[new]
    return lo[first], hi[first], ids


def _overlaps(
    v_lo: np.ndarray, v_hi: np.ndarray, u_lo: np.ndarray, u_hi: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Every overlapping pair (v, u) of two lists of ranges (``u`` sorted by lo), grouped by
    ``v``: the candidates of a ``v`` are the ``u`` that start before it ends and after the
    last ``u`` that ends before it starts (by the running maximum of the ends)."""
    end = np.searchsorted(u_lo, v_hi)
    start = np.searchsorted(np.maximum.accumulate(u_hi), v_lo, side="right")
    counts = np.maximum(end - start, 0)
    total = int(counts.sum())
    group = np.cumsum(counts) - counts
    v = np.repeat(np.arange(len(v_lo)), counts)
    u = np.repeat(start, counts) + (np.arange(total) - np.repeat(group, counts))
    hit = u_hi[u] > v_lo[v]
    return v[hit], u[hit]


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
