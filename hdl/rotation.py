"""The input-stationary rotation: array columns to accumulator banks.

Input-stationary (``accel.timing``, INPUT-STATIONARY), column ``c`` of the array sums the
pixel ``g*cols + c`` of its tile and vector ``n`` is output channel ``n``: its sum belongs in
accumulator bank ``n`` (lane ``n``), row ``acc_base + g*cols + c``. The columns of a vector
leave skewed (``f + n + rows + c``), so in any cycle the columns carry different vectors and
feed different banks (two tiles in flight are at least ``cols`` cycles apart, so their
columns never meet on a bank). The rotation routes each column to the bank its vector names.
What each column carries is the record fed with its vector (:func:`is_meta_layout`), taken
from the compute engine's delay line at tap ``rows + c``, beside the sum: nothing is counted
here.

Combinational: a column's exit is on its bank's ``a[n]`` in the same cycle (the accumulator's
read-modify-write reads in the exit cycle, :mod:`hdl.accumulator`).

Ports
-----
col : In(stream.Signature(is_exit_layout, always ready)).array(cols)
    Column ``c``'s ``sum`` and its vector's record, ``valid`` when the column carries an
    input-stationary vector.
a : Out(stream.Signature(array_acc_layout, always ready)).array(cols)
    Bank ``n``'s read-modify-write: ``addr`` = the record's ``acc_row + c``, ``overwrite``,
    ``sum``; columns at or past the record's ``width`` (dummy columns) write nothing.
end : Out(1)
    The instruction's last vector (``last``) leaves the last column, written or a dummy:
    its final exit (the accumulator's ``complete`` one cycle later).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from accel.config import AccelConfig
from hdl.accumulator import acc_addr_bits, array_acc_layout
from hdl.transposer import _check_square

__all__ = ["Rotation", "column_records", "is_exit_layout", "is_meta_layout"]


def is_meta_layout(config: AccelConfig) -> data.StructLayout:
    """The record of one input-stationary vector: its channel ``n`` (the bank), the
    accumulator row of its tile's column 0 (``acc_row``), how many columns hold a pixel
    (``width``, 1 .. cols), ``overwrite``, and ``last``: the instruction's last vector."""
    cols = _check_square(config).array.cols
    return data.StructLayout(
        {
            "n": range(cols),
            "acc_row": unsigned(acc_addr_bits(config)),
            "width": range(cols + 1),
            "overwrite": 1,
            "last": 1,
        }
    )


def column_records(m: Module, meta: Value, valid: Value, rows: int, cols: int) -> list:
    """The delay line whose taps give each column its vector's record: for column ``c``,
    ``(meta, valid)`` as fed ``rows + c`` cycles earlier (its exit cycle, module docstring),
    as registers of ``m``."""
    metas, valids = [meta], [valid]
    for k in range(1, rows + cols):
        reg = Signal.like(meta, name=f"is_meta_d{k}", reset_less=True)
        v = Signal(name=f"is_valid_d{k}")
        m.d.sync += [reg.eq(metas[-1]), v.eq(valids[-1])]
        metas.append(reg)
        valids.append(v)
    return [(metas[rows + c], valids[rows + c]) for c in range(cols)]


def is_exit_layout(config: AccelConfig) -> data.StructLayout:
    """Payload of ``col[c]``: the column's sum and its vector's record."""
    return data.StructLayout({"sum": signed(config.data.acc_bits), "meta": is_meta_layout(config)})


def _bank_layout(config: AccelConfig) -> data.StructLayout:
    return data.StructLayout(
        {
            "addr": unsigned(acc_addr_bits(config)),
            "overwrite": 1,
            "sum": signed(config.data.acc_bits),
        }
    )


def _encode(one_hot: list, width: int):
    """The index of the set bit of ``one_hot`` (at most one is set; 0 if none)."""
    index = Const(0, width)
    for c, bit in enumerate(one_hot):
        if c:
            index = index | (Const(c, width) & bit.replicate(width))
    return index


def _tree(values: list, index):
    """``values[index]`` as a tree of 2:1 multiplexers, index bit 0 at the leaves."""
    level, bit = [Value.cast(v) for v in values], 0
    while len(level) > 1:
        pairs = [level[k : k + 2] for k in range(0, len(level), 2)]
        level = [Mux(index[bit], p[1], p[0]) if len(p) == 2 else p[0] for p in pairs]
        bit += 1
    return data.View(values[0].shape(), level[0])


class Rotation(wiring.Component):
    """Routes the array's column exits to the accumulator banks their vectors name.

    Parameters
    ----------
    config : AccelConfig
        A square array.

    Raises
    ------
    TypeError
        If ``config`` is not an :class:`~accel.config.AccelConfig`.
    ValueError
        If the array is not square.
    """

    def __init__(self, config: AccelConfig) -> None:
        self._config = _check_square(config)
        cols = config.array.cols
        super().__init__(
            {
                "col": In(stream.Signature(is_exit_layout(config), always_ready=True)).array(cols),
                "a": Out(stream.Signature(array_acc_layout(config), always_ready=True)).array(cols),
                "end": Out(1),
            }
        )

    @property
    def config(self) -> AccelConfig:
        return self._config

    def elaborate(self, platform) -> Module:
        m = Module()
        cols = self._config.array.cols
        addr_bits = len(self.a[0].payload.addr)
        written, exits = [], []
        for c in range(cols):
            col = self.col[c].payload
            hit = Signal(name=f"col{c}_written")
            m.d.comb += hit.eq(self.col[c].valid & (c < col.meta.width))
            written.append(hit)
            # what column c writes, with its own row (one adder per column)
            out = Signal(_bank_layout(self._config), name=f"col{c}_exit")
            m.d.comb += [
                out.addr.eq((col.meta.acc_row + c)[:addr_bits]),
                out.overwrite.eq(col.meta.overwrite),
                out.sum.eq(col.sum),
            ]
            exits.append(out)
        for n in range(cols):
            bank = self.a[n]
            # At most one column names bank n in a cycle (module docstring): encode which,
            # then one cols:1 multiplexer per bank.
            sel = [Signal(name=f"bank{n}_from_c{c}") for c in range(cols)]
            for c in range(cols):
                m.d.comb += sel[c].eq(written[c] & (self.col[c].payload.meta.n == n))
            index = Signal(range(cols), name=f"bank{n}_column")
            m.d.comb += index.eq(_encode(sel, len(index)))
            chosen = _tree(exits, index)
            m.d.comb += [
                bank.valid.eq(Cat(*sel).any()),
                bank.payload.addr.eq(chosen.addr),
                bank.payload.overwrite.eq(chosen.overwrite),
                bank.payload.sum.eq(chosen.sum),
                bank.payload.last.eq(0),
            ]
        last = self.col[cols - 1]
        m.d.comb += self.end.eq(
            last.valid & last.payload.meta.last & (last.payload.meta.n == cols - 1)
        )
        return m
