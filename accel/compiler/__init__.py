"""Map a quantised network onto the accelerator: tiling, buffers, DRAM layout, instructions.

``compile(network, config) -> Program``. The compiler works in three steps:

1. **Lowering.** Every layer becomes a sequence of abstract instructions in one sequential
   *program order* (for each output tile: load the input tile; for each output-channel tile:
   load weights/parameters if they are not resident, compute, post-process, store). Each
   abstract instruction records the buffer word ranges and DRAM byte ranges it reads and
   writes. Convolutions (all kinds, and fully connected layers as convolutions) run on the
   systolic array; pooling and residual adds run on the vector unit (``docs/architecture.md``).
2. **Tiling** (per layer) picks the largest output tile whose input tile, accumulators and
   outputs fit the buffers with double buffering, preferring whole output rows; weights and
   parameters stay resident when they fit, otherwise they stream through a two-slot ring.
   Everything fits by construction: a layer that cannot be placed is rejected, naming the
   layer and the buffer it exceeds.
3. **Synchronisation.** Engines run their streams in order and concurrently; for every
   instruction the compiler finds the latest instruction of every other engine it conflicts
   with (read-after-write, write-after-read, write-after-write on the same buffer words or
   DRAM bytes) and turns that into one semaphore wait/signal pair. The parallel execution is
   therefore equivalent to the sequential program order, and free of deadlock.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from accel import graph as g
from accel import isa, numerics, timing
from accel.compiler.errors import CompileError, layer_error
from accel.compiler.ops import Op
from accel.compiler.plan import CONST_ALIGN, DramPlan, chw, plan_dram
from accel.compiler.sync import synchronise
from accel.compiler.tiling import Hardware, Tiling, TilingError, Window, choose_tiling, split
from accel.config import AccelConfig
from accel.isa import Buffer, Compute, ComputeMode, Instruction, Load, Post, PostMode, Store
from accel.program import LayerInfo, Program, TensorLayout
from accel.quantized import AddQuant, ConvQuant, PoolQuant, QuantizedNetwork, TensorQuant

__all__ = ["CompileError", "compile"]

ceil_div = timing.ceil_div


# ---------------------------------------------------------------------------------------------
# The compiler
# ---------------------------------------------------------------------------------------------


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


class _Compiler:
    def __init__(
        self,
        qnet: QuantizedNetwork,
        config: AccelConfig,
        plan: DramPlan,
        *,
        keep_tensors: bool = False,
    ) -> None:
        self.keep_tensors = keep_tensors
        self.qnet = qnet
        self.plan = plan
        self.net = qnet.network
        self.config = config
        rows, cols = config.array.rows, config.array.cols
        self.rows, self.cols = rows, cols
        self.vlanes = config.vector_lanes
        self.in_words = config.input_words
        self.w_words = config.weight_words
        self.p_words = config.param_words
        self.acc_rows = config.acc_rows
        self.out_words = config.output_words
        self.ops: list[Op] = []
        self.constants = bytearray()
        self.layers: list[LayerInfo] = []
        self.layer_index = 0
        self.in_ring = Ring(self.in_words)  # halves, or the whole buffer
        self.w_ring = Ring(self.w_words)  # halves
        self.p_ring = Ring(self.p_words)  # halves (resident) or two words (streamed)
        self.acc_ring = Ring(self.acc_rows)  # up to four slots of the layer's tile
        self.out_ring = Ring(self.out_words)  # likewise
        self.param_addr = 0  # DRAM address of the layer's parameters
        self.pending_param_load: tuple[Load, int, int] | None = None
        self.tile_pixels = 1  # output tile of the layer being lowered (sizes the rings)

    # -- plumbing ------------------------------------------------------------------------------

    def emit(self, instr: Instruction, reads=(), writes=()) -> None:
        instr = isa.with_fields(instr, layer=self.layer_index)
        self.ops.append(Op(instr, list(reads), list(writes)))

    def add_constant(self, data: bytes) -> int:
        addr = len(self.constants)
        self.constants += data
        self.constants += bytes(-len(self.constants) % CONST_ALIGN)
        return addr

    def fail(self, node: str, message: str) -> CompileError:
        return layer_error(self.net, node, message)

    def quant(self, name: str) -> TensorQuant:
        return self.qnet.tensors[name]

    # -- tiling ----------------------------------------------------------------------------------

    def choose_tiling(
        self,
        node: str,
        out_hw: tuple[int, int],
        window: Window,
        c_tiles: int,
        k_tiles: int,
        passes: int,
        streamed_words: int = 0,
        vector: bool = False,
    ) -> Tiling:
        """:func:`accel.compiler.tiling.choose_tiling` on this configuration, for ``node``."""
        try:
            return choose_tiling(
                Hardware.of(self.config),
                out_hw,
                window,
                c_tiles,
                k_tiles,
                passes,
                streamed_words=streamed_words,
                vector=vector,
            )
        except TilingError as err:
            raise self.fail(node, str(err)) from None

    # -- loads shared by all layer kinds --------------------------------------------------------

    def load_input_tile(
        self,
        x: TensorLayout,
        window: Window,
        origin: tuple[int, int],
        extent: tuple[int, int],
        slot_base: int,
        c_tiles: range,
        lanes: int,
        slot_range: tuple[int, int],
        step: tuple[int, int] = (1, 1),
    ) -> int:
        """Load channel tiles ``c_tiles`` of an input window; returns the channel-tile stride.

        With ``step`` > 1 only every step-th row/column of ``x`` is loaded (coordinates are
        then in the subsampled image): a strided 1x1 convolution reads only what it uses.
        """
        (h0, w0), (ih, iw) = origin, extent
        sub_h, sub_w = ceil_div(x.height, step[0]), ceil_div(x.width, step[1])
        ct_stride = ih * iw
        h_lo, h_hi = max(h0, 0), min(h0 + ih, sub_h)
        w_lo, w_hi = max(w0, 0), min(w0 + iw, sub_w)
        if h_lo >= h_hi or w_lo >= w_hi:
            return ct_stride  # the window lies entirely in padding
        for i, ct in enumerate(c_tiles):
            c0 = ct * lanes
            pixel = h_lo * step[0] * x.width + w_lo * step[1]
            load = Load(
                buffer=Buffer.INPUT,
                dram_addr=x.addr + x.channel_offset + pixel * x.pixel_stride + c0,
                sram_addr=slot_base + i * ct_stride + (h_lo - h0) * iw + (w_lo - w0),
                outer_count=h_hi - h_lo,
                outer_stride=step[0] * x.width * x.pixel_stride,
                sram_outer_stride=iw,
                inner_count=w_hi - w_lo,
                inner_stride=step[1] * x.pixel_stride,
                run_bytes=min(lanes, x.channels - c0),
            )
            self.emit(load, reads=[self.plan.dram_reads(x, load)], writes=[("in", *slot_range)])
        return ct_stride

    def next_in_slot(self, slots: int, slot_words: int) -> int:
        """Base word of the next input-buffer slot (a ring of two halves, or the whole)."""
        return self.in_ring.next(slots, slot_words)

    def next_acc_slot(self, rows_needed: int) -> tuple[int, tuple[int, int]]:
        base = self.acc_ring.next(self._tile_slots(self.acc_ring))
        return base, (base, base + rows_needed)

    def next_out_slot(self, words: int) -> tuple[int, tuple[int, int]]:
        base = self.out_ring.next(self._tile_slots(self.out_ring))
        return base, (base, base + words)

    def _tile_slots(self, ring: Ring) -> int:
        """Up to four slots of the layer's tile size: more than two slots let compute run
        ahead while POST and STORE drain."""
        return max(2, min(4, ring.capacity // max(self.tile_pixels, 1)))

    def post_and_store(
        self,
        acc: tuple[int, tuple[int, int]],
        param_word: int | None,
        post: Post,
        y: TensorLayout,
        out_tile: tuple[int, int, int, int],
        k0: int,
        lanes: int,
    ) -> None:
        p0, q0, th, tw = out_tile
        count = th * tw
        if self.pending_param_load is not None:
            load, lo, hi = self.pending_param_load
            self.emit(load, writes=[("p", lo, hi)])
            self.pending_param_load = None
        out_base, out_range = self.next_out_slot(count)
        acc_base, acc_range = acc
        reads = [("acc", *acc_range)]
        if param_word is not None:
            reads.append(("p", param_word, param_word + 1))
        self.emit(
            replace(
                post, acc_base=acc_base, count=count, out_base=out_base, param_base=param_word or 0
            ),
            reads=reads,
            writes=[("out", *out_range)],
        )
        store = Store(
            out_base=out_base,
            dram_addr=y.addr + y.channel_offset + (p0 * y.width + q0) * y.pixel_stride + k0,
            outer_count=th,
            outer_stride=y.width * y.pixel_stride,
            inner_count=tw,
            inner_stride=y.pixel_stride,
            run_bytes=min(lanes, y.channels - k0),
        )
        self.emit(store, reads=[("out", *out_range)], writes=self.plan.dram_writes(y, store))

    def load_params(self, node: str, params: np.ndarray) -> list[int] | None:
        """Place (k_tiles, cols, 3) int32 parameters; resident ones are loaded now.

        Returns the parameter word of every k tile when resident, ``None`` when they stream
        (then :meth:`stream_param` loads each before use).
        """
        words = params.shape[0]
        addr = self.add_constant(params.astype("<i4").tobytes())
        self.param_addr = addr
        half = self.p_words // 2
        if words <= half:
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
            return [base + k for k in range(words)]
        return None

    def stream_param(self, kt: int) -> int:
        word = self.p_ring.next(2, 1)
        size = self.config.param_word_bytes
        load = Load(
            buffer=Buffer.PARAM,
            dram_addr=self.param_addr + kt * size,
            sram_addr=word,
            run_bytes=size,
        )
        self.emit(load, writes=[("p", word, word + 1)])
        return word

    # -- convolution on the array ----------------------------------------------------------------

    def lower_conv(
        self,
        node: str,
        x: TensorLayout,
        y: TensorLayout,
        weight: np.ndarray,
        window: Window,
        groups: int,
        cq: ConvQuant,
        step: tuple[int, int] = (1, 1),
    ) -> dict:
        rows, cols = self.rows, self.cols
        k, cg, r, s = weight.shape
        c = cg * groups
        kg = k // groups
        if c != x.channels:
            raise self.fail(node, f"weight has {c} input channels, input tensor {x.channels}")
        for attr, value, limit in [
            ("stride", max(window.stride), isa.field_max(Compute, "stride_h")),
            ("dilation", max(window.dilation), isa.field_max(Compute, "dil_h")),
            ("kernel", max(window.kernel), isa.field_max(Compute, "kernel_h")),
        ]:
            if value > limit:
                raise self.fail(node, f"{attr} {value} exceeds the hardware limit {limit}")
        if 128 * 128 * cg * r * s >= 2**31:
            raise self.fail(node, f"reduction C/groups*R*S = {cg * r * s} may overflow int32")
        n_ct, n_kt = ceil_div(c, rows), ceil_div(k, cols)

        # Dense weights with zeros across groups, tiled (kt, ct, r, s, rows, cols).
        dense = np.zeros((n_kt * cols, n_ct * rows, r, s), dtype=np.int8)
        for grp in range(groups):
            dense[grp * kg : (grp + 1) * kg, grp * cg : (grp + 1) * cg] = weight[
                grp * kg : (grp + 1) * kg
            ]
        tiles = dense.reshape(n_kt, cols, n_ct, rows, r, s).transpose(0, 2, 4, 5, 3, 1)
        ct_ranges = []
        for kt in range(n_kt):
            k_lo, k_hi = kt * cols, min(k, (kt + 1) * cols)
            c_lo = (k_lo // kg) * cg
            c_hi = ((k_hi - 1) // kg + 1) * cg
            ct_ranges.append((c_lo // rows, ceil_div(c_hi, rows)))

        # Weights in DRAM in consumption order: kt, ct, r, s.
        blobs = [np.ascontiguousarray(tiles[kt, lo:hi]) for kt, (lo, hi) in enumerate(ct_ranges)]
        w_addr = self.add_constant(b"".join(b.tobytes() for b in blobs))
        tile_words = rows
        kt_words = [(hi - lo) * r * s * tile_words for lo, hi in ct_ranges]
        kt_offsets = np.concatenate([[0], np.cumsum(kt_words)]).astype(int)
        total_words = int(kt_offsets[-1])
        half = self.w_words // 2
        if total_words <= half:
            resident_base = self.w_ring.next(2)
        elif total_words <= self.w_words:
            resident_base = 0
        else:
            resident_base = None
        resident_loaded: set[int] = set()

        def load_resident(kt: int) -> None:
            """Resident weights load per k tile at first use, so compute starts as soon as
            the first k tile is in (the DMA pipelines consecutive loads)."""
            if kt in resident_loaded:
                return
            resident_loaded.add(kt)
            base = resident_base + int(kt_offsets[kt])
            load = Load(
                buffer=Buffer.WEIGHT,
                dram_addr=w_addr + int(kt_offsets[kt]) * cols,
                sram_addr=base,
                inner_count=kt_words[kt],
                inner_stride=cols,
                run_bytes=cols,
            )
            self.emit(load, writes=[("w", base, base + kt_words[kt])])

        # Reduction chunks (weights streamed): whole channel tiles, or kernel rows of one.
        if resident_base is None:
            if r * s * tile_words <= half:
                per_chunk = max(1, half // (r * s * tile_words))
                # Even chunks: an odd small chunk would compute faster than the next one loads.
                widest = max(hi - lo for lo, hi in ct_ranges)
                per_chunk = ceil_div(widest, ceil_div(widest, per_chunk))
                row_chunk = r
            elif s * tile_words <= half:
                per_chunk = 1
                row_chunk = half // (s * tile_words)
            else:
                raise self.fail(
                    node,
                    f"one kernel row of weight tiles ({s * tile_words * cols} bytes) exceeds half "
                    f"of buffers.weight_bytes = {self.config.buffers.weight_bytes}",
                )
        else:
            per_chunk, row_chunk = n_ct, r

        # Parameters: folded bias, multiplier, shift per output channel.
        bias = numerics.fold_zero_point_into_bias(weight, cq.bias, x.zero_point)
        params = np.zeros((n_kt * cols, 3), dtype=np.int64)
        params[:, 1] = 2**30  # lanes past K: any valid multiplier, never stored
        params[:k, 0] = bias
        params[:k, 1] = cq.multiplier
        params[:k, 2] = cq.shift
        param_words = self.load_params(node, params.reshape(n_kt, cols, 3))

        passes = sum(hi - lo for lo, hi in ct_ranges) * r * s // n_kt
        streamed = 0 if resident_base is not None else total_words
        tiling = self.choose_tiling(
            node, (y.height, y.width), window, n_ct, n_kt, passes, streamed_words=streamed
        )
        if tiling.channel_chunk < n_ct and groups != 1:
            # Grouped: each k tile reads only its groups' channel tiles; load those per k tile.
            widest = max(hi - lo for lo, hi in ct_ranges)
            tiling = self.choose_tiling(
                node, (y.height, y.width), window, widest, n_kt, passes, streamed_words=streamed
            )
            tiling = replace(tiling, channel_chunk=min(tiling.channel_chunk, widest))
            if tiling.channel_chunk < widest:
                raise self.fail(
                    node,
                    "the channel tiles of one group's input window do not fit half of "
                    f"buffers.input_bytes = {self.config.buffers.input_bytes}",
                )
        self.tile_pixels = tiling.tile_h * tiling.tile_w
        post = Post(
            mode=PostMode.REQUANT,
            out_zero_point=y.zero_point,
            act_min=cq.act_min,
            act_max=cq.act_max,
        )
        out_tiles = [
            (p0, q0, th, tw)
            for p0, th in split(y.height, tiling.tile_h)
            for q0, tw in split(y.width, tiling.tile_w)
        ]
        (sh, sw), (dh, _) = window.stride, window.dilation
        top, _, left, _ = window.padding

        def compute_passes(
            kt, ct_lo, ct_hi, ct_base, in_range, ct_stride, iw, origin, tile, acc_base, first
        ):
            """COMPUTE instructions for channel tiles [ct_lo, ct_hi) of one k tile."""
            th, tw = tile[2], tile[3]
            emitted = 0
            for ct0 in range(ct_lo, ct_hi, per_chunk):
                ct1 = min(ct_hi, ct0 + per_chunk)
                for r0 in range(0, r, row_chunk):
                    r1 = min(r, r0 + row_chunk)
                    words = (ct1 - ct0) * (r1 - r0) * s * tile_words
                    offset = (
                        int(kt_offsets[kt])
                        + ((ct0 - ct_ranges[kt][0]) * r * s + r0 * s) * tile_words
                    )
                    if resident_base is not None:
                        load_resident(kt)
                        w_base = resident_base + offset
                    else:
                        w_base = self.w_ring.next(2)
                        # Rows r0..r1 of every channel tile in the chunk; contiguous when the
                        # chunk holds whole kernels (row_chunk == r) or one channel tile.
                        load = Load(
                            buffer=Buffer.WEIGHT,
                            dram_addr=w_addr + offset * cols,
                            sram_addr=w_base,
                            inner_count=words,
                            inner_stride=cols,
                            run_bytes=cols,
                        )
                        self.emit(load, writes=[("w", w_base, w_base + words)])
                    compute = Compute(
                        mode=ComputeMode.ARRAY,
                        accumulate=int(not (first and emitted == 0)),
                        in_base=in_range[0] + (ct0 - ct_base) * ct_stride + r0 * dh * iw,
                        ct_count=ct1 - ct0,
                        ct_stride=ct_stride,
                        tile_w=iw,
                        out_h=th,
                        out_w=tw,
                        origin_h=origin[0] + r0 * dh,
                        origin_w=origin[1],
                        image_h=ceil_div(x.height, step[0]),
                        image_w=ceil_div(x.width, step[1]),
                        stride_h=sh,
                        stride_w=sw,
                        dil_h=window.dilation[0],
                        dil_w=window.dilation[1],
                        kernel_h=r1 - r0,
                        kernel_w=s,
                        w_base=w_base,
                        acc_base=acc_base,
                        pad_value=x.zero_point,
                    )
                    self.emit(
                        compute,
                        reads=[("in", *in_range), ("w", w_base, w_base + words)],
                        writes=[("acc", acc_base, acc_base + th * tw)],
                    )
                    emitted += 1

        for tile in out_tiles:
            p0, q0, th, tw = tile
            ih, iw = window.input_extent(th, tw)
            origin = (p0 * sh - top, q0 * sw - left)
            if tiling.channel_chunk >= n_ct:
                slot_base = self.next_in_slot(tiling.in_slots, tiling.in_slot_words)
                in_range = (slot_base, slot_base + n_ct * ih * iw)
                ct_stride = self.load_input_tile(
                    x, window, origin, (ih, iw), slot_base, range(n_ct), rows, in_range, step
                )
                for kt in range(n_kt):
                    acc = self.next_acc_slot(th * tw)
                    lo, hi = ct_ranges[kt]
                    compute_passes(
                        kt, lo, hi, 0, in_range, ct_stride, iw, origin, tile, acc[0], True
                    )
                    pw = param_words[kt] if param_words else self.stream_param(kt)
                    self.post_and_store(acc, pw, post, y, tile, kt * cols, cols)
            else:
                for kt in range(n_kt):
                    acc = self.next_acc_slot(th * tw)
                    lo, hi = ct_ranges[kt]
                    for chunk_lo in range(lo, hi, tiling.channel_chunk):
                        chunk = range(chunk_lo, min(hi, chunk_lo + tiling.channel_chunk))
                        slot_base = self.next_in_slot(tiling.in_slots, tiling.in_slot_words)
                        in_range = (slot_base, slot_base + len(chunk) * ih * iw)
                        ct_stride = self.load_input_tile(
                            x, window, origin, (ih, iw), slot_base, chunk, rows, in_range, step
                        )
                        compute_passes(
                            kt,
                            chunk.start,
                            chunk.stop,
                            chunk_lo,
                            in_range,
                            ct_stride,
                            iw,
                            origin,
                            tile,
                            acc[0],
                            chunk_lo == lo,
                        )
                    pw = param_words[kt] if param_words else self.stream_param(kt)
                    self.post_and_store(acc, pw, post, y, tile, kt * cols, cols)
        return {
            "unit": "array",
            "tile": [tiling.tile_h, tiling.tile_w],
            "tiles": len(out_tiles),
            "k_tiles": n_kt,
            "c_tiles": n_ct,
            "weights": "resident" if resident_base is not None else "streamed",
            "channel_chunk": min(tiling.channel_chunk, n_ct),
        }

    # -- vector unit: pooling and residual add ---------------------------------------------------

    def lower_vector(
        self,
        node: str,
        sources: list[TensorLayout],
        y: TensorLayout,
        window: Window,
        mode: ComputeMode,
        post: Post,
        params: np.ndarray | None,
        extra: dict,
    ) -> dict:
        lanes = self.vlanes
        x = sources[0]
        n_ct = ceil_div(x.channels, lanes)
        param_word = None
        if params is not None:
            words = self.load_params(node, np.broadcast_to(params, (1, self.cols, 3)).copy())
            param_word = words[0] if words else None
        operands = len(sources)
        # Channel tiles are independent here: pick the largest spatial tile for one channel
        # tile of every operand, then hold as many channel tiles as the slot has room for.
        taps = 2 if mode == ComputeMode.VADD else window.kernel[0] * window.kernel[1]
        tiling = self.choose_tiling(
            node, (y.height, y.width), window, operands, n_ct, taps, vector=True
        )
        if tiling.channel_chunk < operands:
            raise self.fail(node, "input window does not fit buffers.input_bytes")
        self.tile_pixels = tiling.tile_h * tiling.tile_w
        (sh, sw) = window.stride
        top, _, left, _ = window.padding
        out_tiles = [
            (p0, q0, th, tw)
            for p0, th in split(y.height, tiling.tile_h)
            for q0, tw in split(y.width, tiling.tile_w)
        ]
        ih_max, iw_max = window.input_extent(tiling.tile_h, tiling.tile_w)
        chunk = min(n_ct, tiling.in_slot_words // (operands * ih_max * iw_max))
        in_slots = 2 if len(out_tiles) * ceil_div(n_ct, chunk) > 1 else 1
        slot_words = self.in_words // in_slots
        chunk = min(n_ct, slot_words // (operands * ih_max * iw_max))
        for tile in out_tiles:
            p0, q0, th, tw = tile
            ih, iw = window.input_extent(th, tw)
            origin = (p0 * sh - top, q0 * sw - left)
            for ct_lo in range(0, n_ct, chunk):
                cts = range(ct_lo, min(n_ct, ct_lo + chunk))
                slot_base = self.next_in_slot(in_slots, slot_words)
                per_operand = len(cts) * ih * iw
                in_range = (slot_base, slot_base + operands * per_operand)
                bases = []
                for i, src in enumerate(sources):
                    base = slot_base + i * per_operand
                    ct_stride = self.load_input_tile(
                        src, window, origin, (ih, iw), base, cts, lanes, in_range
                    )
                    bases.append(base)
                for i, ct in enumerate(cts):
                    acc = self.next_acc_slot(th * tw)
                    compute = Compute(
                        mode=mode,
                        in_base=bases[0] + i * ct_stride,
                        in_base_b=(bases[1] if operands > 1 else 0) + i * ct_stride,
                        ct_count=1,
                        ct_stride=ct_stride,
                        tile_w=iw,
                        out_h=th,
                        out_w=tw,
                        origin_h=origin[0],
                        origin_w=origin[1],
                        image_h=x.height,
                        image_w=x.width,
                        stride_h=sh,
                        stride_w=sw,
                        dil_h=window.dilation[0],
                        dil_w=window.dilation[1],
                        kernel_h=window.kernel[0],
                        kernel_w=window.kernel[1],
                        acc_base=acc[0],
                        **extra,
                    )
                    self.emit(
                        compute,
                        reads=[("in", *in_range)],
                        writes=[("acc", acc[1][0], acc[1][1])],
                    )
                    pw = param_word
                    if params is not None and pw is None:
                        pw = self.stream_param(0)
                    self.post_and_store(acc, pw, post, y, tile, ct * lanes, lanes)
        return {
            "unit": "vector",
            "mode": mode.name,
            "tile": [tiling.tile_h, tiling.tile_w],
            "tiles": len(out_tiles),
            "c_tiles": n_ct,
        }

    # -- per-layer dispatch -----------------------------------------------------------------------

    def lower_layer(self, node: str) -> dict:
        net = self.net
        op = net.op(node)
        y = self.plan.layout(node)
        srcs = net.inputs(node)
        if isinstance(op, g.Conv2d):
            x = self.plan.layout(srcs[0])
            cq = self.layer_quant(node, ConvQuant)
            window = Window(op.kernel, op.stride, op.dilation, op.padding)
            im = self.plan.im2col.get(node)
            if im is not None:
                w = cq.weight.transpose(0, 2, 3, 1).reshape(op.out_channels, -1, 1, 1)
                mapping = self.lower_conv(node, im.target, y, w, Window(), 1, cq)
                mapping["unit"] = "array (host im2col)"
                return mapping
            (sh, sw), (top, _, left, _) = op.stride, op.padding
            if op.kernel == (1, 1) and op.stride != (1, 1) and top % sh == 0 and left % sw == 0:
                # Strided 1x1 (ResNet downsample): load only the pixels it reads.
                sub = Window(padding=(top // sh, 0, left // sw, 0))
                mapping = self.lower_conv(node, x, y, cq.weight, sub, op.groups, cq, step=op.stride)
                mapping["input"] = f"subsampled by {op.stride[0]}x{op.stride[1]} on load"
                return mapping
            return self.lower_conv(node, x, y, cq.weight, window, op.groups, cq)
        if isinstance(op, g.Linear):
            cq = self.layer_quant(node, ConvQuant)
            src = srcs[0]
            if isinstance(net.op(src), g.Flatten):
                src = net.inputs(src)[0]
            c, h, w = chw(self.net, src)
            weight = cq.weight.reshape(op.out_features, c, h, w)
            return self.lower_conv(node, self.plan.layout(src), y, weight, Window((h, w)), 1, cq)
        if isinstance(op, g.MaxPool2d | g.AvgPool2d | g.GlobalAvgPool):
            x = self.plan.layout(srcs[0])
            if isinstance(op, g.GlobalAvgPool):
                window = Window((x.height, x.width))
            else:
                window = Window(op.kernel, op.stride, (1, 1), op.padding)
            if isinstance(op, g.MaxPool2d):
                post = Post(mode=PostMode.PASS)
                return self.lower_vector(
                    node, [x], y, window, ComputeMode.VMAX, post, None, {"pad_value": -128}
                )
            if isinstance(op, g.AvgPool2d):
                if not op.count_include_pad and any(op.padding):
                    raise self.fail(node, "count_include_pad=False with padding is not supported")
                if op.ceil_mode:
                    floor_out = g.conv_output_size(
                        x.height, op.kernel[0], op.stride[0], op.padding[0] + op.padding[1], 1
                    )
                    if floor_out != y.height:
                        raise self.fail(node, "ceil_mode windows past the padding not supported")
            pq = self.layer_quant(node, PoolQuant)
            post = Post(
                mode=PostMode.REQUANT,
                out_zero_point=y.zero_point,
                act_min=pq.act_min,
                act_max=pq.act_max,
            )
            params = np.array([0, pq.multiplier, pq.shift])
            extra = {"pad_value": x.zero_point, "zero_point_a": x.zero_point}
            return self.lower_vector(node, [x], y, window, ComputeMode.VSUM, post, params, extra)
        if isinstance(op, g.Add):
            if len(srcs) != 2:
                raise self.fail(node, f"{len(srcs)} inputs (the vector unit adds two)")
            aq = self.layer_quant(node, AddQuant)
            if aq.left_shift != numerics.ADD_LEFT_SHIFT:
                raise self.fail(
                    node, f"left_shift {aq.left_shift} (hardware: {numerics.ADD_LEFT_SHIFT})"
                )
            a, b = (self.plan.layout(s) for s in srcs)
            post = Post(
                mode=PostMode.REQUANT,
                out_zero_point=y.zero_point,
                act_min=aq.act_min,
                act_max=aq.act_max,
            )
            params = np.array([0, aq.multiplier, aq.shift])
            extra = {
                "zero_point_a": a.zero_point,
                "zero_point_b": b.zero_point,
                "multiplier_a": aq.input_multipliers[0],
                "shift_a": aq.input_shifts[0],
                "multiplier_b": aq.input_multipliers[1],
                "shift_b": aq.input_shifts[1],
            }
            return self.lower_vector(
                node, [a, b], y, Window(), ComputeMode.VADD, post, params, extra
            )
        if isinstance(op, g.Concat):
            for src in srcs:
                if self.quant(src) != self.quant(node):
                    raise self.fail(node, f"input {src!r} is quantised differently from the output")
            return {"unit": "none (inputs written in place)"}
        if isinstance(op, g.Flatten):
            c, h, w = chw(self.net, srcs[0])
            consumers = [net.op(u) for u in net.consumers(node)]
            if h * w > 1 and (
                node in net.output_names or any(not isinstance(u, g.Linear) for u in consumers)
            ):
                raise self.fail(node, "flattening a HxW map is only supported in front of a Linear")
            return {"unit": "none (view)"}
        raise self.fail(node, f"{type(op).__name__} is not supported by the hardware")

    def layer_quant(self, node: str, cls: type):
        lq = self.qnet.layers.get(node)
        if not isinstance(lq, cls):
            raise self.fail(node, f"missing {cls.__name__} quantisation parameters")
        return lq

    # -- whole network ----------------------------------------------------------------------------

    def run(self) -> Program:
        net = self.net
        plan = self.plan
        for index, node in enumerate(n for n in net.order() if not isinstance(net.op(n), g.Input)):
            self.layer_index = index
            mapping = self.lower_layer(node)
            srcs = net.inputs(node)
            self.layers.append(
                LayerInfo(
                    index=index,
                    name=node,
                    kind=type(net.op(node)).__name__,
                    in_shape=tuple(net.shape(srcs[0])) if srcs else (),
                    out_shape=tuple(net.shape(node)),
                    macs=net.macs(node),
                    mapping=mapping,
                )
            )
        if len(self.constants) > plan.const_bound:
            raise AssertionError("constants overflowed their DRAM region")
        streams = synchronise(self.ops)
        for stream in streams.values():
            for instr in stream:
                isa.encode(instr)  # every field fits its encoding
        constants = np.zeros(plan.const_bound, dtype=np.uint8)
        constants[: len(self.constants)] = np.frombuffer(bytes(self.constants), dtype=np.uint8)
        kept = net.output_names
        if self.keep_tensors:
            kept = [layer.name for layer in self.layers if layer.kind != "Flatten"]
            kept += [n for n in net.output_names if n not in kept]
        return Program(
            config=self.config,
            network=net.name,
            streams=streams,
            layers=self.layers,
            inputs={n: self.plan.layout(n) for n in net.input_names},
            outputs={n: self.plan.layout(n) for n in kept},
            output_shapes={n: tuple(net.shape(n)) for n in kept},
            im2col=list(plan.im2col.values()),
            constants=constants,
            dram_bytes=plan.dram_bytes,
        )


def compile(qnet: QuantizedNetwork, config: AccelConfig, *, keep_tensors: bool = False) -> Program:
    """Compile a quantised network for ``config``.

    ``qnet`` comes from :func:`accel.ptq.quantize` (or a quantised ONNX model). Raises
    :class:`CompileError` naming the layer and the limit when a layer cannot run on this
    configuration, and ``TypeError`` for anything but a
    :class:`~accel.quantized.QuantizedNetwork`.

    ``keep_tensors=True`` (for layer-by-layer verification) gives every layer's output its
    own DRAM bytes for the whole run and lists it in :attr:`Program.outputs`, so the final
    DRAM holds every intermediate result; the schedule may differ slightly from the default,
    which reuses the bytes of dead tensors.
    """
    if not isinstance(qnet, QuantizedNetwork):
        raise TypeError(
            f"compile() takes a QuantizedNetwork (quantise a float network with "
            f"accel.ptq.quantize first), not {type(qnet).__name__}"
        )
    net = qnet.network
    for node in net.order():
        if isinstance(net.op(node), g.Activation):
            raise layer_error(
                net,
                node,
                "a standalone activation must be fused into its producer "
                "(Conv2d, Linear or Add): use accel.graph.fuse_activations",
            )
    plan = plan_dram(qnet, config, keep_tensors=keep_tensors)
    return _Compiler(qnet, config, plan, keep_tensors=keep_tensors).run()
