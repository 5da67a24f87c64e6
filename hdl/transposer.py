"""The input-stationary transposer: window words in, array rows out.

Input-stationary (``accel.timing``, INPUT-STATIONARY) holds a tile of ``cols`` window words
in the array: PE (i, c) holds lane ``i`` of column ``c``'s word. The window generator
delivers those words one per cycle; the array's shadow registers take one *row* per cycle
(:class:`hdl.array.SystolicArray`'s ``w`` port, as a weight-stationary weight row). The
transposer sits between them: two buffers of ``cols`` words (tile ``j`` uses buffer ``j %
2``, so one tile is written while the other is read), each word written whole, each row read
as lane ``i`` of every word.

Timing. A write on ``wr`` in cycle ``t`` is in its buffer from ``t + 1``. A read of row ``i``
on ``rd`` in cycle ``t`` is on ``w`` (registered: the row's mux is the only logic after the
buffer) in ``t + 1`` = :data:`hdl.array.WEIGHT_READ_LATENCY` later, exactly as a weight
row read from the weight buffer; a read sees the buffer as it was before a write of the same
cycle. So a tile's last word, on the input buffer's data port in ``rd[j] + cols``, makes row
``i`` readable from ``rd[j] + cols + 1`` (the contract's ``wl[j] >= rd[j] + Cc + 1``), and a
buffer is written again only after its previous tile's rows have been read (``rd[j] >= wl[j-2]
+ rows``).

Ports
-----
wr : In(stream.Signature(transpose_write_layout, always ready))
    ``buf``, ``col`` and the ``rows``-lane int8 window ``word`` of column ``col``.
rd : In(stream.Signature(transpose_read_layout, always ready))
    ``buf`` and the array ``row`` to read.
w : Out(stream.Signature(weight_write_layout, always ready))
    The row read one cycle earlier: ``row`` and its ``cols`` lanes (lane ``c`` = lane
    ``row`` of column ``c``'s word), for :attr:`hdl.array.SystolicArray.w`.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from accel.config import AccelConfig
from hdl._check import check_config
from hdl.array import weight_write_layout

__all__ = ["Transposer", "transpose_read_layout", "transpose_write_layout"]


def _check_square(config: AccelConfig) -> AccelConfig:
    a = check_config(config).array
    if a.rows != a.cols:
        raise ValueError(f"input-stationary needs a square array, not {a.rows}x{a.cols}")
    return config


def transpose_write_layout(config: AccelConfig) -> data.StructLayout:
    """Payload of ``wr``: buffer, column and the column's window word."""
    a = _check_square(config).array
    word = data.ArrayLayout(signed(config.data.act_bits), a.rows)
    return data.StructLayout({"buf": 1, "col": range(a.cols), "word": word})


def transpose_read_layout(config: AccelConfig) -> data.StructLayout:
    """Payload of ``rd``: buffer and array row."""
    a = _check_square(config).array
    return data.StructLayout({"buf": 1, "row": range(a.rows)})


class Transposer(wiring.Component):
    """Double-buffered ``cols`` x ``rows`` transpose of window words into array rows.

    Parameters
    ----------
    config : AccelConfig
        A square array (``rows == cols``); ``config.data`` the widths.

    Raises
    ------
    TypeError
        If ``config`` is not an :class:`~accel.config.AccelConfig`.
    ValueError
        If the array is not square.
    """

    def __init__(self, config: AccelConfig) -> None:
        self._config = _check_square(config)
        super().__init__(
            {
                "wr": In(stream.Signature(transpose_write_layout(config), always_ready=True)),
                "rd": In(stream.Signature(transpose_read_layout(config), always_ready=True)),
                "w": Out(stream.Signature(weight_write_layout(config), always_ready=True)),
            }
        )

    @property
    def config(self) -> AccelConfig:
        return self._config

    def elaborate(self, platform) -> Module:
        m = Module()
        rows, cols = self._config.array.rows, self._config.array.cols
        word = transpose_write_layout(self._config)["word"].shape
        bufs = [
            [Signal(word, name=f"tb{b}_c{c}", reset_less=True) for c in range(cols)]
            for b in range(2)
        ]
        wr = self.wr
        for b in range(2):
            for c in range(cols):
                with m.If(wr.valid & (wr.payload.buf == b) & (wr.payload.col == c)):
                    m.d.sync += bufs[b][c].eq(wr.payload.word)

        rd = self.rd.payload
        m.d.sync += [
            self.w.valid.eq(self.rd.valid),
            self.w.payload.row.eq(rd.row),
        ]
        for c in range(cols):
            lanes = [[bufs[b][c][i] for i in range(rows)] for b in range(2)]
            with m.Switch(rd.buf):
                for b in range(2):
                    with m.Case(b), m.Switch(rd.row):
                        for i in range(rows):
                            with m.Case(i):
                                m.d.sync += self.w.payload.data[c].eq(lanes[b][i])
        return m
