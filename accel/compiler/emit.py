"""The emitter: the compiler's state while lowering, and the steps every layer kind shares.

An :class:`Emitter` holds everything lowering changes as it goes, all created in its
``__init__``: the abstract instructions in program order (the blocks of an
:class:`~accel.compiler.ops.OpLog`, one per step of the layer being lowered), the constants
(weights and parameters) appended for DRAM, and the buffer rings. Its methods are what conv
and vector-unit lowering share: input loads, POST + STORE of one result, parameter loads,
and the tiling of a layer (:func:`~accel.compiler.tiling.choose_tiling` with this
configuration's buffers, its errors naming the layer). DRAM addresses come from the
:class:`~accel.compiler.plan.DramPlan`, fixed before lowering starts."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from accel import isa
from accel.compiler.errors import CompileError, layer_error
from accel.compiler.ops import READ, WRITE, Access, Accesses, Block, OpLog
from accel.compiler.plan import CONST_ALIGN, DramPlan
from accel.compiler.tiling import Hardware, Tiling, TilingError, Window, choose_tiling
from accel.config import AccelConfig
from accel.isa import TABLE_SLOTS, TABLE_WORDS, Buffer, Instruction, Load, Post, Store
from accel.program import TensorLayout
from accel.quantized import QuantizedNetwork, TensorQuant
from accel.timing import ceil_div

#: Layers of at least this many units (an output tile and a k tile or channel tile: a POST
#: and a STORE each) are lowered in numpy columns, the others row by row.
VECTOR_MIN = 12


def input_window(
    x: TensorLayout,
    origin: tuple[int, int],
    extent: tuple[int, int],
    slot_base: int,
    step: tuple[int, int] = (1, 1),
) -> tuple[int, int, int, int] | None:
    """Where the loads of an input window of ``extent`` at ``origin`` (coordinates in the
    image subsampled by ``step``, negative in padding) start and how far they go: ``(DRAM
    address of channel 0, input-buffer word of channel tile 0, rows, columns)`` of the part
    inside the image, the window's slot at ``slot_base``; ``None`` when it lies entirely in
    padding."""
    (h0, w0), (ih, iw) = origin, extent
    sub_h, sub_w = ceil_div(x.height, step[0]), ceil_div(x.width, step[1])
    h_lo, h_hi = max(h0, 0), min(h0 + ih, sub_h)
    w_lo, w_hi = max(w0, 0), min(w0 + iw, sub_w)
    if h_lo >= h_hi or w_lo >= w_hi:
        return None
    pixel = h_lo * step[0] * x.width + w_lo * step[1]
    return (
        x.addr + x.channel_offset + pixel * x.pixel_stride,
        slot_base + (h_lo - h0) * iw + (w_lo - w0),
        h_hi - h_lo,
        w_hi - w_lo,
    )


class Ring:
    """Slots of one buffer region, used in turn.

    The counter runs across layers, so a layer's first buffers are the ones the previous
    layer used least recently and its loads can overlap the previous layer's compute. The
    number of slots may change from one layer to the next.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity  # words (rows for the accumulator buffer)
        self.count = 0

    def next(self, slots: int = 2, slot_size: int | None = None) -> int:
        """Base of the next of ``slots`` slots of ``slot_size`` (default: an even split)."""
        size = self.capacity // slots if slot_size is None else slot_size
        base = (self.count % slots) * size
        self.count += 1
        return base


@dataclass(frozen=True)
class Phase:
    """Where a pass's output pixels go in its tensor: pixel ``(i, j)`` of the pass is pixel
    ``(row + i*step[0], col + j*step[1])`` of the tensor. :data:`WHOLE` (every pixel in
    place) for most layers; the phases of a transposed convolution each write every
    ``step``-th pixel (:mod:`~accel.compiler.lower_transpose`). Channel ``k`` of the pass is
    byte ``k * lane_stride`` of the pixel (from the tensor's channel offset): 1 for
    contiguous channels, more for a scatter STORE (a channel shuffle,
    :mod:`~accel.compiler.lower_layout`)."""

    row: int = 0
    col: int = 0
    step: tuple[int, int] = (1, 1)
    lane_stride: int = 1

    def run_bytes(self, lanes: int) -> int:
        """DRAM bytes of a STORE run of ``lanes`` channels."""
        return (lanes - 1) * self.lane_stride + 1

    def pixel(self, y: TensorLayout, p0, q0):
        """The tensor pixel index (``h * width + w``) of pass pixel ``(p0, q0)``."""
        return (self.row + p0 * self.step[0]) * y.width + self.col + q0 * self.step[1]


#: Every output pixel in place.
WHOLE = Phase()


@dataclass(frozen=True)
class Params:
    """One layer's parameter words (bias, multiplier, shift per output channel) in DRAM."""

    addr: int  # DRAM byte address of k tile 0's word
    resident: tuple[int, ...] | None  # parameter-buffer word of every k tile, if resident


class Emitter:
    """Program order, constants and rings of one compilation."""

    def __init__(self, qnet: QuantizedNetwork, config: AccelConfig, plan: DramPlan) -> None:
        self.qnet = qnet
        self.net = qnet.network
        self.config = config
        self.plan = plan
        self.hardware = Hardware.of(config)
        self.rows, self.cols = config.array.rows, config.array.cols
        self.log = OpLog()  # the abstract instructions, in blocks
        self.blocks: dict[tuple, Block] = {}  # the layer's blocks by step (see block())
        self._post_store: tuple | None = None  # post_and_store's blocks for its last layer
        # The constants (weights and parameters) appended so far: (address, uint8 array).
        self.constant_parts: list[tuple[int, np.ndarray]] = []
        self.constants_size = 0  # bytes, each part padded to CONST_ALIGN
        self.layer_index = 0  # stamped on every instruction
        self.in_ring = Ring(config.input_words)  # halves, or the whole buffer
        self.w_ring = Ring(config.weight_words)  # halves
        self.p_ring = Ring(config.param_words)  # halves (resident) or two words (streamed)
        self.acc_ring = Ring(config.acc_rows)  # up to four slots of the layer's tile
        self.out_ring = Ring(config.output_words)  # likewise
        self.tile_pixels = 1  # output tile of the layer being lowered (sizes the rings)
        # The resident parameters' load, emitted before the layer's first POST.
        self.pending_param_load: tuple[Load, int, int] | None = None
        self.layer_params: dict[tuple[int, bytes], int] = {}  # (layer, words) -> address
        self.table_count = 0  # activation tables loaded so far (they alternate slots)
        self.table_slot: int | None = None  # the table slot of the layer's POSTs, if any

    # -- plumbing ------------------------------------------------------------------------------

    def block(
        self,
        key: tuple,
        template: Instruction,
        names: tuple[str, ...],
        aux: tuple[str, ...],
        accesses: Accesses,
    ) -> Block:
        """A new block of this layer's instructions, kept in :attr:`blocks` under ``key``
        (each step looks its block up there first): ``template`` holds the fields they
        share, ``names`` the fields each row gives, then the ``aux`` values of its ranges."""
        template = isa.with_fields(template, layer=self.layer_index)
        block = self.blocks[key] = self.log.block(template, names, aux, accesses)
        return block

    def start_layer(self, index: int) -> None:
        """Stamp ``index`` on the instructions from now on; the blocks so far are sealed
        (their rows become arrays)."""
        for block in self.blocks.values():
            block.seal()
        self.blocks.clear()
        self._post_store = None
        self.table_slot = None
        self.layer_index = index

    def add_constant(self, *pieces: np.ndarray) -> int:
        """Append ``pieces`` (arrays of bytes, in order) to the constants, padded to
        CONST_ALIGN; returns the address of the first byte."""
        addr = self.constants_size
        for piece in pieces:
            piece = piece.reshape(-1).view(np.uint8)
            self.constant_parts.append((self.constants_size, piece))
            self.constants_size += piece.size
        self.constants_size += -self.constants_size % CONST_ALIGN
        return addr

    def constants(self, size: int) -> np.ndarray:
        """The constants as ``size`` bytes (at least :attr:`constants_size`), zero after
        the last."""
        out = np.zeros(max(size, self.constants_size), dtype=np.uint8)
        for addr, piece in self.constant_parts:
            out[addr : addr + piece.size] = piece
        return out

    def fail(self, node: str, message: str) -> CompileError:
        return layer_error(self.net, node, message)

    def quant(self, name: str) -> TensorQuant:
        return self.qnet.tensors[name]

    def choose_tiling(
        self,
        node: str,
        out_hw: tuple[int, int],
        window: Window,
        c_tiles: int,
        k_tiles: int,
        passes: int,
        *,
        streamed_words: int = 0,
        vector: bool = False,
        loaded_c_tiles: int | None = None,
        depthwise: bool = False,
        k_group: int = 1,
    ) -> Tiling:
        """:func:`~accel.compiler.tiling.choose_tiling` on this configuration, for ``node``
        (``depthwise``: in the array's depthwise mode)."""
        try:
            return choose_tiling(
                self.hardware,
                out_hw,
                window,
                c_tiles,
                k_tiles,
                passes,
                streamed_words=streamed_words,
                vector=vector,
                loaded_c_tiles=loaded_c_tiles,
                depthwise=depthwise,
                k_group=k_group,
            )
        except TilingError as err:
            raise self.fail(node, str(err)) from None

    # -- rings ---------------------------------------------------------------------------------

    def next_in_slot(self, slots: int, slot_words: int) -> int:
        """Base word of the next input-buffer slot (a ring of two halves, or the whole)."""
        return self.in_ring.next(slots, slot_words)

    def next_acc_slot(self) -> int:
        """Base row of the next accumulator slot for one tile of the layer."""
        return self.acc_ring.next(self.acc_slots)

    @property
    def tile_pixels(self) -> int:
        """The output tile of the layer being lowered: it sizes the accumulator and output
        slots (:attr:`acc_slots`, :attr:`out_slots`)."""
        return self._tile_pixels

    @tile_pixels.setter
    def tile_pixels(self, pixels: int) -> None:
        self._tile_pixels = pixels
        self.acc_slots = self._tile_slots(self.acc_ring, pixels)
        self.out_slots = self._tile_slots(self.out_ring, pixels)

    def group_acc_slots(self, k_group: int) -> None:
        """Accumulator slots of ``k_group`` tiles each (an input-stationary COMPUTE of
        ``k_group`` k tiles writes them side by side)."""
        self.acc_slots = self._tile_slots(self.acc_ring, self.tile_pixels * k_group)

    @staticmethod
    def _tile_slots(ring: Ring, pixels: int) -> int:
        """Up to four slots of ``pixels`` rows: more than two slots let compute run ahead
        while POST and STORE drain."""
        return max(2, min(4, ring.capacity // max(pixels, 1)))

    # -- steps shared by all layer kinds --------------------------------------------------------

    def load_input_tile(
        self,
        x: TensorLayout,
        origin: tuple[int, int],
        extent: tuple[int, int],
        slot_base: int,
        c_tiles: range,
        lanes: int,
        step: tuple[int, int] = (1, 1),
    ) -> int:
        """Load channel tiles ``c_tiles`` of an input window into planes of the slot at
        ``slot_base`` (each LOAD writes its channel tile's plane: the range synchronisation and
        :mod:`accel.compiler.order` see); returns the channel-tile stride.

        With ``step`` > 1 only every step-th row/column of ``x`` is loaded (coordinates are
        then in the subsampled image): a strided 1x1 convolution reads only what it uses.
        """
        ct_stride = extent[0] * extent[1]
        found = input_window(x, origin, extent, slot_base, step)
        if found is None:
            return ct_stride  # the window lies entirely in padding
        dram, sram, rows, cols = found
        block = self.input_block(x, step)
        iw = extent[1]
        channels = x.channels
        append, index = block.rows.extend, self.log.index
        for i, ct in enumerate(c_tiles):
            c0 = ct * lanes
            run = channels - c0
            run = lanes if lanes < run else run
            fields = (dram + c0, sram + i * ct_stride, rows, iw, cols, run)
            plane = slot_base + i * ct_stride
            append((*fields, plane, plane + ct_stride, index()))
        return ct_stride

    def input_block(self, x: TensorLayout, step: tuple[int, int]) -> Block:
        """Input loads from ``x``: read its whole pixels, write their input-buffer slot."""
        block = self.blocks.get(("input", x.name, step))
        if block is not None:
            return block
        plan = self.plan
        template = Load(
            buffer=Buffer.INPUT,
            outer_stride=step[0] * x.width * x.pixel_stride,
            inner_stride=step[1] * x.pixel_stride,
        )

        def accesses(c: dict[str, np.ndarray]) -> list[Access]:
            space, lo, hi = plan.dram_range(
                x,
                c["dram_addr"],
                c["outer_count"],
                template.outer_stride,
                c["inner_count"],
                template.inner_stride,
                c["run_bytes"],
            )
            return [(space, READ, lo, hi), ("in", WRITE, c["slot_lo"], c["slot_hi"])]

        names = ("dram_addr", "sram_addr", "outer_count", "sram_outer_stride", "inner_count")
        return self.block(
            ("input", x.name, step),
            template,
            (*names, "run_bytes"),
            ("slot_lo", "slot_hi"),
            accesses,
        )

    def post_and_store(
        self,
        acc_base: int,
        param_word: int | None,
        post: Post,
        y: TensorLayout,
        out_tile: tuple[int, int, int, int],
        k0: int,
        lanes: int,
        phase: Phase = WHOLE,
    ) -> int:
        """POST the tile's accumulators at ``acc_base`` into the output ring, then STORE
        channels ``k0 .. k0 + lanes`` of output tile ``out_tile`` of ``y`` (tile
        coordinates in ``phase``); returns the output-buffer word of the POSTed tile."""
        p0, q0, th, tw = out_tile
        if self.pending_param_load is not None:
            load, lo, hi = self.pending_param_load
            block = self.param_block(load, resident=True)
            block.rows.extend((load.dram_addr, load.sram_addr, hi - lo, self.log.index()))
            self.pending_param_load = None
        out_base = self.out_ring.next(self.out_slots)
        steps = self._post_store
        if (
            steps is None
            or steps[0] is not post
            or steps[1] is not y
            or steps[2] != (param_word is None)
            or steps[5] != phase
        ):
            steps = self._post_store = (
                post,
                y,
                param_word is None,
                self.post_block(post, param_word is not None).rows.extend,
                self.store_block(y, phase).rows.extend,
                phase,
            )
        index = self.log.index
        steps[3]((acc_base, th * tw, param_word or 0, out_base, index()))
        run = y.channels - k0
        steps[4](
            (
                out_base,
                y.addr
                + y.channel_offset
                + phase.pixel(y, p0, q0) * y.pixel_stride
                + k0 * phase.lane_stride,
                th,
                tw,
                phase.run_bytes(lanes if lanes < run else run),
                index(),
            )
        )
        return out_base

    def store(
        self,
        out_base: int,
        y: TensorLayout,
        out_tile: tuple[int, int, int, int],
        k0: int,
        lanes: int,
        phase: Phase,
    ) -> None:
        """One more STORE of a tile already POSTed at ``out_base`` (:meth:`post_and_store`),
        into the pixels of another ``phase`` of ``y``: a copy by DMA addressing."""
        p0, q0, th, tw = out_tile
        run = phase.run_bytes(min(lanes, y.channels - k0))
        address = (
            y.addr
            + y.channel_offset
            + phase.pixel(y, p0, q0) * y.pixel_stride
            + k0 * phase.lane_stride
        )
        self.store_block(y, phase).rows.extend((out_base, address, th, tw, run, self.log.index()))

    def post_block(self, post: Post, param: bool) -> Block:
        """POSTs: read accumulator rows (and a parameter word, and the layer's activation
        table when it has one: :meth:`load_table`), write output words."""
        block = self.blocks.get(("post", id(post), not param))
        if block is not None:
            return block
        slot = self.table_slot
        template = post if slot is None else isa.with_fields(post, lut=1, table=slot)

        def accesses(c: dict[str, np.ndarray]) -> list[Access]:
            acc, count, out = c["acc_base"], c["count"], c["out_base"]
            reads = [("acc", READ, acc, acc + count)]
            if param:
                reads.append(("p", READ, c["param_base"], c["param_base"] + 1))
            if slot is not None:
                reads.append(("t", READ, slot * TABLE_WORDS, (slot + 1) * TABLE_WORDS))
            return [*reads, ("out", WRITE, out, out + count)]

        names = ("acc_base", "count", "param_base", "out_base")
        return self.block(("post", id(post), not param), template, names, (), accesses)

    def load_table(self, table: np.ndarray) -> None:
        """Load an activation table (256 int8) into the next table slot, now (ahead of the
        layer's first input: it is one short LOAD), and make it the table every POST of this
        layer applies. Slots alternate, so a layer's table loads while the previous layer's
        POSTs still read theirs."""
        slot = self.table_count % TABLE_SLOTS
        self.table_count += 1
        base = slot * TABLE_WORDS
        load = Load(
            buffer=Buffer.TABLE,
            dram_addr=self.add_constant(table.astype(np.int8)),
            sram_addr=base,
            run_bytes=table.size,
        )
        block = self.block(
            ("table",), load, (), (), lambda c: [("t", WRITE, base, base + TABLE_WORDS)]
        )
        block.rows.append(self.log.index())
        self.table_slot = slot

    def store_block(self, y: TensorLayout, phase: Phase = WHOLE) -> Block:
        """STOREs to ``y`` (to the pixels of ``phase``): read output words, write its whole
        pixels (and wait for the last readers of the dead tensors whose bytes it reuses)."""
        key = ("store", y.name) if phase == WHOLE else ("store", y.name, phase)
        block = self.blocks.get(key)
        if block is not None:
            return block
        plan = self.plan
        template = Store(
            outer_stride=phase.step[0] * y.width * y.pixel_stride,
            inner_stride=phase.step[1] * y.pixel_stride,
            lane_stride=0 if phase.lane_stride == 1 else phase.lane_stride,
        )
        dead = plan.reuses[plan.root.get(y.name, y.name)]

        def accesses(c: dict[str, np.ndarray]) -> list[Access]:
            out, th, tw = c["out_base"], c["outer_count"], c["inner_count"]
            space, lo, hi = plan.dram_range(
                y,
                c["dram_addr"],
                th,
                template.outer_stride,
                tw,
                template.inner_stride,
                c["run_bytes"],
            )
            # Bytes reused from dead tensors: wait until their last readers are done.
            dead_writes = [("dram:" + d, WRITE, 0, 1 << 40) for d in dead]
            return [("out", READ, out, out + th * tw), (space, WRITE, lo, hi), *dead_writes]

        names = ("out_base", "dram_addr", "outer_count", "inner_count", "run_bytes")
        return self.block(key, template, names, (), accesses)

    def post_and_store_columns(
        self,
        post: Post,
        param: bool,
        y: TensorLayout,
        *,
        acc_base: np.ndarray,
        param_base,
        out_base,
        p0: np.ndarray,
        q0: np.ndarray,
        th: np.ndarray,
        tw: np.ndarray,
        k0,
        lanes: int,
        after: np.ndarray,
        phase: Phase = WHOLE,
    ) -> None:
        """:meth:`post_and_store` for many units at once, as columns: per unit, its ``th *
        tw`` accumulator rows into its output words at ``out_base``, then those words to
        ``y``'s pixels from (``p0``, ``q0``), channels ``k0`` to ``k0 + lanes`` (fewer at the
        last tile; coordinates in ``phase``). Each POST comes after instruction ``after``, its
        STORE after the POST."""
        self.post_block(post, param).append_columns(acc_base, th * tw, param_base, out_base, after)
        self.store_block(y, phase).append_columns(
            out_base,
            y.addr + y.channel_offset + phase.pixel(y, p0, q0) * y.pixel_stride + k0,
            th,
            tw,
            np.minimum(lanes, y.channels - k0),
            after + 1,
        )

    def param_block(self, template: Load, *, resident: bool) -> Block:
        """Parameter loads: write ``inner_count`` parameter words (resident), else one."""
        key = ("param", resident)
        block = self.blocks.get(key)
        if block is not None:
            return block

        def accesses(c: dict[str, np.ndarray]) -> list[Access]:
            lo = c["sram_addr"]
            return [("p", WRITE, lo, lo + c["inner_count"] if resident else lo + 1)]

        names = (
            ("dram_addr", "sram_addr", "inner_count") if resident else ("dram_addr", "sram_addr")
        )
        return self.block(key, template, names, (), accesses)

    def load_params(self, params: np.ndarray) -> Params:
        """Place (k_tiles, cols, 3) int32 parameters; resident ones are loaded now.

        Returns the parameter word of every k tile when resident (they fit half the
        parameter buffer), ``None`` words when they stream (then :meth:`param_word` loads
        each before use).
        """
        words = params.shape[0]
        packed = params.astype("<i4")
        # A layer lowered once per image of a batch places its parameters once.
        key = (self.layer_index, packed.tobytes())
        addr = self.layer_params.get(key)
        if addr is None:
            addr = self.layer_params[key] = self.add_constant(packed)
        if words > self.p_ring.capacity // 2:
            return Params(addr, None)
        base = self.p_ring.next(2)
        load = Load(
            buffer=Buffer.PARAM,
            dram_addr=addr,
            sram_addr=base,
            inner_count=words,
            inner_stride=self.config.param_word_bytes,
            run_bytes=self.config.param_word_bytes,
        )
        # Emitted before the layer's first POST (see post_and_store), not ahead of its
        # first input and weights.
        self.pending_param_load = (load, base, base + words)
        return Params(addr, tuple(base + k for k in range(words)))

    def group_param_words(self, params: Params, kts: range) -> list[int]:
        """The parameter words of k tiles ``kts`` (an input-stationary k group, of at most
        half the parameter buffer); streamed ones are loaded now, by one LOAD into the next
        half."""
        if params.resident is not None:
            return [params.resident[kt] for kt in kts]
        base = self.p_ring.next(2)
        size = self.config.param_word_bytes
        template = Load(buffer=Buffer.PARAM, inner_stride=size, run_bytes=size)
        block = self.param_block(template, resident=True)
        block.rows.extend((params.addr + kts.start * size, base, len(kts), self.log.index()))
        return list(range(base, base + len(kts)))

    def param_word(self, params: Params, kt: int) -> int:
        """The parameter word of k tile ``kt``; a streamed one is loaded now, into the next
        of two one-word slots."""
        if params.resident is not None:
            return params.resident[kt]
        ring = self.p_ring  # the next of two one-word slots (Ring.next(2, 1), inline)
        word = ring.count % 2
        ring.count += 1
        size = self.config.param_word_bytes
        block = self.blocks.get(("param", False))
        if block is None:
            block = self.param_block(Load(buffer=Buffer.PARAM, run_bytes=size), resident=False)
        block.rows.extend((params.addr + kt * size, word, self.log.index()))
        return word
