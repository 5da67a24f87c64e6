"""A compiled program: four instruction streams plus the DRAM image they run on.

The compiler (:mod:`accel.compiler`) produces a :class:`Program`; every backend (the cycle
model, the Amaranth simulator, Verilator) runs it on a DRAM image made by
:meth:`Program.make_image` and returns the final DRAM, from which
:meth:`Program.read_outputs` extracts the output tensors.

DRAM holds int8 tensors in NHWC order: element (h, w, c) of a :class:`TensorLayout` is at
byte ``addr + (h * width + w) * pixel_stride + channel_offset + c``. Constants (packed weight
tiles and post-processing parameters) are part of the image the compiler builds.
"""

from __future__ import annotations

import hashlib
import json
import struct
import zlib
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from accel import collector, isa
from accel.config import AccelConfig
from accel.files import read_bytes
from accel.isa import Engine, Instruction

__all__ = ["Im2col", "LayerInfo", "Program", "TensorLayout"]

MAGIC = b"ACCELPRG"
#: Version of the program file layout (the header, then metadata, code and constants).
FORMAT_VERSION = 2
#: magic, format version, ISA version, config digest (16 hex digits), metadata/code/constants
#: lengths, CRC32 of everything after the header; little-endian.
_HEADER = struct.Struct("<8sII16sIQQI")


@dataclass(frozen=True)
class TensorLayout:
    """Where an int8 tensor of shape (channels, height, width) lives in DRAM (NHWC)."""

    name: str
    addr: int
    height: int
    width: int
    channels: int
    pixel_stride: int
    channel_offset: int = 0
    zero_point: int = 0
    scale: float = 1.0

    @property
    def footprint(self) -> tuple[int, int]:
        """[lo, hi) byte range this tensor's elements fall in."""
        lo = self.addr + self.channel_offset
        hi = lo + (self.height * self.width - 1) * self.pixel_stride + self.channels
        return lo, hi

    def scatter(self, dram: np.ndarray, x: np.ndarray) -> None:
        """Write ``x`` (C, H, W) int8 into ``dram``."""
        hwc = np.ascontiguousarray(x.transpose(1, 2, 0))
        view = self._view(dram)
        view[...] = hwc.view(np.uint8)

    def gather(self, dram: np.ndarray) -> np.ndarray:
        """Read the tensor back as (C, H, W) int8."""
        return self._view(dram).view(np.int8).transpose(2, 0, 1).copy()

    def _view(self, dram: np.ndarray) -> np.ndarray:
        start = self.addr + self.channel_offset
        pixels = self.height * self.width
        rows = np.lib.stride_tricks.as_strided(
            dram[start:], shape=(pixels, self.channels), strides=(self.pixel_stride, 1)
        )
        return rows.reshape(self.height, self.width, self.channels)


@dataclass(frozen=True)
class Im2col:
    """A network input that the host also writes as an im2col matrix.

    ``target`` (P, Q, R*S*C in (r, s, c) order) is built from input ``source`` (C, H, W) with
    the given window; padded positions hold the input zero point.
    """

    source: str
    target: TensorLayout
    kernel: tuple[int, int]
    stride: tuple[int, int]
    dilation: tuple[int, int]
    padding: tuple[int, int, int, int]


@dataclass(frozen=True)
class LayerInfo:
    """A network layer as compiled: what it computes and how it was mapped."""

    index: int
    name: str
    kind: str
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    macs: int
    mapping: dict = field(default_factory=dict)


@dataclass
class Program:
    """Instruction streams, DRAM layout and constants for one network on one config."""

    config: AccelConfig
    network: str
    streams: dict[Engine, list[Instruction]]
    layers: list[LayerInfo]
    inputs: dict[str, TensorLayout]
    outputs: dict[str, TensorLayout]
    output_shapes: dict[str, tuple[int, ...]]
    im2col: list[Im2col]
    constants: np.ndarray  # uint8, the DRAM image before inputs are written
    dram_bytes: int
    #: Images of the batch the program runs at once; image ``i``'s copy of every tensor in
    #: :attr:`inputs`, :attr:`outputs` and :attr:`im2col` is ``i * image_stride`` bytes
    #: after image 0's (:meth:`image_layout`).
    batch: int = 1
    image_stride: int = 0

    def image_layout(self, layout: TensorLayout, image: int) -> TensorLayout:
        """Image ``image``'s copy of ``layout`` (one of the program's tensors)."""
        if not 0 <= image < self.batch:
            raise ValueError(f"image {image} of a batch of {self.batch}")
        return replace(layout, addr=layout.addr + image * self.image_stride) if image else layout

    # Image ---------------------------------------------------------------------------------

    @property
    def constants_digest(self) -> str:
        return hashlib.sha256(self.constants.tobytes()).hexdigest()[:16]

    def make_image(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        """The DRAM image with the int8 inputs written in: (C, H, W) or (1, C, H, W) for one
        image, (batch, C, H, W) for a program of a batch."""
        missing = set(self.inputs) - set(inputs)
        if missing:
            raise ValueError(f"missing network inputs: {sorted(missing)}")
        unknown = set(inputs) - set(self.inputs)
        if unknown:
            raise ValueError(
                f"unknown network inputs: {sorted(unknown)} (known: {list(self.inputs)})"
            )
        dram = np.zeros(self.dram_bytes, dtype=np.uint8)
        dram[: self.constants.size] = self.constants
        arrays = {}
        for name, layout in self.inputs.items():
            x = np.asarray(inputs[name])
            if x.ndim == 4:
                if x.shape[0] != self.batch:
                    raise ValueError(
                        f"input {name!r}: batch {x.shape[0]} (the program runs a batch of "
                        f"{self.batch})"
                    )
            elif self.batch == 1:
                x = x[None]
            else:
                raise ValueError(
                    f"input {name!r} has shape {x.shape}, expected ({self.batch}, C, H, W)"
                )
            expected = (layout.channels, layout.height, layout.width)
            if x.shape[1:] != expected:
                raise ValueError(f"input {name!r} has shape {x.shape[1:]}, expected {expected}")
            if x.dtype != np.int8:
                raise TypeError(f"input {name!r} must be int8, not {x.dtype}")
            for image in range(self.batch):
                self.image_layout(layout, image).scatter(dram, x[image])
            arrays[name] = x
        for im in self.im2col:
            source = self.inputs[im.source]
            for image in range(self.batch):
                matrix = im2col_matrix(arrays[im.source][image], im, source)
                self.image_layout(im.target, image).scatter(dram, matrix)
        return dram

    def read_outputs(self, dram: np.ndarray) -> dict[str, np.ndarray]:
        """The output tensors (batch, C, H, W) int8 (or (batch, F) for flat outputs)."""
        return {
            name: np.stack(
                [
                    self.image_layout(layout, image).gather(dram).reshape(shape)
                    for image in range(self.batch)
                ]
            )
            for name, layout in self.outputs.items()
            for shape in [self.output_shapes[name]]
        }

    def validate(self) -> None:
        """Reject instructions the hardware cannot execute (empty transfers, runs wider than
        their words, unknown buffers, an output-stationary COMPUTE on a weight-stationary
        machine, in a vector mode or in the depthwise mode), naming the engine, the index and
        the field."""
        cols = self.config.array.cols
        buffers = set(isa.Buffer)

        def fail(engine: Engine, index: int, message: str) -> ValueError:
            layer = self.streams[engine][index].layer
            return ValueError(f"{engine.name}[{index}] (layer {layer}): {message}")

        kinds = {cls.engine: cls for cls in isa.FIELDS}
        for engine, stream in self.streams.items():
            for index, instr in enumerate(stream):
                if type(instr) is not kinds[engine]:
                    raise fail(
                        engine, index, f"a {type(instr).__name__} in the {engine.name} stream"
                    )
        for engine in (Engine.LOAD, Engine.STORE):
            for index, instr in enumerate(self.streams[engine]):
                if min(instr.outer_count, instr.inner_count, instr.run_bytes) < 1:
                    name = min(
                        ("outer_count", "inner_count", "run_bytes"), key=lambda n: getattr(instr, n)
                    )
                    raise fail(engine, index, f"{name} = {getattr(instr, name)} < 1")
                if engine == Engine.LOAD and instr.buffer not in buffers:
                    raise fail(engine, index, f"buffer = {instr.buffer} is not a LOAD buffer")
                if engine == Engine.STORE and instr.lanes > cols:
                    raise fail(
                        engine,
                        index,
                        f"run_bytes = {instr.run_bytes} sends {instr.lanes} lanes "
                        f"> one output word ({cols})",
                    )
        for index, instr in enumerate(self.streams[Engine.POST]):
            if instr.count < 1:
                raise fail(Engine.POST, index, f"count = {instr.count} < 1")
        for index, instr in enumerate(self.streams[Engine.COMPUTE]):
            if min(instr.out_h, instr.out_w, instr.passes) < 1:
                raise fail(Engine.COMPUTE, index, "empty tile or reduction")
            for bit, dataflow in (("os", "os"), ("is_", "is")):
                if getattr(instr, bit):
                    self._check_dataflow_bit(index, instr, bit, dataflow, fail)
            if instr.k_extra and not instr.is_:
                raise fail(Engine.COMPUTE, index, f"k_extra = {instr.k_extra} needs is_ = 1")
            if instr.k_extra and instr.k_stride < instr.pixels:
                raise fail(
                    Engine.COMPUTE,
                    index,
                    f"k_stride = {instr.k_stride} < {instr.pixels} pixels: the rows of its "
                    f"{instr.k_tiles} k tiles overlap",
                )
            if instr.depthwise:
                rows = self.config.array.rows
                if instr.mode != isa.ComputeMode.ARRAY or rows != cols:
                    raise fail(Engine.COMPUTE, index, "depthwise needs ARRAY mode and rows == cols")
                if instr.passes != 1 or not 1 <= instr.taps <= rows:
                    raise fail(
                        Engine.COMPUTE,
                        index,
                        f"depthwise taps {instr.taps_h}x{instr.taps_w} must be 1..{rows} "
                        "in one pass (ct_count = kernel_h = kernel_w = 1)",
                    )

    def _check_dataflow_bit(
        self, index: int, instr: isa.Compute, bit: str, dataflow: str, fail
    ) -> None:
        """``bit`` (``os`` or ``is_``) = 1 needs a machine of that ``dataflow`` (input-
        stationary: with a square array), ARRAY mode, not the other bit and not
        ``depthwise`` (``accel.timing``, OUTPUT- and INPUT-STATIONARY)."""
        array = self.config.array
        name = {"os": "output-stationary", "is": "input-stationary"}[dataflow]
        problem = None
        if array.dataflow != dataflow:
            problem = f"({name}) on a machine whose array.dataflow = {array.dataflow!r}"
        elif dataflow == "is" and array.rows != array.cols:
            problem = (
                f"needs a square array, not array.rows = {array.rows} x array.cols = {array.cols}"
            )
        elif instr.mode != isa.ComputeMode.ARRAY:
            problem = f"needs ARRAY mode, not mode = {isa.ComputeMode(instr.mode).name}"
        elif instr.os and instr.is_:
            other = "is_" if bit == "os" else "os"
            problem = f"with {other} = 1 (one dataflow per instruction)"
        elif instr.depthwise:
            problem = "with depthwise = 1 (the depthwise mode is weight-stationary)"
        if problem is not None:
            raise fail(Engine.COMPUTE, index, f"{bit} = 1 {problem}")

    # Introspection -------------------------------------------------------------------------

    def with_instructions(self, image: np.ndarray) -> tuple[np.ndarray, dict[Engine, int]]:
        """``image`` with the four instruction streams after it, for a top that fetches them
        from DRAM (``hdl.axi_top.AxiAccelerator``): the streams in :class:`Engine` order, one
        :func:`accel.isa.encode`-d instruction per 64 bytes from the first 64-byte boundary
        at or after ``image.size``. Returns the longer image and each stream's ``<E>_BASE``
        (the index of its first instruction in 64-byte words). The data layout is unchanged:
        the bytes before ``image.size`` are ``image``'s."""
        line = isa.INSTRUCTION_BYTES
        first = -(-image.size // line)
        code = b"".join(isa.encode_all(self.streams[e]) for e in Engine)
        out = np.zeros(first * line + len(code), dtype=np.uint8)
        out[: image.size] = image
        out[first * line :] = np.frombuffer(code, dtype=np.uint8)
        bases, word = {}, first
        for engine in Engine:
            bases[engine] = word
            word += len(self.streams[engine])
        return out, bases

    @property
    def instruction_count(self) -> int:
        return sum(len(s) for s in self.streams.values())

    def listing(self) -> str:
        """A human-readable listing of every stream."""
        lines = [
            f"; program for network {self.network!r} on config {self.config.name!r} "
            f"({self.config.array.rows}x{self.config.array.cols}), ISA v{isa.ISA_VERSION}",
            f"; DRAM {self.dram_bytes} bytes, constants {self.constants.size} bytes",
        ]
        if self.batch > 1:
            lines.append(
                f"; a batch of {self.batch} images, each image's tensors {self.image_stride} "
                "bytes after the previous image's"
            )
        for layer in self.layers:
            lines.append(f"; layer {layer.index} {layer.name} {layer.kind} {layer.mapping}")
        for engine, stream in self.streams.items():
            lines.append(f"\n[{engine.name}] {len(stream)} instructions")
            for i, instr in enumerate(stream):
                fields = ", ".join(
                    f"{k}={v}"
                    for k, v in asdict(instr).items()
                    if k not in ("wait", "signal", "layer")
                )
                sync = ""
                if instr.wait:
                    sync += " wait=" + "|".join(s.name for s in isa.sems_of(instr.wait))
                if instr.signal:
                    sync += " signal=" + "|".join(s.name for s in isa.sems_of(instr.signal))
                lines.append(
                    f"{i:6d} L{instr.layer:<3d} {type(instr).__name__.upper():8s}{sync} {fields}"
                )
        return "\n".join(lines)

    # Serialisation -------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """The program file (``docs/isa.md``, "Program files"): a fixed header (magic, format
        and ISA version, the config digest, the section lengths and a CRC32 of everything
        after the header), then the metadata (JSON), the instructions and the constants."""
        meta = {
            "isa_version": isa.ISA_VERSION,
            "config": self.config.to_dict(),
            "network": self.network,
            "layers": [asdict(layer) for layer in self.layers],
            "inputs": {k: asdict(v) for k, v in self.inputs.items()},
            "outputs": {k: asdict(v) for k, v in self.outputs.items()},
            "output_shapes": self.output_shapes,
            "im2col": [asdict(im) for im in self.im2col],
            "dram_bytes": self.dram_bytes,
            "streams": [len(self.streams[e]) for e in Engine],
        }
        if self.batch > 1:  # absent for one image: its files are as before batches
            meta.update(batch=self.batch, image_stride=self.image_stride)
        meta_bytes = json.dumps(meta).encode()
        body = b"".join(isa.encode_all(self.streams[e]) for e in Engine)
        payload = meta_bytes + body + self.constants.tobytes()
        header = _HEADER.pack(
            MAGIC,
            FORMAT_VERSION,
            isa.ISA_VERSION,
            self.config.digest.encode(),
            len(meta_bytes),
            len(body),
            self.constants.size,
            zlib.crc32(payload),
        )
        return header + payload

    def save(self, path: str | Path) -> None:
        Path(path).write_bytes(self.to_bytes())

    @classmethod
    def from_bytes(cls, data: bytes) -> Program:
        """Read a program file; ``ValueError`` saying what is wrong with it (not a program,
        another format or ISA version, truncated, trailing bytes, corrupt, inconsistent)."""
        if len(data) < len(MAGIC) or data[: len(MAGIC)] != MAGIC:
            raise ValueError("not an accel program (bad magic)")
        if len(data) < _HEADER.size:
            raise ValueError(f"truncated: {len(data)} bytes, shorter than the header")
        _, version, isa_version, digest, meta_len, body_len, const_len, crc = _HEADER.unpack_from(
            data
        )
        if version != FORMAT_VERSION:
            raise ValueError(
                f"program file format {version}, this tool reads format {FORMAT_VERSION} "
                "(compile it again)"
            )
        if isa_version != isa.ISA_VERSION:
            raise ValueError(
                f"program has ISA version {isa_version}, this tool reads {isa.ISA_VERSION}"
            )
        expected = _HEADER.size + meta_len + body_len + const_len
        if len(data) < expected:
            raise ValueError(f"truncated: {len(data)} bytes, the header says {expected}")
        if len(data) > expected:
            raise ValueError(f"{len(data) - expected} unexpected bytes after the program's end")
        payload = memoryview(data)[_HEADER.size :]
        if zlib.crc32(payload) != crc:
            raise ValueError("corrupt: the CRC32 of the contents does not match the header's")
        meta = json.loads(bytes(payload[:meta_len]))
        body = bytes(payload[meta_len : meta_len + body_len])
        constants = np.frombuffer(payload[meta_len + body_len :], dtype=np.uint8).copy()
        counts = meta["streams"]
        if sum(counts) * isa.INSTRUCTION_BYTES != body_len:
            raise ValueError(f"the stream lengths {counts} do not match {body_len} bytes of code")
        streams: dict[Engine, list[Instruction]] = {}
        pos = 0
        with collector.paused():
            for engine, count in zip(Engine, counts, strict=True):
                end = pos + count * isa.INSTRUCTION_BYTES
                streams[engine] = isa.decode_all(body[pos:end])
                pos = end
        config = AccelConfig.from_dict(meta["config"])
        if config.digest.encode() != digest:
            raise ValueError(
                f"the header's config digest {digest.decode(errors='replace')} is not the "
                f"digest {config.digest} of the config it carries"
            )

        def layout(d: dict) -> TensorLayout:
            return TensorLayout(**d)

        return cls(
            config=config,
            network=meta["network"],
            streams=streams,
            layers=[
                LayerInfo(
                    **{**d, "in_shape": tuple(d["in_shape"]), "out_shape": tuple(d["out_shape"])}
                )
                for d in meta["layers"]
            ],
            inputs={k: layout(v) for k, v in meta["inputs"].items()},
            outputs={k: layout(v) for k, v in meta["outputs"].items()},
            output_shapes={k: tuple(v) for k, v in meta["output_shapes"].items()},
            im2col=[
                Im2col(
                    source=d["source"],
                    target=layout(d["target"]),
                    kernel=tuple(d["kernel"]),
                    stride=tuple(d["stride"]),
                    dilation=tuple(d["dilation"]),
                    padding=tuple(d["padding"]),
                )
                for d in meta["im2col"]
            ],
            constants=constants,
            dram_bytes=meta["dram_bytes"],
            batch=meta.get("batch", 1),
            image_stride=meta.get("image_stride", 0),
        )

    @classmethod
    def load(cls, path: str | Path) -> Program:
        """Read a program file; errors name the file."""
        path = Path(path)
        data = read_bytes(path, what="program")
        try:
            return cls.from_bytes(data)
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from None


def im2col_matrix(x: np.ndarray, im: Im2col, source: TensorLayout) -> np.ndarray:
    """(R*S*C, P, Q) int8: the im2col form of ``x`` (C, H, W), padded with its zero point."""
    c, h, w = x.shape
    (r, s), (sh, sw), (dh, dw) = im.kernel, im.stride, im.dilation
    top, bottom, left, right = im.padding
    padded = np.full((c, h + top + bottom, w + left + right), source.zero_point, dtype=np.int8)
    padded[:, top : top + h, left : left + w] = x
    p, q = im.target.height, im.target.width
    taps = [
        padded[:, i * dh : i * dh + (p - 1) * sh + 1 : sh, j * dw : j * dw + (q - 1) * sw + 1 : sw]
        for i in range(r)
        for j in range(s)
    ]
    return np.concatenate(taps, axis=0)  # (r, s, c) order along the first axis
