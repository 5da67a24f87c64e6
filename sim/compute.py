"""The compute engine: front end, weight loader, feeder, then the array or the vector unit
writing the accumulator buffer. RTL: :mod:`hdl.compute`.

Two views of the same block:

* :func:`execute`, the data path: one COMPUTE instruction's effect on the accumulators, from
  the words the window generator feeds (:mod:`sim.window`) and, in ARRAY mode, the weight
  tiles (:mod:`sim.array`); the vector modes are :mod:`sim.vector`.
* :class:`ComputeEngine`, stepped once per cycle by the trace mode (:mod:`sim.trace`): the
  hardware's three parts, the front end (takes an instruction once its semaphores are
  acquired), the weight loader (one array row per cycle into the shadow registers) and the
  feeder (one input word per cycle into the array or the vector unit). Nothing here uses the
  closed form of :func:`accel.timing.compute_timing` (the fast mode's), only the pipeline
  constants; the tests hold the two to the same start and done cycles. It also checks the
  physical invariant the closed form relies on: an accumulator row whose value a pass uses
  is never read before its previous write has landed (:class:`accel.timing.HazardError`).
"""

from __future__ import annotations

from collections import deque

import numpy as np

from accel import timing
from accel import window as accel_window
from accel.config import AccelConfig
from accel.isa import Buffer, Compute, ComputeMode, Engine
from accel.program import Program
from sim import array, vector, window
from sim.buffers import Buffers
from sim.dma import load_span

__all__ = ["ArrayProducts", "ComputeEngine", "execute"]


class ArrayProducts:
    """The array's products of a whole program, several instructions per matrix product.

    The k tiles of an output tile are consecutive COMPUTE instructions feeding the same input
    words, each with its own weight tiles; multiplied one by one they are thin products
    (``cols`` columns). Before the run this finds, from the program and the order its
    instructions execute in, runs of such instructions whose input words and weight words no
    LOAD writes between the first of the run and each member (every writer of the input and
    weight buffers is a LOAD). The first member of a run multiplies its words by every
    member's weight tiles in one product, and each member takes its own columns when it
    executes, after checking (:meth:`sim.buffers.Buffers.unchanged_since`) that no LOAD has
    written its input or weight words since the product: each instruction's effect is
    computed from exactly the buffer contents it reads.
    """

    #: Most instructions multiplied together (bounds the memory a run's products take).
    MOST = 64

    def __init__(self, program: Program, position: dict[Engine, list[int]]) -> None:
        """``position[engine][i]``: where instruction ``i`` of ``engine`` executes in the run
        (:func:`sim.run.start_order`)."""
        self._rows = program.config.array.rows
        self._computes = program.streams[Engine.COMPUTE]
        load_at, compute_at = position[Engine.LOAD], position[Engine.COMPUTE]
        loads: dict[int, list[tuple[int, int, int]]] = {Buffer.INPUT: [], Buffer.WEIGHT: []}
        for i, load in enumerate(program.streams[Engine.LOAD]):
            if load.buffer in loads:
                loads[load.buffer].append((load_at[i], *load_span(load, program.config)))
        self._runs: dict[int, list[int]] = {}  # first member -> the members, it first
        self._first: dict[int, int] = {}  # member -> the first member of its run
        inputs, weights = loads[Buffer.INPUT], loads[Buffer.WEIGHT]
        next_input = next_weight = 0  # the first load not yet seen, by position
        run: list[int] = []
        key: tuple | None = None
        span = (0, 0)
        dirty = False  # an input load since the run began wrote its words
        written: list[tuple[int, int]] = []  # weight words loaded since the run began
        for i, instr in enumerate(self._computes):
            here = compute_at[i]
            while next_input < len(inputs) and inputs[next_input][0] < here:
                _, lo, hi = inputs[next_input]
                dirty = dirty or (lo < span[1] and span[0] < hi)
                next_input += 1
            while next_weight < len(weights) and weights[next_weight][0] < here:
                written.append(weights[next_weight][1:])
                next_weight += 1
            if instr.mode != ComputeMode.ARRAY or instr.depthwise:
                key = None
                continue
            this = _walk_key(instr)
            lo, hi = self._weights(instr)
            joins = (
                this == key
                and len(run) < self.MOST
                and not dirty
                and not any(a < hi and lo < b for a, b in written)
            )
            if not joins:
                run, key, span, dirty, written = [], this, _input_span(instr), False, []
                self._runs[i] = run
            run.append(i)
            self._first[i] = run[0]
        self._pending: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def _weights(self, instr: Compute) -> tuple[int, int]:
        return instr.w_base, instr.w_base + instr.weight_words(self._rows)

    def products(self, index: int, buffers: Buffers) -> np.ndarray:
        """(pixels, k_tiles * cols) int64: COMPUTE[index]'s sums over its passes, exactly."""
        instr = self._computes[index]
        if self._first[index] != index:
            loads, span, walk, sums = self._pending.pop(index)
            if _walk_key(instr) != walk:  # the plan forbids it; tests/test_sim_dataflow.py
                raise AssertionError(f"COMPUTE[{index}] reads other words than its run's first")
            lo, hi = self._weights(instr)
            if not (
                buffers.unchanged_since(Buffer.WEIGHT, lo, hi, loads)
                and buffers.unchanged_since(Buffer.INPUT, *span, loads)
            ):  # the plan forbids it; tests/test_sim_dataflow.py plants a wrong plan
                raise AssertionError(f"COMPUTE[{index}]: its words changed after the product")
            array.weight_tiles(instr, buffers.weight, self._rows)  # its bounds check
            return sums
        members = self._runs[index]
        stacked = [
            array.weight_tiles(self._computes[m], buffers.weight, self._rows) for m in members
        ]
        words = window.read_pixel_words(instr, buffers.input)
        lhs = words.reshape(words.shape[0], -1)
        sums = array.multiply(
            lhs, np.concatenate(stacked, axis=1) if len(stacked) > 1 else stacked[0]
        )
        ends = np.cumsum([tile.shape[1] for tile in stacked])
        span = _input_span(instr) if len(members) > 1 else (0, 0)
        walk = _walk_key(instr)
        for k, member in enumerate(members[1:], start=1):
            self._pending[member] = (buffers.loads, span, walk, sums[:, ends[k - 1] : ends[k]])
        return sums[:, : ends[0]]


def _walk_key(instr: Compute) -> tuple:
    """What fixes the words an ARRAY instruction feeds (given the input buffer's contents)."""
    return (instr.in_base, instr.pad_value, instr.window_geometry())


def _input_span(instr: Compute) -> tuple[int, int]:
    """The input-buffer words ``[lo, hi)`` an instruction's window walk reads."""
    addr, valid = accel_window.feed_addresses(instr)
    used = addr[valid]
    return (int(used.min()), int(used.max()) + 1) if used.size else (0, 0)


def execute(
    instr: Compute,
    buffers: Buffers,
    config: AccelConfig,
    products: ArrayProducts | None = None,
    index: int = 0,
) -> None:
    """Apply one COMPUTE instruction (COMPUTE[``index``]) to ``buffers.acc``; ``products``
    multiplies ARRAY instructions in runs (:class:`ArrayProducts`). An input-stationary
    instruction of several k tiles writes k tile ``q``'s ``cols`` channels into the rows from
    ``acc_base + q*k_stride`` (:class:`accel.isa.Compute`)."""
    bases = [instr.acc_base + q * instr.k_stride for q in range(instr.k_tiles)]
    for base in bases:
        buffers.check("acc", base, instr.pixels)
    target = buffers.acc[instr.acc_base : instr.acc_base + instr.pixels]
    if instr.mode == ComputeMode.ARRAY and instr.depthwise:
        tile = array.weight_tiles(instr, buffers.weight, config.array.rows)
        sums = array.depthwise_sums(instr, window.read_windows(instr, buffers.input), tile)
        if instr.accumulate:
            sums = sums + target
        target[...] = sums.astype(np.int32)
    elif instr.mode == ComputeMode.ARRAY:
        if products is None:
            tiles = array.weight_tiles(instr, buffers.weight, config.array.rows)
            sums = array.array_sums(window.read_windows(instr, buffers.input), tiles)
        else:
            sums = products.products(index, buffers)
        cols = config.array.cols
        for q, base in enumerate(bases):
            target = buffers.acc[base : base + instr.pixels]
            part = sums[:, q * cols : (q + 1) * cols]
            if instr.accumulate:  # int32 accumulators wrap, and so does the int64 -> int32 cast
                target += part
            else:
                target[...] = part
    else:
        windows = window.read_windows(instr, buffers.input)
        lanes = config.vector_lanes
        result = vector.vector_result(instr, windows[..., :lanes], target[:, :lanes])
        target[:, :lanes] = result.astype(np.int32)
        target[:, lanes:] = 0


#: The output-stationary PE pipeline behind the drain (``accel.timing``, OUTPUT-STATIONARY):
#: a step's product is registered, then added into the accumulator, whose last sum of a group
#: is registered into the PE's hold register: a PE's hold is valid OS_HOLD cycles after it
#: multiplies the group's last step.
OS_HOLD = 2


class _Pass:
    def __init__(
        self, index: int, instr_pos: int, words: int, unit: str, last: bool, reads: bool
    ) -> None:
        self.index = index  # position among all passes of the program
        self.instr_pos = instr_pos
        self.words = words  # words it feeds (output-stationary: the whole instruction's)
        self.unit = unit  # accel.timing.compute_unit
        self.vector = unit == timing.VECTOR_UNIT
        self.os = unit == timing.OS_UNIT
        self.is_ = unit == timing.IS_UNIT
        self.group = 0  # input-stationary: the tile's pixel group
        self.read_at: int | None = None  # input-stationary: cycle its transposer read began
        self.last = last  # last pass of its instruction
        self.reads = reads  # uses the rows' old values (not an overwriting first pass)
        self.weights_at: int | None = None  # cycle its weight load began
        self.fed_from: int | None = None  # cycle its first word was fed


class ComputeEngine:
    """The compute engine, one cycle at a time (see the module docstring).

    Each cycle the trace mode calls, in this order: :meth:`feed` (returns the instruction
    whose last word was fed, with its done cycle), :meth:`release`, then :meth:`take` if
    :attr:`idle` and the next instruction's semaphores are available, then
    :meth:`load_weights`.

    An output-stationary instruction is one pass of ``G*S`` words (``accel.timing``,
    OUTPUT-STATIONARY), its weights read beside its words: no weight load. The feeder walks
    its words in the order group, pass, row; when a group's last step is fed, the engine
    follows the group's sums down the drain (:meth:`_drain`) to their accumulator writes.

    An input-stationary instruction is a pass per tile (pixel group, then pass: ``k_tiles *
    cols`` words, its weight vectors), each loaded through the transposer before the weight
    loader (:meth:`load_weights`); k tile ``q``'s sums leave column ``c`` into accumulator
    row ``q*k_stride + c`` of its group.
    """

    def __init__(self, config: AccelConfig) -> None:
        self._rows, self._cols = config.array.rows, config.array.cols
        self._front: list[_Pass] | None = None  # passes of the instruction the front end holds
        self._loader_free_at = 0
        self._queue: deque[_Pass] = deque()  # passes whose weights are loading or loaded
        self._feeding: _Pass | None = None
        self._fed = 0
        self._slot_end = 0  # first cycle the feed slot is free
        self._last_unit = timing.WS_UNIT
        self._last_done = 0
        self._fed_from: dict[int, int] = {}  # pass index -> cycle its feed began
        # accumulator row -> (cycle its last write lands, the instruction writing it)
        self._acc_write: dict[int, tuple[int, int]] = {}
        self._passes = 0
        self._stream: list[Compute] = []
        self._next_load = 0  # the front end's first pass whose weight load has not begun
        self._next_read = 0  # input-stationary: its first tile the transposer has not read
        self._reader_free_at = 0

    @property
    def idle(self) -> bool:
        """The front end holds no instruction (it may take one this cycle)."""
        return self._front is None

    @property
    def feeding(self) -> str:
        """What the feeder is doing, for the trace dump: ``pass/word`` or ``-``."""
        return f"{self._feeding.index}/{self._fed}" if self._feeding else f"-/{self._fed}"

    def _access(self, p: _Pass, instr: Compute, row: int, read_at: int, latency: int) -> None:
        """Accumulator ``row`` is read in ``read_at`` and written ``latency`` cycles later;
        raise :class:`accel.timing.HazardError` if the pass uses a value not yet written."""
        # The read port is write-transparent: a read in the cycle of the write sees it.
        written_at, writer = self._acc_write.get(row, (-1, -1))
        if p.reads and written_at > read_at:
            raise timing.HazardError(
                f"COMPUTE[{p.instr_pos}] (layer {instr.layer}) reads accumulator row {row} "
                f"in cycle {read_at}, before COMPUTE[{writer}] (layer "
                f"{self._stream[writer].layer}) writes it in cycle {written_at}"
            )
        self._acc_write[row] = (read_at + latency, p.instr_pos)

    def _drain(self, p: _Pass, instr: Compute, group: int, last_step: int) -> int:
        """Group ``group`` of an output-stationary instruction fed its last step at row 0 in
        cycle ``last_step``: its sums leave through the drain chains, each written into its
        accumulator row; returns the cycle after the group's last write."""
        rows = self._rows

        def exit_cycle(row: int, c: int) -> int:
            # PE (row, c) multiplies the last step in last_step + row + c; column c's chain
            # loads the holds when its bottom PE's is valid, then shifts down a row per cycle.
            load = last_step + (rows - 1) + c + OS_HOLD
            return load + 1 + (rows - 1 - row)

        for row in range(min(rows, instr.pixels - group * rows)):  # dummy rows: no write
            read_at = exit_cycle(row, 0)  # column 0; the others alike
            self._access(p, instr, instr.acc_base + group * rows + row, read_at, timing.ACC_LATENCY)
        return exit_cycle(0, self._cols - 1) + timing.ACC_LATENCY + 1

    def feed(self, cycle: int, stream: list[Compute]) -> tuple[int, int] | None:
        """The feeder: start the next pass once its weight load has begun (in an earlier
        cycle) and the feed slot is free (a switch between the units also waits for the
        previous instruction to finish); then feed one word. Returns ``(done cycle,
        instruction index)`` when the word was its instruction's last."""
        self._stream = stream
        if self._feeding is None and self._queue and cycle >= self._slot_end:
            p = self._queue[0]
            switch_ok = p.unit == self._last_unit or cycle >= self._last_done
            if p.weights_at is not None and p.weights_at < cycle and switch_ok:
                self._queue.popleft()
                p.fed_from = self._fed_from[p.index] = cycle
                self._feeding, self._fed = p, 0
                slot = max(p.words, timing.VECTOR_MIN_PASS) if p.vector else p.words
                self._slot_end = cycle + slot
                self._last_unit = p.unit
        if self._feeding is None:
            return None
        p = self._feeding
        instr = stream[p.instr_pos]
        done = None
        if p.os:
            steps = instr.passes * self._rows
            group, step = divmod(self._fed, steps)
            if step == steps - 1:  # this cycle, row 0 takes the group's last step
                done = self._drain(p, instr, group, cycle)
        elif p.is_:
            q, n = divmod(self._fed, self._cols)
            if n == 0:  # k tile q's vector 0: column c's sum leaves in cycle + rows + c
                rows = self._rows
                first = instr.acc_base + q * instr.k_stride + p.group * self._cols
                for c in range(min(self._cols, instr.pixels - p.group * self._cols)):
                    row = first + c  # dummy columns: none
                    self._access(p, instr, row, cycle + rows + c, timing.ACC_LATENCY)
        else:
            row = instr.acc_base + self._fed
            read_at = cycle if p.vector else cycle + self._rows  # column 0; the others alike
            latency = timing.VECTOR_LATENCY if p.vector else timing.ACC_LATENCY
            self._access(p, instr, row, read_at, latency)
        self._fed += 1
        if self._fed < p.words:
            return None
        self._feeding = None
        if not p.last:
            return None
        if p.vector:
            done = cycle + timing.VECTOR_LATENCY + 1
        elif not p.os:
            done = cycle + self._rows + self._cols - 1 + timing.ACC_LATENCY + 1
        self._last_done = done
        return done, p.instr_pos

    def release(self, cycle: int) -> None:
        """The front end lets its instruction go once it has issued everything it owns: its
        last weight load is complete and its last pass is feeding (for the vector unit and
        the output-stationary array, in the last cycle of its last pass's slot)."""
        if self._front is None:
            return
        last = self._front[-1]
        if last.vector or last.os:
            free = last.fed_from is not None and cycle >= self._slot_end - 1
        else:
            free = cycle >= self._loader_free_at and last.fed_from is not None
        if free:
            self._front = None

    def take(self, instr: Compute, index: int, cycle: int) -> None:
        """The front end takes instruction ``index`` (its semaphores are acquired)."""
        unit = timing.compute_unit(instr)
        if unit == timing.OS_UNIT:  # one slot: every group, pass and row
            groups, steps = timing.os_groups(instr, self._rows)
            passes = [(groups * steps, True, bool(instr.accumulate))]
        elif unit == timing.IS_UNIT:  # tile j = (group j // P, pass j % P): L vectors
            tiles = timing.is_tiles(instr, self._cols)
            words = timing.is_words(instr, self._cols)
            passes = [
                (words, j == tiles - 1, j % instr.passes > 0 or bool(instr.accumulate))
                for j in range(tiles)
            ]
        else:
            passes = [
                (instr.pixels, j == instr.passes - 1, j > 0 or bool(instr.accumulate))
                for j in range(instr.passes)
            ]
        self._front = [
            _Pass(self._passes + j, index, words, unit, last=last, reads=reads)
            for j, (words, last, reads) in enumerate(passes)
        ]
        self._passes += len(passes)
        self._next_load = self._next_read = 0
        if unit == timing.IS_UNIT:
            for j, p in enumerate(self._front):
                p.group = j // instr.passes
        if unit not in (
            timing.WS_UNIT,
            timing.IS_UNIT,
        ):  # no weight load: every pass is ready at once
            for p in self._front:
                p.weights_at = cycle
            self._queue.extend(self._front)
            self._next_load = len(self._front)

    def load_weights(self, cycle: int) -> None:
        """The weight loader: one pass at a time, ``rows`` cycles each; the shadow registers
        are free once the previous pass has begun feeding (this cycle included).

        Input-stationary, the loader's rows come from the transposer: it reads tile ``j``'s
        ``cols`` window words one per cycle into buffer ``j % 2`` once the reader is free and
        tile ``j - 2``'s rows have left that buffer; the rows may load from the cycle after
        the last word is registered (``accel.timing``, INPUT-STATIONARY)."""
        if self._front is None:
            return
        front = self._front
        if front[0].is_ and self._next_read < len(front) and cycle >= self._reader_free_at:
            j = self._next_read
            before = front[j - 2].weights_at if j >= 2 else -(1 << 40)
            if before is not None and before + self._rows <= cycle:
                front[j].read_at = cycle
                self._reader_free_at = cycle + self._cols
                self._next_read += 1
        if self._next_load >= len(front):
            return
        p = front[self._next_load]
        if p.is_ and (p.read_at is None or cycle < p.read_at + self._cols + 1):
            return
        previous = self._fed_from.get(p.index - 1) if p.index else -1
        if cycle >= self._loader_free_at and previous is not None and previous <= cycle:
            p.weights_at = cycle
            self._loader_free_at = cycle + self._rows
            self._queue.append(p)
            self._next_load += 1
