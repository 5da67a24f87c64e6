"""Design sweeps: networks over a product of array sizes, DRAM bandwidths, buffer sizes,
clocks and batch sizes (``accel sweep``).

:func:`sweep_configs` builds one config per point of the product from a base config (every
config is checked before anything runs). :func:`run_sweep` compiles each network for each
config and each batch size (through the program cache, :mod:`accel.cache`, when one is
given; it keys on the batch) and runs the cycles-only model on it. A batch of ``N`` images is
one program with the weights resident across the batch (:mod:`accel.batch`); a network with
host steps runs its batch image by image (:data:`accel.batch.IMAGE_BY_IMAGE_NOTE`), and its
points say so (``image_by_image``). The points run:

* on ``dask.distributed`` when it is installed (the ``cluster`` extra): a ``LocalCluster``
  of ``jobs`` worker processes on this machine, or the existing cluster at ``scheduler``
  (``tcp://HOST:8786``);
* otherwise in a local process pool (:class:`concurrent.futures.ProcessPoolExecutor`),
  saying so once through ``note``;
* with ``jobs=1`` (and no scheduler) in this process.

A point that fails (a layer that does not fit, a worker that dies) is a :class:`SweepPoint`
with ``status="error"`` and the reason, and the other points go on.
:func:`sweep_to_directory` streams the points into ``sweep.csv`` as they finish (one whole
row appended and flushed per point, so the file is valid CSV with a header whenever it is
read), and every finished point's layers into ``layers.csv`` (:mod:`accel.sweep_layers`,
which also says which dataflow wins each layer when the sweep has a dataflow axis), and
resumes an interrupted sweep: a point already in ``sweep.csv``, finished, of the
same network (by its digest) on the same config (by its digest) with the same batch is not
run again (a ``sweep.csv`` written before the batch column, :data:`COLUMNS_BEFORE_BATCH`,
resumes as batch 1, which it was). The
sidecar ``sweep.json`` names the networks and the base config of the sweep in the
directory, so a run of another network or base config there is an error naming both (or,
with ``restart=True``, starts afresh). :func:`write_csv` and :func:`plot_pareto` write the
final ``sweep.csv`` (in grid order, with the Pareto flags) and the Pareto plot (cycles
against PEs, per network and batch, the points that no other point beats on both
highlighted). The Pareto front is per (network, batch): the batch is the workload (how
many images wait for one another), not hardware, so a larger batch is not a cheaper design;
within one batch, total cycles and cycles per image rank the points alike.

The model comes in as a function ``simulate(program, compute_outputs=False) -> Result``
(``sim.run``, passed by the CLI): this module never imports it. The function and the
networks are sent to the workers, so they must pickle (by reference: the workers import the
same packages).
"""

from __future__ import annotations

import contextlib
import csv
import importlib
import io
import itertools
import json
import logging
import math
import os
import pkgutil
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from accel import batch as batches
from accel import deploy
from accel import sweep_layers as layer_files
from accel.backend import LayerStats
from accel.cache import ProgramCache, compile_cached, source_digest
from accel.config import AccelConfig
from accel.files import OutputFile, read_text
from accel.quantized import QuantizedNetwork

__all__ = [
    "COLUMNS",
    "LAYERS",
    "SIDECAR",
    "SweepPoint",
    "buffer_bytes",
    "dask_available",
    "describe_executor",
    "pareto_front",
    "parse_float_list",
    "parse_int_list",
    "plot_pareto",
    "run_sweep",
    "sweep_configs",
    "sweep_to_directory",
    "write_csv",
]

#: Columns of ``sweep.csv``, in order. ``batch`` is the images of the point (one program
#: for the batch); ``cycles`` and ``seconds`` are the whole batch's, ``cycles_per_image``
#: and ``images_per_second`` divide them among its images; ``image_by_image`` is 1 when the
#: network has host steps and a batch of more than one image ran image by image (no weights
#: resident across it). ``pareto`` is empty while the sweep runs (it needs every point) and
#: for failed points; ``status`` is ``ok`` or ``error``, ``error`` the reason of a failed
#: point. The two digests identify the network and the point's config (a resumed sweep
#: reuses a row only when both and the batch match).
COLUMNS = (
    "network",
    "rows",
    "cols",
    "bandwidth",
    "dataflow",
    "clock_mhz",
    "batch",
    "input_bytes",
    "weight_bytes",
    "acc_bytes",
    "output_bytes",
    "param_bytes",
    "pes",
    "buffer_bytes",
    "cycles",
    "cycles_per_image",
    "utilization",
    "seconds",
    "images_per_second",
    "image_by_image",
    "pareto",
    "status",
    "error",
    "network_digest",
    "config_digest",
)

#: The columns of a ``sweep.csv`` written before sweeps had a dataflow axis: its rows are
#: weight-stationary points, and a sweep resumes from them as such.
COLUMNS_BEFORE_DATAFLOW = tuple(name for name in COLUMNS if name != "dataflow")

#: The columns of a ``sweep.csv`` written before sweeps had a batch axis: its rows are
#: points of one image each, and a sweep resumes from them as such.
COLUMNS_BEFORE_BATCH = tuple(
    name
    for name in COLUMNS_BEFORE_DATAFLOW
    if name not in ("batch", "cycles_per_image", "images_per_second", "image_by_image")
)

#: The file beside ``sweep.csv`` that names the networks and base config of the sweep.
SIDECAR = "sweep.json"

#: The file beside ``sweep.csv`` with every finished point's layers
#: (:mod:`accel.sweep_layers`).
LAYERS = "layers.csv"
_SIDECAR_FORMAT = 1


@dataclass(frozen=True)
class SweepPoint:
    """One design point and its result.

    ``buffer_bytes`` is the total on-chip SRAM (input + weight + accumulator + output +
    parameter buffers), ``batch`` the images run (one program for all of them, weights
    resident across the batch; ``image_by_image`` when the network's host steps make each
    image run on its own), ``cycles`` and ``seconds`` (at the config's clock) the whole
    batch's, ``utilization`` the MAC utilization over the batch, ``pareto`` whether no other
    point of the same network and batch has at most as many PEs and at most as many cycles,
    and fewer of one of them. A failed point has ``status="error"``, the reason in ``error`` and
    no ``cycles``, ``utilization`` or ``seconds``. Not in ``sweep.csv``: ``cached`` says
    whether its program came from the program cache, ``layers`` are the layers of its run
    (``layers.csv``, :mod:`accel.sweep_layers`).
    """

    network: str
    rows: int
    cols: int
    bandwidth: int
    clock_mhz: float
    input_bytes: int
    weight_bytes: int
    acc_bytes: int
    output_bytes: int
    param_bytes: int
    pes: int
    buffer_bytes: int
    batch: int = 1
    dataflow: str = "ws"
    cycles: int | None = None
    utilization: float | None = None
    seconds: float | None = None
    image_by_image: bool = False
    pareto: bool = False
    status: str = "ok"
    error: str = ""
    network_digest: str = ""
    config_digest: str = ""
    cached: bool = False
    layers: tuple[LayerStats, ...] = field(default=(), compare=False, repr=False)

    @classmethod
    def of(
        cls, network: str, config: AccelConfig, network_digest: str = "", batch: int = 1
    ) -> SweepPoint:
        """The parameters of the point ``config`` for ``network`` and ``batch`` images, no
        result yet."""
        b = config.buffers
        return cls(
            network=network,
            rows=config.array.rows,
            cols=config.array.cols,
            bandwidth=config.dram.bandwidth,
            clock_mhz=float(config.clock_mhz),
            input_bytes=b.input_bytes,
            weight_bytes=b.weight_bytes,
            acc_bytes=b.acc_bytes,
            output_bytes=b.output_bytes,
            param_bytes=b.param_bytes,
            pes=config.array.pes,
            buffer_bytes=buffer_bytes(config),
            batch=batch,
            dataflow=config.array.dataflow,
            status="pending",
            network_digest=network_digest,
            config_digest=config.digest,
        )

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def cycles_per_image(self) -> float | None:
        return None if self.cycles is None else self.cycles / self.batch

    @property
    def images_per_second(self) -> float | None:
        # From the cycles and the clock, not ``seconds``: a point read back from sweep.csv
        # (its seconds rounded) gives the same figure as the run that wrote it.
        if self.cycles is None:
            return None
        return self.batch * self.clock_mhz * 1e6 / self.cycles if self.cycles else 0.0

    def label(self) -> str:
        """``network rows=4 cols=4 bandwidth=4`` (and `` batch=N`` for more than one image;
        for messages)."""
        text = f"{self.network} rows={self.rows} cols={self.cols} bandwidth={self.bandwidth}"
        text += f" dataflow={self.dataflow}" if self.dataflow != "ws" else ""
        return text + (f" batch={self.batch}" if self.batch != 1 else "")


# ---------------------------------------------------------------------------------------
# The grid


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


def parse_float_list(option: str, text: str | None) -> list[float] | None:
    """``"100,250.5"`` -> ``[100.0, 250.5]``; ``None`` stays ``None``. ``ValueError`` naming
    ``option`` and the bad item (not a number, not finite and > 0, repeated)."""
    if text is None:
        return None
    values: list[float] = []
    for item in str(text).split(","):
        item = item.strip()
        try:
            value = float(item)
        except ValueError:
            raise ValueError(
                f"{option}: {item!r} is not a number (expected a comma-separated list "
                f"such as 100,200,400)"
            ) from None
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{option}: values must be finite and > 0, got {item}")
        if value in values:
            raise ValueError(f"{option}: {item} is listed twice")
        values.append(value)
    return values


def buffer_bytes(config: AccelConfig) -> int:
    """Total on-chip SRAM of ``config`` in bytes."""
    return sum(getattr(config.buffers, f"{name}_bytes") for name in BUFFERS)


#: The buffers a sweep can vary, in the order of the product (``--input-kib`` ...).
BUFFERS = ("input", "weight", "acc", "output", "param")


def sweep_configs(
    base: AccelConfig,
    rows: Sequence[int] | None = None,
    cols: Sequence[int] | None = None,
    bandwidths: Sequence[int] | None = None,
    *,
    buffers: Mapping[str, Sequence[int]] | None = None,
    clocks: Sequence[float] | None = None,
    dataflows: Sequence[str] | None = None,
) -> list[AccelConfig]:
    """One config per point of the product, in ``rows``-major order: rows, cols,
    bandwidths, dataflows (``array.dataflow``), then each of ``buffers`` (``{"input":
    [bytes, ...], ...}``, keys of :data:`BUFFERS`), then clocks (MHz). A missing list takes
    the base config's value; what is not swept (DRAM latency, ...) stays the base's.

    Each config is named ``BASE-RxC-bwB``, then ``-os`` for a swept dataflow other than the
    base's,
    ``-input32768`` for each swept buffer and ``-250MHz`` for a swept clock.

    Raises
    ------
    ValueError
        Naming the point and the reason when a point is not a valid config (for example
        buffers too small for the array), before anything runs; an unknown buffer name.
    """
    buffers = dict(buffers or {})
    for name in buffers:
        if name not in BUFFERS:
            raise ValueError(f"unknown buffer {name!r} (known: {', '.join(BUFFERS)})")
    axes: list[tuple[str, list]] = [
        ("rows", list(rows) if rows else [base.array.rows]),
        ("cols", list(cols) if cols else [base.array.cols]),
        ("bandwidth", list(bandwidths) if bandwidths else [base.dram.bandwidth]),
    ]
    if dataflows:
        axes.append(("dataflow", list(dataflows)))
    axes += [(f"{name}_bytes", list(buffers[name])) for name in BUFFERS if buffers.get(name)]
    if clocks:
        axes.append(("clock_mhz", list(clocks)))
    configs = []
    for values in itertools.product(*(values for _, values in axes)):
        point = dict(zip((name for name, _ in axes), values, strict=True))
        r, c, b = point["rows"], point["cols"], point["bandwidth"]
        name = f"{base.name}-{r}x{c}-bw{b}"
        changes: dict[str, Any] = {"array": {"rows": r, "cols": c}, "dram": {"bandwidth": b}}
        if "dataflow" in point:
            changes["array"]["dataflow"] = point["dataflow"]
            if point["dataflow"] != base.array.dataflow:  # the base's points keep their names
                name += f"-{point['dataflow']}"
        sizes = {key: value for key, value in point.items() if key.endswith("_bytes")}
        if sizes:
            changes["buffers"] = sizes
            name += "".join(f"-{key[: -len('_bytes')]}{value}" for key, value in sizes.items())
        if "clock_mhz" in point:
            changes["clock_mhz"] = point["clock_mhz"]
            name += f"-{point['clock_mhz']:g}MHz"
        try:
            configs.append(base.replace(name=name, **changes))
        except (TypeError, ValueError) as error:
            where = " ".join(
                f"{key}={value}" if isinstance(value, str) else f"{key}={value:g}"
                for key, value in point.items()
            )
            raise ValueError(f"sweep point {where} on {base.name!r}: {error}") from None
    return configs


# ---------------------------------------------------------------------------------------
# Running one point (in a worker, or in this process)


def _one_line(error: BaseException) -> str:
    text = f"{type(error).__name__}: {error}"
    return " ".join(text.split())


def evaluate_point(
    qnet: QuantizedNetwork,
    network: str,
    network_digest: str,
    config: AccelConfig,
    simulate: Callable,
    cache: ProgramCache | bool | None,
    batch: int = 1,
) -> SweepPoint:
    """Compile for ``batch`` images (through ``cache``: a :class:`~accel.cache.ProgramCache`,
    ``True`` for the default one of the process that runs this, ``None``/``False`` for none)
    and run one point, as ``accel simulate --batch`` does (:mod:`accel.batch`: one program
    for the batch, or image by image when the network has host steps, each image taking one
    image's cycles); a failure becomes a point with ``status="error"``, never an
    exception."""
    point = SweepPoint.of(network, config, network_digest, batch)
    if cache is True:
        cache = ProgramCache()
    hits = []

    def compile(part: QuantizedNetwork, cfg: AccelConfig, **options):
        digest = (network_digest or None) if part is qnet else None
        compiled = compile_cached(part, cfg, cache=cache or None, network_digest=digest, **options)
        hits.append(compiled.hit)
        return compiled.program

    try:  # a network with host ops: its accelerator segments, back to back
        deployment = deploy.deploy(qnet, config, compile=compile, batch=batch)
        runs = batches.run(
            deployment,
            lambda program, _: simulate(program, compute_outputs=False),
            images=batch,
            compute=False,
        )
        figures = batches.Batch.of(runs, config, images=batch)
    except Exception as error:
        return replace(point, status="error", error=_one_line(error))
    return replace(
        point,
        cycles=int(figures.total_cycles),
        utilization=float(figures.utilization),
        seconds=float(figures.seconds),
        image_by_image=batch > 1 and not figures.resident,
        status="ok",
        cached=all(hits),
        layers=tuple(x for result in runs[0].results for x in result.layers),
    )


# Per worker process of the local process pool: the networks, the model, the cache.
_WORKER: dict[str, Any] = {}


def _init_worker(networks: Mapping[str, QuantizedNetwork], simulate: Callable, cache: Any) -> None:
    _WORKER.update(networks=networks, simulate=simulate, cache=cache)


def _evaluate_in_pool(
    network: str, network_digest: str, config: AccelConfig, batch: int
) -> SweepPoint:
    return evaluate_point(
        _WORKER["networks"][network],
        network,
        network_digest,
        config,
        _WORKER["simulate"],
        _WORKER["cache"],
        batch,
    )


# ---------------------------------------------------------------------------------------
# Executors


def dask_available() -> bool:
    """Whether ``dask.distributed`` can be imported (the ``cluster`` extra)."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        return False
    return True


#: The note given once when a sweep falls back to the local process pool.
NO_DASK_NOTE = (
    "note: dask.distributed is not installed, so the sweep runs in a local process pool "
    "(pip install 'accel[cluster]' for dask and clusters)"
)


def describe_executor(jobs: int, scheduler: str | None = None, *, dask: bool | None = None):
    """``(kind, text)``: where a sweep of ``jobs`` local workers (or on ``scheduler``) runs.
    ``kind`` is ``"inline"``, ``"dask-local"``, ``"dask"`` or ``"processes"``."""
    if dask is None:
        dask = dask_available()
    if scheduler:
        return "dask", f"dask cluster {scheduler}"
    if jobs == 1:
        return "inline", "1 process"
    if dask:
        return "dask-local", f"{jobs} dask workers"
    return "processes", f"{jobs} processes"


Task = tuple[str, str, AccelConfig, int]  # network name, network digest, config, batch

#: How long to try to reach a ``scheduler`` before giving up (a dask duration).
CONNECT_TIMEOUT = "30s"


def _failed(task: Task, error: BaseException) -> SweepPoint:
    network, digest, config, batch = task
    return replace(
        SweepPoint.of(network, config, digest, batch), status="error", error=_one_line(error)
    )


def _run_inline(tasks, networks, simulate, cache) -> Iterator[tuple[int, SweepPoint] | None]:
    yield None
    for i, (network, digest, config, batch) in enumerate(tasks):
        yield i, evaluate_point(networks[network], network, digest, config, simulate, cache, batch)


def _run_processes(
    tasks, networks, simulate, cache, jobs
) -> Iterator[tuple[int, SweepPoint] | None]:
    with ProcessPoolExecutor(
        max_workers=jobs, initializer=_init_worker, initargs=(networks, simulate, cache)
    ) as pool:
        futures = {pool.submit(_evaluate_in_pool, *task): i for i, task in enumerate(tasks)}
        try:
            yield None
            for future in as_completed(futures):
                i = futures[future]
                try:
                    point = future.result()
                except Exception as error:  # a worker that died
                    point = _failed(tasks[i], error)
                yield i, point
        finally:
            for future in futures:
                future.cancel()


def code_version(packages: Sequence[str]) -> str:
    """A hash (16 hex digits) of the source of every module of ``packages`` (and their
    subpackages), e.g. ``("accel", "sim")``: what a worker computes with."""
    names = []
    for package in packages:
        module = importlib.import_module(package)
        names.append(package)
        prefix = f"{package}."
        names += sorted(m.name for m in pkgutil.walk_packages(module.__path__, prefix))
    return source_digest(names)


def _packages(simulate: Callable) -> tuple[str, ...]:
    """``accel`` and the top-level package of the model (``sim`` for ``sim.run``)."""
    model = (getattr(simulate, "__module__", None) or "").partition(".")[0]
    return ("accel", model) if model and model not in ("accel", "__main__") else ("accel",)


def check_workers(client: Any, packages: Sequence[str], where: str, local: str | None = None):
    """``ValueError`` unless every worker of ``client`` runs the same source of ``packages``
    as this process (:func:`code_version`; ``local`` overrides this process's), naming the
    first worker that does not."""
    local = local if local is not None else code_version(packages)
    try:
        versions = client.run(code_version, tuple(packages))
    except Exception as error:
        raise ValueError(
            f"the workers of {where} cannot run {', '.join(packages)} ({_one_line(error)}): "
            "install the same accel on every worker"
        ) from None
    for worker, version in sorted(versions.items()):
        if version != local:
            raise ValueError(
                f"worker {worker} of {where} runs other code ({', '.join(packages)} source "
                f"{version}, here {local}): install the same accel commit on every worker"
            )


def local_cluster(workers: int) -> Any:
    """A dask ``LocalCluster`` of ``workers`` single-threaded worker processes on this
    machine, as sweeps use it (a context manager)."""
    from distributed import LocalCluster

    return LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        # Any free port on the loopback: 8787 may be taken (a warning), and the scheduler
        # serves HTTP even without a dashboard.
        dashboard_address="127.0.0.1:0",
        silence_logs=logging.ERROR,
    )


def _run_dask(
    tasks, networks, simulate, cache, jobs, scheduler
) -> Iterator[tuple[int, SweepPoint] | None]:
    from distributed import Client
    from distributed import as_completed as dask_completed

    with contextlib.ExitStack() as stack:
        if scheduler:
            client = stack.enter_context(Client(scheduler, timeout=CONNECT_TIMEOUT))
        else:
            cluster = stack.enter_context(local_cluster(jobs))
            client = stack.enter_context(Client(cluster))
        check_workers(client, _packages(simulate), scheduler or "the local cluster")
        run = uuid.uuid4().hex[:12]
        # Each network goes to every worker once; the tasks refer to it.
        shared = {
            name: client.scatter(qnet, broadcast=True, hash=False)
            for name, qnet in networks.items()
            if any(task[0] == name for task in tasks)
        }
        futures = {
            client.submit(
                evaluate_point,
                shared[network],
                network,
                digest,
                config,
                simulate,
                cache,
                batch,
                pure=False,
                key=f"accel-sweep-{run}-{i}",
            ): i
            for i, (network, digest, config, batch) in enumerate(tasks)
        }
        try:
            yield None
            for future in dask_completed(futures):
                i = futures[future]
                try:
                    point = future.result()
                except Exception as error:  # a worker that died, a task that was lost
                    point = _failed(tasks[i], error)
                yield i, point
        finally:
            client.cancel(list(futures), force=True)


def iter_points(
    tasks: Sequence[Task],
    networks: Mapping[str, QuantizedNetwork],
    simulate: Callable,
    *,
    jobs: int = 1,
    scheduler: str | None = None,
    cache: ProgramCache | bool | None = None,
    note: Callable[[str], None] | None = None,
) -> Iterator[tuple[int, SweepPoint] | None]:
    """On the executor of :func:`describe_executor`: first ``None`` once it has started
    (the cluster connected, its workers checked, the networks sent, the points submitted;
    what fails there raises), then ``(index into tasks, point)`` as each point finishes.
    Close the iterator (``contextlib.closing``) to cancel the rest and shut the workers
    down."""
    kind, _ = describe_executor(jobs, scheduler)
    if kind == "dask" and not dask_available():
        raise ValueError(
            f"a sweep on the cluster at {scheduler} needs dask.distributed, which is not "
            "installed: pip install 'accel[cluster]'"
        )
    if kind == "processes" and note is not None:
        note(NO_DASK_NOTE)
    if kind == "inline":
        return _run_inline(tasks, networks, simulate, cache)
    if kind == "processes":
        return _run_processes(tasks, networks, simulate, cache, jobs)
    return _run_dask(tasks, networks, simulate, cache, jobs, scheduler)


def _networks(networks: QuantizedNetwork | Mapping[str, QuantizedNetwork]):
    if isinstance(networks, QuantizedNetwork):
        return {networks.network.name: networks}
    if not isinstance(networks, Mapping) or not networks:
        raise ValueError("a sweep needs at least one network")
    for name, qnet in networks.items():
        if not isinstance(qnet, QuantizedNetwork):
            raise TypeError(
                f"network {name!r}: a sweep takes QuantizedNetworks, not {type(qnet).__name__}"
            )
    return dict(networks)


def _check_jobs(jobs: int | None) -> int:
    if jobs is None:
        jobs = os.cpu_count() or 1
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be an integer >= 1, not {jobs!r}")
    return jobs


def _batches(batches: Sequence[int] | None) -> list[int]:
    batches = list(batches) if batches else [1]
    for batch in batches:
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise ValueError(f"a batch must be an integer >= 1, not {batch!r}")
    if len(set(batches)) != len(batches):
        raise ValueError(f"a batch is listed twice in {batches}")
    return batches


def _tasks(
    networks: Mapping[str, QuantizedNetwork], configs, digests, batches: Sequence[int] | None
) -> list[Task]:
    """Network-major, then ``configs``, then ``batches`` (the innermost axis)."""
    if not configs:
        raise ValueError("a sweep needs at least one config")
    return [
        (name, digests[name], config, batch)
        for name in networks
        for config in configs
        for batch in _batches(batches)
    ]


def run_sweep(
    networks: QuantizedNetwork | Mapping[str, QuantizedNetwork],
    configs: Sequence[AccelConfig],
    simulate: Callable,
    *,
    batches: Sequence[int] | None = None,
    jobs: int | None = None,
    scheduler: str | None = None,
    cache: ProgramCache | bool | None = None,
    progress: Callable[[int, int], None] | None = None,
    on_point: Callable[[SweepPoint], None] | None = None,
    note: Callable[[str], None] | None = None,
) -> list[SweepPoint]:
    """Run every config for every network and batch size; the points in network-major, then
    ``configs``, then ``batches`` order, Pareto flags set.

    Parameters
    ----------
    networks:
        A quantised network (:func:`accel.ptq.quantize`), or several by name.
    simulate:
        ``simulate(program, compute_outputs=False) -> Result``, e.g. ``sim.run``.
    batches:
        Images per point (default ``[1]``): each config runs once per batch size, compiled
        as one program for the batch (:func:`evaluate_point`).
    jobs:
        Local workers (default ``os.cpu_count()``, at most one per point): ``1`` runs in
        this process; more run on a dask ``LocalCluster`` or, without dask, a process pool.
    scheduler:
        The address of an existing dask scheduler (``tcp://HOST:8786``); ``jobs`` is then
        ignored.
    cache:
        The program cache (:mod:`accel.cache`); ``True`` for the default one of each worker
        (``$ACCEL_CACHE`` where it runs), ``None`` for none.
    progress:
        Called as ``progress(done, total)`` after each point.
    on_point:
        Called with each point as it finishes (before ``progress``).
    note:
        Called with a line for the user (the fallback to a process pool).

    Raises
    ------
    ValueError
        ``jobs < 1``, no configs, a batch < 1 or listed twice, ``scheduler`` without dask.
        A point that fails does not
        raise: it is returned with ``status="error"``.
    """
    networks = _networks(networks)
    jobs = _check_jobs(jobs)
    digests = {name: qnet.digest for name, qnet in networks.items()}
    tasks = _tasks(networks, configs, digests, batches)
    total = len(tasks)
    points: list[SweepPoint | None] = [None] * total
    run = iter_points(
        tasks,
        networks,
        simulate,
        jobs=min(jobs, total),
        scheduler=scheduler,
        cache=cache,
        note=note,
    )
    with contextlib.closing(run):
        next(run)  # started
        for done, (i, point) in enumerate(run, start=1):
            points[i] = point
            if on_point:
                on_point(point)
            if progress:
                progress(done, total)
    return with_pareto([p for p in points if p is not None])


def with_pareto(points: Sequence[SweepPoint]) -> list[SweepPoint]:
    """``points`` with ``pareto`` set: on the front of the finished points of their
    network and batch (PEs against cycles; within a batch, cycles per image rank alike)."""
    groups = {(p.network, p.batch) for p in points}
    fronts = {
        group: set(pareto_front((p.pes, p.cycles) for p in points if p.ok and _group(p) == group))
        for group in groups
    }
    return [replace(p, pareto=p.ok and (p.pes, p.cycles) in fronts[_group(p)]) for p in points]


def _group(point: SweepPoint) -> tuple[str, int]:
    return point.network, point.batch


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
# sweep.csv


def _row(point: SweepPoint, *, final: bool) -> dict[str, Any]:
    row = {name: getattr(point, name) for name in COLUMNS}
    row["clock_mhz"] = f"{point.clock_mhz:g}"
    row["image_by_image"] = int(point.image_by_image)
    if point.ok:
        row["cycles_per_image"] = f"{point.cycles_per_image:.9g}"
        row["utilization"] = round(point.utilization, 6)
        row["seconds"] = f"{point.seconds:.9g}"
        row["images_per_second"] = f"{point.images_per_second:.9g}"
    else:
        for name in ("cycles", "cycles_per_image", "utilization", "seconds", "images_per_second"):
            row[name] = ""
    row["pareto"] = int(point.pareto) if final and point.ok else ""
    return row


def format_rows(points: Iterable[SweepPoint], *, header: bool, final: bool = True) -> str:
    """CSV text of ``points`` (with the header line when ``header``)."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(COLUMNS), lineterminator="\n")
    if header:
        writer.writeheader()
    for point in points:
        writer.writerow(_row(point, final=final))
    return text.getvalue()


def write_csv(points: Sequence[SweepPoint], path: str | Path) -> Path:
    """``sweep.csv``: the :data:`COLUMNS` of every point (``pareto`` as 1/0)."""
    path = Path(path)
    path.write_text(format_rows(points, header=True))
    return path


def _parse_row(row: dict[str, str | None], columns: Sequence[str] = COLUMNS) -> SweepPoint | None:
    """The point of a ``sweep.csv`` row of ``columns`` (:data:`COLUMNS`, or
    :data:`COLUMNS_BEFORE_DATAFLOW`: weight-stationary, or :data:`COLUMNS_BEFORE_BATCH`:
    weight-stationary, one image), or None when the row is incomplete or not
    valid (the last line of a run that was killed mid-write)."""
    if None in row or any(row.get(name) is None for name in columns):
        return None
    batched = "batch" in columns
    try:
        ok = row["status"] == "ok"
        return SweepPoint(
            network=str(row["network"]),
            rows=int(row["rows"]),
            cols=int(row["cols"]),
            bandwidth=int(row["bandwidth"]),
            clock_mhz=float(row["clock_mhz"]),
            input_bytes=int(row["input_bytes"]),
            weight_bytes=int(row["weight_bytes"]),
            acc_bytes=int(row["acc_bytes"]),
            output_bytes=int(row["output_bytes"]),
            param_bytes=int(row["param_bytes"]),
            pes=int(row["pes"]),
            buffer_bytes=int(row["buffer_bytes"]),
            batch=int(row["batch"]) if batched else 1,
            dataflow=str(row["dataflow"]) if "dataflow" in columns else "ws",
            cycles=int(row["cycles"]) if ok else None,
            utilization=float(row["utilization"]) if ok else None,
            seconds=float(row["seconds"]) if ok else None,
            image_by_image=batched and row["image_by_image"] == "1",
            status=str(row["status"]),
            error=str(row["error"]),
            network_digest=str(row["network_digest"]),
            config_digest=str(row["config_digest"]),
        )
    except (TypeError, ValueError):
        return None


def read_csv(path: str | Path) -> list[SweepPoint]:
    """The valid rows of a ``sweep.csv`` (an incomplete last row is left out; a file of
    :data:`COLUMNS_BEFORE_BATCH` gives points of batch 1, one before the dataflow column
    weight-stationary points); ``[]`` when the file is missing
    or has other columns."""
    path = Path(path)
    if not path.is_file():
        return []
    lines = read_text(path, what="sweep file").splitlines()
    header = tuple(lines[0].split(",")) if lines else ()
    if header not in (COLUMNS, COLUMNS_BEFORE_DATAFLOW, COLUMNS_BEFORE_BATCH):
        return []
    points = []
    for row in csv.DictReader(lines):
        point = _parse_row(row, header)
        if point is not None:
            points.append(point)
    return points


# ---------------------------------------------------------------------------------------
# A sweep in a directory: streamed, resumable


def _describe_identity(identity: dict) -> str:
    networks = ", ".join(
        f"{name} (network digest {digest})" for name, digest in identity["networks"].items()
    )
    base = identity["base_config"]
    return f"{networks} on {base['name']!r} (config digest {base['digest']})"


def _check_resumable(directory: Path, previous: dict, identity: dict) -> None:
    """``ValueError`` naming both sweeps unless ``identity`` continues ``previous``: the
    same base config, and every network that both name has the same digest, and they share
    at least one network."""
    before, now = previous.get("networks", {}), identity["networks"]
    same_base = previous.get("base_config", {}).get("digest") == identity["base_config"]["digest"]
    shared = set(before) & set(now)
    if same_base and shared and all(before[name] == now[name] for name in shared):
        return
    raise ValueError(
        f"{directory} holds a sweep of {_describe_identity(previous)}, not of "
        f"{_describe_identity(identity)}: use another -o DIR, or --restart to replace it"
    )


def _read_sidecar(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(read_text(path, what="sweep sidecar"))
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict) or data.get("format") != _SIDECAR_FORMAT:
        return None
    if not isinstance(data.get("networks"), dict) or not isinstance(data.get("base_config"), dict):
        return None
    return data


def sidecar_text(identity: dict) -> str:
    return json.dumps(identity, indent=2) + "\n"


@dataclass(frozen=True)
class SweepOutcome:
    """What :func:`sweep_to_directory` did: every point (grid order, Pareto flags set), how
    many came from an earlier run's ``sweep.csv``, and the sidecar's contents."""

    points: list[SweepPoint]
    resumed: int
    identity: dict

    @property
    def failed(self) -> list[SweepPoint]:
        return [p for p in self.points if not p.ok]


def sweep_to_directory(
    directory: str | os.PathLike[str],
    networks: Mapping[str, QuantizedNetwork],
    base: AccelConfig,
    configs: Sequence[AccelConfig],
    simulate: Callable,
    *,
    batches: Sequence[int] | None = None,
    restart: bool = False,
    jobs: int | None = None,
    scheduler: str | None = None,
    cache: ProgramCache | bool | None = None,
    progress: Callable[[int, int], None] | None = None,
    on_point: Callable[[SweepPoint], None] | None = None,
    note: Callable[[str], None] | None = None,
) -> SweepOutcome:
    """:func:`run_sweep`, streamed into ``directory/sweep.csv`` and resumable.

    Writes ``sweep.json`` (the networks and base config, by name and digest) and rewrites
    ``sweep.csv`` and ``layers.csv`` (each atomically) with the rows of the earlier run that
    this one reuses, then appends each point's rows as it finishes, flushed. A row is reused
    when its network, network digest, config digest and batch are those of a point of this
    sweep and it finished (``status`` ``ok``; failed points run again); its layers come back
    from ``layers.csv`` when they are all there (a point reused without them has none, and
    is left out of the per-layer comparisons). The final ``sweep.csv`` (in grid order with
    the Pareto flags) and ``layers.csv`` are the caller's to write (:func:`write_csv`,
    :func:`accel.sweep_layers.write_layers_csv`).

    Raises
    ------
    ValueError
        The directory holds a sweep of another base config or other networks (naming both),
        unless ``restart``; anything :func:`run_sweep` raises.
    """
    directory = Path(directory)
    networks = _networks(networks)
    jobs = _check_jobs(jobs)
    digests = {name: qnet.digest for name, qnet in networks.items()}
    tasks = _tasks(networks, configs, digests, batches)
    identity = {
        "format": _SIDECAR_FORMAT,
        "base_config": {"name": base.name, "digest": base.digest},
        "networks": digests,
    }
    csv_path, sidecar = directory / "sweep.csv", directory / SIDECAR
    layers_path = directory / LAYERS
    finished: dict[tuple[str, str, str, int], SweepPoint] = {}
    if not restart:
        previous = _read_sidecar(sidecar)
        if previous is not None:
            _check_resumable(directory, previous, identity)
            layers = layer_files.read_layers(layers_path)
            for point in read_csv(csv_path):
                if point.ok:
                    key = layer_files.point_key(point)
                    finished[key] = replace(point, layers=layers.get(key, ()))
    points: list[SweepPoint | None] = [None] * len(tasks)
    todo = []
    for i, (name, digest, config, batch) in enumerate(tasks):
        point = finished.get((name, digest, config.digest, batch))
        if point is None:
            todo.append(i)
        else:
            points[i] = point
    resumed = [p for p in points if p is not None]
    total, done = len(tasks), len(resumed)
    with contextlib.ExitStack() as stack:
        run = None
        if todo:
            run = iter_points(
                [tasks[i] for i in todo],
                networks,
                simulate,
                jobs=min(jobs, len(todo)),
                scheduler=scheduler,
                cache=cache,
                note=note,
            )
            stack.enter_context(contextlib.closing(run))
            next(run)  # started: a cluster that cannot be reached has written nothing
        # All three checked before any is written: a bad path leaves the directory as it was.
        with (
            OutputFile(sidecar, what="sweep sidecar") as side,
            OutputFile(csv_path, what="sweep.csv") as table,
            OutputFile(layers_path, what=LAYERS) as layer_table,
        ):
            side.write_text(sidecar_text(identity))
            table.write_text(format_rows(resumed, header=True, final=False))
            layer_table.write_text(layer_files.format_layer_rows(resumed, header=True))
        if progress:
            progress(done, total)
        if run is not None:
            file = stack.enter_context(csv_path.open("a", newline=""))
            layers_file = stack.enter_context(layers_path.open("a", newline=""))
            for j, point in run:
                points[todo[j]] = point
                # The layers first: a point in sweep.csv is one whose layers were written.
                layers_file.write(layer_files.format_layer_rows([point], header=False))
                layers_file.flush()
                file.write(format_rows([point], header=False, final=False))
                file.flush()
                done += 1
                if on_point:
                    on_point(point)
                if progress:
                    progress(done, total)
    return SweepOutcome(with_pareto([p for p in points if p is not None]), len(resumed), identity)


# ---------------------------------------------------------------------------------------
# The plot


def _varying(points: Sequence[SweepPoint]) -> list[str]:
    """The labels' parameters beyond the array and bandwidth: those that vary."""
    names = [*(f"{buffer}_bytes" for buffer in BUFFERS), "clock_mhz", "dataflow"]
    return [name for name in names if len({getattr(p, name) for p in points}) > 1]


def _label(point: SweepPoint, varying: Sequence[str]) -> str:
    text = f"{point.rows}x{point.cols}/bw{point.bandwidth}"
    for name in varying:
        value = getattr(point, name)
        if name == "clock_mhz":
            text += f"/{value:g}MHz"
        elif name == "dataflow":
            text += f"/{value}"
        else:
            text += f"/{name[: -len('_bytes')]}{value / 1024:g}K"
    return f"{text}: {point.cycles:,}"


def plot_pareto(
    points: Sequence[SweepPoint],
    path: str | Path,
    *,
    title: str = "",
    config_name: str | None = None,
) -> Path:
    """A PNG of cycles against PEs (log-log), one panel per network and batch size (the
    Pareto front is per network and batch, :func:`with_pareto`), each finished point
    labelled ``RxC/bwB`` (and the buffer sizes, clock and dataflow when they vary), the Pareto front
    drawn as a staircase. ``title`` titles the panel of a single network of one batch size;
    otherwise each panel is ``NETWORK (batch of N) on CONFIG_NAME: cycles against PEs``
    (the batch only when some point has more than one image). Needs matplotlib
    (:func:`accel.html_report.require_matplotlib`)."""
    from accel.html_report import require_matplotlib

    require_matplotlib("the sweep's Pareto plot")
    from matplotlib.figure import Figure

    path = Path(path)
    finished = [p for p in points if p.ok]
    groups = list(dict.fromkeys(_group(p) for p in points))
    batched = any(p.batch != 1 for p in points)
    fig = Figure(figsize=(8, 5.5 * max(1, len(groups))), layout="constrained")
    axes = fig.subplots(max(1, len(groups)), 1, squeeze=False)[:, 0]
    varying = _varying(finished)
    for ax, group in zip(axes, groups or [("", 1)], strict=True):
        network, batch = group
        mine = [p for p in finished if _group(p) == group]
        _plot_network(ax, mine, varying)
        where = f" on {config_name}" if config_name else ""
        images = f" (batch of {batch})" if batched else ""
        heading = f"{network}{images}{where}: cycles against PEs"
        ax.set_title(title if title and len(groups) == 1 else heading)
        if batched:
            ax.set_ylabel(f"cycles (the batch of {batch})")
    fig.savefig(path, format="png", dpi=110, metadata={"Software": None})
    return path


def _plot_network(ax, points: Sequence[SweepPoint], varying: Sequence[str]) -> None:
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
        # labels (fastest at the bottom) instead of printing them over each other, below
        # the front's step, which leaves the fastest point to the right.
        by_pes: dict[int, list[SweepPoint]] = {}
        for p in points:
            by_pes.setdefault(p.pes, []).append(p)
        for group in by_pes.values():
            group.sort(key=lambda p: p.cycles)
            anchor = group[0]
            for k, p in enumerate(group):
                ax.annotate(
                    _label(p, varying),
                    (anchor.pes, anchor.cycles),
                    xytext=(6, -12 - 9 * (len(group) - 1 - k)),
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
    ax.margins(x=0.12, y=0.14)
    ax.set_xlabel("PEs (rows x cols)")
    ax.set_ylabel("cycles")
    ax.grid(which="both", alpha=0.25)
    ax.legend(fontsize=8)
