"""The ``accel`` command line.

Each subcommand is a small function that parses nothing itself: :func:`build_parser` declares
the arguments, the handler does the work and returns the exit status. Modules are imported
inside the handlers so ``accel --help`` stays instant.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from accel import __version__


class CliError(Exception):
    """An error to report on stderr as ``accel: error: ...`` with exit status 2."""


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--config", metavar="CFG.toml", help="accelerator config file")
    group.add_argument("--preset", metavar="NAME", help="named config (tiny, edge, server)")


def resolve_config(args: argparse.Namespace):
    """The config named by ``--config``/``--preset`` (default: the ``edge`` preset)."""
    from accel import config

    if getattr(args, "config", None):
        return config.load(args.config)
    return config.preset(getattr(args, "preset", None) or "edge")


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
