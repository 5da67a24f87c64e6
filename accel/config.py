"""The one configuration object of the accelerator.

:class:`AccelConfig` is read by the compiler, the cycle model and the RTL generator alike
(DESIGN.md §2.5). It is a tree of small frozen dataclasses; every invariant is checked on
construction, derived values are properties, and variants are made by copying
(:meth:`AccelConfig.replace`). Configs load from and save to TOML::

    name = "edge"
    clock_mhz = 500.0
    clock_source = "assumed: an ASIC target, not measured"

    [array]
    rows = 16
    cols = 16
    dataflow = "ws"

    [buffers]
    input_bytes = 65536
    ...

Every key is optional in a file (missing keys take the defaults of the ``edge`` preset);
unknown keys are errors.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from accel import isa
from accel.files import read_text

__all__ = [
    "AccelConfig",
    "ArrayConfig",
    "BufferConfig",
    "DataConfig",
    "DramConfig",
    "load",
    "preset",
    "preset_names",
]

DATAFLOWS = ("ws", "os", "is")
#: Dataflows a config may name whose compiler and cycle model are not built yet, and why
#: (the CLI and the SCALE-Sim frontend refuse them; the RTL's is built against them).
PENDING_DATAFLOWS: dict[str, str] = {}

#: Bytes per lane of a parameter word: int32 bias, int32 multiplier, int32 shift.
PARAM_LANE_BYTES = 12


#: ``AccelConfig.clock_source`` of a clock nobody measured (its reason may follow).
ASSUMED = "assumed"
#: ``AccelConfig.clock_source`` of a measured clock, followed by what measured it.
MEASURED = "measured"

#: Widest DRAM data path, in bytes per beat (an 8192-bit port).
MAX_DRAM_BANDWIDTH = 1024
#: Longest DRAM latency in cycles (the RTL's request queue holds ``latency + 2048`` entries).
MAX_DRAM_LATENCY = 4096


def _check_int(
    owner: str, name: str, value: object, minimum: int, maximum: int | None = None
) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{owner}.{name} must be an int, not {value!r}")
    if value < minimum:
        raise ValueError(f"{owner}.{name} must be >= {minimum}, not {value!r}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{owner}.{name} = {value} exceeds the maximum {maximum}")


@dataclass(frozen=True)
class ArrayConfig:
    """The systolic MAC array: ``rows`` span the reduction, ``cols`` the output channels."""

    rows: int = 16
    cols: int = 16
    dataflow: str = "ws"

    def __post_init__(self) -> None:
        _check_int("array", "rows", self.rows, 2)
        _check_int("array", "cols", self.cols, 1)
        if self.rows > 256 or self.cols > 256:
            raise ValueError(f"array size {self.rows}x{self.cols} exceeds the 256x256 limit")
        if self.dataflow not in DATAFLOWS:
            raise ValueError(f"array.dataflow must be one of {DATAFLOWS}, not {self.dataflow!r}")

    @property
    def pes(self) -> int:
        """Number of processing elements (MACs per cycle at peak)."""
        return self.rows * self.cols


@dataclass(frozen=True)
class DataConfig:
    """Data widths in bits. v1 hardware is int8 x int8 -> int32 with int32 bias."""

    act_bits: int = 8
    weight_bits: int = 8
    acc_bits: int = 32
    bias_bits: int = 32

    def __post_init__(self) -> None:
        for f in fields(self):
            _check_int("data", f.name, getattr(self, f.name), 1)
        if (self.act_bits, self.weight_bits) != (8, 8):
            raise ValueError(
                f"data.act_bits/weight_bits must be 8 (int8 hardware), "
                f"not {self.act_bits}/{self.weight_bits}"
            )
        if self.acc_bits != 32 or self.bias_bits != 32:
            raise ValueError(
                f"data.acc_bits/bias_bits must be 32, not {self.acc_bits}/{self.bias_bits}"
            )


@dataclass(frozen=True)
class BufferConfig:
    """On-chip SRAM sizes in bytes.

    ``input_bytes`` is the line/input buffer (int8 activations), ``weight_bytes`` the weight
    buffer (int8), ``acc_bytes`` the accumulator buffer (int32 partial sums) and
    ``output_bytes`` the output buffer (int8 results waiting for the DMA) and
    ``param_bytes`` the post-processor's parameter buffer (per output channel: int32 bias,
    int32 multiplier, int32 shift).

    ``weight_banks`` (1 or 2) splits the weight buffer into that many memories, word ``w`` in
    bank ``w % weight_banks``, so that a LOAD writes that many weight words per cycle when
    ``dram.bandwidth`` carries them (:func:`accel.timing.load_unit_bytes`); the array still
    reads one word per cycle. Two banks need an even number of array rows and weight words.
    """

    input_bytes: int = 64 * 1024
    weight_bytes: int = 64 * 1024
    acc_bytes: int = 64 * 1024
    output_bytes: int = 16 * 1024
    param_bytes: int = 8 * 1024
    weight_banks: int = 1

    def __post_init__(self) -> None:
        for f in fields(self):
            _check_int("buffers", f.name, getattr(self, f.name), 1)
        _check_int("buffers", "weight_banks", self.weight_banks, 1, 2)


@dataclass(frozen=True)
class DramConfig:
    """External memory: ``bandwidth`` bytes per cycle, ``latency`` cycles per request.

    ``bandwidth`` is also the width in bytes of the DRAM data ports of the RTL.
    """

    bandwidth: int = 16
    latency: int = 64

    def __post_init__(self) -> None:
        _check_int("dram", "bandwidth", self.bandwidth, 1, MAX_DRAM_BANDWIDTH)
        _check_int("dram", "latency", self.latency, 0, MAX_DRAM_LATENCY)


@dataclass(frozen=True)
class AccelConfig:
    """A complete accelerator configuration.

    Parameters
    ----------
    name:
        A label recorded in reports and generated designs.
    array, data, buffers, dram:
        The nested block configurations.
    clock_mhz:
        Clock frequency, used only to convert cycles to time in reports.
    clock_source:
        Where ``clock_mhz`` comes from (DESIGN.md §2.6): ``"assumed"`` (the default, and what
        every preset meant for an ASIC says, with its reason), or ``"measured: ..."`` naming
        the measurement (tool, device, date; ``docs/synthesis.md``). It travels with the
        config into every report's JSON and TOML, and :attr:`clock_text` puts it beside the
        frequency. A copy whose hardware or clock changes (:meth:`replace`,
        :meth:`from_dict`) is ``"assumed"`` again unless it names its own source.
    """

    name: str = "custom"
    array: ArrayConfig = field(default_factory=ArrayConfig)
    data: DataConfig = field(default_factory=DataConfig)
    buffers: BufferConfig = field(default_factory=BufferConfig)
    dram: DramConfig = field(default_factory=DramConfig)
    clock_mhz: float = 500.0
    clock_source: str = ASSUMED

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"config name must be a non-empty string, not {self.name!r}")
        for attr, cls in _SECTIONS.items():
            if not isinstance(getattr(self, attr), cls):
                raise TypeError(
                    f"config.{attr} must be a {cls.__name__}, not {getattr(self, attr)!r}"
                )
        if isinstance(self.clock_mhz, bool) or not isinstance(self.clock_mhz, int | float):
            raise TypeError(f"config.clock_mhz must be a number, not {self.clock_mhz!r}")
        if not (self.clock_mhz > 0 and math.isfinite(self.clock_mhz)):
            raise ValueError(f"config.clock_mhz must be finite and > 0, not {self.clock_mhz!r}")
        if not isinstance(self.clock_source, str) or not self.clock_source.startswith(
            (ASSUMED, MEASURED)
        ):
            raise ValueError(
                f"config.clock_source must start with {ASSUMED!r} or {MEASURED!r}, "
                f"not {self.clock_source!r}"
            )
        rows, cols = self.array.rows, self.array.cols
        # Two of the smallest unit the compiler places in each buffer (every buffer is double
        # buffered): two input words, two weight tiles, two accumulator rows, two output
        # words, two parameter words. A 1x1 convolution then compiles.
        # The largest: as many words as the instruction fields that address them can reach.
        limits = {
            "input_bytes": (2, self.input_word_bytes, ("Load", "sram_addr")),
            "weight_bytes": (2 * rows, self.weight_word_bytes, ("Compute", "w_base")),
            "acc_bytes": (2, self.acc_row_bytes, ("Compute", "acc_base")),
            "output_bytes": (2, self.output_word_bytes, ("Post", "out_base")),
            "param_bytes": (2, self.param_word_bytes, ("Post", "param_base")),
        }
        banks = self.buffers.weight_banks
        if banks > 1 and (rows % banks or self.weight_words % banks):
            raise ValueError(
                f"buffers.weight_banks = {banks} needs an even number of array rows and of "
                f"weight words (rows {rows}, {self.weight_words} words of {cols} bytes)"
            )
        for name, (min_words, word, (instr, field_name)) in limits.items():
            value = getattr(self.buffers, name)
            minimum = min_words * word
            if value < minimum:
                raise ValueError(
                    f"buffers.{name} = {value} is too small for a {rows}x{cols} array "
                    f"(needs >= {minimum})"
                )
            words = isa.field_max(getattr(isa, instr), field_name) + 1
            if value > words * word:
                raise ValueError(
                    f"buffers.{name} = {value} exceeds the maximum {words * word} for a "
                    f"{rows}x{cols} array ({words} words of {word} bytes, what the "
                    f"{(words - 1).bit_length()}-bit {instr}.{field_name} field addresses)"
                )

    # Derived values -----------------------------------------------------------------------

    @property
    def peak_macs_per_cycle(self) -> int:
        return self.array.pes

    @property
    def peak_gops(self) -> float:
        """Peak throughput in GOPS (one MAC = two operations)."""
        return 2 * self.array.pes * self.clock_mhz / 1e3

    @property
    def acc_entries(self) -> int:
        """Number of int32 accumulators in the accumulator buffer."""
        return self.buffers.acc_bytes // (self.data.acc_bits // 8)

    @property
    def vector_lanes(self) -> int:
        """Channels the vector unit processes per word: ``min(rows, cols)``."""
        return min(self.array.rows, self.array.cols)

    # Buffer geometry: every buffer is an array of words; a word is what one port moves in one
    # cycle. The compiler, the cycle model and the RTL size their buffers from these alone.

    @property
    def input_word_bytes(self) -> int:
        """An input word: one int8 activation per array row."""
        return self.array.rows

    @property
    def weight_word_bytes(self) -> int:
        """A weight word: one int8 weight per array column (one row of a weight tile)."""
        return self.array.cols

    @property
    def param_word_bytes(self) -> int:
        """A parameter word: bias, multiplier and shift (``PARAM_LANE_BYTES``) per column."""
        return PARAM_LANE_BYTES * self.array.cols

    @property
    def acc_row_bytes(self) -> int:
        """An accumulator row: one ``acc_bits`` accumulator per array column."""
        return self.data.acc_bits // 8 * self.array.cols

    @property
    def output_word_bytes(self) -> int:
        """An output word: one int8 result per array column."""
        return self.array.cols

    @property
    def input_words(self) -> int:
        """Depth of the input buffer in words."""
        return self.buffers.input_bytes // self.input_word_bytes

    @property
    def weight_words(self) -> int:
        """Depth of the weight buffer in words."""
        return self.buffers.weight_bytes // self.weight_word_bytes

    @property
    def param_words(self) -> int:
        """Depth of the parameter buffer in words."""
        return self.buffers.param_bytes // self.param_word_bytes

    @property
    def table_words(self) -> int:
        """Depth of the table buffer: :data:`accel.isa.TABLE_SLOTS` tables of
        :data:`accel.isa.TABLE_WORDS` words (fixed; not a field, so configs stay as they were)."""
        return isa.TABLE_SLOTS * isa.TABLE_WORDS

    @property
    def acc_rows(self) -> int:
        """Depth of the accumulator buffer in rows."""
        return self.buffers.acc_bytes // self.acc_row_bytes

    @property
    def output_words(self) -> int:
        """Depth of the output buffer in words."""
        return self.buffers.output_bytes // self.output_word_bytes

    @property
    def dram_gbytes_per_s(self) -> float:
        return self.dram.bandwidth * self.clock_mhz / 1e3

    @property
    def clock_measured(self) -> bool:
        """``clock_mhz`` is a measurement (``clock_source`` says which), not an assumption."""
        return self.clock_source.startswith(MEASURED)

    @property
    def clock_text(self) -> str:
        """The clock as reports print it: ``"500 MHz (assumed)"``, ``"104 MHz (measured)"``."""
        return f"{self.clock_mhz:g} MHz ({MEASURED if self.clock_measured else ASSUMED})"

    # Copies, serialisation ----------------------------------------------------------------

    def replace(self, **changes: Any) -> AccelConfig:
        """A copy with changes. Nested sections take dicts: ``replace(array={"rows": 8})``.

        A measured clock belongs to the design it was measured on: a copy that changes
        anything but the name, and does not give its own ``clock_source``, has an assumed
        clock."""
        values = self.to_dict()
        if "clock_source" not in changes and set(changes) - {"name"}:
            values["clock_source"] = ASSUMED
        for key, value in changes.items():
            if key in _SECTIONS and isinstance(value, dict):
                values[key] = {**values[key], **value}
            else:
                values[key] = value
        return AccelConfig.from_dict(values)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any], *, base: AccelConfig | None = None) -> AccelConfig:
        """Build a config from a nested dict; missing keys come from ``base`` (default: edge).

        Unknown keys raise ``ValueError`` naming the key.
        """
        base = base if base is not None else PRESETS["edge"]
        if not isinstance(values, dict):
            raise TypeError(f"config must be a table/dict, not {values!r}")
        top_keys = {f.name for f in fields(cls)}
        for key in values:
            if key not in top_keys:
                raise ValueError(f"unknown config key {key!r} (known: {sorted(top_keys)})")
        kwargs: dict[str, Any] = {}
        if "clock_source" not in values and set(values) - {"name"}:
            values = {**values, "clock_source": ASSUMED}
        for f in fields(cls):
            current = getattr(base, f.name)
            if f.name not in values:
                kwargs[f.name] = current
            elif f.name in _SECTIONS:
                section = values[f.name]
                if not isinstance(section, dict):
                    raise TypeError(f"config.{f.name} must be a table, not {section!r}")
                known = {g.name for g in fields(_SECTIONS[f.name])}
                for key in section:
                    if key not in known:
                        raise ValueError(
                            f"unknown config key {f.name}.{key!r} (known: {sorted(known)})"
                        )
                kwargs[f.name] = dataclasses.replace(current, **section)
            else:
                kwargs[f.name] = values[f.name]
        return cls(**kwargs)

    def to_toml(self) -> str:
        """TOML text that :func:`load` reads back to an equal config."""
        lines = [
            f"name = {json.dumps(self.name)}",
            f"clock_mhz = {float(self.clock_mhz)!r}",
            f"clock_source = {json.dumps(self.clock_source)}",
        ]
        for section in _SECTIONS:
            lines.append(f"\n[{section}]")
            for key, value in dataclasses.asdict(getattr(self, section)).items():
                lines.append(f"{key} = {json.dumps(value)}")
        return "\n".join(lines) + "\n"

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_toml())

    @property
    def digest(self) -> str:
        """A short stable hash of every parameter (names builds, caches and programs)."""
        text = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


_SECTIONS: dict[str, type] = {
    "array": ArrayConfig,
    "data": DataConfig,
    "buffers": BufferConfig,
    "dram": DramConfig,
}

KIB = 1024

#: The clock of the presets meant for an ASIC: a target, not a measurement.
ASIC_CLOCK = f"{ASSUMED}: an ASIC target clock, not measured (no ASIC flow; docs/synthesis.md)"

PRESETS: dict[str, AccelConfig] = {
    "tiny": AccelConfig(
        name="tiny",
        array=ArrayConfig(rows=4, cols=4),
        buffers=BufferConfig(
            input_bytes=4 * KIB,
            weight_bytes=2 * KIB,
            acc_bytes=4 * KIB,
            output_bytes=1 * KIB,
            param_bytes=1 * KIB,
        ),
        dram=DramConfig(bandwidth=4, latency=8),
        # Place and route of the generated top (docs/synthesis.md, "Clock: place and route").
        clock_mhz=71.8,
        clock_source=f"{MEASURED}: nextpnr-ecp5 on an LFE5U-45F (CABGA381, speed 6), out of "
        "context, seed 1, at commit 626ef2c",
    ),
    "edge": AccelConfig(name="edge", clock_source=ASIC_CLOCK),
    "server": AccelConfig(
        name="server",
        array=ArrayConfig(rows=32, cols=32),
        buffers=BufferConfig(
            input_bytes=256 * KIB,
            weight_bytes=256 * KIB,
            acc_bytes=256 * KIB,
            output_bytes=64 * KIB,
            param_bytes=16 * KIB,
        ),
        dram=DramConfig(bandwidth=64, latency=100),
        clock_mhz=1000.0,
        clock_source=ASIC_CLOCK,
    ),
}


def preset_names() -> list[str]:
    return list(PRESETS)


def preset(name: str) -> AccelConfig:
    """The named preset (``tiny`` 4x4 for tests, ``edge`` 16x16, ``server`` 32x32)."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r} (known: {preset_names()})") from None


def load(path: str | Path) -> AccelConfig:
    """Read a TOML config file; missing keys default to the ``edge`` preset."""
    path = Path(path)
    try:
        values = tomllib.loads(read_text(path, what="config"))
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{path}: invalid TOML: {error}") from None
    try:
        return AccelConfig.from_dict(values)
    except (TypeError, ValueError) as error:
        raise type(error)(f"{path}: {error}") from None
