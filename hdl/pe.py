"""One processing element of the weight-stationary systolic array.

A PE holds two weight registers, *active* and *shadow*. Each cycle it

* multiplies the activation arriving from the left by its weight (int8 x int8 -> int16) and
  registers the product towards the PE below;
* adds the product arriving from above (the PE above's, of the previous cycle) to the
  partial sum arriving from above (int32, wrapping like the int32 accumulator of
  ``docs/numerics.md``), registering the sum towards the PE below;
* registers the activation and its *switch* bit towards the PE on its right;
* writes the shadow register when ``w_we`` is high (the weight loader's row-select write).

The switch bit marks the first vector of a pass. In the cycle it arrives the PE multiplies
with the *new* weight and copies it to active at the clock edge. The new weight is the
shadow register, or, if the shadow register is being written in that very cycle, the weight
being written (a write-through): the weight loader's write and the pass's first vector may
arrive together, which is what lets the weight buffer be read in the cycle the instruction
starts (see :mod:`hdl.array`). A shadow write therefore belongs to the next switch that
arrives in or after its cycle. Every output is a register: one cycle from the left/top to
the right/bottom, which makes the skew of :mod:`accel.timing` (PE (i, c) works on the vector
fed in cycle ``t`` in cycle ``t + i + c``).

The multiply and the add are one row apart: a PE adds the product of the PE above to the
partial sum of the rows above that, so each is a path of its own (register, multiplier,
register; register, adder, register) where they used to be one. The partial sum leaving row
``i`` lacks row ``i``'s product, which leaves beside it; :mod:`hdl.array` adds the two at
the bottom, in the cycle the multiply-add in one would have had its sum there.

A *top* PE (``top=True``, the array's row 0, whose ``psum_in`` and ``prod_in`` are 0)
registers the multiplier's operands instead of its product: ``x`` (the register it has
anyway) and the weight it multiplies by, and ``prod_out`` is their product,
combinational. The value on ``prod_out`` in each cycle is the same; the multiplier moves
behind the register, so no path from the buffers (the input buffer's block RAM, the pad
multiplexer) reaches a multiplier: row 0's activation comes from them without a register
in between. Below the top row that register exists already (the input skew, the depthwise
words of :mod:`hdl.feeder`).

Ports
-----
x_in, sw_in : In
    Activation (``signed(act_bits)``) and switch bit from the left.
psum_in, prod_in : In
    Partial sum (``signed(acc_bits)``) and product (``signed(act_bits + weight_bits)``) from
    above; 0 at the top row.
w_we, w_in : In
    Shadow-register write enable and weight (``signed(weight_bits)``).
x_out, sw_out : Out
    ``x_in``, ``sw_in`` delayed one cycle.
psum_out : Out
    ``psum_in + prod_in`` delayed one cycle (wrapping to ``acc_bits``).
prod_out : Out
    ``x_in * weight`` delayed one cycle, where ``weight`` is the active weight unless
    ``sw_in``; then it is ``w_in`` if ``w_we``, else the shadow weight.

Output-stationary machines (``config.array.dataflow == "os"``) add, for
:mod:`hdl.os_array`, the ports below; with ``os`` low the PE is the weight-stationary one.
With ``os`` high the same multiplier takes its weight from above (``wt_in``, passed down in
a register, ``wt_out``) instead of the active register, and the PE keeps its own sum: in
the cycle after a multiply, ``acc <= (first ? 0 : acc) + prod`` and, on the group's
``last`` step, ``hold <=`` that sum; the partial-sum register becomes the drain chain,
``psum <= load ? hold : psum_in`` (no add), so a column shifts its sums down.

os, first, last, load : In(1)
    Mode; the step whose product is in ``prod`` (this cycle) is its group's first / last;
    load the drain register from ``hold``.
wt_in, wt_out : In / Out(signed(weight_bits))
    The output-stationary weight from above, and delayed one cycle to the PE below.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from accel.config import AccelConfig
from hdl._check import check_config

__all__ = ["ProcessingElement"]


class ProcessingElement(wiring.Component):
    """An int8 x int8 multiplier and an int32 adder with active and shadow weight registers.

    Parameters
    ----------
    config : AccelConfig
        Reads ``config.data`` (activation, weight and accumulator widths).
    top : bool
        The array's top row: operands registered, product combinational (module docstring).
    """

    def __init__(self, config: AccelConfig, *, top: bool = False) -> None:
        self._config = check_config(config)
        self._top = top
        d = config.data
        extra = {}
        if config.array.dataflow == "os":
            extra = {
                "os": In(1),
                "first": In(1),
                "last": In(1),
                "load": In(1),
                "wt_in": In(signed(d.weight_bits)),
                "wt_out": Out(signed(d.weight_bits)),
            }
        super().__init__(
            {
                **extra,
                "x_in": In(signed(d.act_bits)),
                "sw_in": In(1),
                "psum_in": In(signed(d.acc_bits)),
                "prod_in": In(signed(d.act_bits + d.weight_bits)),
                "w_we": In(1),
                "w_in": In(signed(d.weight_bits)),
                "x_out": Out(signed(d.act_bits)),
                "sw_out": Out(1),
                "psum_out": Out(signed(d.acc_bits)),
                "prod_out": Out(signed(d.act_bits + d.weight_bits)),
            }
        )

    @property
    def config(self) -> AccelConfig:
        return self._config

    @property
    def top(self) -> bool:
        return self._top

    def elaborate(self, platform) -> Module:
        m = Module()
        d = self._config.data
        # Data registers need no reset (only the switch bit, a control signal, has one).
        active = Signal(signed(d.weight_bits), reset_less=True)
        shadow = Signal(signed(d.weight_bits), reset_less=True)
        x = Signal(signed(d.act_bits), reset_less=True)
        psum = Signal(signed(d.acc_bits), reset_less=True)
        prod = Signal(signed(d.act_bits + d.weight_bits), reset_less=True)
        sw = Signal()
        new = Signal(signed(d.weight_bits))  # the weight a switch takes
        weight = Signal(signed(d.weight_bits))
        os = self._config.array.dataflow == "os"
        ws_weight = Mux(self.sw_in, new, active)
        m.d.comb += [
            new.eq(Mux(self.w_we, self.w_in, shadow)),
            weight.eq(Mux(self.os, self.wt_in, ws_weight) if os else ws_weight),
        ]
        with m.If(self.sw_in):
            m.d.sync += active.eq(new)
        with m.If(self.w_we):
            m.d.sync += shadow.eq(self.w_in)
        if self._top:
            operand = Signal(signed(d.weight_bits), reset_less=True)
            m.d.sync += operand.eq(weight)
            m.d.comb += prod.eq(x * operand)
        else:
            m.d.sync += prod.eq(self.x_in * weight)
        # The sum is truncated to acc_bits by the assignment: two's complement wrap-around.
        m.d.sync += [
            *([] if os else [psum.eq(self.psum_in + self.prod_in)]),
            x.eq(self.x_in),
            sw.eq(self.sw_in),
        ]
        if os:
            self._output_stationary(m, prod, psum)
        m.d.comb += [
            self.psum_out.eq(psum),
            self.prod_out.eq(prod),
            self.x_out.eq(x),
            self.sw_out.eq(sw),
        ]
        return m

    def _output_stationary(self, m: Module, prod, psum) -> None:
        """The sum of its own products, its hold register, and the drain (class docstring)."""
        d = self._config.data
        wt = Signal(signed(d.weight_bits), reset_less=True)
        acc = Signal(signed(d.acc_bits), reset_less=True)
        hold = Signal(signed(d.acc_bits), reset_less=True)
        total = Signal(signed(d.acc_bits))  # wraps to acc_bits by the assignment
        m.d.comb += [total.eq(Mux(self.first, 0, acc) + prod), self.wt_out.eq(wt)]
        m.d.sync += [wt.eq(self.wt_in), acc.eq(total)]
        with m.If(self.last):
            m.d.sync += hold.eq(total)
        with m.If(~self.os):
            m.d.sync += psum.eq(self.psum_in + self.prod_in)
        with m.Elif(self.load):
            m.d.sync += psum.eq(hold)
        with m.Else():
            m.d.sync += psum.eq(self.psum_in)
