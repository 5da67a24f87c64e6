"""Which dataflow wins each layer, and why.

The same network, compiled for the same config with each dataflow (``array.dataflow``) and
run on the cycle model, compared layer by layer (:func:`compare`). A layer's cycles are its
share of the compute timeline (:class:`accel.backend.LayerStats`): the cycles in which the
array or vector unit was fed (``feed``) plus the stalls of the feed slot by cause
(:data:`accel.backend.STALL_CAUSES`). The winner is the dataflow with the fewest cycles; the
reason named is the part of the cycles (feed or a stall cause) in which the winner saves most
against the runner-up, with both values. Each row also has every dataflow's MAC
utilization, DRAM bytes and SRAM word reads and writes per buffer: weight-stationary reads
the weight tile once per pass and writes the accumulators once per pass and pixel;
output-stationary streams the weights once per group of ``rows`` pixels and writes each
accumulator once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from accel.backend import SRAM_BUFFERS, STALL_CAUSES, LayerStats

__all__ = ["compare", "parts"]


def parts(layer: LayerStats) -> dict[str, int]:
    """A layer's cycles split into ``feed`` and the stall causes (they add up to its
    cycles)."""
    stalls = {cause: layer.stalls[cause] for cause in STALL_CAUSES}
    return {"feed": layer.cycles - sum(stalls.values()), **stalls}


def compare(layers: Mapping[str, Sequence[LayerStats]]) -> list[dict[str, Any]]:
    """One row per layer of ``layers`` (dataflow -> the layers of its run, the same layers in
    the same order for every dataflow, at least two dataflows).

    Columns: ``layer``, ``kind``, ``macs``; per dataflow ``d``: ``cycles_d``,
    ``utilization_d``, ``dram_bytes_d``, ``sram_reads_d`` and ``sram_writes_d`` (words, all
    buffers) and ``<buffer>_reads_d`` / ``<buffer>_writes_d`` for the array's buffers
    (``in``, ``w``, ``acc``); then ``winner`` (fewest cycles; the first listed on a tie),
    ``saved`` (the runner-up's cycles minus the winner's) and ``why``.

    Raises
    ------
    ValueError
        Fewer than two dataflows, or runs whose layers differ.
    """
    if len(layers) < 2:
        raise ValueError(f"compare needs two or more dataflows, got {list(layers)}")
    names = {d: [x.name for x in run] for d, run in layers.items()}
    first, *others = layers
    for d in others:
        if names[d] != names[first]:
            raise ValueError(f"the {d} run's layers differ from the {first} run's")
    rows = []
    for i, name in enumerate(names[first]):
        mine = {d: run[i] for d, run in layers.items()}
        base = mine[first]
        row: dict[str, Any] = {"layer": name, "kind": base.kind, "macs": base.macs}
        for d, x in mine.items():
            row[f"cycles_{d}"] = x.cycles
            row[f"utilization_{d}"] = round(x.utilization, 6)
            row[f"dram_bytes_{d}"] = x.dram_read + x.dram_written
            row[f"sram_reads_{d}"] = sum(x.sram_reads[b] for b in SRAM_BUFFERS)
            row[f"sram_writes_{d}"] = sum(x.sram_writes[b] for b in SRAM_BUFFERS)
            for buffer in ("in", "w", "acc"):
                row[f"{buffer}_reads_{d}"] = x.sram_reads[buffer]
                row[f"{buffer}_writes_{d}"] = x.sram_writes[buffer]
        ranked = sorted(mine, key=lambda d: mine[d].cycles)  # stable: ties keep the order
        winner, runner = ranked[0], ranked[1]
        row["winner"] = winner
        row["saved"] = mine[runner].cycles - mine[winner].cycles
        row["why"] = _why(winner, parts(mine[winner]), runner, parts(mine[runner]))
        rows.append(row)
    return rows


def _why(winner: str, won: dict[str, int], runner: str, lost: dict[str, int]) -> str:
    """The part of the cycles in which the winner saves most, with both values."""
    if sum(won.values()) == sum(lost.values()):
        return "equal cycles"
    part = max(won, key=lambda p: lost[p] - won[p])
    what = "feed cycles" if part == "feed" else f"{part} stall cycles"
    return f"{what}: {winner} {won[part]:,}, {runner} {lost[part]:,}"
