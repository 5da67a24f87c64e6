"""Render a run's results as a table, JSON or CSV (``accel simulate --format``), and the
per-layer comparison with SCALE-Sim (``accel simulate --model both``).

Takes any backend's ``Result`` (see :mod:`sim.stats`); the JSON schema is documented in
``docs/simulate.md``.
"""

from __future__ import annotations

import csv
import io
import json

from accel.backend import STALL_CAUSES, Result
from accel.program import Program


def _shape(shape) -> str:
    return "x".join(str(d) for d in shape)


def rows(result: Result) -> list[dict]:
    """One flat dict per layer (the CSV rows)."""
    out = []
    for layer in result.layers:
        row = {
            "layer": layer.name,
            "kind": layer.kind,
            "input": _shape(layer.in_shape),
            "output": _shape(layer.out_shape),
            "macs": layer.macs,
            "cycles": layer.cycles,
            "utilization": round(layer.utilization, 6),
        }
        row.update({f"stall_{k}": layer.stalls[k] for k in STALL_CAUSES})
        row["dram_read_bytes"] = layer.dram_read
        row["dram_written_bytes"] = layer.dram_written
        out.append(row)
    return out


def render(result: Result, program: Program, fmt: str) -> str:
    if fmt == "json":
        doc = result.to_dict()
        doc["network"] = program.network
        doc["config"] = program.config.to_dict()
        return json.dumps(doc, indent=2) + "\n"
    if fmt == "csv":
        buffer = io.StringIO()
        table = rows(result)
        writer = csv.DictWriter(buffer, fieldnames=list(table[0]) if table else ["layer"])
        writer.writeheader()
        writer.writerows(table)
        return buffer.getvalue()
    if fmt != "table":
        raise ValueError(f"unknown format {fmt!r}")
    cfg = program.config
    header = [
        "layer",
        "output",
        "MACs",
        "cycles",
        "util%",
        "dram",
        "dep",
        "wload",
        "fill",
        "DRAM rd KB",
        "DRAM wr KB",
    ]
    body = []
    for layer in result.layers:
        s = layer.stalls
        body.append(
            [
                layer.name,
                _shape(layer.out_shape),
                f"{layer.macs:,}",
                f"{layer.cycles:,}",
                f"{100 * layer.utilization:.1f}",
                f"{s['dram']:,}",
                f"{s['dependency']:,}",
                f"{s['weights']:,}",
                f"{s['fill_drain']:,}",
                f"{layer.dram_read / 1024:.1f}",
                f"{layer.dram_written / 1024:.1f}",
            ]
        )
    st = result.stalls
    body.append(
        [
            "total",
            "",
            f"{result.macs:,}",
            f"{result.total_cycles:,}",
            f"{100 * result.utilization:.1f}",
            f"{st['dram']:,}",
            f"{st['dependency']:,}",
            f"{st['weights']:,}",
            f"{st['fill_drain']:,}",
            f"{result.dram_read_bytes / 1024:.1f}",
            f"{result.dram_written_bytes / 1024:.1f}",
        ]
    )
    widths = [max(len(str(r[i])) for r in [header, *body]) for i in range(len(header))]
    lines = [
        f"{program.network} on {cfg.name} ({cfg.array.rows}x{cfg.array.cols}, "
        f"DRAM {cfg.dram.bandwidth} B/cycle, latency {cfg.dram.latency}, {cfg.clock_mhz:g} MHz)"
    ]
    for i, r in enumerate([header, *body]):
        cells = [
            str(c).ljust(widths[j]) if j < 2 else str(c).rjust(widths[j]) for j, c in enumerate(r)
        ]
        lines.append("  ".join(cells))
        if i == 0 or i == len(body) - 1:
            lines.append("  ".join("-" * w for w in widths))
    lines.append(
        f"{result.total_cycles:,} cycles = {1e3 * result.seconds:.3f} ms at {cfg.clock_mhz:g} MHz: "
        f"{result.gops:.1f} GOPS, {1 / result.seconds if result.total_cycles else 0:.1f} "
        f"inferences/s, MAC utilization {100 * result.utilization:.1f}% "
        "(stall columns: cycles the array waited, by cause)"
    )
    return "\n".join(lines) + "\n"


COMPARISON_COLUMNS = (
    "layer",
    "scalesim_cycles",
    "accel_cycles",
    "ratio",
    "macs",
    "accel_utilization",
)


def render_comparison(rows: list[dict], fmt: str, *, title: str = "") -> str:
    """``accel simulate --model both``: per layer, SCALE-Sim's Total Cycles next to ours.

    ``rows`` are dicts with the keys of :data:`COMPARISON_COLUMNS`; ``ratio`` is ours /
    SCALE-Sim's (below 1: our machine takes fewer cycles). The table ends with a total row
    (sums, and the ratio of the sums).
    """
    if fmt not in ("table", "json", "csv"):
        raise ValueError(f"unknown format {fmt!r}")
    for i, row in enumerate(rows):
        if set(row) != set(COMPARISON_COLUMNS):
            raise ValueError(
                f"comparison row {i} must have the keys {list(COMPARISON_COLUMNS)}, "
                f"got {sorted(row)}"
            )
    theirs = sum(row["scalesim_cycles"] for row in rows)
    ours = sum(row["accel_cycles"] for row in rows)
    total = {
        "scalesim_cycles": theirs,
        "accel_cycles": ours,
        "ratio": ours / theirs if theirs else 0.0,
    }
    if fmt == "json":
        doc = {"title": title, "layers": rows, "total": total}
        return json.dumps(doc, indent=2) + "\n"
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(COMPARISON_COLUMNS))
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {
                    **row,
                    "ratio": round(row["ratio"], 6),
                    "accel_utilization": round(row["accel_utilization"], 6),
                }
            )
        return buffer.getvalue()
    header = ["layer", "SCALE-Sim cycles", "accel cycles", "accel/SCALE-Sim", "accel util%"]
    body = [
        [
            row["layer"],
            f"{row['scalesim_cycles']:,}",
            f"{row['accel_cycles']:,}",
            f"{row['ratio']:.3f}",
            f"{100 * row['accel_utilization']:.1f}",
        ]
        for row in rows
    ]
    body.append(["total", f"{theirs:,}", f"{ours:,}", f"{total['ratio']:.3f}", ""])
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    lines = [title] if title else []
    for i, r in enumerate([header, *body]):
        cells = [c.ljust(widths[j]) if j == 0 else c.rjust(widths[j]) for j, c in enumerate(r)]
        lines.append("  ".join(cells).rstrip())
        if i == 0 or i == len(body) - 1:
            lines.append("  ".join("-" * w for w in widths))
    lines.append(
        "SCALE-Sim's cycles: its stall-free compute model (folds run serially, each with a "
        "fill and drain)."
    )
    lines.append(
        "Ours include DRAM bandwidth and latency; --bandwidth 1024 compares compute alone "
        "(tests/test_sim_scalesim.py)."
    )
    return "\n".join(lines) + "\n"
