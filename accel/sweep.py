"""Design sweeps: one network over a product of array sizes and DRAM bandwidths
(``accel sweep``).

:func:`sweep_configs` builds one config per point of ``rows x cols x bandwidth`` from a base
config (every config is checked before anything runs); :func:`run_sweep` compiles the
network for each and runs the cycles-only model on them in parallel processes
(:class:`concurrent.futures.ProcessPoolExecutor`); :func:`write_csv` and
:func:`plot_pareto` write ``sweep.csv`` and the Pareto plot (cycles against PEs, the
points that no other point beats on both highlighted).

The model comes in as a function ``simulate(program, compute_outputs=False) -> Result``
(``sim.run``, passed by the CLI): this module never imports it. The function and the
network are sent to each worker process once, so they must pickle.
"""

from __future__ import annotations

import csv
import itertools
import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from accel.config import AccelConfig
from accel.quantized import QuantizedNetwork

__all__ = [
    "SweepPoint",
    "buffer_bytes",
    "pareto_front",
    "parse_int_list",
    "plot_pareto",
    "run_sweep",
    "sweep_configs",
    "write_csv",
]

#: Columns of ``sweep.csv``, in order.
COLUMNS = (
    "rows",
    "cols",
    "bandwidth",
    "pes",
    "buffer_bytes",
    "cycles",
    "utilization",
    "seconds",
    "pareto",
)


@dataclass(frozen=True)
class SweepPoint:
    """One design point and its result.

    ``buffer_bytes`` is the total on-chip SRAM (input + weight + accumulator + output +
    parameter buffers), ``seconds`` the run time at the config's clock, ``pareto`` whether no
    other point of the sweep has at most as many PEs and at most as many cycles, and fewer
    of one of them.
    """

    rows: int
    cols: int
    bandwidth: int
    pes: int
    buffer_bytes: int
    cycles: int
    utilization: float
    seconds: float
    pareto: bool = False


def parse_int_list(option: str, text: str | None) -> list[int] | None:
    """``"8,16,32"`` -> ``[8, 16, 32]``; ``None`` stays ``None``.

    Raises ``ValueError`` naming ``option`` and the bad item (not an integer, < 1, repeated).
    """
    if text is None:
        return None
    values = []
    for item in str(text).split(","):
        item = item.strip()
        try:
            value = int(item)
        except ValueError:
            raise ValueError(
                f"{option}: {item!r} is not an integer (expected a comma-separated list "
                f"such as 8,16,32)"
            ) from None
        if value < 1:
            raise ValueError(f"{option}: values must be >= 1, got {value}")
        if value in values:
            raise ValueError(f"{option}: {value} is listed twice")
        values.append(value)
    return values


def buffer_bytes(config: AccelConfig) -> int:
    """Total on-chip SRAM of ``config`` in bytes."""
    return sum(getattr(config.buffers, f.name) for f in fields(config.buffers))


def sweep_configs(
    base: AccelConfig,
    rows: Sequence[int] | None = None,
    cols: Sequence[int] | None = None,
    bandwidths: Sequence[int] | None = None,
) -> list[AccelConfig]:
    """One config per point of the product, in ``rows``-major order. A missing list takes
    the base config's value. Everything else (buffers, latency, clock) stays the base's.

    Raises
    ------
    ValueError
        Naming the point and the reason when a point is not a valid config (for example
        buffers too small for the array), before anything runs.
    """
    rows = list(rows) if rows else [base.array.rows]
    cols = list(cols) if cols else [base.array.cols]
    bandwidths = list(bandwidths) if bandwidths else [base.dram.bandwidth]
    configs = []
    for r, c, b in itertools.product(rows, cols, bandwidths):
        try:
            configs.append(
                base.replace(
                    name=f"{base.name}-{r}x{c}-bw{b}",
                    array={"rows": r, "cols": c},
                    dram={"bandwidth": b},
                )
            )
        except (TypeError, ValueError) as error:
            raise ValueError(
                f"sweep point rows={r} cols={c} bandwidth={b} on {base.name!r}: {error}"
            ) from None
    return configs


# ---------------------------------------------------------------------------------------
# Running

_WORKER: dict[str, Any] = {}


def _init_worker(qnet: QuantizedNetwork, simulate: Callable) -> None:
    _WORKER.update(qnet=qnet, simulate=simulate)


def _evaluate(config: AccelConfig) -> SweepPoint:
    """Compile and run one point (in a worker process, or in this one with ``jobs=1``)."""
    from accel import compiler

    try:
        program = compiler.compile(_WORKER["qnet"], config)
        result = _WORKER["simulate"](program, compute_outputs=False)
    except Exception as error:
        raise ValueError(
            f"sweep point rows={config.array.rows} cols={config.array.cols} "
            f"bandwidth={config.dram.bandwidth}: {type(error).__name__}: {error}"
        ) from None
    return SweepPoint(
        rows=config.array.rows,
        cols=config.array.cols,
        bandwidth=config.dram.bandwidth,
        pes=config.array.pes,
        buffer_bytes=buffer_bytes(config),
        cycles=result.total_cycles,
        utilization=result.utilization,
        seconds=result.seconds,
    )


def run_sweep(
    qnet: QuantizedNetwork,
    configs: Sequence[AccelConfig],
    simulate: Callable,
    *,
    jobs: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[SweepPoint]:
    """Run every config; return the points in the order of ``configs``, Pareto flags set.

    Parameters
    ----------
    qnet:
        The quantised network (:func:`accel.ptq.quantize`), compiled for every config.
    simulate:
        ``simulate(program, compute_outputs=False) -> Result``, e.g. ``sim.run``.
    jobs:
        Worker processes (default ``os.cpu_count()``, at most one per point). ``1`` runs in
        this process.
    progress:
        Called as ``progress(done, total)`` after each point.

    Raises
    ------
    ValueError
        ``jobs < 1``, no configs, or a point that fails to compile or run (naming it).
    """
    if jobs is None:
        jobs = os.cpu_count() or 1
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be an integer >= 1, not {jobs!r}")
    if not configs:
        raise ValueError("a sweep needs at least one config")
    total = len(configs)
    jobs = min(jobs, total)
    points: list[SweepPoint | None] = [None] * total
    if jobs == 1:
        saved = dict(_WORKER)
        _init_worker(qnet, simulate)
        try:
            for i, config in enumerate(configs):
                points[i] = _evaluate(config)
                if progress:
                    progress(i + 1, total)
        finally:
            _WORKER.clear()
            _WORKER.update(saved)
    else:
        with ProcessPoolExecutor(
            max_workers=jobs, initializer=_init_worker, initargs=(qnet, simulate)
        ) as pool:
            futures = {pool.submit(_evaluate, config): i for i, config in enumerate(configs)}
            try:
                for done, future in enumerate(as_completed(futures), start=1):
                    points[futures[future]] = future.result()
                    if progress:
                        progress(done, total)
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
    front = set(pareto_front((p.pes, p.cycles) for p in points))
    return [
        SweepPoint(**{**asdict(p), "pareto": (p.pes, p.cycles) in front})
        for p in points
        if p is not None
    ]


def pareto_front(pairs: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """The ``(cost, cycles)`` pairs that no other pair is at most equal to in both and
    smaller in one (both minimised), sorted by cost; duplicates appear once."""
    front: list[tuple[int, int]] = []
    best = None
    for cost, cycles in sorted(set(pairs)):
        if best is None or cycles < best:
            front.append((cost, cycles))
            best = cycles
    return front


# ---------------------------------------------------------------------------------------
# Output


def write_csv(points: Sequence[SweepPoint], path: str | Path) -> Path:
    """``sweep.csv``: the :data:`COLUMNS` of every point (``pareto`` as 1/0)."""
    path = Path(path)
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(COLUMNS))
        writer.writeheader()
        for p in points:
            row = asdict(p)
            row["utilization"] = round(p.utilization, 6)
            row["seconds"] = f"{p.seconds:.9g}"
            row["pareto"] = int(p.pareto)
            writer.writerow(row)
    return path


def plot_pareto(points: Sequence[SweepPoint], path: str | Path, *, title: str = "") -> Path:
    """A PNG of cycles against PEs (log-log), each point labelled ``RxC/bwB``, the Pareto
    front drawn as a staircase. Needs matplotlib (:func:`accel.html_report.require_matplotlib`).
    """
    from accel.html_report import require_matplotlib

    require_matplotlib("the sweep's Pareto plot")
    from matplotlib.figure import Figure

    path = Path(path)
    fig = Figure(figsize=(8, 5.5), layout="constrained")
    ax = fig.subplots()
    others = [p for p in points if not p.pareto]
    front = sorted((p for p in points if p.pareto), key=lambda p: p.pes)
    ax.scatter(
        [p.pes for p in others],
        [p.cycles for p in others],
        color="#999999",
        s=24,
        label="dominated",
        zorder=2,
    )
    ax.step(
        [p.pes for p in front],
        [p.cycles for p in front],
        where="post",
        color="#d62728",
        lw=1.5,
        zorder=2,
    )
    ax.scatter(
        [p.pes for p in front],
        [p.cycles for p in front],
        color="#d62728",
        s=40,
        label="Pareto front",
        zorder=3,
    )
    if len(points) <= 40:
        # Points with the same PE count often have almost the same cycles: stack their
        # labels (fastest at the bottom) instead of printing them over each other.
        by_pes: dict[int, list[SweepPoint]] = {}
        for p in points:
            by_pes.setdefault(p.pes, []).append(p)
        for group in by_pes.values():
            group.sort(key=lambda p: p.cycles)
            anchor = group[0]
            for k, p in enumerate(group):
                ax.annotate(
                    f"{p.rows}x{p.cols}/bw{p.bandwidth}: {p.cycles:,}",
                    (anchor.pes, anchor.cycles),
                    xytext=(6, -10 + 9 * k),
                    textcoords="offset points",
                    fontsize=7,
                    color="#d62728" if p.pareto else "#555555",
                )
    pes = sorted({p.pes for p in points})
    if len(pes) > 1:
        ax.set_xscale("log", base=2)
        ax.minorticks_off()
    ax.set_xticks(pes, [str(n) for n in pes])
    if len({p.cycles for p in points}) > 1:
        ax.set_yscale("log")
    ax.margins(x=0.12, y=0.08)
    ax.set_xlabel("PEs (rows x cols)")
    ax.set_ylabel("cycles")
    ax.set_title(title or "cycles against array size")
    ax.grid(which="both", alpha=0.25)
    ax.legend(fontsize=8)
    fig.savefig(path, format="png", dpi=110, metadata={"Software": None})
    return path
