"""Verilog generation.

:func:`verilog` converts a component with Amaranth's builtin Yosys. The output is
reproducible (no source locations: ``emit_src=False``) and records the configuration it came
from in a header comment (DESIGN.md §2.5). Ports are named after the component's signature
paths joined with a single ``_`` (``o_0_payload``), because Verilator's C++ mangles ``__``;
payloads are packed vectors in :mod:`amaranth.lib.data` bit order.
"""

from __future__ import annotations

import re

from amaranth.back import verilog as amaranth_verilog
from amaranth.hdl import Const, Signal, ValueCastable
from amaranth.hdl._ir import PortDirection  # what amaranth.back.verilog.convert itself uses
from amaranth.lib import wiring

from accel.config import AccelConfig

__all__ = ["ports", "verilog"]

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
    if not isinstance(name, str):
        raise TypeError(f"name must be a string, not {name!r}")
    if not _IDENTIFIER.match(name):
        raise ValueError(f"name must be a Verilog identifier, not {name!r}")
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
