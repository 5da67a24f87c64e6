"""Packaging for hardware flows: a FuseSoC core description and the register map as Markdown
and as a C header.

- :func:`fusesoc_core` is a FuseSoC CAPI2 core (``NAME.core``): the Verilog (``NAME.v``) as
  the ``rtl`` file set with ``NAME`` as the toplevel, the register header as a C include
  file when there is one, a ``default`` target and a ``lint`` target running
  ``verilator --lint-only -Wall`` with the waivers of :data:`hdl.flow.generate.LINT_WAIVERS`.
- :func:`registers_markdown` and :func:`registers_header` render :data:`hdl.csr.REGISTERS`,
  the one source of truth of the register map (``NAME_regs.md``, ``NAME_regs.h``).

Every text is a function of its arguments only (no dates, no paths), so the files of a
deterministic generation are themselves deterministic.
"""

from __future__ import annotations

import json

from accel import __version__
from hdl import axi_lite
from hdl.csr import ADDR_WIDTH, REGISTERS, Access, Register
from hdl.flow.generate import LINT_WAIVERS, check_module_name

__all__ = ["fusesoc_core", "registers_header", "registers_markdown"]

_ACCESS = {
    Access.RO: "read only (writes ignored)",
    Access.RW: "read/write (WSTRB honoured)",
    Access.WO: "write: a command (reads 0)",
    Access.W1C: "read, write 1 to clear",
}


def _q(text: str) -> str:
    """``text`` as a YAML scalar (a JSON string is one)."""
    return json.dumps(text)


def fusesoc_core(name: str, *, description: str, header: bool) -> str:
    """The CAPI2 core description of module ``name`` (``NAME.v``; ``NAME_regs.h`` too when
    ``header``). The VLNV is ``accel:generated:NAME:<accel version>``.

    Raises
    ------
    TypeError, ValueError
        If ``name`` is not a Verilog identifier.
    """
    check_module_name(name)
    lines = [
        "CAPI=2:",
        f"name: {_q(f'accel:generated:{name}:{__version__}')}",
        f"description: {_q(description)}",
        "",
        "filesets:",
        "  rtl:",
        "    files:",
        f"      - {_q(f'{name}.v')}",
        "    file_type: verilogSource",
    ]
    if header:
        lines += [
            "  sw:",
            "    files:",
            f"      - {_q(f'{name}_regs.h')}: {{is_include_file: true}}",
            "    file_type: cSource",
        ]
    waivers = ", ".join(_q(f"-Wno-{waiver}") for waiver in sorted(LINT_WAIVERS))
    lines += [
        "",
        "targets:",
        "  default:",
        f"    filesets: [rtl{', sw' if header else ''}]",
        f"    toplevel: {_q(name)}",
        "  lint:",
        "    default_tool: verilator",
        "    filesets: [rtl]",
        f"    toplevel: {_q(name)}",
        "    tools:",
        "      verilator:",
        "        mode: lint-only",
        f'        verilator_options: ["-Wall", {waivers}]',
    ]
    return "\n".join(lines) + "\n"


def _bits(field_lsb: int, width: int) -> str:
    return f"{field_lsb}" if width == 1 else f"{field_lsb + width - 1}:{field_lsb}"


def registers_markdown(name: str) -> str:
    """The register map of module ``name`` as Markdown: one table of the registers, one of
    the fields of each register that has fields, and the access rules."""
    check_module_name(name)
    lines = [
        f"# `{name}` registers",
        "",
        f"AXI4-Lite slave `s_axil`: {axi_lite.DATA_WIDTH}-bit data, {ADDR_WIDTH}-bit byte "
        "addresses (a 4 KiB window), one outstanding transaction per direction. Generated "
        "from `hdl.csr.REGISTERS`.",
        "",
        "- An address no register has is answered `SLVERR` (read data 0; a write changes "
        "nothing). `addr[1:0]` is ignored.",
        "- A write to a read-only register is ignored and answered `OKAY`.",
        "- 64-bit counters are `_LO`/`_HI` pairs: reading `_LO` latches the high word of the "
        "same value; every `_HI` reads the last latched word. Read `_LO`, then `_HI`.",
        "- `irq` is high while `IRQ_STATUS & IRQ_ENABLE` is not 0; clear `IRQ_STATUS` bits by "
        "writing 1.",
        "",
        "| offset | name | access | reset | meaning |",
        "|---|---|---|---|---|",
    ]
    for reg in REGISTERS:
        lines.append(
            f"| `0x{reg.offset:03x}` | `{reg.name}` | {reg.access.value} | "
            f"`0x{reg.reset:08x}` | {reg.meaning} |"
        )
    for reg in REGISTERS:
        if not reg.fields:
            continue
        lines += [
            "",
            f"## `{reg.name}` (`0x{reg.offset:03x}`, {_ACCESS[reg.access]})",
            "",
            "| bits | field | meaning |",
            "|---|---|---|",
        ]
        lines += [f"| {_bits(f.lsb, f.width)} | `{f.name}` | {f.meaning} |" for f in reg.fields]
    return "\n".join(lines) + "\n"


def _define(name: str, value: str, comment: str = "") -> str:
    text = f"#define {name:<40} {value}"
    return f"{text}  /* {comment} */" if comment else text


def _register_defines(prefix: str, reg: Register) -> list[str]:
    lines = [_define(f"{prefix}_REG_{reg.name}", f"0x{reg.offset:03x}u", reg.access.value)]
    for f in reg.fields:
        field = f"{prefix}_{reg.name}_{f.name}"
        if f.width == 1:
            lines.append(_define(field, f"(1u << {f.lsb})"))
        else:
            lines.append(_define(f"{field}_MASK", f"0x{f.mask:08x}u"))
            lines.append(_define(f"{field}_SHIFT", f"{f.lsb}"))
    return lines


def registers_header(name: str) -> str:
    """The register map of module ``name`` as a C header: ``NAME_REG_<REGISTER>`` byte
    offsets, ``NAME_<REGISTER>_<FIELD>`` bit masks (``_MASK`` and ``_SHIFT`` for wider
    fields), ``NAME_ID`` (the ``ID`` register's value), with an include guard; ``NAME`` is
    the module name in upper case."""
    check_module_name(name)
    prefix = name.upper()
    guard = f"{prefix}_REGS_H"
    id_reset = next(reg.reset for reg in REGISTERS if reg.name == "ID")
    lines = [
        f"/* {name}: AXI4-Lite control and status registers (generated from",
        " * hdl.csr.REGISTERS; offsets in bytes from the slave's base address). */",
        f"#ifndef {guard}",
        f"#define {guard}",
        "",
        _define(f"{prefix}_ID", f"0x{id_reset:08x}u", "value of the ID register"),
        "",
    ]
    for reg in REGISTERS:
        lines += _register_defines(prefix, reg)
    lines += ["", f"#endif /* {guard} */"]
    return "\n".join(lines) + "\n"
