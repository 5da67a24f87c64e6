"""The instruction set of the accelerator (version 2: version 1 and the activation tables).

Four engines each run their own in-order instruction stream: ``LOAD`` (DMA from DRAM into
the input, weight and parameter buffers), ``COMPUTE`` (the systolic array or the vector unit,
accumulating into the accumulator buffer), ``POST`` (bias, requantisation and clamp from the
accumulators into the output buffer) and ``STORE`` (DMA from the output buffer to DRAM).
Engines synchronise only through counting semaphores: an instruction waits until every
semaphore in its ``wait`` mask is non-zero and decrements them when it starts, and increments
every semaphore in its ``signal`` mask when it is done. Each semaphore has one producer engine
and one consumer engine (:data:`SEMAPHORES`).

Every instruction encodes to :data:`INSTRUCTION_BYTES` bytes, little-endian, fields packed
from bit 0 in the order of :data:`FIELDS`. ``docs/isa.md`` documents the fields; the cycle
contract of each instruction is in :mod:`accel.timing`.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import ClassVar

import numpy as np

__all__ = [
    "FIELDS",
    "INSTRUCTION_BYTES",
    "ISA_VERSION",
    "SEMAPHORES",
    "SEMAPHORE_BITS",
    "TABLE_SLOTS",
    "TABLE_WORDS",
    "TABLE_WORD_BYTES",
    "Buffer",
    "Compute",
    "ComputeMode",
    "Engine",
    "Instruction",
    "Load",
    "Post",
    "PostMode",
    "Sem",
    "Store",
    "decode",
    "decode_all",
    "distinct_rows",
    "encode",
    "encode_all",
    "field_max",
]

ISA_VERSION = 2
INSTRUCTION_BYTES = 64
#: Width of a semaphore counter (a layer's stores may run far ahead of the next layer's
#: loads, one token per tile).
SEMAPHORE_BITS = 16


class Engine(IntEnum):
    LOAD = 0
    COMPUTE = 1
    POST = 2
    STORE = 3


class Sem(IntEnum):
    """Semaphores, named producer-to-consumer."""

    L2C = 0  # inputs/weights loaded -> compute may read them
    C2L = 1  # compute finished reading a buffer region -> load may overwrite it
    C2P = 2  # accumulators final -> post may read them
    P2C = 3  # post finished reading accumulators -> compute may overwrite them
    P2S = 4  # outputs written -> store may send them
    S2P = 5  # store finished reading the output buffer -> post may overwrite it
    S2L = 6  # results are in DRAM -> load may read them (layer to layer)
    L2P = 7  # post-processing parameters loaded -> post may read them
    P2L = 8  # post finished with a parameter slot -> load may overwrite it
    L2S = 9  # load finished reading a DRAM region -> store may overwrite it


#: (producer, consumer) of every semaphore.
SEMAPHORES: dict[Sem, tuple[Engine, Engine]] = {
    Sem.L2C: (Engine.LOAD, Engine.COMPUTE),
    Sem.C2L: (Engine.COMPUTE, Engine.LOAD),
    Sem.C2P: (Engine.COMPUTE, Engine.POST),
    Sem.P2C: (Engine.POST, Engine.COMPUTE),
    Sem.P2S: (Engine.POST, Engine.STORE),
    Sem.S2P: (Engine.STORE, Engine.POST),
    Sem.S2L: (Engine.STORE, Engine.LOAD),
    Sem.L2P: (Engine.LOAD, Engine.POST),
    Sem.P2L: (Engine.POST, Engine.LOAD),
    Sem.L2S: (Engine.LOAD, Engine.STORE),
}


class Buffer(IntEnum):
    """Destination buffer of a LOAD."""

    INPUT = 0
    WEIGHT = 1
    PARAM = 2
    TABLE = 3


#: Bytes of a word of the table buffer (a power of two: an entry's word and byte are bits of
#: its index).
TABLE_WORD_BYTES = 16
#: Words of one activation table (256 int8 entries).
TABLE_WORDS = 256 // TABLE_WORD_BYTES
#: Tables the table buffer holds: one for the layer being post-processed, one loading.
TABLE_SLOTS = 2


class ComputeMode(IntEnum):
    """What the compute engine does with the words the window generator reads."""

    ARRAY = 0  # systolic array: acc[pixel][col] (+)= sum_row x[row] * w[row][col]
    VMAX = 1  # vector unit: acc = max(acc, x)
    VSUM = 2  # vector unit: acc += x - zero_point_a
    VADD = 3  # vector unit: acc = scale_a(x_a - za) + scale_b(x_b - zb), gemmlowp style
    # (with ``mul`` set: acc = (x_a - za) * (x_b - zb), the elementwise product)


class PostMode(IntEnum):
    REQUANT = 0  # out = clamp(requantize(acc + bias, multiplier, shift) + zp)
    PASS = 1  # out = clamp(acc)


@dataclass(frozen=True)
class Instruction:
    """Fields common to every instruction."""

    opcode: ClassVar[int]
    engine: ClassVar[Engine]

    wait: int = 0  # bit mask of Sem
    signal: int = 0  # bit mask of Sem
    layer: int = 0  # index of the network layer, for reports and for naming mismatches


@dataclass(frozen=True)
class Load(Instruction):
    """DMA read: ``outer_count`` x ``inner_count`` runs of ``run_bytes`` from DRAM.

    Run (i, j) reads DRAM ``dram_addr + i*outer_stride + j*inner_stride`` and writes the
    ``ceil(run_bytes / word_bytes)`` consecutive words from ``sram_addr + i*sram_outer_stride
    + j*ceil(run_bytes / word_bytes)`` of ``buffer``; bytes past ``run_bytes`` in the last
    word are written as zero.
    """

    opcode: ClassVar[int] = 1
    engine: ClassVar[Engine] = Engine.LOAD

    buffer: int = Buffer.INPUT
    dram_addr: int = 0
    sram_addr: int = 0
    outer_count: int = 1
    outer_stride: int = 0
    sram_outer_stride: int = 0
    inner_count: int = 1
    inner_stride: int = 0
    run_bytes: int = 1


@dataclass(frozen=True)
class Compute(Instruction):
    """Stream an output tile through the array or the vector unit.

    The tile has ``out_h`` x ``out_w`` pixels; pixel (p, q) accumulates into accumulator row
    ``acc_base + p*out_w + q``. The reduction runs over ``ct_count`` channel tiles, then
    kernel rows ``r`` and columns ``s`` (loop order ct, r, s outermost to innermost); each
    (ct, r, s) is one *pass* over all pixels of the tile. In a pass the window generator reads
    input word ``in_base + ct*ct_stride + (p*stride_h + r*dil_h)*tile_w + q*stride_w +
    s*dil_w``, or produces ``pad_value`` in every lane when the image position ``(origin_h +
    p*stride_h + r*dil_h, origin_w + q*stride_w + s*dil_w)`` lies outside ``image_h`` x
    ``image_w``. In ARRAY mode pass k uses the weight tile at weight words ``w_base + k*rows``.
    The first pass overwrites the accumulators unless ``accumulate`` is set.

    ARRAY with ``depthwise`` set is the depthwise mode: array row ``t`` is kernel tap ``(r,
    s) = (t // taps_w, t % taps_w)`` for ``t < taps_h * taps_w`` (at most ``rows``), and
    column ``c`` is channel ``c`` of the word. In every cycle of the pass each row reads a
    word of its own, the word of its tap at the pixel,
    ``addr + r*dil_h*tile_w + s*dil_w`` where ``addr`` is the pass's address above, and PE
    ``(t, c)`` multiplies lane ``c`` of it by its weight, so column ``c`` sums channel ``c``
    over the taps: ``acc[pixel][c] (+)= sum_t x_t[c] * w[t][c]``. A tap outside the image
    produces ``pad_value`` (its position is the pass's plus ``(r*dil_h, s*dil_w)``), rows
    ``t >= taps_h * taps_w`` are fed ``pad_value``. The walk itself is a 1x1 kernel of one
    channel tile: ``ct_count = kernel_h = kernel_w = 1`` (one pass, one weight tile).
    Needs ``rows == cols`` (a word's lanes are the columns' channels).

    VADD with ``mul`` set is the elementwise product (VMUL): ``acc = (x_a - zero_point_a) *
    (x_b - zero_point_b)``, no multipliers, ``accumulate`` must be 0. ``broadcast_b`` (VADD
    only) reads operand b at ``in_base_b`` for every pixel of the tile (a per-channel
    broadcast: one value per channel, the squeeze-and-excitation gate).

    ARRAY with ``is_`` (input-stationary, ``accel.timing``) may stream ``k_tiles = k_extra +
    1`` tiles of ``cols`` output channels: pass ``k`` reads the ``k_tiles * cols`` weight words
    ``w_base + k*k_tiles*cols + n``, word ``n`` holding output channel ``n``'s weights (lane
    ``i`` = reduction lane ``i``), and channel ``n`` of pixel ``x`` accumulates into lane ``n %
    cols`` of row ``acc_base + (n // cols)*k_stride + x``. ``k_stride >= pixels`` when
    ``k_extra > 0`` (the k tiles' rows do not overlap).
    """

    opcode: ClassVar[int] = 2
    engine: ClassVar[Engine] = Engine.COMPUTE

    mode: int = ComputeMode.ARRAY
    accumulate: int = 0
    in_base: int = 0
    in_base_b: int = 0
    ct_count: int = 1
    ct_stride: int = 0
    tile_w: int = 1
    out_h: int = 1
    out_w: int = 1
    origin_h: int = 0
    origin_w: int = 0
    image_h: int = 1
    image_w: int = 1
    stride_h: int = 1
    stride_w: int = 1
    dil_h: int = 1
    dil_w: int = 1
    kernel_h: int = 1
    kernel_w: int = 1
    w_base: int = 0
    acc_base: int = 0
    pad_value: int = 0
    zero_point_a: int = 0
    zero_point_b: int = 0
    multiplier_a: int = 0
    shift_a: int = 0
    multiplier_b: int = 0
    shift_b: int = 0
    mul: int = 0
    broadcast_b: int = 0
    depthwise: int = 0
    taps_h: int = 0
    taps_w: int = 0
    os: int = 0
    is_: int = 0
    k_extra: int = 0
    k_stride: int = 0

    @property
    def k_tiles(self) -> int:
        """Output-channel tiles of ``cols`` channels an input-stationary instruction streams
        past each stationary tile (``k_extra + 1``; every other instruction: 1)."""
        return self.k_extra + 1

    @property
    def passes(self) -> int:
        """Passes over the tile: (ct, r, s) triples, or the two operands of VADD."""
        if self.mode == ComputeMode.VADD:
            return 2
        return self.ct_count * self.kernel_h * self.kernel_w

    def weight_words(self, rows: int) -> int:
        """Weight words an ARRAY instruction reads on an array of ``rows`` rows: ``rows`` per
        pass and k tile."""
        return self.passes * self.k_tiles * rows

    @property
    def taps(self) -> int:
        """Kernel taps of a depthwise instruction (array rows fed a word of their own)."""
        return self.taps_h * self.taps_w if self.depthwise else 0

    @property
    def pixels(self) -> int:
        return self.out_h * self.out_w

    def window_geometry(self) -> tuple:
        """The fields that fix the window walk's addresses relative to ``in_base`` (and
        VADD's operand offset): a hashable key, shared by the tiles of a layer. A depthwise
        instruction's walk, one word per tap for every pixel, is the walk of a ``taps_h`` x
        ``taps_w`` kernel's passes: its key has the taps as the kernel."""
        return (
            self.mode == ComputeMode.VADD,
            self.in_base_b - self.in_base,
            self.ct_count,
            self.ct_stride,
            self.tile_w,
            self.out_h,
            self.out_w,
            self.origin_h,
            self.origin_w,
            self.image_h,
            self.image_w,
            self.stride_h,
            self.stride_w,
            self.dil_h,
            self.dil_w,
            self.taps_h if self.depthwise else self.kernel_h,
            self.taps_w if self.depthwise else self.kernel_w,
            bool(self.broadcast_b) and self.mode == ComputeMode.VADD,
        )


@dataclass(frozen=True)
class Post(Instruction):
    """Post-process ``count`` accumulator rows from ``acc_base`` into output words from
    ``out_base``, with the per-lane parameters of parameter word ``param_base``. With ``lut``
    every lane's clamped int8 value ``v`` is then replaced by entry ``v + 128`` of table slot
    ``table``: byte ``(v + 128) % TABLE_WORD_BYTES`` of table word ``table * TABLE_WORDS +
    (v + 128) // TABLE_WORD_BYTES``. With ``prelu`` (REQUANT), a lane whose ``acc + bias`` is
    negative is requantised with the negative-side multiplier and shift packed in the high
    bits of its ``shift`` parameter (:func:`accel.numerics.pack_prelu_shift`)."""

    opcode: ClassVar[int] = 3
    engine: ClassVar[Engine] = Engine.POST

    mode: int = PostMode.REQUANT
    acc_base: int = 0
    count: int = 1
    param_base: int = 0
    out_base: int = 0
    out_zero_point: int = 0
    act_min: int = -128
    act_max: int = 127
    lut: int = 0
    table: int = 0
    prelu: int = 0


@dataclass(frozen=True)
class Store(Instruction):
    """DMA write: ``outer_count`` x ``inner_count`` runs of ``run_bytes`` DRAM bytes. Run
    (i, j) writes output word ``out_base + i*inner_count + j`` to DRAM from ``dram_addr +
    i*outer_stride + j*inner_stride``: its first ``run_bytes`` bytes (<= one output word)
    when ``lane_stride`` <= 1; with ``lane_stride`` = ``s`` > 1 it *scatters* the word's
    lanes: byte ``q`` of the run is lane ``q / s`` when ``s`` divides ``q``, the bytes
    between are not written (byte strobes), so a run of ``(n - 1)*s + 1`` bytes sends the
    first ``n`` lanes (<= one output word) to every ``s``-th byte: a channel shuffle."""

    opcode: ClassVar[int] = 4
    engine: ClassVar[Engine] = Engine.STORE

    out_base: int = 0
    dram_addr: int = 0
    outer_count: int = 1
    outer_stride: int = 0
    inner_count: int = 1
    inner_stride: int = 0
    run_bytes: int = 1
    lane_stride: int = 0

    @property
    def lanes(self) -> int:
        """Lanes of its output word a run sends."""
        if self.lane_stride <= 1:
            return self.run_bytes
        return -(-self.run_bytes // self.lane_stride)


_HEADER = [("opcode", 4, False), ("wait", 16, False), ("signal", 16, False), ("layer", 16, False)]

#: Bit layout of every instruction: (field, width in bits, signed), from bit 0 upwards.
FIELDS: dict[type[Instruction], list[tuple[str, int, bool]]] = {
    Load: [
        *_HEADER,
        ("buffer", 2, False),
        ("dram_addr", 32, False),
        ("sram_addr", 20, False),
        ("outer_count", 16, False),
        ("outer_stride", 32, False),
        ("sram_outer_stride", 20, False),
        ("inner_count", 16, False),
        ("inner_stride", 32, False),
        ("run_bytes", 16, False),
    ],
    Compute: [
        *_HEADER,
        ("mode", 2, False),
        ("accumulate", 1, False),
        ("in_base", 20, False),
        ("in_base_b", 20, False),
        ("ct_count", 16, False),
        ("ct_stride", 20, False),
        ("tile_w", 16, False),
        ("out_h", 16, False),
        ("out_w", 16, False),
        ("origin_h", 16, True),
        ("origin_w", 16, True),
        ("image_h", 16, False),
        ("image_w", 16, False),
        ("stride_h", 4, False),
        ("stride_w", 4, False),
        ("dil_h", 4, False),
        ("dil_w", 4, False),
        ("kernel_h", 8, False),
        ("kernel_w", 8, False),
        ("w_base", 20, False),
        ("acc_base", 20, False),
        ("pad_value", 8, True),
        ("zero_point_a", 8, True),
        ("zero_point_b", 8, True),
        ("multiplier_a", 32, False),
        ("shift_a", 6, False),
        ("multiplier_b", 32, False),
        ("shift_b", 6, False),
        ("mul", 1, False),  # a program without VMUL encodes as before
        ("broadcast_b", 1, False),
        ("depthwise", 1, False),  # last three: a program without it encodes as before
        ("taps_h", 8, False),
        ("taps_w", 8, False),
        ("os", 1, False),  # output-stationary: a program without it encodes as before
        ("is_", 1, False),  # input-stationary: likewise
        ("k_extra", 8, False),  # input-stationary k tiles after the first: likewise
        ("k_stride", 20, False),
    ],
    Post: [
        *_HEADER,
        ("mode", 1, False),
        ("acc_base", 20, False),
        ("count", 20, False),
        ("param_base", 16, False),
        ("out_base", 20, False),
        ("out_zero_point", 8, True),
        ("act_min", 8, True),
        ("act_max", 8, True),
        ("lut", 1, False),
        ("table", 4, False),
        ("prelu", 1, False),  # last: a program without it encodes as before
    ],
    Store: [
        *_HEADER,
        ("out_base", 20, False),
        ("dram_addr", 32, False),
        ("outer_count", 16, False),
        ("outer_stride", 32, False),
        ("inner_count", 16, False),
        ("inner_stride", 32, False),
        ("run_bytes", 16, False),
        ("lane_stride", 16, False),  # last: a program without it encodes as before
    ],
}

_BY_OPCODE = {cls.opcode: cls for cls in FIELDS}
_OPCODES = {cls: cls.opcode for cls in FIELDS}

for _cls, _fields in FIELDS.items():
    assert sum(width for _, width, _ in _fields) <= 8 * INSTRUCTION_BYTES, _cls


def _layout(cls: type[Instruction]) -> list[tuple[str, int, int, int, int]]:
    """(field, offset, mask, low, high) per field, precomputed for :func:`encode`."""
    out, offset = [], 0
    for name, width, signed in FIELDS[cls]:
        low, high = (
            (-(1 << (width - 1)), (1 << (width - 1)) - 1) if signed else (0, (1 << width) - 1)
        )
        out.append((name, offset, (1 << width) - 1, low, high))
        offset += width
    return out


_LAYOUTS = {cls: _layout(cls) for cls in FIELDS}


def field_max(cls: type[Instruction], name: str) -> int:
    """The largest value field ``name`` of instruction class ``cls`` can hold."""
    for field_name, _, _, _, high in _LAYOUTS[cls]:
        if field_name == name:
            return high
    raise KeyError(f"{cls.__name__} has no field {name!r}")


def encode(instruction: Instruction) -> bytes:
    """The fixed-width binary form. Raises ``ValueError`` naming a field that does not fit."""
    cls = type(instruction)
    if cls not in _LAYOUTS:
        raise TypeError(f"not an instruction: {instruction!r}")
    values = instruction.__dict__
    word = 0
    for name, offset, mask, low, high in _LAYOUTS[cls]:
        value = cls.opcode if name == "opcode" else int(values[name])
        if not low <= value <= high:
            width = mask.bit_length()
            kind = "signed" if low < 0 else "unsigned"
            raise ValueError(
                f"{cls.__name__}.{name} = {value} does not fit its {width}-bit {kind} field"
            )
        word |= (value & mask) << offset
    return word.to_bytes(INSTRUCTION_BYTES, "little")


def decode(data: bytes) -> Instruction:
    """Inverse of :func:`encode`."""
    if len(data) != INSTRUCTION_BYTES:
        raise ValueError(f"an instruction is {INSTRUCTION_BYTES} bytes, not {len(data)}")
    word = int.from_bytes(data, "little")
    opcode = word & 0xF
    if opcode not in _BY_OPCODE:
        raise ValueError(f"unknown opcode {opcode}")
    cls = _BY_OPCODE[opcode]
    values = {}
    offset = 0
    for name, width, signed in FIELDS[cls]:
        value = (word >> offset) & ((1 << width) - 1)
        if signed and value >> (width - 1):
            value -= 1 << width
        if name != "opcode":
            values[name] = value
        offset += width
    return cls(**values)


#: The 512-bit instruction word as 64-bit little-endian lanes: a field (at most 32 bits)
#: lies in one lane or straddles two.
_LANES = INSTRUCTION_BYTES // 8


def encode_all(instructions: Sequence[Instruction]) -> bytes:
    """:func:`encode` of consecutive instructions (a stream), each field of every distinct
    instruction packed at once: the same bytes, tens of times faster than one by one on large
    programs. A field that does not fit raises :func:`encode`'s ``ValueError`` for the first
    such instruction."""
    places: dict[int, tuple[int, Instruction]] = {}  # id -> (place among the distinct, it)
    which = np.fromiter(
        (places.setdefault(id(i), (len(places), i))[0] for i in instructions),
        np.int64,
        len(instructions),
    )
    distinct = [instr for _, instr in places.values()]
    lanes = np.zeros((len(distinct), _LANES), "<u8")
    kinds = np.array([_OPCODES.get(type(i), -1) for i in distinct], np.int64)
    for opcode in np.unique(kinds).tolist():
        rows = np.flatnonzero(kinds == opcode)
        if opcode < 0:
            encode(distinct[rows[0]])  # raises: not an instruction
        layout = _LAYOUTS[_BY_OPCODE[opcode]]
        fields = operator.itemgetter(*(name for name, *_ in layout[1:]))
        try:
            table = np.array([fields(distinct[row].__dict__) for row in rows.tolist()], np.int64)
        except (OverflowError, TypeError, ValueError):  # beyond int64, or not an integer
            _raise_first_misfit(instructions)
            raise
        columns = [np.full(len(rows), opcode, np.int64), *table.reshape(len(rows), -1).T]
        words = np.zeros((len(rows), _LANES), "<u8")
        for value, (_, offset, mask, low, high) in zip(columns, layout, strict=True):
            if value.min() < low or value.max() > high:
                _raise_first_misfit(instructions)
            bits = value.astype(np.uint64) & np.uint64(mask)
            lane, shift = divmod(offset, 64)
            words[:, lane] |= bits << np.uint64(shift)
            if shift + mask.bit_length() > 64:
                words[:, lane + 1] |= bits >> np.uint64(64 - shift)
        lanes[rows] = words
    return lanes[which].tobytes()


def decode_all(data: bytes) -> list[Instruction]:
    """:func:`decode` of consecutive instructions (a program file's stream), each field taken
    from every distinct instruction at once: the same instructions, equal ones one object (as
    the compiler makes them), tens of times faster than one by one."""
    if len(data) % INSTRUCTION_BYTES:
        raise ValueError(
            f"{len(data)} bytes are not a whole number of {INSTRUCTION_BYTES}-byte instructions"
        )
    lanes = np.frombuffer(data, "<u8").reshape(-1, _LANES)
    opcodes = lanes[:, 0] & np.uint64(0xF)
    out = np.empty(len(lanes), dtype=object)
    for opcode in np.unique(opcodes).tolist():
        if opcode not in _BY_OPCODE:
            raise ValueError(f"unknown opcode {opcode}")
        cls = _BY_OPCODE[opcode]
        rows = np.flatnonzero(opcodes == opcode)
        first, which = distinct_rows(lanes[rows])
        if first is None:  # a hash collision: every instruction its own object
            first = which = np.arange(len(rows))
        chosen = lanes[rows[first]]
        names, columns = [], []
        for name, offset, mask, low, _ in _LAYOUTS[cls][1:]:  # the opcode is the class
            lane, shift = divmod(offset, 64)
            bits = chosen[:, lane] >> np.uint64(shift)
            if shift + mask.bit_length() > 64:
                bits |= chosen[:, lane + 1] << np.uint64(64 - shift)
            value = (bits & np.uint64(mask)).astype(np.int64)
            if low < 0:
                value[value > mask >> 1] -= mask + 1
            names.append(name)
            columns.append(value)
        new, set_dict = object.__new__, object.__setattr__
        made = np.empty(len(first), dtype=object)
        for i, values in enumerate(np.column_stack(columns).tolist()):
            made[i] = instr = new(cls)
            set_dict(instr, "__dict__", dict(zip(names, values, strict=True)))
        out[rows] = made[which]
    return out.tolist()


def _raise_first_misfit(instructions: Sequence[Instruction]) -> None:
    """:func:`encode` each in turn: raises for the first field that does not fit."""
    for instr in instructions:
        encode(instr)


def distinct_rows(table: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
    """``(first, which)``: a row of every distinct row of the integer ``table`` and, per row,
    which of them it equals (``table[first][which] == table``); ``(None, None)`` on a hash
    collision. How equal instructions become one object, in the compiler (their fields) and
    in :func:`decode_all` (their encoded lanes)."""
    key = np.zeros(len(table), dtype=np.uint64)
    for column in table.T:
        key *= np.uint64(0x9E3779B97F4A7C15)
        key += column.astype(np.uint64)
    order = np.argsort(key)
    sorted_key = key[order]
    new = np.ones(len(key), dtype=bool)
    np.not_equal(sorted_key[1:], sorted_key[:-1], out=new[1:])
    which = np.empty(len(key), dtype=np.int64)
    which[order] = np.cumsum(new) - 1
    first = order[new]
    if not np.array_equal(table[first][which], table):
        return None, None
    return first, which


def mask(*sems: Sem) -> int:
    """The bit mask of some semaphores."""
    bits = 0
    for sem in sems:
        bits |= 1 << int(sem)
    return bits


_SEMS_OF = [tuple(sem for sem in Sem if bits >> int(sem) & 1) for bits in range(1 << len(Sem))]


def sems_of(bits: int) -> tuple[Sem, ...]:
    """The semaphores of a mask, in order (a table lookup: this is on the model's hot path)."""
    return _SEMS_OF[bits]


def with_fields(instruction: Instruction, **changes) -> Instruction:
    """A copy with some fields changed (cheaper than ``dataclasses.replace``: no __init__)."""
    copy = object.__new__(type(instruction))
    copy.__dict__.update(instruction.__dict__)
    copy.__dict__.update(changes)
    return copy
