"""Tiling: the output tile of one layer, chosen by a cost model of the array (weight- or
output-stationary, ``array.dataflow``) or the vector unit.

``choose_tiling(hw, out_hw, window, c_tiles, k_tiles, passes) -> Tiling``: the output tile
that minimises the estimated cycles among those whose input window, accumulators and
outputs fit the buffers (double buffered, or the input window in one slot when the estimate
says the wait for it costs less than smaller tiles), preferring whole output rows. A pure function
of its arguments (the buffer capacities in words, array size and DRAM timing in
:class:`Hardware`, the layer's geometry in :class:`Window` and its tile counts); it raises
:class:`TilingError` when even one output pixel does not fit, and the caller names the layer.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from accel import timing
from accel.config import AccelConfig

ceil_div = timing.ceil_div
TILING_SLACK = 0.002
#: Cycles the tiler charges per instruction. The machine issues instructions for free, but
#: programs (and simulations) grow with them: this keeps tiles from shrinking for a gain of a
#: fraction of a cycle per instruction.
INSTRUCTION_COST = 0.1
#: Input-stationary: the mean cycles a tile takes beyond ``cols`` in the steady state (two
#: tiles per ``2*rows + 1`` cycles, ``accel.timing``).
IS_TILE_EXTRA = 0.5


class TilingError(ValueError):
    """No tile fits the buffers; the message names the buffer (the caller adds the layer)."""


@dataclass(frozen=True)
class Hardware:
    """What the cost model needs of an accelerator (:meth:`of` reads an ``AccelConfig``)."""

    rows: int  # array rows: channels per input word
    cols: int  # array columns: output channels per weight word
    input_words: int
    acc_rows: int
    output_words: int
    dram_bandwidth: int  # bytes per cycle
    dram_latency: int  # cycles per request
    input_bytes: int  # buffers.input_bytes, named in the error when one pixel does not fit
    weight_banks: int = 1  # buffers.weight_banks: weight words a LOAD writes per cycle
    os: bool = False  # array.dataflow == "os": dense layers run output-stationary
    is_: bool = False  # array.dataflow == "is": dense layers run input-stationary

    @classmethod
    def of(cls, config: AccelConfig) -> Hardware:
        return cls(
            rows=config.array.rows,
            cols=config.array.cols,
            input_words=config.input_words,
            acc_rows=config.acc_rows,
            output_words=config.output_words,
            dram_bandwidth=config.dram.bandwidth,
            dram_latency=config.dram.latency,
            input_bytes=config.buffers.input_bytes,
            weight_banks=config.buffers.weight_banks,
            os=config.array.dataflow == "os",
            is_=config.array.dataflow == "is",
        )


@dataclass(frozen=True)
class Window:
    """A sliding-window layer as the window generator sees it."""

    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    dilation: tuple[int, int] = (1, 1)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)  # top, bottom, left, right

    def input_extent(self, out_h: int, out_w: int) -> tuple[int, int]:
        (r, s), (sh, sw), (dh, dw) = self.kernel, self.stride, self.dilation
        return (out_h - 1) * sh + (r - 1) * dh + 1, (out_w - 1) * sw + (s - 1) * dw + 1


@dataclass(frozen=True)
class Tiling:
    tile_h: int
    tile_w: int
    in_slots: int
    in_slot_words: int
    channel_chunk: int  # channel tiles held in the input buffer at once
    #: Tiles of exactly ``tile_h`` x ``tile_w`` and smaller ones at the bottom and right
    #: edges, instead of an even split (output-stationary: whole groups of ``rows`` pixels).
    uneven: bool = False
    #: Input-stationary: k tiles per COMPUTE (``Compute.k_extra + 1``), their accumulators
    #: side by side in one slot (``k_group`` x the tile's pixels rows).
    k_group: int = 1

    def waits(self, out_hw: tuple[int, int]) -> bool:
        """One input slot and several tiles of an ``out_hw`` map: each tile's input load
        waits for the tile before it (``estimate_cycles``'s ``single_slot``)."""
        return self.in_slots == 1 and (self.tile_h < out_hw[0] or self.tile_w < out_hw[1])

    def output_tiles(self, height: int, width: int) -> list[tuple[int, int, int, int]]:
        """The ``(p0, q0, th, tw)`` output tiles of a ``height`` x ``width`` map, row-major."""
        cut = split_uneven if self.uneven else split
        return [
            (p0, q0, th, tw)
            for p0, th in cut(height, self.tile_h)
            for q0, tw in cut(width, self.tile_w)
        ]


def split(size: int, tile: int) -> list[tuple[int, int]]:
    """Even split of ``size`` into ``ceil(size/tile)`` (start, length) pieces."""
    count = ceil_div(size, tile)
    base = ceil_div(size, count)
    return [(start, min(base, size - start)) for start in range(0, size, base)]


def split_uneven(size: int, tile: int) -> list[tuple[int, int]]:
    """``size`` in pieces of ``tile``, the last one what is left."""
    return [(start, min(tile, size - start)) for start in range(0, size, tile)]


def os_groups(out_hw: tuple[int, int], tile: tuple[int, int], rows: int, uneven: bool) -> int:
    """Pixel groups of ``rows`` (``accel.timing``, OUTPUT-STATIONARY) over every output tile
    of an ``out_hw`` map in tiles of ``tile``."""
    cut = split_uneven if uneven else split
    heights = Counter(h for _, h in cut(out_hw[0], tile[0]))  # at most two sizes each
    widths = Counter(w for _, w in cut(out_hw[1], tile[1]))
    return sum(m * n * ceil_div(h * w, rows) for h, m in heights.items() for w, n in widths.items())


def estimate_cycles(
    hw: Hardware,
    out_hw: tuple[int, int],
    window: Window,
    c_tiles: int,
    k_tiles: int,
    passes: int,
    tile: tuple[int, int],
    streamed_words: int = 0,
    *,
    vector: bool = False,
    images: int = 1,
    exposed_c_tiles: int | None = None,
    depthwise: bool = False,
    uneven: bool = False,
    k_group: int = 1,
    single_slot: bool = False,
) -> float:
    """The cost model of :func:`choose_tiling`: the estimated cycles of a layer in output
    tiles of ``tile`` (see there). ``images`` > 1: every tile holds that many images' tiles
    (a batch whose images share each streamed weight chunk), so a tile loads and computes
    ``images`` times as much but streams its weights once. ``exposed_c_tiles``: the channel
    tiles of the first load, which nothing overlaps, when fewer than ``c_tiles`` (k tiles
    that load their own channel tiles: the first k tile's). ``single_slot``: the
    input buffer holds one tile's window, so each tile's input load waits for the tile before
    it to finish (its weights still stream during that compute). A pass of ``pixels`` costs
    the array ``max(pixels, rows)`` cycles weight-stationary and ``ceil(pixels / rows) *
    rows`` output-stationary (``hw.os``, not ``depthwise``: the depthwise mode is
    weight-stationary on every machine; ``accel.timing``), in tiles split as
    :attr:`Tiling.uneven` says. Input-stationary (``hw.is_``) an instruction streams
    ``k_group`` k tiles: a pass costs ``ceil(pixels / cols)`` tiles of ``k_group * cols``
    cycles, ``1/2`` more when ``k_group`` is 1 (two transpose buffers: two tiles per ``2*rows
    + 1`` cycles), and each instruction the transposer's fill, ``rows + 1`` cycles more than
    its stream."""
    p, q = out_hw
    th, tw = tile
    rows, cols = hw.rows, hw.cols
    word_beats = ceil_div(rows, hw.dram_bandwidth)
    ih, iw = window.input_extent(th, tw)
    tiles = ceil_div(p, th) * ceil_div(q, tw)
    pixels = th * tw
    if vector:
        slot = max(pixels, timing.VECTOR_MIN_PASS)
    elif hw.os and not depthwise:  # the mean over the tiles, the edge ones included
        slot = os_groups(out_hw, tile, rows, uneven) * rows / tiles
    elif hw.is_ and not depthwise:  # groups of cols pixels, a tile per group and pass
        extra = IS_TILE_EXTRA if k_group == 1 else 0
        slot = os_groups(out_hw, tile, cols, uneven) * (k_group * cols + extra) / tiles
    else:
        slot = max(pixels, rows)
    instrs = ceil_div(k_tiles, k_group)  # per tile and reduction pass: COMPUTE instructions
    compute = images * instrs * passes * slot
    if hw.is_ and not vector and not depthwise:  # between instructions: the transposer's fill
        compute += images * instrs * (rows + 1)
    inputs = hw.dram_latency + images * c_tiles * ih * iw * word_beats
    banks = hw.weight_banks  # pipelined DMA: a unit of `banks` weight words per beat or more
    load = inputs + ceil_div(streamed_words, banks) * ceil_div(banks * cols, hw.dram_bandwidth)
    drain = rows + cols + 2 * pixels + timing.POST_LATENCY + hw.dram_latency
    if k_group > 1:  # the last group's other k tiles: POST and STORE after its COMPUTE
        drain += (k_group - 1) * max(pixels, (pixels + timing.POST_LATENCY + hw.dram_latency) / 2)
    instructions = tiles * images * (3 * k_tiles + c_tiles)
    first = load
    if exposed_c_tiles is not None:
        first = hw.dram_latency + images * exposed_c_tiles * ih * iw * word_beats
    # One input slot: a tile's inputs load after the tile before it has computed.
    per_tile = max(compute, load) + (inputs if single_slot else 0)
    return first + tiles * per_tile + drain + INSTRUCTION_COST * instructions


def choose_tiling(
    hw: Hardware,
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
    """The output tile that minimises the estimated cycles among those whose buffers fit.

    ``depthwise``: the layer runs in the array's depthwise mode (weight-stationary on an
    output-stationary machine too). ``k_group``: input-stationary, the most k tiles one
    COMPUTE may stream (what the weight buffer allows); each tile takes as many as its
    accumulator slot holds (:attr:`Tiling.k_group`). ``loaded_c_tiles``: the channel tiles
    an output tile loads in all when the k tiles load their own (``c_tiles`` at a time: a
    depthwise layer's k tiles one channel tile each), for the estimate; ``c_tiles`` by
    default.

    ``c_tiles`` is the number of channel tiles of the input window loaded per output tile,
    ``k_tiles`` the number of k tiles (accumulator results per output tile), ``passes`` the
    number of passes per k tile (per channel tile for the vector unit) and
    ``streamed_words`` the weight words reloaded for every output tile. The estimate
    is the first tile's load (exposed), then per tile the larger of its compute and the
    loads of the next tile (double buffered), then the drain of the last tile; ties go to
    the larger tile.
    """
    p, q = out_hw
    acc_cap = hw.acc_rows // 2
    out_cap = hw.output_words // 2

    def input_words(th: int, tw: int) -> int:
        ih, iw = window.input_extent(th, tw)
        return ih * iw

    def fits(th: int, tw: int, chunk: int) -> tuple[int, int] | None:
        """(slots, words per slot): two slots so loads overlap compute, even for a single
        tile (it then overlaps the previous layer), else one when that is all that fits (a
        tile's load then waits for the tile before it, which the estimate charges: a larger
        tile can still win, with fewer weight reloads or idle output-stationary rows)."""
        if th * tw > acc_cap or th * tw > out_cap:
            return None
        words = chunk * input_words(th, tw)
        if words <= hw.input_words // 2:
            return 2, hw.input_words // 2
        if chunk == c_tiles and words <= hw.input_words:
            return 1, hw.input_words
        return None

    loaded = c_tiles if loaded_c_tiles is None else loaded_c_tiles

    def groups(th: int, tw: int) -> list[int]:
        """The k groups a tile may take: balanced (``ceil(k_tiles / m)`` for ``m`` groups)
        up to what its accumulator slot and the weight buffer hold."""
        most = min(k_group, k_tiles, acc_cap // (th * tw))
        if most <= 1:
            return [1]
        return sorted(
            {ceil_div(k_tiles, m) for m in range(1, k_tiles + 1)} & set(range(1, most + 1))
        )

    def estimate(tiling: Tiling) -> float:
        return estimate_cycles(
            hw,
            out_hw,
            window,
            loaded,
            k_tiles,
            passes,
            (tiling.tile_h, tiling.tile_w),
            streamed_words,
            vector=vector,
            exposed_c_tiles=None if loaded_c_tiles is None else c_tiles,
            depthwise=depthwise,
            uneven=tiling.uneven,
            k_group=tiling.k_group,
            single_slot=tiling.waits(out_hw),
        )

    cap = min(acc_cap, out_cap)
    candidates = [(th, q) for th in range(min(p, cap // q), 0, -1)]
    candidates += [(1, tw) for tw in range(min(q - 1, cap), 0, -1)]
    scored = []
    os = (hw.os or hw.is_) and not vector and not depthwise
    if os:  # also rectangles of whole groups of rows pixels, where rows wider than q do not fit
        candidates += [
            (m // tw, tw)
            for m in range(hw.rows, cap + 1, hw.rows)
            for tw in range(min(q - 1, m), 1, -1)
            if m % tw == 0 and 1 < m // tw <= p
        ]
    for th, tw in candidates:
        placed = fits(th, tw, c_tiles)
        if os and placed is not None and (p % th or q % tw):
            # Output-stationary: full tiles and smaller edge ones may leave fewer idle rows.
            for group in groups(th, tw):
                tiling = Tiling(th, tw, *placed, c_tiles, uneven=True, k_group=group)
                scored.append((estimate(tiling), th * tw, tiling))
        th = ceil_div(p, ceil_div(p, th))  # same tile count, evened out
        tw = ceil_div(q, ceil_div(q, tw))
        placed = fits(th, tw, c_tiles)
        if placed is not None:
            for group in groups(th, tw):
                tiling = Tiling(th, tw, *placed, c_tiles, k_group=group)
                scored.append((estimate(tiling), th * tw, tiling))
    # A one-slot tiling of several tiles only beside a double-buffered one: where none fits,
    # chunking the channels keeps the loads overlapped.
    if any(not t.waits(out_hw) for _, _, t in scored):
        # The largest tile within TILING_SLACK of the best estimate: smaller tiles shave
        # a little pipeline fill but multiply instructions (and the time to simulate).
        best = min(cost for cost, _, _ in scored)
        near = [t for t in scored if t[0] <= best * (1 + TILING_SLACK)]
        return max(near, key=lambda t: (t[1], -t[0]))[2]
    # Even a single pixel with every channel tile does not fit: chunk the channels.
    per_tile = input_words(1, 1)
    chunk = (hw.input_words // 2) // per_tile
    if chunk < 1:
        raise TilingError(
            f"one output pixel needs a {window.kernel[0]}x{window.kernel[1]} input window "
            f"of {per_tile * hw.rows} bytes, more than half of buffers.input_bytes = "
            f"{hw.input_bytes}"
        )
    if acc_cap < 1:
        raise TilingError(
            f"buffers.acc_bytes holds {hw.acc_rows} accumulator row(s), a layer needs 2 "
            "(one pixel, double buffered)"
        )
    if out_cap < 1:
        raise TilingError(
            f"buffers.output_bytes holds {hw.output_words} output word(s), a layer needs 2 "
            "(one pixel, double buffered)"
        )
    return Tiling(1, 1, 2, hw.input_words // 2, chunk)
