"""The ``accel`` command line.

Each subcommand is a small function that parses nothing itself: :func:`build_parser` declares
the arguments, the handler does the work and returns the exit status. Modules are imported
inside the handlers so ``accel --help`` stays instant.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from accel import __version__


class CliError(Exception):
    """An error to report on stderr as ``accel: error: ...`` with exit status 2."""


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--config", metavar="CFG.toml", help="accelerator config file")
    group.add_argument("--preset", metavar="NAME", help="named config (tiny, edge, server)")


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="zoo name (see `accel models`), model.onnx or topology.csv")
    parser.add_argument("--input-size", type=int, help="input height/width for zoo models")
    parser.add_argument("--seed", type=int, default=0, help="random weights and inputs")


def resolve_config(args: argparse.Namespace):
    """The config named by ``--config``/``--preset`` (default: the ``edge`` preset)."""
    from accel import config

    if getattr(args, "config", None):
        return config.load(args.config)
    return config.preset(getattr(args, "preset", None) or "edge")


def resolve_sim_config(args: argparse.Namespace):
    """``--config``/``--preset``, then ``--rows``/``--cols``/``--bandwidth`` overrides."""
    cfg = resolve_config(args)
    changes: dict = {}
    if getattr(args, "rows", None) or getattr(args, "cols", None):
        array = {"rows": args.rows or cfg.array.rows, "cols": args.cols or cfg.array.cols}
        changes["array"] = array
    if getattr(args, "bandwidth", None):
        changes["dram"] = {"bandwidth": args.bandwidth}
    if changes:
        cfg = cfg.replace(name=f"{cfg.name}-custom", **changes)
    return cfg


def load_network(args: argparse.Namespace):
    from accel.frontends import load_model

    return load_model(args.model, input_size=getattr(args, "input_size", None))


def compile_model(args: argparse.Namespace, cfg):
    from accel import compiler

    return compiler.compile(load_network(args), cfg, seed=args.seed)


def cmd_models(args: argparse.Namespace) -> int:
    from accel import models

    for name in models.names():
        net = models.get(name)
        shape = "x".join(str(d) for d in net.shape(net.input_names[0]))
        print(
            f"{name:14s} input {shape:10s} {net.total_macs / 1e9:8.3f} GMACs "
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
    cfg = resolve_sim_config(args)
    program = compile_model(args, cfg)
    program.save(args.output)
    if args.listing:
        Path(args.listing).write_text(program.listing() + "\n")
    print(
        f"compiled {program.network!r} for {cfg.name!r}: {len(program.layers)} layers, "
        f"{program.instruction_count} instructions, DRAM {program.dram_bytes} bytes "
        f"-> {args.output}"
    )
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    import numpy as np

    import sim
    from accel import report

    cfg = resolve_sim_config(args)
    program = compile_model(args, cfg)
    image = None
    if not args.cycles_only:
        rng = np.random.default_rng(args.seed)
        inputs = {
            name: rng.integers(-128, 128, size=(1, t.channels, t.height, t.width), dtype=np.int8)
            for name, t in program.inputs.items()
        }
        image = program.make_image(inputs)
    result = sim.run(program, image, mode=args.mode, compute_outputs=not args.cycles_only)
    text = report.render(result, program, args.format)
    if args.output:
        out = Path(args.output)
        out.mkdir(parents=True, exist_ok=True)
        for fmt in ("table", "json", "csv"):
            suffix = {"table": "txt", "json": "json", "csv": "csv"}[fmt]
            (out / f"simulate.{suffix}").write_text(report.render(result, program, fmt))
    sys.stdout.write(text)
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    cfg = resolve_config(args)
    text = cfg.to_toml()
    if args.output:
        cfg.save(args.output)
    else:
        sys.stdout.write(text)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="accel",
        description="Simulate, generate and verify convolution accelerators.",
    )
    parser.add_argument("--version", action="version", version=f"accel {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("models", help="list the built-in model zoo")
    p.set_defaults(handler=cmd_models)

    p = sub.add_parser("summary", help="layers, shapes, MACs and parameters of a network")
    add_model_arguments(p)
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(handler=cmd_summary)

    p = sub.add_parser("compile", help="compile a network into a program for the accelerator")
    add_model_arguments(p)
    add_config_arguments(p)
    p.add_argument("-o", "--output", required=True, metavar="program.bin")
    p.add_argument("--listing", metavar="PATH", help="also write a readable listing")
    p.set_defaults(handler=cmd_compile)

    p = sub.add_parser("simulate", help="cycles, utilization, stalls and traffic per layer")
    add_model_arguments(p)
    add_config_arguments(p)
    p.add_argument("--rows", type=int, help="override the array rows")
    p.add_argument("--cols", type=int, help="override the array columns")
    p.add_argument("--bandwidth", type=int, help="override DRAM bytes per cycle")
    p.add_argument("--format", choices=("table", "json", "csv"), default="table")
    p.add_argument("--mode", choices=("fast", "trace"), default="fast")
    p.add_argument("--cycles-only", action="store_true", help="skip computing the tensors")
    p.add_argument("-o", "--output", metavar="DIR", help="also write table, JSON and CSV here")
    p.set_defaults(handler=cmd_simulate)

    p = sub.add_parser("config", help="print or save an accelerator config as TOML")
    add_config_arguments(p)
    p.add_argument("-o", "--output", metavar="PATH", help="write the TOML here")
    p.set_defaults(handler=cmd_config)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 0
    try:
        return args.handler(args)
    except (CliError, ValueError, TypeError, FileNotFoundError) as error:
        print(f"accel: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
