"""Program order: a layer's first input loads moved down to the instruction that reads them.

Lowering emits an output tile's input loads (one per channel tile) before the tile's first
COMPUTE, and the LOAD engine runs its stream in order: the layer's first COMPUTE then waits
for every channel tile of the window, and the weights it needs queue behind them, though it
reads only its own channel tiles (AlexNet's Conv5 at 32x32: the whole 13x13x384 input, 2,028
words, before the first feed). :func:`sink_first_input_loads` moves each input-buffer LOAD
that comes before the first COMPUTE, POST or STORE of its layer down to just before the
first instruction that reads its words. Later tiles keep their order on purpose: their loads
are the prefetch that runs while the tile before computes.

A LOAD moves only past instructions it does not conflict with (none reads or writes its
input-buffer words or writes the DRAM bytes it reads before the one it stops at), so the
sequential meaning of the program is unchanged, and :func:`accel.compiler.sync.synchronise`
derives the semaphores of the new order.
"""

from __future__ import annotations

import numpy as np

from accel.compiler.ops import READ, WRITE, OpLog, runs
from accel.compiler.sync import latest_overlapping
from accel.isa import Buffer, Load


def sink_first_input_loads(log: OpLog) -> None:
    """Reorder ``log`` in place (the ``op`` index of its rows) as the module docstring says.

    Only the instructions between a layer's first input load and the end of its window are
    looked at (and renumbered), not the whole program.
    """
    log.seal()
    blocks = [b for b in log.blocks if len(b)]
    count = len(log)
    layers = 1 + max(
        int(b.column("layer").max()) if "layer" in b.names else b.template["layer"] for b in blocks
    )
    first = np.full(layers, count, dtype=np.int64)  # per layer: its first COMPUTE, POST or STORE
    for block in blocks:
        if block.cls is Load:
            continue
        if "layer" in block.names:  # rows in program order: a layer's first row is its first
            found, at = np.unique(block.column("layer"), return_index=True)
            np.minimum.at(first, found, block.column("op")[at])
        else:
            layer = block.template["layer"]
            first[layer] = min(first[layer], block.column("op")[0])
    # The input loads before the first COMPUTE, POST or STORE of their layer may move.
    inputs = [(block, _layers(block)) for block in blocks if _loads_inputs(block)]
    early = [lay[block.column("op") < first[lay]] for block, lay in inputs]
    per_layer = np.bincount(np.concatenate([np.zeros(0, np.int64), *early]), minlength=len(first))
    if not per_layer.any():
        return
    # Where they may stop: the first unit of the layer's first tile reads every channel tile
    # they load, within a COMPUTE and a weight load or two per channel tile (and kernel-row
    # chunk) after them; the window allows eight instructions per load. A load whose
    # reader lies beyond its layer's window stays where it is.
    reach = np.minimum(first + 8 * per_layer + 64, count)  # per layer: its window's end
    start = np.full(len(first), count, dtype=np.int64)  # per layer: its first moving load
    for block, lay in inputs:
        mine = block.column("op") < first[lay]
        np.minimum.at(start, lay[mine], block.column("op")[mine])
    spans = _union(start[per_layer > 0], reach[per_layer > 0])  # what moving loads may pass

    accesses: dict[tuple[str, int], list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {}
    moving = []  # per input-load block: ops, input-buffer lo and hi, DRAM space, lo and hi
    movers = []  # per input-load block: the block, the rows of its moving loads, their layers
    for block in blocks:
        rows = _rows_within(block.column("op"), spans)
        if not len(rows):
            continue
        ops = block.column("op")[rows]
        ranges = [(sp, kind, lo[rows], hi[rows]) for sp, kind, lo, hi in block.ranges()]
        for space, kind, lo, hi in ranges:
            accesses.setdefault((space, kind), []).append((ops, lo, hi))
        if _loads_inputs(block):
            (in_lo, in_hi), (space, d_lo, d_hi) = _one(ranges, "in", WRITE), _dram_read(ranges)
            lay = _layers(block)[rows]
            mine = ops < first[lay]
            moving.append(
                [a[mine] for a in (ops, in_lo, in_hi, np.full(len(ops), space, object), d_lo, d_hi)]
            )
            movers.append((block, rows[mine], lay[mine]))
    ops, in_lo, in_hi, space, d_lo, d_hi = (np.concatenate(c) for c in zip(*moving, strict=True))
    # Each stops at the first later instruction it conflicts with (within its window).
    stop = np.minimum(
        _first_later(ops, in_lo, in_hi, accesses.get(("in", READ), [])),
        _first_later(ops, in_lo, in_hi, accesses.get(("in", WRITE), [])),
    )
    for name in set(space.tolist()):
        mine = space == name
        writes = accesses.get((name, WRITE), [])
        stop[mine] = np.minimum(stop[mine], _first_later(ops[mine], d_lo[mine], d_hi[mine], writes))
    # Only a stop inside the load's own window: the instructions before it were all seen.
    moved = stop < reach[np.concatenate([lay for _, _, lay in movers])]
    if moved.any():
        _renumber(blocks, movers, moved, ops[moved], stop[moved])


def _renumber(blocks, movers, moved: np.ndarray, m_op: np.ndarray, m_stop: np.ndarray) -> None:
    """Move the instructions ``m_op`` (the ``moved`` rows of ``movers``) to just before their
    ``m_stop`` (those with one stop keeping their order), every other instruction keeping its
    order: new ``op`` indices in the rows of ``blocks``, whose rows stay in program order.

    An instruction that stays moves up by the moved ones before it and down by those moved
    to a stop at or before it, so only the ones between a moved one and its stop change
    (the same order as sorting every instruction by twice its index, a moved one by
    twice its stop less one).
    """
    by_op, by_stop = np.sort(m_op), np.sort(m_stop)
    order = np.lexsort((m_op, m_stop))
    tie = np.empty(len(order), dtype=np.int64)
    tie[order] = np.arange(len(order)) - np.searchsorted(m_stop[order], m_stop[order])
    new = m_stop - np.searchsorted(by_op, m_stop) + np.searchsorted(by_stop, m_stop) + tie
    moved_rows = {}  # per block: the rows that move and their new indices
    at = 0
    for block, rows, _ in movers:
        mine = moved[at : at + len(rows)]
        moved_rows[id(block)] = rows[mine], new[at : at + len(rows)][mine]
        at += len(rows)
    spans = _union(m_op, m_stop + 1)  # each onto itself, the rest unchanged
    for block in blocks:
        ops = block.array[:, block.columns.index("op")]
        rows = _rows_within(ops, spans)
        if not len(rows):
            continue
        ops[rows] += np.searchsorted(by_stop, ops[rows], side="right") - np.searchsorted(
            by_op, ops[rows]
        )
        if id(block) in moved_rows:
            moving, values = moved_rows[id(block)]
            ops[moving] = values
            block.array[rows] = block.array[rows[np.argsort(ops[rows], kind="stable")]]


def _layers(block) -> np.ndarray:
    """The layer of every row of ``block``."""
    if "layer" in block.names:
        return block.column("layer")
    return np.full(len(block), block.template["layer"], dtype=np.int64)


def _union(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """The union of the index ranges [start, end) as disjoint sorted (start, end) rows."""
    order = np.argsort(starts, kind="stable")
    starts, ends = starts[order], np.maximum.accumulate(ends[order])
    new = np.ones(len(starts), dtype=bool)
    new[1:] = starts[1:] > ends[:-1]
    last = np.append(np.flatnonzero(new)[1:], len(starts)) - 1
    return np.stack([starts[new], ends[last]], axis=1)


def _rows_within(ops: np.ndarray, spans: np.ndarray) -> np.ndarray:
    """The rows whose (sorted) ``ops`` fall in one of the disjoint sorted index ``spans``."""
    a = np.searchsorted(ops, spans[:, 0])
    span, within = runs(np.searchsorted(ops, spans[:, 1]) - a)
    return a[span] + within


def _loads_inputs(block) -> bool:
    return block.cls is Load and block.template["buffer"] == Buffer.INPUT


def _one(ranges, space: str, kind: int) -> tuple[np.ndarray, np.ndarray]:
    (found,) = [(lo, hi) for s, k, lo, hi in ranges if s == space and k == kind]
    return found


def _dram_read(ranges) -> tuple[str, np.ndarray, np.ndarray]:
    ((space, lo, hi),) = [(s, lo, hi) for s, k, lo, hi in ranges if k == READ]
    return space, lo, hi


def _first_later(
    ops: np.ndarray, lo: np.ndarray, hi: np.ndarray, targets: list[tuple]
) -> np.ndarray:
    """For every query (program index, range), the smallest target index above it whose
    range overlaps the query's; a number past every index if none."""
    none = np.iinfo(np.int64).max // 4
    if not targets:
        return np.full(len(ops), none, dtype=np.int64)
    t_op, t_lo, t_hi = (np.concatenate(part) for part in zip(*targets, strict=True))
    # latest_overlapping finds the largest index below: ask it with the order reversed.
    top = int(max(ops.max(), t_op.max()))
    found = latest_overlapping(top - ops, lo, hi, top - t_op, t_lo, t_hi)
    return np.where(found >= 0, top - found, none)
