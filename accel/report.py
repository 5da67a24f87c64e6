"""Render a run's results as a table, JSON or CSV (``accel simulate --format``), and the
per-layer comparison with SCALE-Sim (``accel simulate --model both``).

Takes any backend's :class:`~accel.backend.Result` with its program (:func:`render`), or a
:class:`~accel.deploy.DeploymentRun` of a network with host ops (:func:`render_run`); the
JSON schema is documented in ``docs/simulate.md``.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter

from accel.backend import STALL_CAUSES, LayerStats, Result
from accel.batch import Batch
from accel.deploy import DeploymentRun, HostStep
from accel.graph import HostOp
from accel.program import Program


def _shape(shape) -> str:
    return "x".join(str(d) for d in shape)


def rows(result: Result) -> list[dict]:
    """One flat dict per layer (the CSV rows)."""
    return [_row(layer) for layer in result.layers]


def _row(layer: LayerStats) -> dict:
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
    return row


def render(result: Result, program: Program, fmt: str, batch: Batch | None = None) -> str:
    """One program's run; with ``batch`` (more than one image), the table ends with the
    batch's lines and the JSON has ``"batch"`` (:meth:`accel.batch.Batch.to_dict`); the
    per-layer rows are the program's (one image's, or a whole batch's for the program of a
    batch, whose inferences per second count its images)."""
    if fmt == "json":
        doc = result.to_dict()
        doc["inferences_per_second"] *= program.batch
        doc["network"] = program.network
        doc["config"] = program.config.to_dict()
        if batch is not None:
            doc["batch"] = batch.to_dict()
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
    body = [_table_row(layer) for layer in result.layers]
    summary = (
        f"{result.total_cycles:,} cycles = {1e3 * result.seconds:.3f} ms at "
        f"{program.config.clock_text}: {result.gops:.1f} GOPS, "
        f"{program.batch / result.seconds if result.total_cycles else 0:.1f} inferences/s, "
        "MAC utilization "
        f"{100 * result.utilization:.1f}% (stall columns: cycles the array waited, by cause)"
    )
    notes = [summary, *(batch.lines() if batch is not None else [])]
    return _table(program.network, program.config, body, _total_row(result), notes)


_HEADER = [
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


def _table_row(layer: LayerStats) -> list[str]:
    s = layer.stalls
    return [
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


def _total_row(total) -> list[str]:
    """The total row of a :class:`Result` or a :class:`DeploymentRun` (same attributes)."""
    st = total.stalls
    return [
        "total",
        "",
        f"{total.macs:,}",
        f"{total.total_cycles:,}",
        f"{100 * total.utilization:.1f}",
        f"{st['dram']:,}",
        f"{st['dependency']:,}",
        f"{st['weights']:,}",
        f"{st['fill_drain']:,}",
        f"{total.dram_read_bytes / 1024:.1f}",
        f"{total.dram_written_bytes / 1024:.1f}",
    ]


def _table(network: str, cfg, body: list[list[str]], total: list[str], notes: list[str]) -> str:
    rows = [_HEADER, *body, total]
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(_HEADER))]
    lines = [
        f"{network} on {cfg.name} ({cfg.array.rows}x{cfg.array.cols}, "
        f"DRAM {cfg.dram.bandwidth} B/cycle, latency {cfg.dram.latency}, {cfg.clock_text})"
    ]
    for i, r in enumerate(rows):
        cells = [
            str(c).ljust(widths[j]) if j < 2 else str(c).rjust(widths[j]) for j, c in enumerate(r)
        ]
        lines.append("  ".join(cells))
        if i == 0 or i == len(rows) - 2:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join([*lines, *notes]) + "\n"


def host_row(run: DeploymentRun, step: HostStep) -> dict:
    """The row of a host step in the per-layer tables: the columns of :func:`rows` (no
    cycles, no accelerator traffic) and ``runs_on`` = ``"host"``."""
    net = run.deployment.qnet.network
    return {
        "layer": step.node,
        "kind": step.kind,
        "input": _shape(net.shape(step.inputs[0])),
        "output": _shape(net.shape(step.node)),
        "macs": 0,
        "cycles": 0,
        "utilization": 0.0,
        **{f"stall_{k}": 0 for k in STALL_CAUSES},
        "dram_read_bytes": 0,
        "dram_written_bytes": 0,
        "runs_on": "host",
    }


def mac_share_phrase(split: dict) -> str:
    """A :func:`partition`'s accelerator MAC share in words: ``"87.5% of the MACs"``, or
    ``"no MACs in the network"`` (a share of nothing is not 100%)."""
    share = split["accelerator_mac_share"]
    return "no MACs in the network" if share is None else f"{100 * share:.1f}% of the MACs"


def partition(run: DeploymentRun) -> dict:
    """What runs where: the steps in order and the shares of the accelerator.

    ``steps``: one dict per segment or host step, in execution order: ``runs_on``
    (``"accelerator"`` or ``"host"``), ``name`` (``segment 0`` or the host node), ``kind``
    (the host op, e.g. ``HostOp Sigmoid``; ``segment`` for a segment), ``layers`` (the
    nodes), ``cycles``, ``macs`` (a host op's from :func:`accel.host.macs`),
    ``host_writes_bytes`` / ``host_reads_bytes`` (the DRAM bytes the host writes into and
    reads out of a segment, :meth:`~accel.deploy.DeploymentRun.boundary`). Totals:
    ``accelerator_layers`` of ``layers``, ``accelerator_macs`` of ``macs`` (the host's MACs
    are those of its Conv/ConvTranspose/Gemm/MatMul ops), their ratio
    ``accelerator_mac_share`` (``None`` for a network without MACs), and ``boundary_bytes``.
    """
    from accel import host

    deployment = run.deployment
    results = dict(zip((s.index for s in deployment.segments), run.results, strict=True))
    steps = []
    for step in deployment.steps:
        if isinstance(step, HostStep):
            op_macs = host.macs(step.op) if isinstance(step.op, HostOp) else 0
            steps.append(
                {
                    "runs_on": "host",
                    "name": step.node,
                    "kind": step.kind,
                    "layers": [step.node],
                    "cycles": 0,
                    "macs": op_macs,
                    "host_writes_bytes": 0,
                    "host_reads_bytes": 0,
                }
            )
            continue
        result = results[step.index]
        written, read = run.boundary(step) if not deployment.whole else (0, 0)
        steps.append(
            {
                "runs_on": "accelerator",
                "name": f"segment {step.index}",
                "kind": "segment",
                "layers": list(step.layers),
                "cycles": result.total_cycles,
                "macs": result.macs,
                "host_writes_bytes": written,
                "host_reads_bytes": read,
            }
        )
    on_accel = [s for s in steps if s["runs_on"] == "accelerator"]
    accelerator_macs = sum(s["macs"] for s in on_accel)
    macs = sum(s["macs"] for s in steps)
    return {
        "segments": len(on_accel),
        "host_steps": len(steps) - len(on_accel),
        "layers": sum(len(s["layers"]) for s in steps),
        "accelerator_layers": sum(len(s["layers"]) for s in on_accel),
        "macs": macs,
        "accelerator_macs": accelerator_macs,
        "accelerator_mac_share": accelerator_macs / macs if macs else None,
        "boundary_bytes": run.boundary_bytes,
        "steps": steps,
    }


def render_run(run: DeploymentRun, fmt: str, batch: Batch | None = None) -> str:
    """A deployment's run: every layer in network order, host ops among them (a network
    without host ops renders exactly as :func:`render` renders its one program); ``batch``
    as :func:`render`'s."""
    deployment = run.deployment
    if deployment.whole:
        return render(run.results[0], deployment.segments[0].program, fmt, batch)
    net = deployment.qnet.network
    results = iter(run.results)
    layer_rows: list[dict] = []
    table_rows: list[list[str]] = []
    host_ops = []
    for step in deployment.steps:
        if isinstance(step, HostStep):
            row = host_row(run, step)
            shape = row["output"]
            layer_rows.append(row)
            table_rows.append([step.node, shape, "", "host", *[""] * 7])
            host_ops.append({"name": step.node, "kind": step.kind, "inputs": list(step.inputs)})
            continue
        result = next(results)
        for layer in result.layers:
            layer_rows.append({**_row(layer), "runs_on": "accelerator"})
            table_rows.append(_table_row(layer))
    accelerator_layers = sum(len(s.layers) for s in deployment.segments)
    total_layers = accelerator_layers + len(host_ops)
    cfg = deployment.config
    if fmt == "json":
        doc = {
            "network": net.name,
            "config": cfg.to_dict(),
            "total_cycles": run.total_cycles,
            "macs": run.macs,
            "utilization": run.utilization,
            "seconds": run.seconds,
            "gops": run.gops,
            "stalls": dict(run.stalls),
            "dram_read_bytes": run.dram_read_bytes,
            "dram_written_bytes": run.dram_written_bytes,
            "boundary_bytes": run.boundary_bytes,
            "accelerator_layers": accelerator_layers,
            "layers_total": total_layers,
            "host_ops": host_ops,
            "segments": [
                {
                    "index": s.index,
                    "layers": list(s.layers),
                    "inputs": list(s.inputs),
                    "outputs": list(s.outputs),
                    "total_cycles": r.total_cycles,
                    "instructions": s.program.instruction_count,
                }
                for s, r in zip(deployment.segments, run.results, strict=True)
            ],
            "partition": partition(run),
            "layers": layer_rows,
        }
        if batch is not None:
            doc["batch"] = batch.to_dict()
        return json.dumps(doc, indent=2) + "\n"
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(layer_rows[0]))
        writer.writeheader()
        writer.writerows(layer_rows)
        return buffer.getvalue()
    if fmt != "table":
        raise ValueError(f"unknown format {fmt!r}")
    kinds = Counter(h["kind"] for h in host_ops)
    ops = ", ".join(f"{kind} x{n}" if n > 1 else kind for kind, n in sorted(kinds.items()))
    if len(host_ops) <= 4:
        ops = ", ".join(f"{h['kind']} {h['name']!r}" for h in host_ops)
    notes = [
        f"{run.total_cycles:,} cycles = {1e3 * run.seconds:.3f} ms at {cfg.clock_text} on "
        f"the accelerator ({len(deployment.segments)} segment(s) back to back; host time not "
        f"counted): {run.gops:.1f} GOPS, MAC utilization {100 * run.utilization:.1f}%",
        f"host: {len(host_ops)} op(s) ({ops}); accelerator: {accelerator_layers} of "
        f"{total_layers} layers, {mac_share_phrase(partition(run))}; DRAM across the host "
        "boundary "
        f"{run.boundary_bytes / 1024:.1f} KB",
    ]
    notes += batch.lines() if batch is not None else []
    return _table(net.name, cfg, table_rows, _total_row(run), notes)


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
