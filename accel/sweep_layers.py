"""The layers of a sweep's points (``layers.csv``) and, for a sweep over dataflows, which
dataflow wins each layer at each design point (``dataflows.csv``).

A finished point carries the layers of its run (:class:`accel.backend.LayerStats`, segment
after segment for a network with host steps; for a batch, those of the program that ran
it). ``layers.csv`` has one row per layer of every finished point, keyed like the points a
resumed sweep reuses (network, network digest, config digest, batch), with ``layers``, the
point's layer count, so that a point whose rows a killed run left incomplete is not taken
back (:func:`read_layers`).

:func:`compare_dataflows` groups the points that differ only in their dataflow (the same
network, batch, array, bandwidth, clock and buffers) and compares each group's layers with
:func:`accel.dataflows.compare`: per layer every dataflow's cycles, utilization, DRAM bytes
and SRAM reads and writes per buffer, the winner, the cycles it saves and why.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from accel import dataflows
from accel.backend import SRAM_BUFFERS, STALL_CAUSES, LayerStats
from accel.files import read_text

#: An :class:`accel.sweep.SweepPoint` (not imported: :mod:`accel.sweep` imports this module).
SweepPoint = Any

__all__ = [
    "GROUP_COLUMNS",
    "KEY_COLUMNS",
    "LAYER_COLUMNS",
    "compare_dataflows",
    "format_layer_rows",
    "point_key",
    "read_layers",
    "winners",
    "write_dataflows_csv",
    "write_layers_csv",
]

#: The point a ``layers.csv`` row belongs to (as a resumed sweep matches points).
KEY_COLUMNS = ("network", "network_digest", "config_digest", "batch")

#: Columns of ``layers.csv``: the point's key, its ``dataflow`` and layer count, then the
#: :class:`~accel.backend.LayerStats` fields (shapes as JSON lists, the stalls as
#: ``stall_<cause>``, the SRAM words as ``<buffer>_reads`` / ``<buffer>_writes``).
LAYER_COLUMNS = (
    *KEY_COLUMNS,
    "dataflow",
    "layers",
    "index",
    "name",
    "kind",
    "in_shape",
    "out_shape",
    "macs",
    "start",
    "end",
    "cycles",
    "utilization",
    "dram_read",
    "dram_written",
    "instructions",
    *(f"stall_{cause}" for cause in STALL_CAUSES),
    *(f"{buffer}_{way}" for buffer in SRAM_BUFFERS for way in ("reads", "writes")),
)

#: What the points of one dataflow comparison share: the first columns of
#: ``dataflows.csv``.
GROUP_COLUMNS = (
    "network",
    "batch",
    "rows",
    "cols",
    "bandwidth",
    "clock_mhz",
    "input_bytes",
    "weight_bytes",
    "acc_bytes",
    "output_bytes",
    "param_bytes",
)

_INTS = ("index", "macs", "start", "end", "cycles", "dram_read", "dram_written", "instructions")


def point_key(point: SweepPoint) -> tuple[str, str, str, int]:
    """The :data:`KEY_COLUMNS` of ``point``: how a resumed sweep finds its rows."""
    return point.network, point.network_digest, point.config_digest, point.batch


def _layer_row(point: SweepPoint, layer: LayerStats) -> dict[str, Any]:
    row: dict[str, Any] = {name: getattr(point, name) for name in KEY_COLUMNS}
    row.update(dataflow=point.dataflow, layers=len(point.layers))
    row.update({name: getattr(layer, name) for name in (*_INTS, "name", "kind")})
    row["in_shape"] = json.dumps(list(layer.in_shape))
    row["out_shape"] = json.dumps(list(layer.out_shape))
    row["utilization"] = repr(layer.utilization)  # read back to the same float
    row.update({f"stall_{cause}": layer.stalls[cause] for cause in STALL_CAUSES})
    for buffer in SRAM_BUFFERS:
        row[f"{buffer}_reads"] = layer.sram_reads[buffer]
        row[f"{buffer}_writes"] = layer.sram_writes[buffer]
    return row


def format_layer_rows(points: Iterable[SweepPoint], *, header: bool) -> str:
    """CSV text of every layer of ``points`` (with the header line when ``header``)."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(LAYER_COLUMNS), lineterminator="\n")
    if header:
        writer.writeheader()
    for point in points:
        writer.writerows(_layer_row(point, layer) for layer in point.layers)
    return text.getvalue()


def write_layers_csv(points: Sequence[SweepPoint], path: str | Path) -> Path:
    """``layers.csv``: the :data:`LAYER_COLUMNS` of every layer of ``points``."""
    path = Path(path)
    path.write_text(format_layer_rows(points, header=True))
    return path


def _parse_row(row: dict[str, str | None]) -> tuple[tuple, int, LayerStats] | None:
    """A ``layers.csv`` row's point key, the point's layer count and the layer, or None
    when the row is incomplete or not valid."""
    if None in row or any(row.get(name) is None for name in LAYER_COLUMNS):
        return None
    try:
        key = (str(row["network"]), str(row["network_digest"]), str(row["config_digest"]))
        key = (*key, int(row["batch"]))
        return (
            key,
            int(row["layers"]),
            LayerStats(
                **{name: int(row[name]) for name in _INTS},
                name=str(row["name"]),
                kind=str(row["kind"]),
                in_shape=tuple(json.loads(row["in_shape"])),
                out_shape=tuple(json.loads(row["out_shape"])),
                utilization=float(row["utilization"]),
                stalls={cause: int(row[f"stall_{cause}"]) for cause in STALL_CAUSES},
                sram_reads={b: int(row[f"{b}_reads"]) for b in SRAM_BUFFERS},
                sram_writes={b: int(row[f"{b}_writes"]) for b in SRAM_BUFFERS},
            ),
        )
    except (TypeError, ValueError):  # json.JSONDecodeError is a ValueError
        return None


def read_layers(path: str | Path) -> dict[tuple[str, str, str, int], tuple[LayerStats, ...]]:
    """The layers of every point of a ``layers.csv`` whose rows are all there and valid
    (keyed like :data:`KEY_COLUMNS`); ``{}`` when the file is missing or has other
    columns."""
    path = Path(path)
    if not path.is_file():
        return {}
    lines = read_text(path, what="sweep layers file").splitlines()
    if not lines or tuple(lines[0].split(",")) != LAYER_COLUMNS:
        return {}
    found: dict[tuple[str, str, str, int], list[LayerStats]] = {}
    expected: dict[tuple[str, str, str, int], int] = {}
    for row in csv.DictReader(lines):
        parsed = _parse_row(row)
        if parsed is None:
            continue
        key, count, layer = parsed
        found.setdefault(key, []).append(layer)
        expected[key] = count
    return {
        key: tuple(layers)
        for key, layers in found.items()
        if [x.index for x in layers] == list(range(expected[key]))
    }


def _group(point: SweepPoint) -> tuple:
    return tuple(getattr(point, name) for name in GROUP_COLUMNS)


def compare_dataflows(points: Sequence[SweepPoint]) -> list[dict[str, Any]]:
    """One row per layer per group of finished points with layers that differ only in
    their dataflow, for every group of two or more dataflows (in the order the points
    list them): the :data:`GROUP_COLUMNS`, then :func:`accel.dataflows.compare`'s columns
    for the group's dataflows. A group whose runs mapped different layers (which the
    same network on the same machine does not) raises ``ValueError``."""
    groups: dict[tuple, dict[str, SweepPoint]] = {}
    for point in points:
        if point.ok and point.layers:
            groups.setdefault(_group(point), {}).setdefault(point.dataflow, point)
    rows = []
    for group, by_flow in groups.items():
        if len(by_flow) < 2:
            continue
        shared = dict(zip(GROUP_COLUMNS, group, strict=True))
        compared = dataflows.compare({d: p.layers for d, p in by_flow.items()})
        rows.extend({**shared, **row} for row in compared)
    return rows


def write_dataflows_csv(rows: Sequence[Mapping[str, Any]], path: str | Path) -> Path:
    """``dataflows.csv``: ``rows`` of :func:`compare_dataflows` (a dataflow a group does not
    have leaves its columns empty)."""
    path = Path(path)
    columns = list(dict.fromkeys(name for row in rows for name in row))
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(text.getvalue())
    return path


def winners(rows: Sequence[Mapping[str, Any]]) -> list[tuple[dict[str, Any], Counter]]:
    """Per group of :func:`compare_dataflows`'s rows (in order): its
    :data:`GROUP_COLUMNS` and how many layers each dataflow wins, the layers where the
    two fastest take the same cycles counted as ``"tied"``."""
    counts: dict[tuple, Counter] = {}
    for row in rows:
        group = tuple(row[name] for name in GROUP_COLUMNS)
        counts.setdefault(group, Counter())[row["winner"] if row["saved"] else "tied"] += 1
    return [(dict(zip(GROUP_COLUMNS, group, strict=True)), c) for group, c in counts.items()]
