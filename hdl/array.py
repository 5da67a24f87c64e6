"""The weight-stationary systolic array (ARRAY mode of the compute engine).

``rows`` x ``cols`` :class:`~hdl.pe.ProcessingElement` s. Array row ``i`` holds reduction
element ``i`` of the pass (lane ``i`` of the input word), column ``c`` output channel ``c``;
activations flow right, partial sums flow down. The caller presents a whole input word in one
cycle, as the model's feeder does; the input skew (lane ``i`` delayed ``i`` cycles) is inside.

Timing (:mod:`accel.timing`, ARRAY mode). A vector presented on ``i`` in cycle ``t`` is
multiplied in PE (i, c) in cycle ``t + i + c``, and the sum of column ``c`` is on ``o[c]`` in
cycle ``t + rows + c``. A 3x3 array fed x0, x1 from cycle f::

    cycle     f     f+1   f+2   f+3   f+4   f+5   f+6
    PE(0, 0)  x0    x1
    PE(1, 0)        x0    x1
    PE(2, 0)              x0    x1
    PE(2, 2)                          x0    x1
    o[0]                        out0  out1
    o[2]                                    out0  out1

Weights. The contract's load of row ``i`` of pass ``j`` "in cycle ``wl[j] + i``" is the cycle
the row is due at the weight loader (which reads it from the weight buffer one cycle earlier
and registers it, :mod:`hdl.weight_loader`); the row is on ``w`` one cycle later
(:data:`WEIGHT_READ_LATENCY`), in cycle ``wl[j] + i + 1``. The first pass may feed in ``f[0]
= take + 1`` with ``wl[0] = take``, so row 0 is on ``w`` in ``take + 1`` = ``f[0]``, the very
cycle the switch reaches PE (0, 0): the array accepts a row and the switch that uses it in
the same cycle.

A row on ``w`` in cycle ``P`` reaches column ``c`` in cycle ``P + c``: row index, enable and
weights travel along the row as the vectors do, so every column sees column 0's events ``c``
cycles late. The switch bit travels with the first vector of the pass and reaches PE (i, c)
in cycle ``f[j] + i + c``; a PE written in its switch cycle uses the new weight directly
(:mod:`hdl.pe`). So, in every PE,

* the row of pass ``j`` arrives in ``wl[j] + 1 + i + c <= f[j] + i + c``, its switch cycle,
  because ``f[j] >= wl[j] + 1``;
* the row of pass ``j + 1`` arrives in ``wl[j+1] + 1 + i + c > f[j] + i + c``, strictly after
  pass ``j``'s switch, because ``wl[j+1] >= f[j]``.

Both bounds are reached by the contract's schedules and tested, and so is each bound missed
by one cycle (wrong sums). 3x3 array, pass with ``wl = f - 1`` (tightest), ``c`` = column::

    cycle                 f-1   f     f+1   f+2   f+3   f+4
    row due (wl + i)      r0    r1    r2
    w (row i)                   r0    r1    r2
    PE(0, c) gets row 0         c=0   c=1   c=2
    PE(0, c) switches           c=0   c=1   c=2
    PE(2, c) gets row 2                     c=0   c=1   c=2
    PE(2, c) switches                       c=0   c=1   c=2

Ports
-----
w : In(stream.Signature(WeightWrite), always ready)
    Shadow-register write of one array row: ``row``, ``data`` (``cols`` int8 lanes), in cycle
    ``wl[j] + i + WEIGHT_READ_LATENCY`` for row ``i`` of pass ``j``.
i : In(stream.Signature(ArrayInput), always ready)
    Input vector ``x`` (``rows`` int8 lanes, lane ``i`` for array row ``i``) and ``switch``
    (set on the first vector of every pass).
dwx : In(ArrayLayout(ArrayLayout(signed(8), cols), rows))
    Square arrays only (the depthwise mode): row ``t``'s own word in cycle ``t' + t`` of a
    vector fed with ``i.payload.dw`` in cycle ``t'``; PE (t, c) multiplies its lane ``c``
    (delayed ``c`` cycles here) instead of the activation from the left.
o : Out(stream.Signature(signed(32), always ready)).array(cols)
    ``o[c].payload`` is the int32 sum of column ``c`` (wrapping), ``o[c].valid`` marks the
    cycle ``t + rows + c`` of a vector fed with ``i.valid`` in cycle ``t``.
os_i : In(stream.Signature(os_input_layout), always ready)
    Output-stationary machines only (``array.dataflow == "os"``): step ``s`` of group ``g``
    in cycle ``F + g*S + s`` (:func:`os_input_layout`).
os_o : Out(stream.Signature(os_exit_layout, always ready)).array(cols)
    Output-stationary machines only: PE (p, c)'s sum of group ``g`` with its accumulator row,
    in its exit cycle ``E_g + 2*rows + c + 1 - p`` (``E_g = F + g*S + S - 1``); dummy rows
    never. See :meth:`SystolicArray._output_stationary`.
"""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from accel.config import AccelConfig
from hdl._check import check_config
from hdl.accumulator import acc_addr_bits
from hdl.pe import ProcessingElement

__all__ = [
    "WEIGHT_READ_LATENCY",
    "SystolicArray",
    "array_input_layout",
    "os_exit_layout",
    "os_input_layout",
    "weight_write_layout",
]

#: Cycles from the cycle a row is due at the weight loader (the contract's ``wl[j] + i``) to
#: the row on ``w`` (the loader reads the buffer a cycle before and registers it).
WEIGHT_READ_LATENCY = 1


def weight_write_layout(config: AccelConfig) -> data.StructLayout:
    """Payload of the weight port: array ``row`` and its ``cols`` int8 weights."""
    a = check_config(config).array
    return data.StructLayout(
        {
            "row": range(a.rows),
            "data": data.ArrayLayout(signed(config.data.weight_bits), a.cols),
        }
    )


def array_input_layout(config: AccelConfig) -> data.StructLayout:
    """Payload of the input port: one ``rows``-lane int8 vector and the pass ``switch`` bit
    (and, on a square array, ``dw``: the vector is a depthwise one, its rows on ``dwx``)."""
    a = check_config(config).array
    fields = {"x": data.ArrayLayout(signed(config.data.act_bits), a.rows), "switch": 1}
    if a.rows == a.cols:
        fields["dw"] = 1
    return data.StructLayout(fields)


def os_record_layout(config: AccelConfig) -> data.StructLayout:
    """What an output-stationary group's drain needs, given with its last step: the
    accumulator row of its row 0 (``acc_row``), which rows hold a pixel (``mask``, bit ``p``
    for row ``p``; the others are dummy rows, never written), ``overwrite``, and whether
    the group is its instruction's last (``last``)."""
    a = check_config(config).array
    return data.StructLayout(
        {
            "acc_row": unsigned(acc_addr_bits(config)),
            "mask": a.rows,
            "overwrite": 1,
            "last": 1,
        }
    )


def os_input_layout(config: AccelConfig) -> data.StructLayout:
    """Payload of the output-stationary input ``os_i`` in cycle ``F + g*S + s`` (step ``s``
    of group ``g``, ``s = k*rows + p``): the input word of pass ``k`` for array row ``p``
    (``x``, ``row``), the weight word of step ``s`` (``w``), whether the step is its group's
    ``first`` / ``last``, and with the last step the group's drain record (``rec``)."""
    a = check_config(config).array
    d = config.data
    return data.StructLayout(
        {
            "x": data.ArrayLayout(signed(d.act_bits), a.rows),
            "row": range(a.rows),
            "w": data.ArrayLayout(signed(d.weight_bits), a.cols),
            "first": 1,
            "last": 1,
            "rec": os_record_layout(config),
        }
    )


def os_exit_layout(config: AccelConfig) -> data.StructLayout:
    """Payload of an output-stationary exit ``os_o[c]``: a PE's sum and its accumulator
    row, overwrite bit and ``last`` (the instruction's last write of this column)."""
    return data.StructLayout(
        {
            "sum": signed(config.data.acc_bits),
            "acc_row": unsigned(acc_addr_bits(config)),
            "overwrite": 1,
            "last": 1,
        }
    )


class SystolicArray(wiring.Component):
    """``rows`` x ``cols`` weight-stationary MAC array with double-buffered weights.

    Parameters
    ----------
    config : AccelConfig
        ``config.array.rows`` / ``cols`` set the size, ``config.data`` the widths.

    Raises
    ------
    TypeError
        If ``config`` is not an :class:`~accel.config.AccelConfig`.
    """

    def __init__(self, config: AccelConfig) -> None:
        self._config = check_config(config)
        cols = config.array.cols
        acc = signed(config.data.acc_bits)
        extra = {}
        if config.array.rows == cols:
            row = data.ArrayLayout(signed(config.data.act_bits), cols)
            extra["dwx"] = In(data.ArrayLayout(row, config.array.rows))
        if config.array.dataflow == "os":
            extra["os_i"] = In(stream.Signature(os_input_layout(config), always_ready=True))
            extra["os_o"] = Out(stream.Signature(os_exit_layout(config), always_ready=True)).array(
                cols
            )
        super().__init__(
            {
                **extra,
                "w": In(stream.Signature(weight_write_layout(config), always_ready=True)),
                "i": In(stream.Signature(array_input_layout(config), always_ready=True)),
                "o": Out(stream.Signature(acc, always_ready=True)).array(cols),
            }
        )

    @property
    def config(self) -> AccelConfig:
        return self._config

    @property
    def rows(self) -> int:
        return self._config.array.rows

    @property
    def cols(self) -> int:
        return self._config.array.cols

    @property
    def latency(self) -> int:
        """Cycles from a vector on ``i`` to its column-0 sum on ``o[0]`` (``rows``)."""
        return self.rows

    def elaborate(self, platform) -> Module:
        m = Module()
        rows, cols = self.rows, self.cols
        d = self._config.data

        def delayed(value, cycles: int, name: str, *, data: bool = False):
            """``value`` through ``cycles`` registers (the value itself for 0); data
            registers have no reset, control registers do."""
            for k in range(cycles):
                reg = Signal.like(value, name=f"{name}_d{k + 1}", reset_less=data)
                m.d.sync += reg.eq(value)
                value = reg
            return value

        # Weight writes travel along the row: column c sees them c cycles late. They travel
        # as one write enable per array row, decoded once at column 0, so that in the other
        # columns a flip-flop, not a compare, drives the PE's weight select (the 8x8's
        # critical path on the LFE5U-85F ran through the compare into the multiplier).
        w_we = [[self.w.valid & (self.w.payload.row == i) for i in range(rows)]]
        for c in range(1, cols):
            w_we.append([delayed(we, 1, f"w_we_r{i}_c{c}") for i, we in enumerate(w_we[-1])])
        w_data = [
            delayed(self.w.payload.data[c], c, f"w_data_c{c}", data=True) for c in range(cols)
        ]

        # Input skew: lane i and its switch bit reach row i's left edge i cycles late.
        switch = Signal()
        m.d.comb += switch.eq(self.i.valid & self.i.payload.switch)
        x_edge = [delayed(self.i.payload.x[i], i, f"x_r{i}", data=True) for i in range(rows)]
        sw_edge = [switch]
        for i in range(1, rows):
            sw_edge.append(delayed(sw_edge[-1], 1, f"sw_r{i}"))

        # Depthwise mode: PE (i, c) takes lane c of row i's own word (on `dwx[i]` in cycle
        # t + i), delayed c cycles, instead of the activation from the left, while the
        # vector's dw bit (delayed i + c) is on it.
        depthwise = rows == cols
        if depthwise:
            dw = [self.i.valid & self.i.payload.dw]
            for k in range(1, rows + cols - 1):
                dw.append(delayed(dw[-1], 1, f"dw_d{k}"))

        pes = [
            [ProcessingElement(self._config, top=i == 0) for _ in range(cols)] for i in range(rows)
        ]
        os = self._config.array.dataflow == "os"
        if os:
            x_edge = self._output_stationary(m, pes, x_edge, delayed)
        for i in range(rows):
            for c in range(cols):
                pe = pes[i][c]
                m.submodules[f"pe_{i}_{c}"] = pe
                left = pes[i][c - 1] if c else None
                x_in = left.x_out if left else x_edge[i]
                if depthwise:
                    own = delayed(self.dwx[i][c], c, f"dwx_{i}_{c}", data=True)
                    x_in = Mux(dw[i + c], own, x_in)
                m.d.comb += [
                    pe.x_in.eq(x_in),
                    pe.sw_in.eq(left.sw_out if left else sw_edge[i]),
                    pe.psum_in.eq(pes[i - 1][c].psum_out if i else Const(0, d.acc_bits)),
                    pe.prod_in.eq(pes[i - 1][c].prod_out if i else 0),
                    pe.w_we.eq(w_we[c][i]),
                    pe.w_in.eq(w_data[c]),
                ]

        # The valid bit does not enter the PEs: the output of column c is valid rows + c
        # cycles after the input was.
        valid = [self.i.valid]
        for k in range(1, rows + cols):
            valid.append(delayed(valid[-1], 1, f"valid_d{k}"))
        # The bottom PE's product is not in its partial sum yet (hdl.pe): added here, on the
        # way out (the sum wraps to acc_bits by the assignment).
        for c in range(cols):
            bottom = pes[rows - 1][c]
            m.d.comb += [
                self.o[c].payload.eq(bottom.psum_out + bottom.prod_out),
                self.o[c].valid.eq(valid[rows + c]),
            ]
        return m

    def _output_stationary(self, m: Module, pes, x_ws, delayed) -> list:
        """The output-stationary datapath (``os_i`` -> PEs -> ``os_o``); returns the
        activation at every row's left edge (the serializer's in OS mode, else ``x_ws``).

        Step ``s`` of group ``g`` arrives in ``t0 = F + g*S + s``. Row ``p``'s serializer
        takes the word for row ``p`` in its cycle and puts lane ``i`` at the row's left edge
        ``i`` cycles later (lane 0 at once); weight lane ``c`` enters column ``c`` ``c``
        cycles late and moves down a row per cycle, so PE (p, c) multiplies step ``s`` in
        ``t0 + p + c``. The step's first / last flags reach every PE of an anti-diagonal
        together (one delay line, tap ``p + c + 1``: the cycle after the multiply, when the
        product is added). Column ``c`` loads its drain chain from the hold registers
        ``rows + 1`` cycles after its last step entered it (``E_g + rows + c + 1``, tap
        ``rows + c + 1``), and its bottom register leaves in the next ``rows`` cycles, row
        ``rows - 1`` first: ``X_g(p, c) = E_g + 2*rows + c + 1 - p``.
        """
        rows, cols = self.rows, self.cols
        act = signed(self._config.data.act_bits)
        o = self.os_i
        # The mode: the unit of the word fed last. Units switch only after the previous
        # instruction is done (accel.timing), so every PE is idle when it changes.
        mode_reg = Signal(name="os_mode")
        mode = Signal(name="os_mode_now")
        m.d.comb += mode.eq(Mux(o.valid, 1, Mux(self.i.valid, 0, mode_reg)))
        m.d.sync += mode_reg.eq(mode)

        # Row serializers.
        edge = []
        for p in range(rows):
            load = Signal(name=f"ser{p}_load")
            m.d.comb += load.eq(o.valid & (o.payload.row == p))
            ser = [Signal(act, name=f"ser{p}_l{i}", reset_less=True) for i in range(1, rows)]
            for i, reg in enumerate(ser):
                shifted = ser[i + 1] if i + 1 < len(ser) else 0
                m.d.sync += reg.eq(Mux(load, o.payload.x[i + 1], shifted))
            lane = Signal(act, name=f"ser{p}_edge")
            m.d.comb += lane.eq(Mux(load, o.payload.x[0], ser[0] if ser else 0))
            edge.append(Mux(mode, lane, x_ws[p]))

        # Weights: lane c enters column c's top c cycles late.
        w_top = [delayed(o.payload.w[c], c, f"os_w_c{c}", data=True) for c in range(cols)]
        # Flags along the anti-diagonals.
        first = [o.valid & o.payload.first]
        last = [o.valid & o.payload.last]
        for k in range(1, rows + cols + 2):
            first.append(delayed(first[-1], 1, f"os_first_d{k}"))
            last.append(delayed(last[-1], 1, f"os_last_d{k}"))
        for p in range(rows):
            for c in range(cols):
                pe = pes[p][c]
                m.d.comb += [
                    pe.os.eq(mode),
                    pe.wt_in.eq(pes[p - 1][c].wt_out if p else w_top[c]),
                    pe.first.eq(first[p + c + 1]),
                    pe.last.eq(last[p + c + 1]),
                    pe.load.eq(last[rows + c + 1]),
                ]

        # Column 0's exits: the record of the group, taken with its last step, reaches the
        # drain load (rows + 1 cycles later); then rows exits, row rows-1 first.
        rec = delayed(o.payload.rec, rows + 1, "os_rec", data=True)
        held = Signal.like(o.payload.rec, name="os_drain_rec", reset_less=True)
        count = Signal(range(rows), name="os_drain_row", reset_less=True)
        active = Signal(name="os_drain_active")
        with m.If(last[rows + 1]):
            m.d.sync += [held.eq(rec), count.eq(rows - 1), active.eq(1)]
        with m.Elif(active):
            m.d.sync += [count.eq(count - 1), active.eq(count != 0)]
        members = dict(os_exit_layout(self._config).members)
        del members["sum"]
        meta = Signal(data.StructLayout(members), name="os_meta_c0")
        meta_valid = Signal(name="os_valid_c0")
        m.d.comb += [
            meta_valid.eq(active & (held.mask >> count)[0]),
            meta.acc_row.eq(held.acc_row + count),
            meta.overwrite.eq(held.overwrite),
            meta.last.eq(held.last & (count == 0)),
        ]
        for c in range(cols):
            valid_c = delayed(meta_valid, c, f"os_valid_c{c}")
            meta_c = delayed(meta, c, f"os_meta_c{c}", data=True)
            bottom = pes[rows - 1][c]
            m.d.comb += [
                self.os_o[c].valid.eq(valid_c),
                self.os_o[c].payload.acc_row.eq(meta_c.acc_row),
                self.os_o[c].payload.overwrite.eq(meta_c.overwrite),
                self.os_o[c].payload.last.eq(meta_c.last),
                self.os_o[c].payload.sum.eq(bottom.psum_out),
            ]
        return edge
