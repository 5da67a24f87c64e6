"""A self-contained HTML report of a run (``accel report``), with its tables as CSV and JSON.

:func:`write_report` writes, into one directory:

``report.html``
    One file with no external references: a summary, per-layer cycles and MAC utilization
    bars, a roofline, stalls by cause per layer, buffer occupancy per layer and the per-layer
    table. The plots are SVG drawn by matplotlib and inlined.
``layers.csv``
    One row per layer (:func:`layer_table`).
``occupancy.csv``
    One row per layer: the words of each on-chip buffer the layer touches, and their
    fraction of the buffer (:func:`accel.occupancy.buffer_occupancy`).
``report.json``
    ``{"network", "config", "summary", "roofline", "layers", "occupancy"}`` (and
    ``"partition"`` for a network with host steps) with the same rows; ``occupancy`` is
    ``{"depth_words": {buffer: words}, "layers": [rows]}``.
``trace.json``
    The run's timeline for https://ui.perfetto.dev (:mod:`accel.timeline`).

A run of a batch of images (``accel report --batch N``, an :class:`accel.batch.Batch`) adds
a "Batch" section after the summary: the batch's cycles, time, images/s and MAC utilization,
per batch and per image, the weight bytes read from DRAM per image (one program for the
batch) and the note on weight reuse (:data:`accel.batch.WEIGHTS_NOTE`, or
:data:`accel.batch.IMAGE_BY_IMAGE_NOTE` for a network with host steps, whose tables are then
one image's); ``report.json`` has its ``"batch"`` (:meth:`accel.batch.Batch.to_dict`).

The roofline places each layer with MACs at ``operational intensity`` = MACs / DRAM bytes
(read + written by the layer's instructions) and ``attained`` = MACs / the layer's cycles
(its share of the compute timeline, as in ``accel simulate``), under two roofs: the compute
roof ``rows * cols`` MACs/cycle and the DRAM roof ``bandwidth * intensity`` (bytes/cycle x
MACs/byte). Layers without MACs (pooling, adds) or without DRAM traffic are in the tables
but not on the roofline.

A network that runs in part on the host (:mod:`accel.deploy`) comes in as a
:class:`~accel.deploy.DeploymentRun`: the tables hold every segment's layers and the host
steps in network order (``runs_on``, ``segment``), the page opens with a "Partition" section
(the steps in order, host steps marked with their op type, the share of layers and MACs on the
accelerator, the DRAM bytes across the host boundary) and ``report.json`` has its
``"partition"`` (:func:`accel.report.partition`).

matplotlib is an optional extra (``pip install 'accel[report]'``); without it
:func:`write_report` raises :class:`MissingExtraError` before writing anything. The run
itself comes in as an :class:`accel.backend.Result` or a ``DeploymentRun``: this module never
imports the model.
"""

from __future__ import annotations

import csv
import html
import io
import json
import math
import re
from pathlib import Path
from typing import Any

from accel import __version__, occupancy, report, timeline
from accel import batch as batches
from accel.backend import STALL_CAUSES, Result
from accel.config import AccelConfig
from accel.deploy import DeploymentRun, HostStep
from accel.program import Program

__all__ = [
    "INSTALL_HINT",
    "MissingExtraError",
    "deployment_summary",
    "deployment_table",
    "layer_table",
    "plot_occupancy",
    "require_matplotlib",
    "summary",
    "write_report",
]

#: How to install what the HTML report and the sweep plot need.
INSTALL_HINT = "pip install 'accel[report]'  (the 'report' extra: matplotlib>=3.7)"

STALL_COLORS = {
    "dram": "#d62728",
    "dependency": "#9467bd",
    "weights": "#ff7f0e",
    "fill_drain": "#7f7f7f",
}
#: The colour that marks what runs on the host (table rows, plot labels).
HOST_COLOR = "#b35900"
STALL_MEANING = {
    "dram": "waiting for a LOAD (inputs or weights not yet in the buffers)",
    "dependency": "waiting for POST to free accumulators (or another engine)",
    "weights": "passes shorter than rows pixels: the next weight tile is still loading",
    "fill_drain": "pipeline fill and drain, array/vector unit switches; output-stationary: "
    "the feed cycles of a partial pixel group's empty rows",
}


class MissingExtraError(ImportError):
    """An optional dependency is not installed; the message says which extra provides it."""


def require_matplotlib(what: str = "accel report") -> Any:
    """Import matplotlib or raise :class:`MissingExtraError` naming the ``report`` extra."""
    try:
        import matplotlib
    except ImportError:
        raise MissingExtraError(
            f"{what} draws its plots with matplotlib, which is not installed: {INSTALL_HINT}"
        ) from None
    return matplotlib


# ---------------------------------------------------------------------------------------
# Tables


def layer_table(result: Result, program: Program) -> list[dict[str, Any]]:
    """The columns of ``accel simulate --format csv`` plus the roofline of each layer.

    Added columns: ``dram_bytes`` (read + written), ``intensity_macs_per_byte`` (MACs /
    ``dram_bytes``; ``None`` without MACs or traffic), ``attained_macs_per_cycle`` (MACs /
    cycles), ``roof_macs_per_cycle`` (``min(rows*cols, bandwidth * intensity)``), ``bound``
    (``"compute"`` or ``"dram"``: the lower roof at the layer's intensity), ``start``/``end``
    (cycles spanned by all of the layer's instructions) and ``instructions``.
    """
    cfg = program.config
    peak, bandwidth = cfg.array.pes, cfg.dram.bandwidth
    out = []
    for row, layer in zip(report.rows(result), result.layers, strict=True):
        traffic = layer.dram_read + layer.dram_written
        intensity = layer.macs / traffic if layer.macs and traffic else None
        roof = min(peak, bandwidth * intensity) if intensity is not None else None
        row.update(
            {
                "dram_bytes": traffic,
                "intensity_macs_per_byte": _round(intensity),
                "attained_macs_per_cycle": _round(
                    layer.macs / layer.cycles if layer.cycles else 0.0
                ),
                "roof_macs_per_cycle": _round(roof),
                "bound": None if roof is None else ("compute" if roof >= peak else "dram"),
                "start": layer.start,
                "end": layer.end,
                "instructions": layer.instructions,
            }
        )
        out.append(row)
    return out


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def summary(result: Result, program: Program) -> dict[str, Any]:
    """Network totals (they equal the ``Result``'s)."""
    cfg = program.config
    return {
        "network": program.network,
        "config": cfg.name,
        "array": f"{cfg.array.rows}x{cfg.array.cols}",
        "clock_mhz": cfg.clock_mhz,
        "backend": result.backend,
        "total_cycles": result.total_cycles,
        "seconds": result.seconds,
        "macs": result.macs,
        "utilization": result.utilization,
        "gops": result.gops,
        # A program of a batch infers its batch's images in one run.
        "inferences_per_second": program.batch / result.seconds if result.total_cycles else 0.0,
        "stalls": dict(result.stalls),
        "dram_read_bytes": result.dram_read_bytes,
        "dram_written_bytes": result.dram_written_bytes,
        "layers": len(result.layers),
        "instructions": sum(len(stream) for stream in program.streams.values()),
    }


def deployment_table(run: DeploymentRun) -> list[dict[str, Any]]:
    """:func:`layer_table` of every segment, in network order, with the host steps among
    them (:func:`accel.report.host_row`: no cycles, no MACs counted, ``None`` roofline
    columns); every row has ``runs_on`` (``"accelerator"`` or ``"host"``) and ``segment``
    (the segment's index, ``None`` on the host). Segment rows' ``start``/``end`` are cycles
    of their own segment's program."""
    results = dict(zip((s.index for s in run.deployment.segments), run.results, strict=True))
    table = []
    for step in run.deployment.steps:
        if isinstance(step, HostStep):
            row = report.host_row(run, step)
            row.update(dict.fromkeys(_ROOFLINE_COLUMNS), dram_bytes=0, instructions=0)
            row.update(attained_macs_per_cycle=0.0, segment=None)
            table.append(row)
            continue
        for row in layer_table(results[step.index], step.program):
            table.append({**row, "runs_on": "accelerator", "segment": step.index})
    return table


_ROOFLINE_COLUMNS = ("intensity_macs_per_byte", "roof_macs_per_cycle", "bound", "start", "end")


def deployment_summary(run: DeploymentRun) -> dict[str, Any]:
    """Network totals of a deployment (they equal the :class:`DeploymentRun`'s: the
    accelerator's cycles, segment after segment; host time is not counted), with the keys of
    :func:`summary` plus ``segments``, ``host_steps``, ``accelerator_layers``,
    ``accelerator_mac_share`` and ``boundary_bytes`` (:func:`accel.report.partition`)."""
    deployment, cfg = run.deployment, run.deployment.config
    split = report.partition(run)
    return {
        "network": deployment.qnet.network.name,
        "config": cfg.name,
        "array": f"{cfg.array.rows}x{cfg.array.cols}",
        "clock_mhz": cfg.clock_mhz,
        "backend": run.results[0].backend if run.results else "model",
        "total_cycles": run.total_cycles,
        "seconds": run.seconds,
        "macs": run.macs,
        "utilization": run.utilization,
        "gops": run.gops,
        "inferences_per_second": 1 / run.seconds if run.total_cycles else 0.0,
        "stalls": dict(run.stalls),
        "dram_read_bytes": run.dram_read_bytes,
        "dram_written_bytes": run.dram_written_bytes,
        "layers": split["layers"],
        "instructions": sum(s.program.instruction_count for s in deployment.segments),
        "segments": split["segments"],
        "host_steps": split["host_steps"],
        "accelerator_layers": split["accelerator_layers"],
        "accelerator_mac_share": split["accelerator_mac_share"],
        "boundary_bytes": split["boundary_bytes"],
    }


# ---------------------------------------------------------------------------------------
# Plots (SVG strings)


def _svg(fig, name: str) -> str:
    import matplotlib

    buffer = io.StringIO()
    # Text stays text (smaller, searchable); a fixed salt makes the output reproducible; no
    # metadata block (it only names RDF namespaces).
    metadata = dict.fromkeys(("Date", "Creator", "Format", "Type"))
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "accel"}):
        fig.savefig(buffer, format="svg", metadata=metadata)
    text = buffer.getvalue()
    text = text[text.index("<svg") :]
    # Several figures share one page: prefix every id, and every reference to one.
    text = re.sub(r'\bid="([^"]+)"', rf'id="{name}-\1"', text)
    return re.sub(r'(url\(#|href="#)([^)"]+)', rf"\1{name}-\2", text)


def _labels(table: list[dict]) -> list[str]:
    """Layer names for a plot's axis, host steps marked ``[host]``."""
    return [
        f"[host] {row['layer']}" if row.get("runs_on") == "host" else row["layer"] for row in table
    ]


def _layer_height(n: int) -> float:
    return max(2.5, 0.9 + 0.24 * n)


def _mark_host_ticks(ax, table: list[dict]) -> None:
    for label, row in zip(ax.get_yticklabels(), table, strict=True):
        if row.get("runs_on") == "host":
            label.set_color(HOST_COLOR)


def plot_cycles(table: list[dict]) -> str:
    from matplotlib.figure import Figure

    names = _labels(table)
    y = list(range(len(names)))
    fig = Figure(figsize=(10, _layer_height(len(names))), layout="constrained")
    left, right = fig.subplots(1, 2, sharey=True, width_ratios=(3, 2))
    left.barh(y, [row["cycles"] for row in table], color="#1f77b4")
    left.set_xlabel("cycles (share of the compute timeline)")
    left.set_yticks(y, names, fontsize=8)
    left.invert_yaxis()
    left.grid(axis="x", alpha=0.3)
    _mark_host_ticks(left, table)
    right.barh(y, [100 * row["utilization"] for row in table], color="#2ca02c")
    right.set_xlim(0, 100)
    right.set_xlabel("MAC utilization %")
    right.grid(axis="x", alpha=0.3)
    return _svg(fig, "cycles")


def plot_stalls(table: list[dict]) -> str:
    from matplotlib.figure import Figure

    names = _labels(table)
    y = list(range(len(names)))
    fig = Figure(figsize=(10, _layer_height(len(names))), layout="constrained")
    ax = fig.subplots()
    left = [0] * len(names)
    for cause in STALL_CAUSES:
        values = [row[f"stall_{cause}"] for row in table]
        ax.barh(y, values, left=left, color=STALL_COLORS[cause], label=cause)
        left = [a + b for a, b in zip(left, values, strict=True)]
    ax.set_yticks(y, names, fontsize=8)
    ax.invert_yaxis()
    _mark_host_ticks(ax, table)
    ax.set_xlabel("stall cycles of the array's feed slot")
    ax.grid(axis="x", alpha=0.3)
    fig.legend(loc="outside upper center", ncols=len(STALL_CAUSES), fontsize=8)
    return _svg(fig, "stalls")


def plot_roofline(table: list[dict], peak: int, bandwidth: int) -> str:
    from matplotlib.figure import Figure

    points = [row for row in table if row["intensity_macs_per_byte"] and row["cycles"]]
    fig = Figure(figsize=(8, 5.5), layout="constrained")
    ax = fig.subplots()
    ridge = peak / bandwidth
    xs = [row["intensity_macs_per_byte"] for row in points] + [ridge]
    lo, hi = min(xs) / 4, max(xs) * 4
    ax.plot([lo, ridge, hi], [bandwidth * lo, peak, peak], color="black", lw=1.5)
    ax.annotate(
        f"compute roof {peak} MACs/cycle",
        (hi, peak),
        xytext=(-4, 4),
        textcoords="offset points",
        ha="right",
        fontsize=8,
    )
    ax.annotate(
        f"DRAM roof {bandwidth} B/cycle",
        (lo, bandwidth * lo),
        xytext=(4, 6),
        textcoords="offset points",
        fontsize=8,
        rotation=20,
    )
    kinds = sorted({row["kind"] for row in points})
    for kind in kinds:
        rows = [row for row in points if row["kind"] == kind]
        ax.scatter(
            [row["intensity_macs_per_byte"] for row in rows],
            [row["attained_macs_per_cycle"] for row in rows],
            label=kind,
            s=22,
            zorder=3,
        )
    # Name the layers furthest below their roof first (at most 12), skipping a label that
    # would overlap one already placed, so that the names stay readable.
    named = sorted(
        points, key=lambda row: row["attained_macs_per_cycle"] / row["roof_macs_per_cycle"]
    )
    if len(named) > 12:
        named = [r for r in named if r["attained_macs_per_cycle"] < 0.9 * r["roof_macs_per_cycle"]]
    low = min([bandwidth * lo, *(row["attained_macs_per_cycle"] for row in points)])
    for row in _unoverlapped(named, (lo, hi), (low / 2, peak * 2))[:12]:
        ax.annotate(
            row["layer"],
            (row["intensity_macs_per_byte"], row["attained_macs_per_cycle"]),
            xytext=(3, -3),
            textcoords="offset points",
            fontsize=7,
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylim(low / 2, peak * 2)
    ax.set_xlim(lo, hi)
    ax.set_xlabel("operational intensity (MACs / DRAM byte)")
    ax.set_ylabel("attained MACs / cycle")
    ax.grid(which="both", alpha=0.25)
    if kinds:
        ax.legend(loc="lower right", fontsize=8)
    return _svg(fig, "roofline")


def _unoverlapped(rows: list[dict], xlim: tuple, ylim: tuple) -> list[dict]:
    """The rows, in order, whose roofline labels (7-point text right of and below the point,
    on the log-log axes of the roofline's 8 x 5.5 inch figure) miss every label kept before."""
    span_x, span_y = math.log10(xlim[1] / xlim[0]), math.log10(ylim[1] / ylim[0])
    placed: list[tuple[float, float, float, float]] = []
    kept = []
    for row in rows:
        # Axes fractions: a 7-point character is about 0.009 of the axes' width, a line 0.03
        # of its height.
        x = math.log10(row["intensity_macs_per_byte"] / xlim[0]) / span_x
        y = math.log10(row["attained_macs_per_cycle"] / ylim[0]) / span_y
        box = (x, x + 0.009 * len(row["layer"]) + 0.01, y - 0.035, y)
        if all(
            box[1] <= b[0] or b[1] <= box[0] or box[3] <= b[2] or b[3] <= box[2] for b in placed
        ):
            placed.append(box)
            kept.append(row)
    return kept


def plot_occupancy(rows: list[dict], depths: dict[str, int] | None = None) -> str:
    """Heatmap of :func:`accel.occupancy.buffer_occupancy` rows: layers down, the five
    buffers across, colour and label = the fraction of the buffer's depth the layer touches
    (a buffer the layer does not use is grey). ``depths`` (words) label the columns."""
    import matplotlib
    import numpy as np
    from matplotlib.figure import Figure

    names = [row["layer"] for row in rows]
    buffers = occupancy.BUFFERS
    fractions = np.array(
        [[row[f"{b}_fraction"] for b in buffers] for row in rows], dtype=float
    ).reshape(len(rows), len(buffers))
    used = np.array([[row[f"{b}_words"] > 0 for b in buffers] for row in rows], dtype=bool)
    used = used.reshape(fractions.shape)
    fig = Figure(figsize=(7, _layer_height(len(names))), layout="constrained")
    ax = fig.subplots()
    cmap = matplotlib.colormaps["Blues"].with_extremes(bad="#eeeeee")
    image = ax.imshow(
        np.ma.masked_array(fractions, ~used),
        cmap=cmap,
        vmin=0,
        vmax=1,
        aspect="auto",
        interpolation="nearest",
    )
    for i, j in zip(*np.nonzero(used), strict=True):
        value = fractions[i, j]
        ax.text(
            j,
            i,
            f"{100 * value:.0f}%" if value >= 0.01 else "<1%",
            ha="center",
            va="center",
            fontsize=7,
            color="white" if value > 0.6 else "black",
        )
    labels = [f"{b}\n{depths[b]:,} words" if depths else b for b in buffers]
    ax.set_xticks(range(len(buffers)), labels, fontsize=8)
    ax.xaxis.tick_top()
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.tick_params(length=0)
    fig.colorbar(image, ax=ax, label="fraction of the buffer's depth", shrink=0.6)
    return _svg(fig, "occupancy")


# ---------------------------------------------------------------------------------------
# HTML

_CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1100px;
       color: #222; padding: 0 1em; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; } h2 { margin-top: 2em; }
.sub { color: #666; margin-top: 0; }
.cards { display: flex; flex-wrap: wrap; gap: 0.8em; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 0.5em 0.9em; min-width: 9em; }
.card b { display: block; font-size: 1.3em; }
table { border-collapse: collapse; font-size: 12px; }
th, td { padding: 2px 8px; border-bottom: 1px solid #eee; text-align: right; }
th { background: #f6f6f6; position: sticky; top: 0; }
td.l, th.l { text-align: left; }
figure { margin: 1em 0; } figure svg { max-width: 100%; height: auto; }
figcaption { color: #555; font-size: 13px; }
code { background: #f4f4f4; padding: 0 3px; }
tr.host td { background: #fff3e6; color: HOST_COLOR; }
td { white-space: nowrap; } td.l { white-space: normal; overflow-wrap: break-word; }
.scroll { overflow-x: auto; } td.l:last-child { min-width: 24em; }
.strip { display: flex; height: 1.6em; border: 1px solid #ccc; margin: 0.6em 0; }
.strip div { min-width: 3px; border-right: 1px solid #fff; }
.strip .accelerator { background: #1f77b4; } .strip .host { background: HOST_COLOR; }
""".replace("HOST_COLOR", HOST_COLOR)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.3f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _table(rows: list[dict], columns: list[tuple[str, str]], left: set[str]) -> str:
    head = "".join(
        f'<th class="l">{html.escape(title)}</th>'
        if key in left
        else f"<th>{html.escape(title)}</th>"
        for key, title in columns
    )
    body = []
    for row in rows:
        cells = "".join(
            f'<td class="l">{html.escape(_fmt(row[key]))}</td>'
            if key in left
            else f"<td>{html.escape(_fmt(row[key]))}</td>"
            for key, _ in columns
        )
        host = ' class="host"' if row.get("runs_on") == "host" else ""
        body.append(f"<tr{host}>{cells}</tr>")
    table = f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    return f'<div class="scroll">{table}</div>'


def _partition_section(split: dict[str, Any]) -> list[str]:
    """The "Partition" section of a deployment: a strip of the steps (width = layers) and
    their table."""
    strip = "".join(
        f'<div class="{step["runs_on"]}" style="flex-grow: {len(step["layers"])}" '
        f'title="{html.escape(step["name"])}: {html.escape(step["kind"])}, '
        f'{len(step["layers"])} layer(s)"></div>'
        for step in split["steps"]
    )
    rows = []
    for i, step in enumerate(split["steps"]):
        host = step["runs_on"] == "host"
        first, last = step["layers"][0], step["layers"][-1]
        rows.append(
            {
                **step,
                "step": i,
                "what": step["kind"] if host else step["name"],
                "layer_count": len(step["layers"]),
                "span": first if first == last else f"{first} .. {last}",
                "cycles": None if host else step["cycles"],
            }
        )
    columns = [
        ("step", "step"),
        ("runs_on", "runs on"),
        ("what", "what"),
        ("layer_count", "layers"),
        ("span", "layers (first .. last)"),
        ("cycles", "cycles"),
        ("macs", "MACs"),
        ("host_writes_bytes", "host writes B"),
        ("host_reads_bytes", "host reads B"),
    ]
    return [
        '<h2 id="partition">Partition: accelerator segments and host steps</h2>',
        f"<p>The accelerator runs {split['accelerator_layers']} of {split['layers']} layers "
        f"({report.mac_share_phrase(split)}) in {split['segments']} segments, one program "
        f"each, back to back; {split['host_steps']} step(s) run on the host between them "
        "(orange). The cycles "
        "in this report are the accelerator's; the host's time is not modelled. Across the "
        f"boundary the host writes and reads {split['boundary_bytes']:,} bytes of DRAM "
        "(segment inputs it computed, segment outputs it needs).</p>",
        f'<div class="strip">{strip}</div>',
        _table(rows, columns, {"runs_on", "what", "span"}),
    ]


def _dataflow_section(compared: list[dict]) -> list[str]:
    """Per layer, each dataflow's cycles, the winner and why, and the SRAM traffic that
    differs between dataflows (:func:`accel.dataflows.compare`)."""
    flows = [key[len("cycles_") :] for key in compared[0] if key.startswith("cycles_")]
    wins = {d: sum(row["winner"] == d and row["saved"] > 0 for row in compared) for d in flows}
    columns = [
        ("layer", "layer"),
        ("kind", "kind"),
        *((f"cycles_{d}", f"cycles {d}") for d in flows),
        ("winner", "winner"),
        ("saved", "cycles saved"),
        *((f"w_reads_{d}", f"weight reads {d}") for d in flows),
        *((f"acc_writes_{d}", f"acc writes {d}") for d in flows),
        ("why", "why"),
    ]
    tally = ", ".join(f"{d} wins {n} layer(s)" for d, n in wins.items())
    return [
        '<h2 id="dataflows">Dataflows</h2>',
        f"<p>The same network compiled and run for each dataflow ({', '.join(flows)}) on "
        f"this config: {tally}; the rest tie. The winner has the fewest cycles; <i>why</i> "
        "names the part of the cycles (feed, or a stall cause) in which the winner saves "
        "most against the runner-up. SRAM columns are words; every column of every "
        "dataflow is in dataflows.csv.</p>",
        _table(compared, columns, {"layer", "kind", "winner", "why"}),
    ]


def _batch_section(batch: batches.Batch, programs: list[Program]) -> list[str]:
    """The "Batch" section: the batch's figures, per batch and per image, and the note on
    weight reuse."""
    n = batch.images
    weights = sum(batches.weight_bytes(p) for p in programs)
    cards = [
        ("images", f"{n}"),
        ("cycles per batch", f"{batch.total_cycles:,}"),
        ("cycles per image", f"{batch.cycles_per_image:,.0f}"),
        ("time per batch", f"{1e3 * batch.seconds:.3f} ms"),
        ("time per image", f"{1e3 * batch.seconds / n:.3f} ms"),
        ("latency", f"{1e3 * batch.latency_seconds:.3f} ms"),
        ("images/s", f"{batch.images_per_second:.1f}"),
        ("MAC utilization", f"{100 * batch.utilization:.1f}%"),
    ]
    if batch.resident:
        how = (
            f"One program runs the {n} images, layer by layer over the batch; the tables and "
            "plots below are that program's: every layer's cycles and DRAM bytes are the "
            "whole batch's."
        )
        cards.append(("weights read per image", f"{weights / n / 1024:.1f} KiB"))
    else:
        simulated = "" if batch.simulated else " (one simulated; every image takes its cycles)"
        how = (
            f"The {n} images run one after the other{simulated}; the tables and plots below "
            f"are one image's, and the batch takes {n} times its cycles."
        )
        cards.append(("weights read per image", f"{weights / 1024:.1f} KiB"))
    card_html = "".join(
        f'<div class="card">{html.escape(k)}<b>{html.escape(v)}</b></div>' for k, v in cards
    )
    return [
        f'<h2 id="batch">Batch of {n} images</h2>',
        f"<p>{html.escape(how)} Latency is from the batch's start to an image's result.</p>",
        f'<div class="cards">{card_html}</div>',
        f'<p class="note">Weight reuse: {html.escape(batch.note)}.</p>',
    ]


def _figure(fig_id: str, svg: str, caption: str) -> str:
    return (
        f'<figure id="fig-{fig_id}" class="plot">{svg}'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def render_html(
    totals: dict[str, Any],
    cfg: AccelConfig,
    table: list[dict],
    *,
    occupancy_rows: list[dict],
    mapping: dict[str, dict],
    trace_name: str | None,
    split: dict[str, Any] | None = None,
    batch: batches.Batch | None = None,
    programs: list[Program] | None = None,
    compared: list[dict] | None = None,
) -> str:
    """The page (needs matplotlib): ``totals`` from :func:`summary` (or
    :func:`deployment_summary`), ``table`` from :func:`layer_table` (or
    :func:`deployment_table`), ``mapping`` each layer's tiling, ``split`` a deployment's
    :func:`accel.report.partition` (a "Partition" section, host rows marked), ``batch`` a
    batch's figures (a "Batch" section; ``programs`` the programs run, for their weight
    bytes), ``compared`` the rows of :func:`accel.dataflows.compare` (a "Dataflows"
    section)."""
    depths = occupancy.buffer_depths(cfg)
    stalls = totals["stalls"]
    # The run's own totals: a batch's program (every image), or one image run on its own.
    whose = ""
    if batch is not None:
        whose = f" (batch of {batch.images})" if batch.resident else " (one image)"
    cards = [
        (f"total cycles{whose}", f"{totals['total_cycles']:,}"),
        (f"time{whose}", f"{1e3 * totals['seconds']:.3f} ms"),
        ("MAC utilization", f"{100 * totals['utilization']:.1f}%"),
        ("throughput", f"{totals['gops']:.1f} GOPS"),
        ("inferences/s", f"{totals['inferences_per_second']:.1f}"),
        (f"MACs{whose}", f"{totals['macs']:,}"),
        ("DRAM read", f"{totals['dram_read_bytes'] / 2**20:.2f} MiB"),
        ("DRAM written", f"{totals['dram_written_bytes'] / 2**20:.2f} MiB"),
        ("stall cycles", f"{sum(stalls.values()):,}"),
    ]
    if split is not None:
        share = split["accelerator_mac_share"]
        share_card = "no MACs" if share is None else f"{100 * share:.1f}%"
        cards[:0] = [
            ("MACs on the accelerator", share_card),
            ("layers on the accelerator", f"{split['accelerator_layers']} of {split['layers']}"),
            ("segments / host steps", f"{split['segments']} / {split['host_steps']}"),
            ("DRAM across the host boundary", f"{split['boundary_bytes'] / 1024:.1f} KiB"),
        ]
    card_html = "".join(
        f'<div class="card">{html.escape(k)}<b>{html.escape(v)}</b></div>' for k, v in cards
    )
    config_rows = [
        {"key": f"{section}.{key}" if section else key, "value": value}
        for section, values in (
            ("", {"name": cfg.name, "clock_mhz": cfg.clock_mhz}),
            ("array", cfg.to_dict()["array"]),
            ("buffers", cfg.to_dict()["buffers"]),
            ("dram", cfg.to_dict()["dram"]),
        )
        for key, value in values.items()
    ]
    peak, bandwidth = cfg.array.pes, cfg.dram.bandwidth
    off_roof = [
        row["layer"]
        for row in table
        if not row["intensity_macs_per_byte"] and row.get("runs_on") != "host"
    ]
    # A layer's cycles are its share of the compute timeline, while its loads may have run in
    # the previous layers' shares (prefetch): such a layer sits above its DRAM roof.
    above_roof = [
        row["layer"]
        for row in table
        if row["intensity_macs_per_byte"]
        and row["attained_macs_per_cycle"] > row["roof_macs_per_cycle"]
    ]
    columns = [
        ("layer", "layer"),
        *([("runs_on", "runs on")] if split is not None else []),
        ("kind", "kind"),
        ("output", "output"),
        ("macs", "MACs"),
        ("cycles", "cycles"),
        ("utilization", "util"),
        *((f"stall_{c}", c) for c in STALL_CAUSES),
        ("dram_read_bytes", "DRAM rd B"),
        ("dram_written_bytes", "DRAM wr B"),
        ("intensity_macs_per_byte", "MACs/B"),
        ("attained_macs_per_cycle", "MACs/cycle"),
        ("bound", "bound"),
        ("mapping", "mapping"),
    ]
    display = [
        {
            **row,
            "mapping": ", ".join(f"{k}={v}" for k, v in mapping.get(row["layer"], {}).items()),
        }
        for row in table
    ]
    stall_rows = [{"cause": c, "cycles": stalls[c], "meaning": STALL_MEANING[c]} for c in stalls]
    files = [
        '<a href="layers.csv">layers.csv</a>',
        '<a href="occupancy.csv">occupancy.csv</a>',
        '<a href="report.json">report.json</a>',
        *([] if compared is None else ['<a href="dataflows.csv">dataflows.csv</a>']),
    ]
    if trace_name is None and split is not None:
        files.append(
            "no trace.json: a timeline shows one program, and this network runs in "
            f"{split['segments']} programs (<code>accel simulate --trace</code> needs one too)"
        )
    if trace_name:
        files.append(
            f'<a href="{html.escape(trace_name)}">{html.escape(trace_name)}</a> (open it in '
            "https://ui.perfetto.dev or chrome://tracing: one track per engine)"
        )
    if split is not None and not split["accelerator_layers"]:
        # Nothing ran on the accelerator: its plots would be empty axes.
        accelerator_sections = [
            "<p>No layer of this network runs on the accelerator, so there are no cycles, "
            "roofline, stalls or buffer occupancy to show.</p>"
        ]
    else:
        accelerator_sections = [
            '<h2 id="cycles">Cycles and utilization per layer</h2>',
            _figure(
                "cycles",
                plot_cycles(table),
                "Each layer's share of the compute engine's timeline (from the end of the previous "
                "layer's last pass to the end of its own; the shares add up to the total) and its "
                "MAC utilization = MACs / (rows x cols x cycles).",
            ),
            '<h2 id="roofline">Roofline</h2>',
            _figure(
                "roofline",
                plot_roofline(table, peak, bandwidth),
                "Operational intensity = MACs / DRAM bytes read and written by the layer; "
                "attained = MACs / layer cycles. Roofs: compute "
                f"{cfg.array.rows}x{cfg.array.cols} = {peak} MACs/cycle, DRAM {bandwidth} "
                f"B/cycle x intensity (ridge at {peak / bandwidth:g} MACs/B).",
            ),
            "<p>Not on the roofline (no MACs or no DRAM traffic): "
            f"{html.escape(', '.join(off_roof)) or 'none'}.</p>",
            *(
                [
                    "<p>Above their roof: "
                    f"{html.escape(', '.join(above_roof))}. A layer's cycles are its share of the "
                    "compute timeline, and some of its DRAM traffic ran earlier, in the shares of "
                    "the layers before it (the DMA loads a layer's inputs and weights while the "
                    "previous one computes).</p>"
                ]
                if above_roof
                else []
            ),
            '<h2 id="stalls">Stalls by cause</h2>',
            _figure(
                "stalls",
                plot_stalls(table),
                "Cycles in which the array/vector unit's feed slot was idle, by cause. Busy cycles "
                "plus stalls equal each layer's cycles.",
            ),
            _table(
                stall_rows,
                [("cause", "cause"), ("cycles", "cycles"), ("meaning", "meaning")],
                {"cause", "meaning"},
            ),
            '<h2 id="occupancy">Buffer occupancy</h2>',
            _figure(
                "occupancy",
                plot_occupancy(occupancy_rows, depths),
                "Working set of each layer in each on-chip buffer: the distinct words the layer's "
                "instructions write or read, as a fraction of the buffer's depth (input: LOAD "
                "writes and the window generator's reads, padding excluded; weight: LOAD writes "
                "and the ARRAY passes' weight tiles; param: LOAD writes and the word each "
                "requantizing POST reads; acc: rows COMPUTE writes and POST reads; output: words "
                "POST writes and STORE reads). Exact, from the instructions' address fields. It is "
                "the address footprint over the whole layer, not the data live at one time: every "
                "slot of a double-buffered ring counts. Grey: the layer does not use the buffer. "
                "Table: occupancy.csv.",
            ),
        ]
    title = f"{totals['network']} on {cfg.name}"
    if batch is not None:
        title += f", a batch of {batch.images} images"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)} - accel report</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="sub">{cfg.array.rows}x{cfg.array.cols} array, DRAM {bandwidth} B/cycle, '
        f"latency {cfg.dram.latency} cycles, {cfg.clock_text}; backend "
        f"{html.escape(totals['backend'])}; accel {html.escape(__version__)}</p>",
        f'<div class="cards">{card_html}</div>',
        *([] if batch is None else _batch_section(batch, programs or [])),
        *([] if split is None else _partition_section(split)),
        *([] if compared is None else _dataflow_section(compared)),
        *accelerator_sections,
        '<h2 id="layers">Layers</h2>',
        _table(display, columns, {"layer", "runs_on", "kind", "output", "bound", "mapping"}),
        '<h2 id="config">Config</h2>',
        _table(config_rows, [("key", "key"), ("value", "value")], {"key", "value"}),
        '<h2 id="files">Files</h2>',
        "<ul>" + "".join(f"<li>{f}</li>" for f in files) + "</ul>",
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _csv_text(table: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(table[0]) if table else ["layer"])
    writer.writeheader()
    writer.writerows(table)
    return buffer.getvalue()


def write_report(
    out_dir: str | Path,
    run: Result | DeploymentRun,
    program: Program | None = None,
    *,
    trace: bool = True,
    batch: batches.Batch | None = None,
    compared: list[dict] | None = None,
) -> dict[str, Path]:
    """Write ``report.html``, ``layers.csv``, ``occupancy.csv``, ``report.json`` (and
    ``trace.json``) into ``out_dir`` (created if missing); return their paths by name.

    ``batch`` (:meth:`accel.batch.Batch.of` the run, more than one image) adds the "Batch"
    section and ``report.json``'s ``"batch"``; ``compared`` (:func:`accel.dataflows.compare`
    of this run's network on other dataflows) the "Dataflows" section, ``dataflows.csv`` and
    ``report.json``'s ``"dataflows"``.

    ``run`` is one program's :class:`Result` (``program`` is then that program) or a
    :class:`~accel.deploy.DeploymentRun`. A deployment the accelerator runs whole reports as
    its one program; one with host steps adds a "Partition" section, ``runs_on`` and
    ``segment`` columns, and ``report.json`` a ``"partition"`` entry
    (:func:`accel.report.partition`); it has no ``trace.json`` (a timeline is one program's).

    Raises
    ------
    MissingExtraError
        If matplotlib is not installed (nothing is written then).
    """
    require_matplotlib()
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"report output {str(out)!r} exists and is not a directory")
    split = None
    if isinstance(run, DeploymentRun) and run.deployment.whole:
        run, program = run.results[0], run.deployment.segments[0].program
    if isinstance(run, DeploymentRun):
        cfg = run.deployment.config
        programs = [s.program for s in run.deployment.segments]
        table = deployment_table(run)
        totals = deployment_summary(run)
        split = report.partition(run)
        trace = False
    else:
        if program is None:
            raise TypeError("write_report of a Result needs its program")
        cfg, programs = program.config, [program]
        table = layer_table(run, program)
        totals = summary(run, program)
    occupancy_rows = [row for p in programs for row in occupancy.buffer_occupancy(p)]
    mapping = {info.name: info.mapping for p in programs for info in p.layers}
    trace_name = "trace.json" if trace else None
    page = render_html(
        totals,
        cfg,
        table,
        occupancy_rows=occupancy_rows,
        mapping=mapping,
        trace_name=trace_name,
        split=split,
        batch=batch,
        programs=programs,
        compared=compared,
    )
    doc = {
        "network": totals["network"],
        "config": cfg.to_dict(),
        "summary": totals,
        **({} if split is None else {"partition": split}),
        **({} if batch is None else {"batch": batch.to_dict()}),
        **({} if compared is None else {"dataflows": compared}),
        "roofline": {
            "compute_roof_macs_per_cycle": cfg.array.pes,
            "dram_bytes_per_cycle": cfg.dram.bandwidth,
            "ridge_macs_per_byte": cfg.array.pes / cfg.dram.bandwidth,
        },
        "layers": table,
        "occupancy": {"depth_words": occupancy.buffer_depths(cfg), "layers": occupancy_rows},
    }
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "html": out / "report.html",
        "csv": out / "layers.csv",
        "occupancy": out / "occupancy.csv",
        "json": out / "report.json",
    }
    paths["html"].write_text(page, encoding="utf-8")
    paths["csv"].write_text(_csv_text(table))
    paths["occupancy"].write_text(_csv_text(occupancy_rows))
    paths["json"].write_text(json.dumps(doc, indent=2) + "\n")
    if compared is not None:
        paths["dataflows"] = out / "dataflows.csv"
        paths["dataflows"].write_text(_csv_text(compared))
    if trace:
        paths["trace"] = timeline.write_trace(out / trace_name, run, program)
    return paths
