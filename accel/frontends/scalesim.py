"""SCALE-Sim topologies and configs in and out, and SCALE-Sim's analytical compute model.

SCALE-Sim (https://github.com/scalesim-project/scale-sim-v3) describes a workload as a CSV of
independent convolution layers and an accelerator as an INI-style ``.cfg``. This module maps
both to ours and back, and reproduces the "Total Cycles" that SCALE-Sim writes to
``COMPUTE_REPORT.csv`` for a stall-free memory (``InterfaceBandwidth: CALC``). How every
detail was confirmed against SCALE-Sim's source is in ``docs/scalesim.md``.

Topology rows are :class:`ScaleSimLayer` objects (:func:`load_topology_rows`,
:func:`topology_rows`); :func:`load_topology` turns them into a :class:`~accel.graph.Network`
with one ``Input -> Conv2d`` pair per row, padded so that our output size equals SCALE-Sim's.

Examples
--------
>>> layer = ScaleSimLayer("Conv1", 224, 224, 7, 7, 3, 64, 2)
>>> (layer.ofmap_h, layer.ofmap_w), scalesim_cycles(layer, 32, 32, "ws")
((110, 110), 121939)
"""

from __future__ import annotations

import configparser
import re
from collections.abc import Sequence
from dataclasses import dataclass, fields
from numbers import Integral
from pathlib import Path
from typing import Any

from accel.config import DATAFLOWS as CONFIG_DATAFLOWS
from accel.config import PENDING_DATAFLOWS, AccelConfig
from accel.files import read_text
from accel.graph import Conv2d, Input, Linear, Network

__all__ = [
    "COMPUTE_REPORT_COLUMNS",
    "DATAFLOWS",
    "TOPOLOGY_HEADER",
    "ScaleSimLayer",
    "compute_report",
    "load_config",
    "load_topology",
    "load_topology_rows",
    "save_config",
    "save_topology",
    "scalesim_cycles",
    "topology_rows",
    "write_compute_report",
]

#: Dataflows of SCALE-Sim's compute model (output, weight, input stationary).
DATAFLOWS = ("os", "ws", "is")
#: The dataflows our hardware runs.
HARDWARE_DATAFLOWS = tuple(d for d in CONFIG_DATAFLOWS if d not in PENDING_DATAFLOWS)

#: Column titles of a SCALE-Sim conv topology, in file order (as in its sample files).
TOPOLOGY_COLUMNS = (
    "Layer name",
    "IFMAP Height",
    "IFMAP Width",
    "Filter Height",
    "Filter Width",
    "Channels",
    "Num Filter",
    "Strides",
)
#: The header line :func:`save_topology` writes.
TOPOLOGY_HEADER = ", ".join(TOPOLOGY_COLUMNS) + ","

#: Columns of SCALE-Sim's COMPUTE_REPORT.csv that the analytical model produces.
COMPUTE_REPORT_COLUMNS = (
    "LayerID",
    "Total Cycles",
    "Stall Cycles",
    "Overall Util %",
    "Mapping Efficiency %",
    "Compute Util %",
)

_INT = re.compile(r"[0-9]+")


# ---------------------------------------------------------------------------------------
# Topology rows


@dataclass(frozen=True)
class ScaleSimLayer:
    """One row of a SCALE-Sim conv topology.

    Sizes are SCALE-Sim's: ``ifmap_h x ifmap_w`` is the (already padded) input, the output is
    ``ceil((ifmap - filter + stride) / stride)`` per axis and one ``stride`` serves both axes.
    ``depthwise`` follows SCALE-Sim's convention: a layer is depthwise exactly when its name
    contains ``"DP"``; SCALE-Sim then runs ``channels`` separate layers of one channel and
    ``num_filters`` filters each. Leave ``depthwise`` as ``None`` to derive it from the name.

    Raises
    ------
    TypeError
        If a size is not an int.
    ValueError
        Naming the field and its column: a size < 1, a filter larger than the input, a bad
        name, or ``depthwise`` contradicting the name.
    """

    name: str
    ifmap_h: int
    ifmap_w: int
    filter_h: int
    filter_w: int
    channels: int
    num_filters: int
    stride: int
    depthwise: bool | None = None

    def __post_init__(self) -> None:
        name = self.name
        if not isinstance(name, str) or not name or name != name.strip():
            raise ValueError(
                f"layer name must be a non-empty str without surrounding whitespace, got {name!r}"
            )
        if "," in name or "\n" in name:
            raise ValueError(f"layer name {name!r} must not contain a comma or a newline")
        for f, column in zip(fields(self)[1:8], TOPOLOGY_COLUMNS[1:], strict=True):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, Integral):
                raise TypeError(
                    f"layer {name!r}: {f.name} ({column}) must be an int, got {value!r}"
                )
            if value < 1:
                raise ValueError(f"layer {name!r}: {f.name} ({column}) must be >= 1, got {value!r}")
            object.__setattr__(self, f.name, int(value))
        for axis in ("h", "w"):
            size, kernel = getattr(self, f"ifmap_{axis}"), getattr(self, f"filter_{axis}")
            if kernel > size:
                raise ValueError(
                    f"layer {name!r}: filter_{axis} = {kernel} is larger than ifmap_{axis} = {size}"
                )
        implied = "DP" in name
        if self.depthwise is None:
            object.__setattr__(self, "depthwise", implied)
        elif self.depthwise is not implied:
            raise ValueError(
                f"layer {name!r}: depthwise={self.depthwise!r}, but SCALE-Sim "
                f"treats a layer as depthwise exactly when its name contains 'DP'"
            )

    @property
    def ofmap_h(self) -> int:
        """SCALE-Sim's output height ``ceil((ifmap_h - filter_h + stride) / stride)``."""
        return -(-(self.ifmap_h - self.filter_h + self.stride) // self.stride)

    @property
    def ofmap_w(self) -> int:
        """SCALE-Sim's output width ``ceil((ifmap_w - filter_w + stride) / stride)``."""
        return -(-(self.ifmap_w - self.filter_w + self.stride) // self.stride)

    @property
    def pad_h(self) -> int:
        """Rows SCALE-Sim's last window reads past the input: ``(P-1)*stride + R - H``."""
        return (self.ofmap_h - 1) * self.stride + self.filter_h - self.ifmap_h

    @property
    def pad_w(self) -> int:
        """Columns SCALE-Sim's last window reads past the input."""
        return (self.ofmap_w - 1) * self.stride + self.filter_w - self.ifmap_w

    def to_csv_row(self) -> str:
        """The row as SCALE-Sim writes it: fields joined by commas plus a trailing comma."""
        values = [getattr(self, f.name) for f in fields(self)[:8]]
        return ",".join(map(str, values)) + ","


def load_topology_rows(path: str | Path) -> list[ScaleSimLayer]:
    """Read a SCALE-Sim conv topology CSV into rows, validated.

    As SCALE-Sim's reader: the first line is a header and is skipped, blank lines are
    skipped, fields are stripped of whitespace, and each row ends with a comma (SCALE-Sim
    drops whatever follows the last comma; we accept only nothing or a ``#`` comment there).

    Raises
    ------
    ValueError
        Naming the file, the line number and, where it applies, the column and the value:
        a wrong number of fields, a missing trailing comma, a non-integer or < 1 size, a
        filter larger than the input, a header line that is data, no layers at all.
    """
    path = Path(path)
    lines = read_text(path, what="SCALE-Sim topology").splitlines()
    if lines and _looks_like_data(lines[0]):
        raise ValueError(
            f"{path}:1: the first line must be the header (SCALE-Sim skips it), "
            f"got a data row {lines[0].strip()!r}"
        )
    layers = []
    for lineno, line in enumerate(lines[1:], start=2):
        if line.strip():
            layers.append(_parse_row(path, lineno, line))
    if not layers:
        raise ValueError(f"{path}: no layers (a header line and at least one row expected)")
    return layers


def _looks_like_data(line: str) -> bool:
    parts = [p.strip() for p in line.split(",")]
    return len(parts) >= 8 and all(_INT.fullmatch(p) for p in parts[1:8])


def _parse_row(path: Path, lineno: int, line: str) -> ScaleSimLayer:
    where = f"{path}:{lineno}"
    parts = line.strip().split(",")
    if len(parts) == len(TOPOLOGY_COLUMNS) and parts[-1].strip():
        raise ValueError(
            f"{where}: row must end with a comma (SCALE-Sim drops the text after "
            f"the last comma, here the stride {parts[-1].strip()!r})"
        )
    if len(parts) != len(TOPOLOGY_COLUMNS) + 1:
        raise ValueError(
            f"{where}: expected {len(TOPOLOGY_COLUMNS)} fields "
            f"({', '.join(TOPOLOGY_COLUMNS)}) and a trailing comma, "
            f"got {len(parts) - 1} fields"
        )
    tail = parts[-1].strip()
    if tail and not tail.startswith("#"):
        raise ValueError(
            f"{where}: text after the last comma {tail!r} is ignored by "
            f"SCALE-Sim; remove it or start it with '#'"
        )
    name, *raw = (p.strip() for p in parts[:-1])
    if not name:
        raise ValueError(f"{where}: column 1 ({TOPOLOGY_COLUMNS[0]}) is empty")
    values = []
    for column, text in enumerate(raw, start=2):
        if not _INT.fullmatch(text) or int(text) < 1:
            raise ValueError(
                f"{where}: column {column} ({TOPOLOGY_COLUMNS[column - 1]}) "
                f"must be an integer >= 1, got {text!r}"
            )
        values.append(int(text))
    try:
        return ScaleSimLayer(name, *values)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


# ---------------------------------------------------------------------------------------
# Topology <-> Network


def load_topology(path: str | Path) -> Network:
    """Read a SCALE-Sim conv topology as a :class:`~accel.graph.Network`.

    SCALE-Sim's layers are independent workloads, not a chain: row ``L`` becomes an
    :class:`~accel.graph.Input` ``f"{L}.input"`` of shape ``(C, H, W)`` feeding a
    :class:`~accel.graph.Conv2d` named ``L`` (no bias, no activation: SCALE-Sim has
    neither). The conv is padded ``(0, pad_h, 0, pad_w)`` (:attr:`ScaleSimLayer.pad_h`), so
    its output size equals SCALE-Sim's ceil-rounded one. A depthwise (``DP``) row becomes
    ``Conv2d(C, C * num_filters, groups=C)``, which is what SCALE-Sim's expansion into ``C``
    one-channel layers of ``num_filters`` filters computes. The network is named after the
    file's stem.

    Raises
    ------
    ValueError
        As :func:`load_topology_rows`, plus a layer name used twice (naming the line).
    """
    path = Path(path)
    network = Network(path.stem)
    for index, layer in enumerate(load_topology_rows(path)):
        try:
            _add_layer(network, layer)
        except ValueError as exc:
            raise ValueError(f"{path}: row {index + 1} ({layer.name!r}): {exc}") from None
    return network


def _add_layer(network: Network, layer: ScaleSimLayer) -> None:
    c = layer.channels
    source = network.add(f"{layer.name}.input", Input((c, layer.ifmap_h, layer.ifmap_w)))
    conv = Conv2d(
        in_channels=c,
        out_channels=c * layer.num_filters if layer.depthwise else layer.num_filters,
        kernel=(layer.filter_h, layer.filter_w),
        stride=layer.stride,
        padding=(0, layer.pad_h, 0, layer.pad_w),
        groups=c if layer.depthwise else 1,
        bias=False,
    )
    network.add(layer.name, conv, [source])


def topology_rows(network: Network) -> list[ScaleSimLayer]:
    """The SCALE-Sim rows of every :class:`~accel.graph.Conv2d` and
    :class:`~accel.graph.Linear` of ``network``, in network order.

    A Linear is a 1x1 conv on a 1x1 input. A conv's IFMAP size is its input plus its top
    (left) padding, clamped into the range of sizes for which SCALE-Sim's ceil rule gives our
    output size ``P``: ``min(max(H + pad_top, (P-2)*stride + R + 1, R), (P-1)*stride + R)``.
    That is the padded size ``H + pad_top + pad_bottom`` whenever the windows end exactly on
    it; otherwise SCALE-Sim's implied end padding stands for the bottom padding read, and rows
    never read are left out. Depthwise convs (``groups == in_channels``) are written with
    SCALE-Sim's ``DP`` convention: ``_DP`` is appended to a name without ``DP`` and the
    filter count is the channel multiplier ``out_channels // in_channels``. Bias, activation
    and every other op do not change SCALE-Sim's workload and are not written.

    Raises
    ------
    ValueError
        Naming the layer and the attribute: unequal strides, dilation > 1, a grouped conv
        that is not depthwise, a non-depthwise layer whose name contains ``DP`` (SCALE-Sim
        would run it as depthwise), a name SCALE-Sim cannot read.
    """
    rows = []
    for name in network.layers():
        op = network.op(name)
        if isinstance(op, Linear):
            if "DP" in name:
                raise ValueError(
                    f"layer {name!r}: name contains 'DP', which SCALE-Sim reads "
                    f"as depthwise, but the layer is a Linear"
                )
            rows.append(ScaleSimLayer(name, 1, 1, 1, 1, op.in_features, op.out_features, 1))
        elif isinstance(op, Conv2d):
            rows.append(_conv_row(network, name, op))
    return rows


def _conv_row(network: Network, name: str, op: Conv2d) -> ScaleSimLayer:
    if op.stride[0] != op.stride[1]:
        raise ValueError(
            f"layer {name!r}: stride={op.stride} is not supported by SCALE-Sim "
            f"(one stride for both axes)"
        )
    if op.dilation != (1, 1):
        raise ValueError(f"layer {name!r}: dilation={op.dilation} is not supported by SCALE-Sim")
    depthwise = op.groups == op.in_channels and (op.groups > 1 or "DP" in name)
    if op.groups > 1 and not depthwise:
        raise ValueError(
            f"layer {name!r}: groups={op.groups} is a grouped conv that is not "
            f"depthwise (groups != in_channels={op.in_channels}); SCALE-Sim "
            f"supports only depthwise"
        )
    if "DP" in name and not depthwise:
        raise ValueError(
            f"layer {name!r}: name contains 'DP', which SCALE-Sim reads as "
            f"depthwise, but groups={op.groups} != in_channels={op.in_channels}"
        )
    (_, h, w) = network.shape(network.inputs(name)[0])
    (_, p, q) = network.shape(name)
    s = op.stride[0]
    top, _, left, _ = op.padding
    (r, k) = op.kernel
    return ScaleSimLayer(
        name if "DP" in name or not depthwise else f"{name}_DP",
        ifmap_h=_scalesim_size(h + top, r, s, p),
        ifmap_w=_scalesim_size(w + left, k, s, q),
        filter_h=r,
        filter_w=k,
        channels=op.in_channels,
        num_filters=op.out_channels // op.in_channels if depthwise else op.out_channels,
        stride=s,
    )


def _scalesim_size(size: int, kernel: int, stride: int, out: int) -> int:
    """The size closest to ``size`` for which SCALE-Sim places ``out`` windows."""
    return min(max(size, (out - 2) * stride + kernel + 1, kernel), (out - 1) * stride + kernel)


def save_topology(network: Network, path: str | Path) -> None:
    """Write :func:`topology_rows` of ``network`` as a SCALE-Sim conv topology CSV.

    The header is :data:`TOPOLOGY_HEADER` and every row ends with a comma, as in SCALE-Sim's
    sample topologies. Raises as :func:`topology_rows`, and ``ValueError`` if the network
    has no Conv2d or Linear.
    """
    rows = topology_rows(network)
    if not rows:
        raise ValueError(f"network {network.name!r} has no Conv2d or Linear layer to write")
    Path(path).write_text("\n".join([TOPOLOGY_HEADER, *(r.to_csv_row() for r in rows)]) + "\n")


# ---------------------------------------------------------------------------------------
# Config


def load_config(path: str | Path) -> AccelConfig:
    """Read a SCALE-Sim ``.cfg`` of a dataflow our hardware has (:data:`HARDWARE_DATAFLOWS`)
    as an :class:`~accel.config.AccelConfig` of that ``array.dataflow`` (see
    :func:`read_config`); another is an error that says ``--model scalesim`` models it."""
    config, dataflow = read_config(path)
    if dataflow != config.array.dataflow:
        raise ValueError(
            f"{path}: [architecture_presets] Dataflow = {dataflow!r} is not implemented by our "
            f"hardware ({', '.join(HARDWARE_DATAFLOWS)} only); `accel "
            "simulate --model scalesim` runs SCALE-Sim's analytical model of it, and `--model "
            "both` sets it beside our machine"
        )
    return config


def read_config(path: str | Path) -> tuple[AccelConfig, str]:
    """Read a SCALE-Sim ``.cfg``: an :class:`~accel.config.AccelConfig` and SCALE-Sim's
    ``Dataflow`` (``os``, ``ws`` or ``is``, for the analytical model; the config's
    ``array.dataflow`` is the same when our hardware has it, else ``ws``).

    ``name`` is ``[general] run_name``; ``array.rows``/``cols`` are ``ArrayHeight`` /
    ``ArrayWidth``; ``buffers.input_bytes``/``weight_bytes``/``output_bytes`` are
    ``IfmapSramSzkB``/``FilterSramSzkB``/``OfmapSramSzkB`` times 1024; ``buffers.acc_bytes``
    is ``4 * output_bytes`` (SCALE-Sim has no accumulator buffer); ``dram.bandwidth`` is
    ``Bandwidth`` (SCALE-Sim words per cycle, 1-byte int8 words here; the first value of a
    comma-separated list, as SCALE-Sim). Everything else takes the ``edge`` preset's value.
    Keys are case-insensitive and may be written ``Key : value`` or ``Key = value``.

    Raises
    ------
    ValueError
        Naming the file and key: a missing required key or section, a value that is not an
        integer >= 1, ``InterfaceBandwidth`` other than USER/CALC, a ``Dataflow`` other than
        os/ws/is, or a config :class:`AccelConfig` rejects.
    """
    path = Path(path)
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(read_text(path, what="SCALE-Sim config"), source=str(path))
    except configparser.Error as exc:
        raise ValueError(f"{path}: not a valid SCALE-Sim config: {exc}") from None

    def get(section: str, key: str) -> str:
        if not parser.has_option(section, key):
            raise ValueError(f"{path}: missing required key [{section}] {key}")
        return parser.get(section, key).strip()

    def get_int(section: str, key: str, text: str | None = None) -> int:
        text = get(section, key) if text is None else text
        if not _INT.fullmatch(text) or int(text) < 1:
            raise ValueError(f"{path}: [{section}] {key} must be an integer >= 1, got {text!r}")
        return int(text)

    arch = "architecture_presets"
    name = get("general", "run_name")
    if not name:
        raise ValueError(f"{path}: [general] run_name must not be empty")
    dataflow = get(arch, "Dataflow")
    if dataflow not in DATAFLOWS:
        raise ValueError(f"{path}: [{arch}] Dataflow must be one of {DATAFLOWS}, got {dataflow!r}")
    if parser.has_option("run_presets", "InterfaceBandwidth"):
        mode = parser.get("run_presets", "InterfaceBandwidth").strip()
        if mode not in ("USER", "CALC"):
            raise ValueError(
                f"{path}: [run_presets] InterfaceBandwidth must be USER or CALC, got {mode!r}"
            )
    bandwidth = get(arch, "Bandwidth").split(",")[0].strip()
    output_bytes = 1024 * get_int(arch, "OfmapSramSzkB")
    values: dict[str, Any] = {
        "name": name,
        "array": {
            "rows": get_int(arch, "ArrayHeight"),
            "cols": get_int(arch, "ArrayWidth"),
            "dataflow": dataflow if dataflow in HARDWARE_DATAFLOWS else "ws",
        },
        "buffers": {
            "input_bytes": 1024 * get_int(arch, "IfmapSramSzkB"),
            "weight_bytes": 1024 * get_int(arch, "FilterSramSzkB"),
            "output_bytes": output_bytes,
            "acc_bytes": 4 * output_bytes,
        },
        "dram": {"bandwidth": get_int(arch, "Bandwidth", bandwidth)},
    }
    try:
        return AccelConfig.from_dict(values), dataflow
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: {exc}") from None


def save_config(config: AccelConfig, path: str | Path, *, interface: str = "USER") -> None:
    """Write ``config`` as a SCALE-Sim ``.cfg`` (ws dataflow) that :func:`load_config` and
    SCALE-Sim read.

    ``interface`` is SCALE-Sim's ``InterfaceBandwidth``: ``"USER"`` (default) makes SCALE-Sim
    simulate our DRAM bandwidth (``Bandwidth`` and the ifmap/filter SRAM bank bandwidths that
    SCALE-Sim v3 uses in USER mode are all set to ``dram.bandwidth``); ``"CALC"`` gives
    SCALE-Sim's stall-free run, whose Total Cycles :func:`scalesim_cycles` reproduces. Fields
    SCALE-Sim has no place for (``acc_bytes``, ``param_bytes``, ``dram.latency``,
    ``clock_mhz``) are listed in a comment at the top of the file.

    Raises
    ------
    TypeError
        If ``config`` is not an AccelConfig.
    ValueError
        If a buffer size is not a whole number of KiB (naming the field), the name spans
        lines, or ``interface`` is not USER or CALC.
    """
    if not isinstance(config, AccelConfig):
        raise TypeError(f"config must be an AccelConfig, got {config!r}")
    if interface not in ("USER", "CALC"):
        raise ValueError(f"interface must be 'USER' or 'CALC', got {interface!r}")
    if "\n" in config.name or config.name != config.name.strip():
        raise ValueError(f"config name {config.name!r} cannot be a SCALE-Sim run_name")
    kib = {}
    for field in ("input_bytes", "weight_bytes", "output_bytes"):
        value = getattr(config.buffers, field)
        if value % 1024:
            raise ValueError(
                f"buffers.{field} = {value} is not a whole number of KiB, "
                f"which SCALE-Sim's kB sizes need"
            )
        kib[field] = value // 1024
    bw = config.dram.bandwidth
    b = config.buffers
    text = f"""\
# SCALE-Sim config written by accel.frontends.scalesim from AccelConfig {config.name!r}.
# No SCALE-Sim equivalent: buffers.acc_bytes = {b.acc_bytes}, buffers.param_bytes = \
{b.param_bytes}, dram.latency = {config.dram.latency}, clock_mhz = {config.clock_mhz}.
[general]
run_name = {config.name}

[architecture_presets]
ArrayHeight : {config.array.rows}
ArrayWidth : {config.array.cols}
IfmapSramSzkB : {kib["input_bytes"]}
FilterSramSzkB : {kib["weight_bytes"]}
OfmapSramSzkB : {kib["output_bytes"]}
IfmapOffset : 0
FilterOffset : 10000000
OfmapOffset : 20000000
Bandwidth : {bw}
Dataflow : {config.array.dataflow}
MemoryBanks : 1
ReadRequestBuffer : 32
WriteRequestBuffer : 32

[layout]
IfmapCustomLayout : False
IfmapSRAMBankBandwidth : {bw}
IfmapSRAMBankNum : 10
IfmapSRAMBankPort : 2
FilterCustomLayout : False
FilterSRAMBankBandwidth : {bw}
FilterSRAMBankNum : 10
FilterSRAMBankPort : 2

[sparsity]
SparsitySupport : false
SparseRep : ellpack_block
OptimizedMapping : false
BlockSize : 8
RandomNumberGeneratorSeed : 40

[run_presets]
InterfaceBandwidth : {interface}
UseRamulatorTrace : False
"""
    Path(path).write_text(text)


# ---------------------------------------------------------------------------------------
# Analytical compute model


def _check_model_args(layer: Any, rows: Any, cols: Any, dataflow: Any) -> None:
    if not isinstance(layer, ScaleSimLayer):
        raise TypeError(f"layer must be a ScaleSimLayer, got {layer!r}")
    for arg, value in (("rows", rows), ("cols", cols)):
        if isinstance(value, bool) or not isinstance(value, Integral):
            raise TypeError(f"{arg} must be an int, got {value!r}")
        if value < 1:
            raise ValueError(f"{arg} must be >= 1, got {value!r}")
    if dataflow not in DATAFLOWS:
        raise ValueError(f"dataflow must be one of {DATAFLOWS}, got {dataflow!r}")


def _dims(layer: ScaleSimLayer) -> tuple[int, int, int]:
    """(output pixels P*Q, filters K, window R*S*C) of one SCALE-Sim layer; a depthwise
    layer is ``C`` layers of one channel."""
    window = layer.filter_h * layer.filter_w * (1 if layer.depthwise else layer.channels)
    return layer.ofmap_h * layer.ofmap_w, layer.num_filters, window


def _gemm(layer: ScaleSimLayer, dataflow: str) -> tuple[int, int, int]:
    """SCALE-Sim's ``(Sr, Sc, T)``: the operand dimensions mapped on the array rows, on the
    array columns, and streamed in time."""
    pixels, k, window = _dims(layer)
    return {"os": (pixels, k, window), "ws": (window, k, pixels), "is": (window, pixels, k)}[
        dataflow
    ]


def _fold_cycles(dataflow: str, rows: int, cols: int, t: int) -> tuple[int, int]:
    """(demand rows per fold, cycles per fold used for Compute Util) of SCALE-Sim."""
    if dataflow == "os":
        return rows + cols + t - 2, rows + cols + t - 2
    return 2 * rows + cols + t - 2, 2 * rows + 2 * cols + t - 3


def _one_layer_cycles(layer: ScaleSimLayer, rows: int, cols: int, dataflow: str) -> int:
    sr, sc, t = _gemm(layer, dataflow)
    folds = -(-sr // rows) * -(-sc // cols)
    return folds * _fold_cycles(dataflow, rows, cols, t)[0] - 1


def scalesim_cycles(layer: ScaleSimLayer, rows: int, cols: int, dataflow: str = "ws") -> int:
    """SCALE-Sim's "Total Cycles" of ``layer`` on a ``rows x cols`` array, without stalls.

    With ``(Sr, Sc, T)`` = os ``(P*Q, K, R*S*C)``, ws ``(R*S*C, K, P*Q)``, is
    ``(R*S*C, P*Q, K)`` and ``folds = ceil(Sr / rows) * ceil(Sc / cols)``, SCALE-Sim's demand
    matrices have ``folds * L`` lines, ``L = rows + cols + T - 2`` (os) or
    ``2*rows + cols + T - 2`` (ws, is), and its Total Cycles is the last line's cycle index:
    ``folds * L - 1``. A depthwise layer is ``C`` SCALE-Sim layers of one channel; the result
    is their sum, ``C * (folds * L - 1)``. This equals SCALE-Sim's report whenever it has no
    memory stalls (always with ``InterfaceBandwidth: CALC``).

    Raises
    ------
    TypeError
        ``layer`` not a ScaleSimLayer, ``rows``/``cols`` not ints.
    ValueError
        ``rows``/``cols`` < 1, unknown ``dataflow``.
    """
    _check_model_args(layer, rows, cols, dataflow)
    copies = layer.channels if layer.depthwise else 1
    return copies * _one_layer_cycles(layer, rows, cols, dataflow)


def _report_items(layer: ScaleSimLayer, rows: int, cols: int, dataflow: str) -> list[Any]:
    """[Total Cycles, Stall Cycles, Overall Util %, Mapping Efficiency %, Compute Util %] of
    one SCALE-Sim layer, with SCALE-Sim's float expressions and summation order."""
    sr, sc, t = _gemm(layer, dataflow)
    row_folds, col_folds = -(-sr // rows), -(-sc // cols)
    util_cycles = _fold_cycles(dataflow, rows, cols, t)[1]
    mapping, compute = [], []
    for fc in range(col_folds):
        for fr in range(row_folds):
            used = min(rows, sr - fr * rows) * min(cols, sc - fc * cols)
            mapping.append(used / (rows * cols))
            compute.append(used * t / (rows * cols * util_cycles))
    total = _one_layer_cycles(layer, rows, cols, dataflow)
    pixels, k, window = _dims(layer)
    num_compute = pixels * k * window
    return [
        total,
        0,
        (num_compute * 100) / (total * rows * cols),
        sum(mapping) / len(mapping) * 100,
        sum(compute) / len(compute) * 100,
    ]


def compute_report(
    layers: Sequence[ScaleSimLayer], rows: int, cols: int, dataflow: str = "ws"
) -> list[dict[str, Any]]:
    """SCALE-Sim's COMPUTE_REPORT.csv rows for ``layers``, as dicts keyed by
    :data:`COMPUTE_REPORT_COLUMNS`.

    As SCALE-Sim, a depthwise layer gives ``channels`` rows (one per one-channel layer) and
    ``LayerID`` counts rows from 0. ``Total Cycles`` is :func:`scalesim_cycles` of one such
    layer; ``Stall Cycles`` is 0 (no memory model); ``Overall Util %`` is
    ``MACs * 100 / (Total Cycles * rows * cols)``; ``Mapping Efficiency %`` and
    ``Compute Util %`` average over folds ``used_pes / (rows*cols)`` and
    ``used_pes * T / (rows * cols * F)`` with ``F = rows + cols + T - 2`` (os) or
    ``2*rows + 2*cols + T - 3`` (ws, is), summed in SCALE-Sim's fold order so the floats
    match its output digit for digit.
    """
    if isinstance(layers, ScaleSimLayer) or not isinstance(layers, Sequence):
        raise TypeError(f"layers must be a sequence of ScaleSimLayer, got {layers!r}")
    report = []
    for layer in layers:
        _check_model_args(layer, rows, cols, dataflow)
        items = _report_items(layer, rows, cols, dataflow)
        for _ in range(layer.channels if layer.depthwise else 1):
            report.append(dict(zip(COMPUTE_REPORT_COLUMNS, [len(report), *items], strict=True)))
    return report


def write_compute_report(report: Sequence[dict[str, Any]], path: str | Path) -> None:
    """Write ``report`` (from :func:`compute_report`) in SCALE-Sim's COMPUTE_REPORT.csv format:
    ``", "``-separated values, each line ending with ``","``, floats as Python's ``str``.

    Raises
    ------
    ValueError
        If an entry does not have exactly the keys :data:`COMPUTE_REPORT_COLUMNS`.
    """
    lines = [", ".join(COMPUTE_REPORT_COLUMNS) + ","]
    for index, entry in enumerate(report):
        if not isinstance(entry, dict) or tuple(entry) != COMPUTE_REPORT_COLUMNS:
            keys = list(entry) if isinstance(entry, dict) else entry
            raise ValueError(
                f"report entry {index} must have the keys "
                f"{list(COMPUTE_REPORT_COLUMNS)} in order, got {keys!r}"
            )
        lines.append(", ".join(str(entry[c]) for c in COMPUTE_REPORT_COLUMNS) + ",")
    Path(path).write_text("\n".join(lines) + "\n")
