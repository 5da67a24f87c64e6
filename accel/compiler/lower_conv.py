"""Lowering of a convolution onto the systolic array (every conv kind, and fully connected).

``lower_conv(em, node, xs, ys, weight, window, groups, cq) -> mapping`` appends one layer's
instructions to the :class:`~accel.compiler.emit.Emitter`, in program order (for each image
of a batch, one after the other, with the weights placed once; or, streamed weights shared
by a batch, each chunk computed for every image's tile: :func:`lower_images_per_chunk`): for
each output tile, load the input tile; for each k tile (``cols`` output channels), load the
weights if they are not resident, COMPUTE over the channel tiles the k tile reduces, then POST and
STORE. Weights are packed into the constants in exactly the order the weight loader
consumes them; they stay resident when they fit half the weight buffer (else the whole
buffer), otherwise they stream through a two-slot ring in even reduction chunks. It returns
the layer's mapping (the summary in :class:`~accel.program.LayerInfo`).
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass, replace

import numpy as np

from accel import isa, numerics
from accel.compiler.emit import VECTOR_MIN, WHOLE, Emitter, Params, Phase, Ring, input_window
from accel.compiler.ops import READ, WRITE, Access, Block, runs, starts
from accel.compiler.tiling import Tiling, TilingError, Window, choose_tiling, estimate_cycles
from accel.config import AccelConfig
from accel.isa import Buffer, Compute, ComputeMode, Load, Post, PostMode
from accel.program import TensorLayout
from accel.quantized import ConvQuant
from accel.timing import ceil_div


@dataclass(frozen=True)
class ConvWeights:
    """A conv's weight tiles in DRAM and their place in the weight buffer."""

    addr: int  # DRAM byte address of the packed tiles (kt, ct, r, s, rows, cols)
    kernel: tuple[int, int]  # r, s
    ct_ranges: tuple[tuple[int, int], ...]  # per k tile: the channel tiles [lo, hi) it reduces
    kt_words: tuple[int, ...]  # per k tile: its weight words
    kt_offsets: tuple[int, ...]  # per k tile: its first word (and the total, last)
    resident_base: int | None  # weight-buffer word of k tile 0; None: weights stream
    per_chunk: int  # channel tiles per streamed reduction chunk
    row_chunk: int  # kernel rows per streamed reduction chunk (depthwise: per pass)
    depthwise: bool = False  # the array's depthwise mode: one tile per group of kernel rows
    #: Slots of the weight ring a streamed chunk goes to in turn (:func:`stream_slots`).
    slots: int = 2
    #: Input-stationary k tiles per COMPUTE: the tiles above (``ct_ranges``, ``kt_words``,
    #: ...) are then groups of ``k_group`` k tiles (the last one what is left of ``k_tiles``),
    #: a pass's words the group's channels in order (``accel.isa.Compute``, ``k_extra``).
    k_group: int = 1
    k_tiles: int = 0  # the layer's k tiles (0: as many as groups)

    def group_tiles(self, g: int) -> int:
        """The k tiles of group ``g``."""
        if self.k_group == 1:
            return 1
        return min(self.k_group, self.k_tiles - g * self.k_group)

    def slot_base(self, ring: Ring, count: int | np.ndarray) -> int | np.ndarray:
        """Weight-buffer word of the ``count``-th streamed chunk's slot."""
        return count % self.slots * (ring.capacity // self.slots)


def stream_slots(em: Emitter, row_words: int, depthwise: int) -> int:
    """Slots of the weight ring for streamed weights: two (double buffering), three for an
    output- or input-stationary layer whose kernel row fits a third. Such a pass reads its
    weight words as fast as the DMA streams them, and a slot is free again only when the
    COMPUTE reading it is done (its drain after its last read): with two slots, DRAM latency
    and drain are exposed once per chunk; a third slot hides them."""
    streaming = em.config.array.dataflow in ("os", "is") and not depthwise
    return 3 if streaming and row_words <= em.w_ring.capacity // 3 else 2


@dataclass(frozen=True)
class InputTile:
    """Channel tiles of one output tile's input window, as loaded in the input buffer."""

    out_tile: tuple[int, int, int, int]  # (p0, q0, th, tw)
    origin: tuple[int, int]  # input (row, column) of the window's top left; < 0 in padding
    width: int  # words per window row
    base: int  # the input-buffer word where the channel tiles begin
    first_ct: int  # the channel tile at base
    ct_stride: int  # words per channel tile

    def plane(self, ct: int) -> int:
        """The first input-buffer word of channel tile ``ct``'s plane."""
        return self.base + (ct - self.first_ct) * self.ct_stride


def depthwise_rows(em: Emitter, weight: np.ndarray, groups: int) -> int:
    """Kernel rows per pass when the layer runs in the array's depthwise mode, else 0.

    The mode (``Compute.depthwise``: array rows = kernel taps, columns = channels) takes
    depthwise layers (``groups`` = input channels = output channels) with more than one tap
    whose kernel rows fit the array rows, on a square array (a word's lanes are the
    columns' channels). A pass holds whole kernel rows, as many as fit in ``rows``.
    """
    k, cg, r, s = weight.shape
    if cg != 1 or k != groups or r * s < 2 or s > em.rows or em.rows != em.cols:
        return 0
    return min(r, em.rows // s)


def k_group_limit(em: Emitter, weight: np.ndarray, groups: int, depthwise: int, images: int) -> int:
    """The most k tiles one input-stationary COMPUTE may stream (``Compute.k_extra + 1``) in
    a dense layer (not depthwise, ``groups`` = 1) of one image, as far as the weight buffer
    goes: every k tile when the weights stay resident, else those whose kernel row of words
    fits a third of the streamed ring (:func:`stream_slots`), and the parameter buffer: a
    group's parameter words in half of it when they stream
    (:meth:`~accel.compiler.emit.Emitter.group_param_words`); 1 on other machines and layers.
    The tile then bounds it by its accumulators (:attr:`accel.compiler.tiling.Tiling.k_group`)."""
    if em.config.array.dataflow != "is" or depthwise or groups != 1 or images != 1:
        return 1
    k, c, r, s = weight.shape
    n_kt, rows = ceil_div(k, em.cols), em.rows
    capacity = em.w_ring.capacity
    limit = n_kt
    if n_kt * ceil_div(c, rows) * r * s * rows > capacity:  # streamed in three slots
        limit = max(1, capacity // 3 // (s * rows))
    if n_kt > em.p_ring.capacity // 2:  # streamed parameters: a group's in half the buffer
        limit = min(limit, em.p_ring.capacity // 2)
    return max(1, min(limit, isa.field_max(Compute, "k_extra") + 1))


def resident_base(em: Emitter, words: int) -> int | None:
    """Where ``words`` of a layer's weights stay resident in the weight ring: a slot of
    the double-buffered half when they fit it, the whole buffer from word 0 when they fit
    that, else ``None`` (they stream)."""
    if words <= em.w_ring.capacity // 2:
        return em.w_ring.next(2)
    if words <= em.w_ring.capacity:
        return 0
    return None


def pack_weights(
    em: Emitter, node: str, weight: np.ndarray, groups: int, depthwise: int = 0, k_group: int = 1
) -> ConvWeights:
    """Add the weights to the constants in load order and place them in the weight buffer.

    ``depthwise`` (kernel rows per pass, :func:`depthwise_rows`): one (rows, cols) tile per
    k tile and group of kernel rows, row ``t`` = tap ``(t // s, t % s)`` of the group, zero
    past its taps. Dense tiles on an input-stationary machine are transposed: word ``n`` =
    output channel ``n``, lane ``i`` = reduction lane ``i`` (``accel.timing``); with
    ``k_group`` > 1 (``groups`` = 1), a pass's words are the channels of ``k_group`` k tiles
    in order, and the k tiles of the result are those groups."""
    rows, cols = em.rows, em.cols
    k, cg, r, s = weight.shape
    c = cg * groups
    kg = k // groups
    n_ct, n_kt = ceil_div(c, rows), ceil_div(k, cols)

    if depthwise:
        n_g = ceil_div(r, depthwise)
        dense = np.zeros((n_kt * cols, n_g * depthwise, s), dtype=np.int8)
        dense[:k, :r] = weight[:, 0]
        taps = dense.reshape(n_kt, cols, n_g, depthwise * s).transpose(0, 2, 3, 1)
        tiles = np.zeros((n_kt, n_g, rows, cols), dtype=np.int8)
        tiles[:, :, : depthwise * s] = taps
        ct_ranges = [(kt, kt + 1) for kt in range(n_kt)]
        blobs = [np.ascontiguousarray(tiles[kt]) for kt in range(n_kt)]
        w_addr = em.add_constant(*blobs)
        kt_words = [n_g * rows] * n_kt
        kt_offsets = list(itertools.accumulate(kt_words, initial=0))
        return ConvWeights(
            addr=w_addr,
            kernel=(r, s),
            ct_ranges=tuple(ct_ranges),
            kt_words=tuple(kt_words),
            kt_offsets=tuple(kt_offsets),
            resident_base=resident_base(em, kt_offsets[-1]),
            per_chunk=1,
            row_chunk=depthwise,
            depthwise=True,
        )

    # Dense weights with zeros across groups, tiled (kt, ct, r, s, rows, cols).
    dense = np.zeros((n_kt * cols, n_ct * rows, r, s), dtype=np.int8)
    for grp in range(groups):
        dense[grp * kg : (grp + 1) * kg, grp * cg : (grp + 1) * cg] = weight[
            grp * kg : (grp + 1) * kg
        ]
    tiles = dense.reshape(n_kt, cols, n_ct, rows, r, s).transpose(0, 2, 4, 5, 3, 1)
    if em.config.array.dataflow == "is":  # word n = output channel n, lane i = reduction lane i
        tiles = tiles.swapaxes(4, 5)
    if k_group > 1:
        return _pack_k_groups(em, node, tiles, k_group)
    ct_ranges = []
    for kt in range(n_kt):
        k_lo, k_hi = kt * cols, min(k, (kt + 1) * cols)
        c_lo = (k_lo // kg) * cg
        c_hi = ((k_hi - 1) // kg + 1) * cg
        ct_ranges.append((c_lo // rows, ceil_div(c_hi, rows)))

    # Weights in DRAM in consumption order: kt, ct, r, s.
    blobs = [np.ascontiguousarray(tiles[kt, lo:hi]) for kt, (lo, hi) in enumerate(ct_ranges)]
    kt_words = [(hi - lo) * r * s * rows for lo, hi in ct_ranges]
    return _placed(em, node, blobs, (r, s), ct_ranges, kt_words, rows, depthwise)


def _pack_k_groups(em: Emitter, node: str, tiles: np.ndarray, k_group: int) -> ConvWeights:
    """:func:`pack_weights` of input-stationary weights ``tiles`` (kt, ct, r, s, cols, rows)
    in groups of ``k_group`` k tiles: per group (ct, r, s, k tile, cols, rows)."""
    n_kt, n_ct, r, s, cols, rows = tiles.shape
    firsts = range(0, n_kt, k_group)
    blobs = [
        np.ascontiguousarray(tiles[g : g + k_group].transpose(1, 2, 3, 0, 4, 5)) for g in firsts
    ]
    kt_words = [blob.size // cols for blob in blobs]
    placed = _placed(em, node, blobs, (r, s), [(0, n_ct)] * len(blobs), kt_words, rows * k_group)
    return replace(placed, k_group=k_group, k_tiles=n_kt)


def _placed(
    em: Emitter,
    node: str,
    blobs: list[np.ndarray],
    kernel: tuple[int, int],
    ct_ranges: list[tuple[int, int]],
    kt_words: list[int],
    tile_words: int,
    depthwise: int = 0,
) -> ConvWeights:
    """The constants ``blobs`` (a k tile each, in load order) placed in the weight buffer:
    resident when they fit, else streamed in reduction chunks of ``tile_words`` per pass."""
    r, s = kernel
    w_addr = em.add_constant(*blobs)
    kt_offsets = list(itertools.accumulate(kt_words, initial=0))
    base = resident_base(em, kt_offsets[-1])
    slots = stream_slots(em, s * tile_words, depthwise)
    half = em.w_ring.capacity // slots  # a slot of the ring (half, or a third)

    # Reduction chunks (weights streamed): whole channel tiles, or kernel rows of one.
    if base is None:
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
            raise em.fail(
                node,
                f"one kernel row of weight tiles ({s * tile_words * em.cols} bytes) exceeds "
                f"half of buffers.weight_bytes = {em.config.buffers.weight_bytes}",
            )
    else:
        per_chunk, row_chunk = max(hi for _, hi in ct_ranges), r  # every channel tile
    return ConvWeights(
        addr=w_addr,
        kernel=(r, s),
        ct_ranges=tuple(ct_ranges),
        kt_words=tuple(kt_words),
        kt_offsets=tuple(kt_offsets),
        resident_base=base,
        per_chunk=per_chunk,
        row_chunk=row_chunk,
        slots=slots,
    )


def weight_runs(config: AccelConfig, words: int | np.ndarray) -> int | np.ndarray:
    """The runs of a weight LOAD of ``words`` contiguous words: as few equal runs as the
    16-bit ``Load.run_bytes`` allows, each a whole number of LOAD units
    (:func:`accel.timing.load_unit_bytes`; a weight load's words are whole tiles, a multiple
    of the rows, so of the banks). Few runs are few DRAM requests: one word per run kept
    thousands in flight where the DMA ran ahead of the array."""
    if isinstance(words, np.ndarray):
        found, where = np.unique(words, return_inverse=True)
        return np.array([weight_runs(config, int(w)) for w in found], dtype=np.int64)[where]
    units = words // config.buffers.weight_banks
    unit_bytes = config.weight_word_bytes * config.buffers.weight_banks
    runs = ceil_div(units * unit_bytes, isa.field_max(Load, "run_bytes"))
    while units % runs:
        runs += 1
    return runs


def _ramp(n: int, per_chunk: int) -> list[int]:
    """Chunk sizes 1, 2, 3, 5, 8, ... (each the sum of the two before) below ``per_chunk``
    of ``n`` channel tiles, while what is left after the next one is at least twice it."""
    sizes, size, after = [], 1, 2
    while size < per_chunk and n - sum(sizes) - size >= 2 * size:
        sizes.append(size)
        size, after = after, size + after
    return sizes


def chunk_ranges(cts: range, per_chunk: int, ramp: bool = False) -> list[tuple[int, int, bool]]:
    """The reduction chunks of channel tiles ``cts``: per chunk its first and end channel
    tile and whether it is part of a ramp. Chunks of ``per_chunk``, the last what is left;
    a ``ramp`` (a layer's first chunks, where nothing computes while they load) starts at
    one channel tile and grows by about 1.6 up to ``per_chunk``, the chunks after it even,
    so that the first COMPUTE waits for one channel tile's weights and inputs instead of a
    whole chunk's, and each load hides behind the COMPUTE before it."""
    if not ramp:
        bounds = [*range(cts.start, cts.stop, per_chunk), cts.stop]
        return [(a, b, False) for a, b in itertools.pairwise(bounds)]
    head = _ramp(len(cts), per_chunk)
    rest = len(cts) - sum(head)
    even = ceil_div(rest, per_chunk)
    sizes = [ceil_div(rest * (i + 1), even) - ceil_div(rest * i, even) for i in range(even)]
    bounds = list(itertools.accumulate(head + sizes, initial=cts.start))
    ramped = [True] * len(head) + [False] * even
    return [(a, b, r) for (a, b), r in zip(itertools.pairwise(bounds), ramped, strict=True)]


class ConvPasses:
    """Input loads and COMPUTE passes of one conv layer (after its tiling is chosen)."""

    def __init__(
        self,
        em: Emitter,
        x: TensorLayout,
        window: Window,
        step: tuple[int, int],
        weights: ConvWeights,
        tiling: Tiling,
    ) -> None:
        self.em = em
        self.x = x
        self.window = window
        self.step = step
        self.weights = weights
        self.tiling = tiling
        self.resident_loaded: set[int] = set()  # k tiles whose resident weights are loaded
        self._passes: dict[tuple[int, int, int, bool], list] = {}
        rows, th, tw = em.rows, tiling.tile_h, tiling.tile_w
        pixels = th * tw
        if em.config.array.dataflow != "ws":  # a pass per group of `rows` pixels
            pixels = ceil_div(pixels, rows) * rows
        taps = weights.kernel[0] * weights.kernel[1]
        ih, iw = window.input_extent(th, tw)
        streamed = weights.resident_base is None and weights.per_chunk > 1 and not weights.depthwise
        #: The layer's first streamed passes ramp up (:func:`chunk_ranges`): where a channel
        #: tile computes at least twice as long as its weights and inputs load, so that
        #: each chunk of the ramp loads behind the COMPUTE before it.
        self.ramp_pending = streamed and taps * pixels >= 2 * (taps * rows + ih * iw)
        #: Paced: the array reads each weight word once (one group of pixels), as fast as
        #: the DMA brings it, a third ring slot keeping the DMA busy. A COMPUTE starts only
        #: when its chunk is in, so the array ends a chunk behind the DMA: paced chunks are
        #: small (a quarter of a slot) and share their slots (:meth:`passes`).
        self.paced = streamed and weights.slots == 3 and pixels <= rows
        self.per_chunk = weights.per_chunk
        if self.paced:
            slot_words = em.w_ring.capacity // weights.slots
            ct_words = taps * rows * weights.group_tiles(0)
            widest = max(hi - lo for lo, hi in weights.ct_ranges)
            per = max(1, min(self.per_chunk, slot_words // (4 * ct_words)))
            self.per_chunk = ceil_div(widest, ceil_div(widest, per))
        self.weight_block = self.make_weight_block()
        self.compute_block = self.make_compute_block()
        self.weight_rows = self.weight_block.rows
        self.compute_rows = self.compute_block.rows

    def load_inputs(self, out_tile: tuple[int, int, int, int], cts: range) -> InputTile:
        """Load channel tiles ``cts`` of the input window of ``out_tile`` into the next input
        slot."""
        em, window = self.em, self.window
        p0, q0, th, tw = out_tile
        (sh, sw), (top, _, left, _) = window.stride, window.padding
        ih, iw = window.input_extent(th, tw)
        origin = (p0 * sh - top, q0 * sw - left)
        slot_base = em.next_in_slot(self.tiling.in_slots, self.tiling.in_slot_words)
        ct_stride = em.load_input_tile(self.x, origin, (ih, iw), slot_base, cts, em.rows, self.step)
        return InputTile(out_tile, origin, iw, slot_base, cts.start, ct_stride)

    def ramp(self) -> bool:
        """Whether the next passes ramp up (the layer's first streamed ones, where they
        gain from it: ``ramp_pending``); asking takes the ramp."""
        ramp, self.ramp_pending = self.ramp_pending, False
        return ramp

    def load_resident(self, kt: int) -> None:
        """Resident weights load per k tile at first use, so compute starts as soon as
        the first k tile is in (the DMA pipelines consecutive loads)."""
        if kt in self.resident_loaded:
            return
        self.resident_loaded.add(kt)
        wt = self.weights
        base = wt.resident_base + wt.kt_offsets[kt]
        addr = wt.addr + wt.kt_offsets[kt] * self.em.cols
        self.load_weights(addr, base, wt.kt_words[kt], self.em.log.index())

    def load_weights(self, dram_addr, sram_addr, words, at) -> None:
        """A weight LOAD of ``words`` contiguous words (numbers, or arrays of one per LOAD)
        at program position ``at`` (:meth:`make_weight_block`)."""
        count = weight_runs(self.em.config, words)
        run_bytes = words // count * self.em.cols
        if isinstance(words, np.ndarray):
            self.weight_block.append_columns(dram_addr, sram_addr, count, run_bytes, run_bytes, at)
        else:
            self.weight_rows.extend((dram_addr, sram_addr, count, run_bytes, run_bytes, at))

    def make_weight_block(self) -> Block:
        """Weight loads (resident or streamed): ``inner_count`` contiguous runs of
        ``run_bytes`` (:func:`weight_runs`)."""
        cols = self.em.cols

        def accesses(c: dict[str, np.ndarray]) -> list[Access]:
            words = c["inner_count"] * (c["run_bytes"] // cols)
            return [("w", WRITE, c["sram_addr"], c["sram_addr"] + words)]

        template = Load(buffer=Buffer.WEIGHT)
        names = ("dram_addr", "sram_addr", "inner_count", "inner_stride", "run_bytes")
        return self.em.block(("weights",), template, names, (), accesses)

    def make_compute_block(self) -> Block:
        """The layer's COMPUTEs: read the input slot and weight words, write accumulators."""
        x, window, step = self.x, self.window, self.step
        template = Compute(
            mode=ComputeMode.ARRAY,
            image_h=ceil_div(x.height, step[0]),
            image_w=ceil_div(x.width, step[1]),
            stride_h=window.stride[0],
            stride_w=window.stride[1],
            dil_h=window.dilation[0],
            dil_w=window.dilation[1],
            kernel_w=self.weights.kernel[1],
            pad_value=x.zero_point,
            os=int(self.em.config.array.dataflow == "os"),
            is_=int(self.em.config.array.dataflow == "is"),
        )
        kernel_h = "kernel_h"
        if self.weights.depthwise:  # one pass of a 1x1 walk; the kernel rows are its taps
            # The depthwise mode is the weight-stationary datapath, on every machine.
            template = replace(
                template, kernel_w=1, depthwise=1, taps_w=self.weights.kernel[1], os=0, is_=0
            )
            kernel_h = "taps_h"

        grouped = self.weights.k_group > 1

        def accesses(c: dict[str, np.ndarray]) -> list[Access]:
            acc = c["acc_base"]
            span = c["out_h"] * c["out_w"]
            if grouped:  # its k tiles' rows, k_stride apart (k_stride = pixels: contiguous)
                span = span + c["k_extra"] * c["k_stride"]
            return [
                ("in", READ, c["in_lo"], c["in_hi"]),
                ("w", READ, c["w_base"], c["w_hi"]),
                ("acc", WRITE, acc, acc + span),
            ]

        names = (
            *("accumulate", "in_base", "ct_count", "ct_stride", "tile_w", "out_h", "out_w"),
            *("origin_h", "origin_w", kernel_h, "w_base", "acc_base"),
            *(("k_extra", "k_stride") if grouped else ()),
        )
        return self.em.block(("compute",), template, names, ("in_lo", "in_hi", "w_hi"), accesses)

    def passes(
        self, kt: int, cts: range, ramp: bool = False
    ) -> list[tuple[int, int, int, int, int, int, int, int]]:
        """The reduction chunks of channel tiles ``cts`` of k tile ``kt`` (the same for
        every output tile but the first, ``ramp``: :meth:`ramp`): per chunk its channel
        tiles ``ct0..ct1``, kernel rows ``r0..r1``, weight words, the offset of its first
        weight word and, streamed, its place in the weight ring: whether it takes the next
        slot (1) or follows the chunk before in its slot (0), and its first word there.
        Ramped and paced chunks share a slot while they fit: the DMA then writes small
        chunks where the ring is free already, instead of waiting for a slot each."""
        key = (kt, cts.start, cts.stop, ramp)
        found = self._passes.get(key)
        if found is not None:
            return found
        wt = self.weights
        tile_words = self.em.rows * wt.group_tiles(kt)
        r, s = wt.kernel
        chunks = []
        slot_words = self.em.w_ring.capacity // wt.slots
        packed = None  # words of the current slot that ramped chunks fill
        for ct0, ct1, ramped in chunk_ranges(cts, self.per_chunk, ramp):
            ramped = ramped or self.paced
            for g, r0 in enumerate(range(0, r, wt.row_chunk)):
                r1 = min(r, r0 + wt.row_chunk)
                if wt.depthwise:  # one tile per group of kernel rows
                    offset = wt.kt_offsets[kt] + g * tile_words
                    chunks.append((ct0, ct1, r0, r1, tile_words, offset, 1, 0))
                    continue
                words = (ct1 - ct0) * (r1 - r0) * s * tile_words
                offset = (
                    wt.kt_offsets[kt] + ((ct0 - wt.ct_ranges[kt][0]) * r * s + r0 * s) * tile_words
                )
                at = packed if ramped and packed is not None else 0
                if at + words > slot_words:
                    at = 0
                packed = at + words if ramped else None
                chunks.append((ct0, ct1, r0, r1, words, offset, int(at == 0), at))
        self._passes[key] = chunks
        return chunks

    def compute(
        self, *, kt: int, cts: range, inputs: InputTile, acc_base: int, first: bool
    ) -> None:
        """COMPUTE instructions for channel tiles ``cts`` of k tile ``kt`` (input-stationary
        k groups: of group ``kt``, its k tiles' accumulators ``th * tw`` rows apart), reading
        ``inputs``; ``first``: the first of the k tile's passes (it overwrites the
        accumulators, the others add to them)."""
        em, wt = self.em, self.weights
        chunks = self.passes(kt, cts, self.ramp())
        if not chunks:
            return
        dh = self.window.dilation[0]
        th, tw = inputs.out_tile[2], inputs.out_tile[3]
        width, ct_stride = inputs.width, inputs.ct_stride
        origin_h, origin_w = inputs.origin
        resident = wt.resident_base is not None
        w_ring, cols = em.w_ring, em.cols
        compute_rows = self.compute_rows
        index = em.log.index
        accumulate = int(not first)
        group = (wt.group_tiles(kt) - 1, th * tw) if wt.k_group > 1 else ()
        for ct0, ct1, r0, r1, words, offset, next_slot, at in chunks:
            if resident:
                self.load_resident(kt)
                w_base = wt.resident_base + offset
            else:
                # The next slot of the weight ring (halves: Ring.next(2)), or the chunk
                # before's.
                w_ring.count += next_slot
                w_base = wt.slot_base(w_ring, w_ring.count - 1) + at
                # Rows r0..r1 of every channel tile in the chunk; contiguous when the
                # chunk holds whole kernels (row_chunk == r) or one channel tile.
                self.load_weights(wt.addr + offset * cols, w_base, words, index())
            compute_rows.extend(
                (
                    accumulate,
                    inputs.plane(ct0) + r0 * dh * width,
                    ct1 - ct0,
                    ct_stride,
                    width,
                    th,
                    tw,
                    origin_h + r0 * dh,
                    origin_w,
                    r1 - r0,
                    w_base,
                    acc_base,
                    *group,
                    inputs.plane(ct0),
                    inputs.plane(ct1),
                    w_base + words,
                    index(),
                )
            )
            accumulate = 1

    def compute_images(
        self, *, kt: int, cts: range, inputs: list[InputTile], acc_bases: list[int]
    ) -> None:
        """Streamed weights: each reduction chunk of channel tiles ``cts`` of k tile ``kt``
        loaded once, then COMPUTEd for every image (``inputs[i]`` into accumulators
        ``acc_bases[i]``)."""
        em, wt = self.em, self.weights
        dh = self.window.dilation[0]
        w_ring, cols = em.w_ring, em.cols
        index = em.log.index
        for n, (ct0, ct1, r0, r1, words, offset, _, _) in enumerate(self.passes(kt, cts)):
            w_base = wt.slot_base(w_ring, w_ring.count)  # the next slot of the weight ring
            w_ring.count += 1
            self.load_weights(wt.addr + offset * cols, w_base, words, index())
            for inputs_i, acc_base in zip(inputs, acc_bases, strict=True):
                width = inputs_i.width
                th, tw = inputs_i.out_tile[2], inputs_i.out_tile[3]
                self.compute_rows.extend(
                    (
                        int(n > 0),
                        inputs_i.plane(ct0) + r0 * dh * width,
                        ct1 - ct0,
                        inputs_i.ct_stride,
                        width,
                        th,
                        tw,
                        inputs_i.origin[0] + r0 * dh,
                        inputs_i.origin[1],
                        r1 - r0,
                        w_base,
                        acc_base,
                        inputs_i.plane(ct0),
                        inputs_i.plane(ct1),
                        w_base + words,
                        index(),
                    )
                )

    def lower_layer(
        self,
        out_tiles: list[tuple[int, int, int, int]],
        params: Params,
        post: Post,
        y: TensorLayout,
        phase: Phase = WHOLE,
    ) -> None:
        """Every output tile with all its k tiles, in numpy columns: the same instructions,
        in the same program order, as the loop of :func:`lower_conv` over ``load_inputs``,
        ``compute``, ``param_word`` and ``post_and_store``.

        A *unit* is one (tile, k tile); its *sections* are the groups of channel tiles it
        reduces at once: one, on the tile's input window of every channel tile (loaded
        before the tile's first unit), or, when that does not fit, one per channel chunk
        (each loaded at the start of its section).
        """
        em, wt, window, x, tiling = self.em, self.weights, self.window, self.x, self.tiling
        cols, lanes, n_kt = em.cols, em.rows, len(wt.ct_ranges)
        n_ct = ceil_div(x.channels, lanes)
        whole = tiling.channel_chunk >= n_ct
        (sh, sw), (top, _, left, _), dh = window.stride, window.padding, window.dilation[0]

        # Per tile: its input window (the part in the image, relative to its slot).
        tiles = []
        for p0, q0, th, tw in out_tiles:
            ih, iw = window.input_extent(th, tw)
            h0, w0 = p0 * sh - top, q0 * sw - left
            found = input_window(x, (h0, w0), (ih, iw), 0, self.step)
            tiles.append(
                (p0, q0, th, tw, h0, w0, iw, ih * iw, found is not None, *(found or (0,) * 4))
            )
        p0, q0, th, tw, h0, w0, width, ct_stride, inside, dram0, sram0, load_rows, load_cols = (
            np.array(tiles, dtype=np.int64).T
        )
        n_t, n_u = len(out_tiles), len(out_tiles) * n_kt

        # Sections of every k tile (the same in every tile) and their reduction passes.
        kt_sections = [
            [range(lo, hi)]
            if whole
            else [
                range(c, min(hi, c + tiling.channel_chunk))
                for c in range(lo, hi, tiling.channel_chunk)
            ]
            for lo, hi in wt.ct_ranges
        ]
        sections = [(kt, cts) for kt in range(n_kt) for cts in kt_sections[kt]]
        n_s = len(sections)
        s_passes = [self.passes(kt, cts) for kt, cts in sections]
        g_s = np.tile(np.arange(n_s), n_t)  # per section in program order: its static one
        if self.ramp():  # the first one's passes ramped up: a static section of its own
            sections.append(sections[0])
            s_passes.append(self.passes(*sections[0], ramp=True))
            g_s[0] = n_s
        s_kt = np.array([kt for kt, _ in sections], dtype=np.int64)
        s_first = np.array([cts.start == wt.ct_ranges[kt][0] for kt, cts in sections])
        s_ct0 = np.array([cts.start for _, cts in sections], dtype=np.int64)
        s_cts = np.array([len(cts) for _, cts in sections], dtype=np.int64)
        s_npass = np.array([len(found) for found in s_passes], dtype=np.int64)
        ct0, ct1, r0, r1, words, offset, next_slot, slot_at = (
            np.array([c for found in s_passes for c in found], dtype=np.int64).reshape(-1, 8).T
        )
        resident = wt.resident_base is not None
        streamed_params = params.resident is None

        # Sections in program order (tile, k tile, section), and what each emits: its
        # input loads (when loaded per section), the resident weights of its k tile at
        # their first use (first tile, first section), its passes (and their weights).
        g_t = np.repeat(np.arange(n_t), n_s)
        g_u = g_t * n_kt + s_kt[g_s]
        g_loads = np.zeros(len(g_t), dtype=np.int64) if whole else s_cts[g_s] * inside[g_t]
        g_res = np.zeros(len(g_t), dtype=np.int64)
        if resident:
            unloaded = np.array([kt not in self.resident_loaded for kt in range(n_kt)])
            g_res[:n_s] = (unloaded[s_kt] & s_first & (s_npass > 0))[g_s[:n_s]]
        g_ops = g_loads + g_res + s_npass[g_s] * (1 if resident else 2)
        pending = np.zeros(n_u, dtype=np.int64)  # the layer's resident parameters' load
        pending[0] = em.pending_param_load is not None
        unit_ops = np.bincount(g_u, weights=g_ops, minlength=n_u).astype(np.int64)
        unit_ops += int(streamed_params) + pending + 2
        t_loads = n_ct * inside if whole else np.zeros(n_t, dtype=np.int64)
        tile_ops = t_loads + unit_ops.reshape(n_t, n_kt).sum(axis=1)
        tile_base = em.log.take(int(tile_ops.sum())) + starts(tile_ops)
        u_t = np.repeat(np.arange(n_t), n_kt)
        u_start = starts(unit_ops)
        unit_base = (tile_base + t_loads)[u_t] + u_start - u_start[u_t * n_kt]
        g_start = starts(g_ops)
        g_base = unit_base[g_u] + g_start - g_start[np.searchsorted(g_u, g_u)]

        # Input slots, in program order (per tile, or per section), and the input loads.
        ring = em.in_ring
        if whole:
            slot = (ring.count + np.arange(n_t)) % tiling.in_slots * tiling.in_slot_words
            ring.count += n_t
            l_owner, l_i = runs(t_loads)
            l_tile, l_ct0, l_at = l_owner, 0, tile_base[l_owner] + l_i
            g_in_lo = slot[g_t]
            first_ct = np.zeros(len(g_t), dtype=np.int64)
        else:
            slot = (ring.count + np.arange(len(g_t))) % tiling.in_slots * tiling.in_slot_words
            ring.count += len(g_t)
            g_in_lo = slot
            l_owner, l_i = runs(g_loads)
            l_tile, l_ct0, l_at = g_t[l_owner], s_ct0[g_s[l_owner]], g_base[l_owner] + l_i
            first_ct = s_ct0[g_s]
        if len(l_owner):
            c0 = (l_ct0 + l_i) * lanes
            plane = slot[l_owner] + l_i * ct_stride[l_tile]  # its channel tile's words
            em.input_block(x, self.step).append_columns(
                dram0[l_tile] + c0,
                plane + sram0[l_tile],
                load_rows[l_tile],
                width[l_tile],
                load_cols[l_tile],
                np.minimum(lanes, x.channels - c0),
                plane,
                plane + ct_stride[l_tile],
                l_at,
            )

        # Rings, in program order: accumulator and output slots per unit.
        step = np.arange(n_u)
        acc = em.acc_ring
        acc_base = (acc.count + step) % em.acc_slots * (acc.capacity // em.acc_slots)
        acc.count += n_u
        out = em.out_ring
        out_base = (out.count + step) % em.out_slots * (out.capacity // em.out_slots)
        out.count += n_u

        # Resident weights, at their first use, before its first COMPUTE.
        res_at = np.flatnonzero(g_res)
        if len(res_at):
            kts = s_kt[g_s[res_at]]
            offsets = np.array(wt.kt_offsets)[kts]
            self.load_weights(
                wt.addr + offsets * cols,
                wt.resident_base + offsets,
                np.array(wt.kt_words)[kts],
                g_base[res_at] + g_loads[res_at],
            )
            self.resident_loaded.update(kts.tolist())

        # The passes of every section: (weight load and) COMPUTE.
        if len(ct0):
            pg, j = runs(s_npass[g_s])  # per pass: its section (in program order), index
            pc = starts(s_npass)[g_s[pg]] + j  # the pass among the static passes
            t_, u = g_t[pg], g_u[pg]
            at = g_base[pg] + g_loads[pg] + g_res[pg]
            if resident:
                w_base = wt.resident_base + offset[pc]
                computes = at + j
            else:
                w = em.w_ring
                w_slot = w.count + np.cumsum(next_slot[pc]) - 1  # each pass's ring slot
                w_base = wt.slot_base(w, w_slot) + slot_at[pc]
                w.count += int(next_slot[pc].sum())
                loads_at = at + 2 * j
                computes = loads_at + 1
                self.load_weights(wt.addr + offset[pc] * cols, w_base, words[pc], loads_at)
            self.compute_block.append_columns(
                ((j > 0) | ~s_first[g_s[pg]]).astype(np.int64),
                g_in_lo[pg] + (ct0[pc] - first_ct[pg]) * ct_stride[t_] + r0[pc] * dh * width[t_],
                ct1[pc] - ct0[pc],
                ct_stride[t_],
                width[t_],
                th[t_],
                tw[t_],
                h0[t_] + r0[pc] * dh,
                w0[t_],
                r1[pc] - r0[pc],
                w_base,
                acc_base[u],
                g_in_lo[pg] + (ct0[pc] - first_ct[pg]) * ct_stride[t_],
                g_in_lo[pg] + (ct1[pc] - first_ct[pg]) * ct_stride[t_],
                w_base + words[pc],
                computes,
            )

        # Parameters (streamed: one word per unit into two one-word slots), then POST and
        # STORE.
        u_kt = step % n_kt
        after = unit_base + unit_ops - 2 - pending - int(streamed_params)
        if streamed_params:
            p = em.p_ring
            words_at = (p.count + step) % 2
            p.count += n_u
            size = em.config.param_word_bytes
            block = em.param_block(Load(buffer=Buffer.PARAM, run_bytes=size), resident=False)
            block.append_columns(params.addr + u_kt * size, words_at, after)
            param_base = words_at
            after = after + 1
        else:
            param_base = np.array(params.resident, dtype=np.int64)[u_kt]
        if em.pending_param_load is not None:
            load, lo, hi = em.pending_param_load
            block = em.param_block(load, resident=True)
            block.rows.extend((load.dram_addr, load.sram_addr, hi - lo, int(after[0])))
            em.pending_param_load = None
        after = after + pending
        em.post_and_store_columns(
            post, True, y, acc_base=acc_base, param_base=param_base, out_base=out_base,
            p0=p0[u_t], q0=q0[u_t], th=th[u_t], tw=tw[u_t], k0=u_kt * cols, lanes=cols,
            after=after, phase=phase,
        )  # fmt: skip


def lower_conv(
    em: Emitter,
    node: str,
    xs: list[TensorLayout],
    ys: list[TensorLayout],
    weight: np.ndarray,
    window: Window,
    groups: int,
    cq: ConvQuant,
    step: tuple[int, int] = (1, 1),
    phase: Phase = WHOLE,
    out_hw: tuple[int, int] | None = None,
    negative: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict:
    """Lower one convolution of ``xs[i]`` into ``ys[i]`` for every image ``i`` of a batch
    (one pair: one image, or a batch as pixels); ``step`` > 1 loads only every step-th
    input row/column (``window`` is then in the subsampled image). A ``phase`` other than
    :data:`~accel.compiler.emit.WHOLE` makes it a pass of ``out_hw`` output pixels stored at
    the pixels of ``phase`` of each ``ys[i]``. ``negative`` (a PRelu's per-channel
    negative-side multiplier and shift) makes its POSTs two-slope ones, the pair packed into
    each lane's shift parameter (:func:`accel.numerics.pack_prelu_shift`).

    The weights and parameters are placed once. Resident weights load once for the whole
    batch, the images following one another inside the layer. Streamed weights: where the
    buffers hold a tile of every image (:func:`shared_tiling`) and the cost model finds it
    faster, each weight chunk is loaded once for all the images' tiles
    (:func:`lower_images_per_chunk`); otherwise the images follow one another and the
    weights stream again for every output tile of every image."""
    x, y = xs[0], ys[0]
    rows, cols = em.rows, em.cols
    k, cg, r, s = weight.shape
    c = cg * groups
    if c != x.channels:
        raise em.fail(node, f"weight has {c} input channels, input tensor {x.channels}")
    for attr, value, limit in [
        ("stride", max(window.stride), isa.field_max(Compute, "stride_h")),
        ("dilation", max(window.dilation), isa.field_max(Compute, "dil_h")),
        ("kernel", max(window.kernel), isa.field_max(Compute, "kernel_h")),
    ]:
        if value > limit:
            raise em.fail(node, f"{attr} {value} exceeds the hardware limit {limit}")
    if 128 * 128 * cg * r * s >= 2**31:
        raise em.fail(node, f"reduction C/groups*R*S = {cg * r * s} may overflow int32")
    n_ct, n_kt = ceil_div(c, rows), ceil_div(k, cols)
    depthwise = depthwise_rows(em, weight, groups)
    if out_hw is None:
        out_hw = (y.height, y.width)
    k_limit = k_group_limit(em, weight, groups, depthwise, len(xs))
    if k_limit > 1:  # the tile bounds the k group (its accumulators), the group the packing
        passes = n_ct * r * s
        streamed = n_kt * passes * rows
        if streamed <= em.w_ring.capacity:  # resident (pack_weights)
            streamed = 0
        tiling = em.choose_tiling(
            node, out_hw, window, n_ct, n_kt, passes, streamed_words=streamed, k_group=k_limit
        )
        weights = pack_weights(em, node, weight, groups, k_group=tiling.k_group)
    else:
        weights = pack_weights(em, node, weight, groups, depthwise)
    ct_ranges = weights.ct_ranges

    # Parameters: folded bias, multiplier, shift per output channel.
    bias = numerics.fold_zero_point_into_bias(weight, cq.bias, x.zero_point)
    params = np.zeros((n_kt * cols, 3), dtype=np.int64)
    params[:, 1] = 2**30  # lanes past K: any valid multiplier, never stored
    params[:k, 0] = bias
    params[:k, 1] = cq.multiplier
    params[:k, 2] = cq.shift if negative is None else numerics.pack_prelu_shift(cq.shift, *negative)
    layer_params = em.load_params(params.reshape(n_kt, cols, 3))

    if k_limit == 1:
        passes = sum(hi - lo for lo, hi in ct_ranges) * r * s // n_kt
        if depthwise:
            passes = ceil_div(r, depthwise)
        streamed = 0 if weights.resident_base is not None else weights.kt_offsets[-1]
        tiling = em.choose_tiling(
            node,
            out_hw,
            window,
            n_ct,
            n_kt,
            passes,
            streamed_words=streamed,
            depthwise=bool(depthwise),
        )
    if (tiling.channel_chunk < n_ct or depthwise) and groups != 1:
        # Grouped: each k tile reads only its groups' channel tiles; load those per k tile.
        widest = max(hi - lo for lo, hi in ct_ranges)
        tiling = em.choose_tiling(
            node,
            out_hw,
            window,
            widest,
            n_kt,
            passes,
            streamed_words=streamed,
            loaded_c_tiles=n_kt * widest if depthwise else None,
            depthwise=bool(depthwise),
        )
        tiling = replace(tiling, channel_chunk=min(tiling.channel_chunk, widest))
        if tiling.channel_chunk < widest:
            raise em.fail(
                node,
                "the channel tiles of one group's input window do not fit half of "
                f"buffers.input_bytes = {em.config.buffers.input_bytes}",
            )
    em.tile_pixels = tiling.tile_h * tiling.tile_w
    if weights.k_group > 1:
        em.group_acc_slots(weights.k_group)
    post = Post(
        mode=PostMode.REQUANT,
        out_zero_point=y.zero_point,
        act_min=cq.act_min,
        act_max=cq.act_max,
        prelu=int(negative is not None),
    )
    out_tiles = tiling.output_tiles(*out_hw)
    shared = None
    if len(xs) > 1 and streamed and groups == 1:
        shared = shared_tiling(em, out_hw, window, n_ct, n_kt, passes, streamed, len(xs))
    if shared is not None:
        # The cost model decides: the images one after the other, or sharing each chunk.
        cost = functools.partial(estimate_cycles, em.hardware, out_hw, window, n_ct, n_kt, passes)
        alone = len(xs) * cost(
            (tiling.tile_h, tiling.tile_w),
            streamed,
            uneven=tiling.uneven,
            single_slot=tiling.waits(out_hw),
        )
        together = cost(
            (shared.tile_h, shared.tile_w),
            streamed,
            images=len(xs),
            uneven=shared.uneven,
            single_slot=shared.waits(out_hw),
        )
        if together >= alone:
            shared = None
    if shared is not None:
        tiling = shared
        out_tiles = tiling.output_tiles(*out_hw)
        em.tile_pixels = tiling.tile_h * tiling.tile_w * len(xs)
        # Every image's input window of a tile at once: in_slots slots per image.
        slots = replace(tiling, in_slots=tiling.in_slots * len(xs))
        conv = ConvPasses(em, x, window, step, weights, slots)
        lower_images_per_chunk(em, conv, xs, ys, out_tiles, layer_params, post, phase)
    else:
        conv = ConvPasses(em, x, window, step, weights, tiling)
        for image_x, image_y in zip(xs, ys, strict=True):
            conv.x = image_x
            lower_image(em, conv, out_tiles, layer_params, post, image_y, phase)
    mapping = {
        "unit": "array",
        "tile": [tiling.tile_h, tiling.tile_w],
        "tiles": len(out_tiles),
        "k_tiles": n_kt,
        **({"k_group": weights.k_group} if weights.k_group > 1 else {}),
        "c_tiles": n_ct,
        "weights": "resident" if weights.resident_base is not None else "streamed",
        "channel_chunk": min(tiling.channel_chunk, n_ct),
    }
    if depthwise:
        mapping["mode"] = f"depthwise, {depthwise * s} of {rows} rows"
    elif em.config.array.dataflow == "os":
        mapping["dataflow"] = "output-stationary"
    elif em.config.array.dataflow == "is":
        mapping["dataflow"] = "input-stationary"
    if shared is not None:
        mapping["batch"] = "images share each streamed weight chunk"
    return mapping


def shared_tiling(
    em: Emitter,
    out_hw: tuple[int, int],
    window: Window,
    n_ct: int,
    n_kt: int,
    passes: int,
    streamed: int,
    images: int,
) -> Tiling | None:
    """The tiling of a layer whose streamed weight chunks serve ``images`` images at once
    (:func:`lower_images_per_chunk`): the tile of one image when the input, accumulator and
    output buffers are shared by the images (each has 1/``images`` of them); None when no
    tile holding every channel tile fits. :func:`lower_conv` takes it when the cost model
    (:func:`~accel.compiler.tiling.estimate_cycles`) says it is faster than the images one
    after the other."""
    hw = em.hardware
    scaled = replace(
        hw,
        input_words=hw.input_words // images,
        acc_rows=hw.acc_rows // images,
        output_words=hw.output_words // images,
    )
    try:
        tiling = choose_tiling(scaled, out_hw, window, n_ct, n_kt, passes, streamed_words=streamed)
    except TilingError:
        return None
    return tiling if tiling.channel_chunk >= n_ct else None


def lower_images_per_chunk(
    em: Emitter,
    conv: ConvPasses,
    xs: list[TensorLayout],
    ys: list[TensorLayout],
    out_tiles: list[tuple[int, int, int, int]],
    layer_params: Params,
    post: Post,
    phase: Phase,
) -> None:
    """A layer with streamed weights over a batch, the images inside the weight loop: per
    output tile, load every image's input window; per k tile, each streamed weight chunk
    once, then its COMPUTE for every image (each into its own accumulators); then POST and
    STORE every image's tile."""
    cols, ct_ranges = em.cols, conv.weights.ct_ranges
    n_ct = ceil_div(xs[0].channels, em.rows)
    for tile in out_tiles:
        pixels = tile[2] * tile[3]
        inputs = []
        for x in xs:
            conv.x = x
            inputs.append(conv.load_inputs(tile, range(n_ct)))
        for kt, (lo, hi) in enumerate(ct_ranges):
            acc_base = em.next_acc_slot()
            bases = [acc_base + i * pixels for i in range(len(xs))]
            conv.compute_images(kt=kt, cts=range(lo, hi), inputs=inputs, acc_bases=bases)
            pw = em.param_word(layer_params, kt)
            for base, y in zip(bases, ys, strict=True):
                em.post_and_store(base, pw, post, y, tile, kt * cols, cols, phase)


def lower_image(
    em: Emitter,
    conv: ConvPasses,
    out_tiles: list[tuple[int, int, int, int]],
    layer_params: Params,
    post: Post,
    y: TensorLayout,
    phase: Phase,
) -> None:
    """Every output tile of one image (input ``conv.x``, output ``y``, pixels of ``phase``),
    in program order; input-stationary k groups: per group its COMPUTEs, then POST and STORE
    of each of its k tiles."""
    cols, tiling, wt = em.cols, conv.tiling, conv.weights
    ct_ranges = wt.ct_ranges
    n_ct, n_kt = ceil_div(conv.x.channels, em.rows), len(ct_ranges)
    if len(out_tiles) * n_kt >= VECTOR_MIN and wt.k_group == 1:
        conv.lower_layer(out_tiles, layer_params, post, y, phase)
        out_tiles_left = []
    else:
        out_tiles_left = out_tiles
    for tile in out_tiles_left:
        inputs = None
        if tiling.channel_chunk >= n_ct:
            inputs = conv.load_inputs(tile, range(n_ct))
        for g, (lo, hi) in enumerate(ct_ranges):
            acc_base = em.next_acc_slot()
            if inputs is not None:
                conv.compute(kt=g, cts=range(lo, hi), inputs=inputs, acc_base=acc_base, first=True)
            else:
                for chunk_lo in range(lo, hi, tiling.channel_chunk):
                    chunk = range(chunk_lo, min(hi, chunk_lo + tiling.channel_chunk))
                    conv.compute(
                        kt=g,
                        cts=chunk,
                        inputs=conv.load_inputs(tile, chunk),
                        acc_base=acc_base,
                        first=chunk_lo == lo,
                    )
            if wt.k_group == 1:
                pws = [em.param_word(layer_params, g)]
            else:
                kt0 = g * wt.k_group
                pws = em.group_param_words(layer_params, range(kt0, kt0 + wt.group_tiles(g)))
            for q, pw in enumerate(pws):
                kt = g * wt.k_group + q
                base = acc_base + q * tile[2] * tile[3]
                em.post_and_store(base, pw, post, y, tile, kt * cols, cols, phase)
