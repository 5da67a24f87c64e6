# amaranth: UnusedElaboratable=no
"""The input-stationary datapath of the compute engine: reader, transposer, row loader,
weight stream, column rotation (``accel.timing``, INPUT-STATIONARY).

Only on an ``array.dataflow == "is"`` machine (square array, ``R`` = rows = ``Cc`` = cols),
beside the weight-stationary datapath (which keeps the depthwise mode and every ``is_ = 0``
instruction). An ``is_`` instruction is handed here in the cycle the front end takes it
(``take``) and runs as ``G*P`` tiles ``j`` = (pixel group ``j // P``, pass ``j % P``), each
through four stages; every stage waits only for what its recurrence names:

Reader (cycle ``rd[j]``)
    A grouped :class:`hdl.window.WindowGenerator` walks the instruction (groups of ``Cc``
    pixels, per group the passes, per pass the columns; dummy columns past the last pixel
    are padding) and reads the tile's ``Cc`` words in ``rd[j] + c`` from its own input
    buffer port (``rd``): the instruction's first word in ``take`` (``rd[0] = take``), the
    words of a tile back to back (``rd[j] >= rd[j-1] + Cc``), a tile's first word once its
    transposer buffer (``j % 2``) is free, i.e. the rows of tile ``j - 2`` have all been
    read (``rd[j] >= wl[j-2] + R``). Each word (``pad_value`` for padding and dummy columns)
    is written into the :class:`hdl.transposer.Transposer` in ``rd[j] + c + 1``. With the
    tile's last word the reader stores the tile's record (:func:`tile_layout`: weight
    address ``w_base + k*L``, accumulator row ``acc_base + g*Cc``, pixel columns, overwrite,
    last, the k tiles) beside its buffer.
Row loader (cycle ``wl[j]``)
    Reads the tile's rows from the transposer, row ``i`` in ``wl[j] + i`` (on ``w``, the
    array's shadow-register port, one cycle later, as a weight row from the weight loader),
    once the tile's last word is in its buffer (``wl[j] >= rd[j] + Cc + 1``), the previous
    tile's rows are loaded (``wl[j-1] + R``) and the previous tile has begun streaming
    (``f[j-1]``: one loaded tile waits for the stream at most, the array's shadow
    registers). The loader's record goes with the tile to the stream.
Stream (cycle ``f[j]``)
    Weight word ``n`` of the tile's ``L = k_tiles * Cc`` (``w_base + k*L + n``, channel
    ``n``) is read from the weight buffer in ``f[j] + n - 1`` (the compute engine gives this
    block the weight port then) and is on the array's input ``x`` in ``f[j] + n``,
    ``switch`` on word 0: the weight-stationary skew does the rest. A tile's stream begins
    once its rows have begun loading (``f[j] >= wl[j] + 1``), after the previous tile's words
    (``f[j-1] + L``) and,
    when the previous pass fed another unit, once that unit's last instruction is done
    (``free``, from :class:`hdl.feeder.Feeder`, which keeps the unit rule).
Rotation
    Each streamed word's record (:func:`hdl.rotation.is_meta_layout`) travels beside it in a
    delay line tapped at ``R + c`` for column ``c``: :class:`hdl.rotation.Rotation` sends
    column ``c``'s sum to bank ``n % Cc``, row ``acc_base + (n // Cc)*k_stride + g*Cc + c``
    (``a``: the record carries the bank and the k tile's row), and marks the
    instruction's final exit (``end``: the accumulator's ``complete`` one cycle later).

So ``done = f[last] + L - 1 + R + Cc - 1 + ACC_LATENCY + 1``, the array's latency after
the last word. The front end releases the instruction once every row is loaded and the last
tile streams (``loaded``, ``streamed``: ``max(wl[last] + R, f[last])``).

Ports
-----
i : In(stream.Signature(decoded_layout))
    The front end's input-stationary instruction, ``valid`` in its ``take`` cycle. The
    reader is idle then (``take >= wl[last] + R`` of an input-stationary instruction
    before), so it is always accepted.
rd : In(ReadPort.Signature(addr_bits, ArrayLayout(signed(8), rows)))
    The input buffer's read port of the reader.
weight_rd : Out(stream.Signature(unsigned(weight_addr_bits), always_ready=True))
    The stream's weight word address in ``f + n - 1``.
weight : In(ArrayLayout(signed(8), cols))
    The weight buffer's data one cycle after ``weight_rd``.
w : Out(stream.Signature(weight_write_layout, always_ready=True))
    The transposer's rows, to :attr:`hdl.array.SystolicArray.w`.
x : Out(stream.Signature(array_input_layout, always_ready=True))
    The streamed weight words, to :attr:`hdl.array.SystolicArray.i`.
sums : In(ArrayLayout(signed(acc_bits), cols))
    The array's column sums (:attr:`hdl.array.SystolicArray.o` payloads).
a : Out(stream.Signature(array_acc_layout, always_ready=True)).array(cols)
    The accumulator banks' read-modify-writes (:attr:`hdl.rotation.Rotation.a`).
col_busy : Out(cols)
    Column ``c``'s exit this cycle is an input-stationary one (the weight-stationary exit
    path must not write it).
end : Out(1)
    The instruction's final column exit (to :attr:`hdl.accumulator.AccumulatorBuffer.a_end`).
free : In(1)
    From the feeder: a tile's stream may begin now as far as the other units go.
tile_start, last_word, streaming : Out(1)
    To the feeder: a tile's first word is decided (read) this cycle; the instruction's last
    word is; the stream is inside a tile (decides one of its later words this cycle).
loaded, streamed : Out(1)
    To the front end, for the instruction taken last: every tile's rows are loaded (from
    ``wl[last] + R``); its last tile has begun streaming (from ``f[last]``).
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import ReadPort
from amaranth.lib.wiring import In, Out

from accel.config import AccelConfig
from hdl.accumulator import acc_addr_bits, array_acc_layout
from hdl.array import array_input_layout, weight_write_layout
from hdl.isa import COMPUTE_LAYOUT
from hdl.rotation import Rotation, column_records, is_meta_layout
from hdl.transposer import Transposer, _check_square
from hdl.weight_loader import weight_addr_bits
from hdl.window import WindowGenerator, addr_bits, decoded_layout

__all__ = ["InputStationary", "tile_layout"]


def tile_layout(config: AccelConfig) -> data.StructLayout:
    """What a tile's stream needs (the reader's record): the weight address of its word 0
    (``w_addr``), its group's accumulator row (``acc_row``), pixel columns (``width``),
    ``overwrite`` (first pass, ``accumulate`` off), ``last`` (the instruction's last tile),
    and the instruction's ``k_extra`` and ``k_stride`` (its k tiles)."""
    cols = _check_square(config).array.cols
    return data.StructLayout(
        {
            "w_addr": unsigned(weight_addr_bits(config)),
            "acc_row": unsigned(acc_addr_bits(config)),
            "width": range(cols + 1),
            "overwrite": 1,
            "last": 1,
            "k_extra": COMPUTE_LAYOUT.members["k_extra"],
            "k_stride": unsigned(acc_addr_bits(config)),
        }
    )


class InputStationary(wiring.Component):
    """Reader, transposer, row loader, weight stream and rotation of ``is_`` instructions.

    Parameters
    ----------
    config : AccelConfig
        An ``"is"`` machine's config (a square array).

    Raises
    ------
    TypeError
        If ``config`` is not an :class:`~accel.config.AccelConfig`.
    ValueError
        If the array is not square.
    """

    def __init__(self, config: AccelConfig) -> None:
        self._config = _check_square(config)
        rows, cols = config.array.rows, config.array.cols
        d = config.data
        super().__init__(
            {
                "i": In(stream.Signature(decoded_layout(config))),
                "rd": In(
                    ReadPort.Signature(
                        addr_width=addr_bits(config),
                        shape=data.ArrayLayout(signed(d.act_bits), rows),
                    )
                ),
                "weight_rd": Out(
                    stream.Signature(unsigned(weight_addr_bits(config)), always_ready=True)
                ),
                "weight": In(data.ArrayLayout(signed(d.weight_bits), cols)),
                "w": Out(stream.Signature(weight_write_layout(config), always_ready=True)),
                "x": Out(stream.Signature(array_input_layout(config), always_ready=True)),
                "sums": In(data.ArrayLayout(signed(d.acc_bits), cols)),
                "a": Out(stream.Signature(array_acc_layout(config), always_ready=True)).array(cols),
                "col_busy": Out(cols),
                "end": Out(1),
                "free": In(1),
                "tile_start": Out(1),
                "last_word": Out(1),
                "streaming": Out(1),
                "loaded": Out(1),
                "streamed": Out(1),
            }
        )

    @property
    def config(self) -> AccelConfig:
        return self._config

    def elaborate(self, platform) -> Module:
        m = Module()
        config = self._config
        rows = cols = config.array.rows
        m.submodules.walk = walk = WindowGenerator(config, grouped=True)
        m.submodules.transposer = tr = Transposer(config)
        m.submodules.rotation = rot = Rotation(config)
        tile = tile_layout(config)

        # ---- reader ---------------------------------------------------------------------
        held = Signal(COMPUTE_LAYOUT, reset_less=True)
        with m.If(self.i.valid):
            m.d.sync += held.eq(self.i.payload.instr)
        instr = Signal.like(held, name="reader_instr")
        m.d.comb += [
            instr.eq(Mux(self.i.valid, self.i.payload.instr, held)),
            walk.i.valid.eq(self.i.valid),
            walk.i.payload.eq(self.i.payload),
        ]
        full = Signal(2)  # buffer b holds a tile whose rows are not all read
        next_buf = Signal()  # the buffer of the next tile to read
        cur_buf = Signal()  # the buffer of the tile being read
        word = walk.o.payload
        first_col = word.row == 0
        m.d.comb += [
            walk.o.ready.eq(~first_col | ~full.bit_select(next_buf, 1)),
            walk.held_ready.eq(walk.o.ready),
        ]
        took = Signal()
        m.d.comb += took.eq(walk.o.valid & walk.o.ready)
        buf = Mux(first_col, next_buf, cur_buf)
        m.d.comb += [self.rd.en.eq(took & ~word.pad), self.rd.addr.eq(word.addr)]
        set_full = Signal(2)
        clear_full = Signal(2)
        with m.If(took & first_col):
            m.d.sync += [cur_buf.eq(next_buf), next_buf.eq(~next_buf)]
            m.d.comb += set_full.eq(Mux(next_buf, 0b10, 0b01))

        # The tile's record: weight address and accumulator row from its first word (pass
        # 0 of a group: w_base, else + L = k_tiles*R; a new group: + Cc), pixel columns
        # counted.
        rec = Signal(tile, name="reader_rec", reset_less=True)
        now = Signal(tile, name="reader_rec_now")
        m.d.comb += now.eq(rec)
        with m.If(first_col):
            m.d.comb += [
                now.w_addr.eq(
                    Mux(word.first_step, instr.w_base, rec.w_addr + (instr.k_extra + 1) * rows)
                ),
                now.acc_row.eq(
                    Mux(
                        word.pass_start,
                        instr.acc_base,
                        Mux(word.first_step, rec.acc_row + cols, rec.acc_row),
                    )
                ),
                now.overwrite.eq(word.first_step & ~instr.accumulate),
                now.width.eq(~word.dummy),
            ]
        with m.Else():
            m.d.comb += now.width.eq(rec.width + ~word.dummy)
        m.d.comb += [
            now.last.eq(word.last_pass),
            now.k_extra.eq(instr.k_extra),
            now.k_stride.eq(instr.k_stride),
        ]
        slots = [Signal(tile, name=f"slot{b}", reset_less=True) for b in range(2)]
        with m.If(took):
            m.d.sync += rec.eq(now)
            with m.If(word.row == cols - 1):
                with m.If(buf):
                    m.d.sync += slots[1].eq(now)
                with m.Else():
                    m.d.sync += slots[0].eq(now)

        # The word's data in the next cycle, into the transposer.
        wr = Signal(data.StructLayout({"buf": 1, "col": range(cols), "pad": 1}), reset_less=True)
        wr_valid = Signal()
        pad_value = Signal(signed(8), reset_less=True)
        m.d.sync += [
            wr_valid.eq(took),
            wr.buf.eq(buf),
            wr.col.eq(word.row),
            wr.pad.eq(word.pad),
            pad_value.eq(instr.pad_value),
        ]
        m.d.comb += [
            tr.wr.valid.eq(wr_valid),
            tr.wr.payload.buf.eq(wr.buf),
            tr.wr.payload.col.eq(wr.col),
        ]
        for lane in range(rows):
            m.d.comb += tr.wr.payload.word[lane].eq(Mux(wr.pad, pad_value, self.rd.data[lane]))
        ready = Signal(2)  # buffer b's tile is whole (its rows may load)
        set_ready = Signal(2)
        clear_ready = Signal(2)
        with m.If(wr_valid & (wr.col == cols - 1)):
            m.d.comb += set_ready.eq(Mux(wr.buf, 0b10, 0b01))

        # ---- row loader -----------------------------------------------------------------
        rl_buf = Signal()  # the buffer of the next tile to load
        rl_cur = Signal()  # the buffer being loaded
        rl_active = Signal()  # rows 1 .. R-1 are due
        rl_row = Signal(range(rows), reset_less=True)
        unfed = Signal()  # a loaded tile has not begun streaming
        pending = Signal(tile, name="pending_rec", reset_less=True)
        all_loading = Signal()  # every tile of the instruction has begun loading
        begin = Signal()
        m.d.comb += begin.eq(ready.bit_select(rl_buf, 1) & ~rl_active & ~unfed)
        slot = Signal(tile, name="rl_slot")
        m.d.comb += slot.eq(Mux(rl_buf, slots[1], slots[0]))
        m.d.comb += [
            tr.rd.valid.eq(begin | rl_active),
            tr.rd.payload.buf.eq(Mux(rl_active, rl_cur, rl_buf)),
            tr.rd.payload.row.eq(Mux(rl_active, rl_row, 0)),
        ]
        with m.If(begin):
            m.d.sync += [
                rl_cur.eq(rl_buf),
                rl_buf.eq(~rl_buf),
                rl_active.eq(rows > 1),
                rl_row.eq(1),
            ]
            m.d.comb += clear_ready.eq(Mux(rl_buf, 0b10, 0b01))
            if rows == 1:
                m.d.comb += clear_full.eq(Mux(rl_buf, 0b10, 0b01))
        with m.Elif(rl_active):
            m.d.sync += rl_row.eq(rl_row + 1)
            with m.If(rl_row == rows - 1):
                m.d.sync += rl_active.eq(0)
                m.d.comb += clear_full.eq(Mux(rl_cur, 0b10, 0b01))
        m.d.sync += [
            full.eq((full | set_full) & ~clear_full),
            ready.eq((ready | set_ready) & ~clear_ready),
        ]
        with m.If(self.i.valid):
            m.d.sync += all_loading.eq(0)
        with m.Elif(begin & slot.last):
            m.d.sync += all_loading.eq(1)
        m.d.comb += [
            self.w.valid.eq(tr.w.valid),
            self.w.payload.eq(tr.w.payload),
            self.loaded.eq(all_loading & ~rl_active),
        ]

        # ---- stream ---------------------------------------------------------------------
        offer = Signal()  # a tile whose rows have begun loading waits for the stream
        offered = Signal(tile, name="offered_rec")
        m.d.comb += [offer.eq(unfed | begin), offered.eq(Mux(begin, slot, pending))]
        with m.If(begin):
            m.d.sync += pending.eq(slot)
        # The word decided this cycle: its bank ``n``, k tile ``q``, weight address and
        # accumulator row (the tile's, plus ``q*k_stride``); a new tile's from its record.
        word_layout = data.StructLayout(
            {
                "n": range(cols),
                "q": tile.members["k_extra"],
                "w_addr": tile.members["w_addr"],
                "acc_row": tile.members["acc_row"],
            }
        )
        st_active = Signal()
        st = Signal(word_layout, name="stream_word", reset_less=True)
        st_rec = Signal(tile, name="stream_rec", reset_less=True)
        new_tile = Signal()
        m.d.comb += new_tile.eq(offer & ~st_active & self.free)
        m.d.sync += unfed.eq(offer & ~new_tile)
        w = Signal(word_layout, name="stream_now")
        cur = Signal(tile, name="stream_cur")
        m.d.comb += [
            w.eq(st),
            cur.eq(Mux(new_tile, offered, st_rec)),
        ]
        with m.If(new_tile):
            m.d.comb += [
                w.n.eq(0),
                w.q.eq(0),
                w.w_addr.eq(offered.w_addr),
                w.acc_row.eq(offered.acc_row),
            ]
        decide = new_tile | st_active
        bank_last = w.n == cols - 1
        word_last = bank_last & (w.q == cur.k_extra)
        with m.If(new_tile):
            m.d.sync += st_rec.eq(offered)
        with m.If(decide):
            m.d.sync += [
                st_active.eq(~word_last),
                st.n.eq(Mux(bank_last, 0, w.n + 1)),
                st.q.eq(w.q + bank_last),
                st.w_addr.eq(w.w_addr + 1),
                st.acc_row.eq(Mux(bank_last, w.acc_row + cur.k_stride, w.acc_row)),
            ]
        streamed = Signal()
        with m.If(self.i.valid):
            m.d.sync += streamed.eq(0)
        with m.Elif(new_tile & offered.last):
            m.d.sync += streamed.eq(1)
        m.d.comb += [
            self.weight_rd.valid.eq(decide),
            self.weight_rd.payload.eq(w.w_addr),
            self.tile_start.eq(new_tile),
            self.last_word.eq(decide & cur.last & word_last),
            self.streaming.eq(st_active),
            self.streamed.eq(streamed),
        ]
        # Fed in the next cycle: the weight word, and its record into the delay line.
        fed_valid = Signal()
        fed_switch = Signal()
        meta = Signal(is_meta_layout(config), name="fed_meta", reset_less=True)
        m.d.sync += [
            fed_valid.eq(decide),
            fed_switch.eq(new_tile),
            meta.n.eq(w.n),
            meta.acc_row.eq(w.acc_row),
            meta.width.eq(cur.width),
            meta.overwrite.eq(cur.overwrite),
            meta.last.eq(cur.last & word_last),
        ]
        m.d.comb += [
            self.x.valid.eq(fed_valid),
            self.x.payload.x.eq(self.weight),
            self.x.payload.switch.eq(fed_switch),
            self.x.payload.dw.eq(0),
        ]

        # ---- rotation -------------------------------------------------------------------
        # The record of column c's exit: the word fed rows + c cycles earlier.
        for c, (record, valid) in enumerate(column_records(m, meta, fed_valid, rows, cols)):
            m.d.comb += [
                rot.col[c].valid.eq(valid),
                rot.col[c].payload.meta.eq(record),
                rot.col[c].payload.sum.eq(self.sums[c]),
                self.col_busy[c].eq(valid),
                self.a[c].valid.eq(rot.a[c].valid),
                self.a[c].payload.eq(rot.a[c].payload),
            ]
        m.d.comb += self.end.eq(rot.end)
        return m
