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

from accel.compiler.ops import READ, WRITE, OpLog
from accel.compiler.sync import latest_overlapping
from accel.isa import Buffer, Load


def sink_first_input_loads(log: OpLog) -> None:
    """Reorder ``log`` in place (the ``op`` index of its rows) as the module docstring says."""
    log.seal()
    blocks = [b for b in log.blocks if len(b)]
    count = len(log)
    layer = np.empty(count, dtype=np.int64)
    loads = np.zeros(count, dtype=bool)
    inputs = np.zeros(count, dtype=bool)  # the input-buffer loads
    for block in blocks:
        ops = block.column("op")
        layer[ops] = block.column("layer") if "layer" in block.names else block.template["layer"]
        loads[ops] = block.cls is Load
        inputs[ops] = _loads_inputs(block)
    # The input loads before the first COMPUTE, POST or STORE of their layer may move.
    first = np.full(int(layer.max()) + 1, count, dtype=np.int64)
    np.minimum.at(first, layer[~loads], np.flatnonzero(~loads))
    # Where they may stop: the first unit of the layer's first tile reads every channel tile
    # they load, within a COMPUTE and a weight load or two per channel tile (and kernel-row
    # chunk) after them; the window allows eight instructions per load. A load whose
    # reader lies beyond its layer's window stays where it is.
    early = np.flatnonzero(inputs & (np.arange(count) < first[layer]))
    if not len(early):
        return
    per_layer = np.bincount(layer[early], minlength=len(first))
    reach = np.minimum(first + 8 * per_layer + 64, count)  # per layer: its window's end
    window = np.zeros(count + 1, dtype=np.int64)
    np.add.at(window, early, 1)
    np.add.at(window, reach[layer[early]], -1)
    in_window = np.cumsum(window)[:count] > 0  # every instruction a moving load may pass

    accesses: dict[tuple[str, int], list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {}
    moving = []  # per input-load block: ops, input-buffer lo and hi, DRAM space, lo and hi
    for block in blocks:
        rows = in_window[block.column("op")]
        if not rows.any():
            continue
        ops = block.column("op")[rows]
        ranges = [(sp, kind, lo[rows], hi[rows]) for sp, kind, lo, hi in block.ranges()]
        for space, kind, lo, hi in ranges:
            accesses.setdefault((space, kind), []).append((ops, lo, hi))
        if _loads_inputs(block):
            (in_lo, in_hi), (space, d_lo, d_hi) = _one(ranges, "in", WRITE), _dram_read(ranges)
            mine = ops < first[layer[ops]]
            moving.append(
                [a[mine] for a in (ops, in_lo, in_hi, np.full(len(ops), space, object), d_lo, d_hi)]
            )
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
    moved = stop < reach[layer[ops]]
    new_key = 2 * np.arange(count, dtype=np.int64)  # an instruction that stays: 2 * index
    new_key[ops[moved]] = 2 * stop[moved] - 1  # just before the instruction it stops at
    order = np.lexsort((np.arange(count), new_key))  # moved ones keep their relative order
    index = np.empty(count, dtype=np.int64)
    index[order] = np.arange(count)
    for block in blocks:
        column = block.columns.index("op")
        block.array[:, column] = index[block.array[:, column]]
        block.array = block.array[np.argsort(block.array[:, column], kind="stable")]


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
