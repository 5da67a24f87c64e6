"""The compute engine's weight loader: the weight buffer, one array row per cycle, pass after pass.

For the front end's ARRAY instruction (:class:`hdl.front_end.FrontEnd`) pass ``j``'s rows,
at ``w_base + j*rows + i``, are due in cycles ``wl[j] + i`` (one running address: the passes
of an instruction are contiguous in the weight buffer). A pass begins when the loader is idle
and no pass it has loaded waits to be fed, i.e. when the previous pass has begun feeding:
``wl[j] = max(wl[j-1] + rows, f[j-1])``; the first one in the cycle its instruction is taken
(``wl[0] = take``). A row reaches the array's shadow registers one cycle after it is due
(:data:`hdl.array.WEIGHT_READ_LATENCY`). So the loader runs at most one pass ahead of the
feeder: ``f[j] >= wl[j] + 1`` and ``wl[j+1] >= f[j]``, the two bounds :mod:`hdl.array` needs
of its shadow registers.

The weight buffer is read one cycle before a row is due, and its output is registered: no
block RAM output drives the PEs' weight multiplexers and multipliers (the path that limited
the clock, ``docs/synthesis.md``). The read port reads every cycle, from the state the loader
will have in the next: the next row of the pass being loaded, else row 0 of the held
instruction's next pass, else row 0 of the instruction in the compute engine's instruction
register (``next_w_base``), which is the one the front end takes next and is there from
``start + 1 <= take - 1`` (:data:`accel.timing.COMPUTE_DECODE` = 2). A read whose row turns
out not to be due is not used. Pure retiming: the cycles of the contract are unchanged.

The loader does not hold the instruction: it reads the front end's every cycle, and counts
the pass (``ct``, ``r``, ``s``; ``s`` fastest) it loads next.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import ReadPort
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from accel import isa
from accel.config import AccelConfig
from hdl._check import check_config
from hdl.array import WEIGHT_READ_LATENCY, weight_write_layout
from hdl.isa import COMPUTE_LAYOUT

__all__ = ["LOAD_SIGNATURE", "WEIGHTS_SIGNATURE", "WeightLoader", "weight_addr_bits"]

_WIDTH = {name: width for name, width, _ in isa.FIELDS[isa.Compute]}

#: The front end's instruction as the loader sees it (flows as the front end drives them).
#: ``take``: the front end takes an instruction in this cycle (its first pass may begin
#: loading in this very cycle); ``array``: the front end's instruction in this cycle (the one
#: taken, else the one held) is an ARRAY instruction; ``next``: the instruction on the front
#: end's input (the one taken when ``take``), ``held``: the one it holds (of both, ``w_base``,
#: ``ct_count``, ``kernel_h``, ``kernel_w`` are read; both are registers, so ``take``, which
#: comes late in the cycle, only selects); ``loaded``: every row of every pass of the held
#: ARRAY instruction has been read (from ``wl[last] + rows`` on).
LOAD_SIGNATURE = wiring.Signature(
    {
        "take": Out(1),
        "array": Out(1),
        "next": Out(COMPUTE_LAYOUT),
        "held": Out(COMPUTE_LAYOUT),
        "loaded": In(1),
    }
)

#: One pass's weights, offered to the feeder (flows as the loader drives them): ``valid``
#: from the cycle the pass's row 0 is read (``wl``) until the feeder takes the pass's first
#: word (``ready``, the cycle before its first feed ``f``; so ``f >= wl + 1``). No payload.
WEIGHTS_SIGNATURE = wiring.Signature({"valid": Out(1), "ready": In(1)})


def weight_addr_bits(config: AccelConfig) -> int:
    """Width of a weight buffer word address (``config.weight_words`` words)."""
    return max(1, ceil_log2(check_config(config).weight_words))


class WeightLoader(wiring.Component):
    """Reads the front end's ARRAY instruction's weights into the array, pass after pass.

    Parameters
    ----------
    config : AccelConfig
        Array size, weight width and the weight buffer size.

    Raises
    ------
    TypeError
        If ``config`` is not an :class:`~accel.config.AccelConfig`.

    Ports
    -----
    i : In(LOAD_SIGNATURE)
        The front end's instruction (:data:`LOAD_SIGNATURE`).
    weight_rd : In(ReadPort.Signature(weight_addr_bits, ArrayLayout(signed(8), cols)))
        The weight buffer's synchronous read port, enabled every cycle: row ``i`` of pass
        ``j`` is read in cycle ``wl[j] + i - 1``, at ``w_base + j*rows + i``.
    next_w_base : In(unsigned(20))
        ``w_base`` of the instruction in the compute engine's instruction register.
    blocked : In(1)
        Output- and input-stationary machines only: the port was the OS feed's (the IS
        stream's) in the previous cycle, so no row is due now (a pass that would begin
        begins a cycle later).
    w : Out(stream.Signature(WeightWrite, always_ready=True))
        To :attr:`hdl.array.SystolicArray.w`: that row in cycle ``wl[j] + i + 1``.
    weights : Out(WEIGHTS_SIGNATURE)
        To the feeder: the pass whose weights have begun loading and which has not begun
        feeding (at most one).
    """

    def __init__(self, config: AccelConfig) -> None:
        self._config = check_config(config)
        super().__init__(
            {
                "i": In(LOAD_SIGNATURE),
                "weight_rd": In(
                    ReadPort.Signature(
                        addr_width=weight_addr_bits(config),
                        shape=data.ArrayLayout(signed(config.data.weight_bits), config.array.cols),
                    )
                ),
                "next_w_base": In(unsigned(_WIDTH["w_base"])),
                **({"blocked": In(1)} if config.array.dataflow in ("os", "is") else {}),
                "w": Out(stream.Signature(weight_write_layout(config), always_ready=True)),
                "weights": Out(WEIGHTS_SIGNATURE),
            }
        )

    @property
    def config(self) -> AccelConfig:
        return self._config

    def elaborate(self, platform) -> Module:
        m = Module()
        rows = self._config.array.rows
        take, nxt, held = self.i.take, self.i.next, self.i.held

        # The loader's state, and (`*_next`) its value in the next cycle: the read port is
        # addressed from the next cycle's state (see the class docstring).
        ld_active = Signal()  # rows 1 .. rows-1 of a pass are due
        ld_row = Signal(range(rows), reset_less=True)
        ld_addr = Signal(weight_addr_bits(self._config), reset_less=True)
        ld_pass = Signal(  # (ct, r, s) of the next pass to load
            data.StructLayout(
                {
                    "ct": unsigned(_WIDTH["ct_count"]),
                    "r": unsigned(_WIDTH["kernel_h"]),
                    "s": unsigned(_WIDTH["kernel_w"]),
                }
            ),
            reset_less=True,
        )
        all_loading = Signal()  # every pass of the held instruction has begun loading
        ld_active_next = Signal.like(ld_active)
        ld_addr_next = Signal.like(ld_addr)
        all_loading_next = Signal.like(all_loading)
        m.d.comb += [
            ld_active_next.eq(ld_active),
            ld_addr_next.eq(ld_addr),
            all_loading_next.eq(all_loading),
        ]
        m.d.sync += [
            ld_active.eq(ld_active_next),
            ld_addr.eq(ld_addr_next),
            all_loading.eq(all_loading_next),
        ]
        loaded_unfed = Signal()  # a pass has begun loading but not feeding
        m.d.comb += self.i.loaded.eq(all_loading & ~ld_active)

        # An ARRAY instruction with a pass left to load: the one taken now, or the held one.
        front_array = Mux(take, self.i.array, self.i.array & ~all_loading)
        begin = Signal()  # a pass begins loading (its row 0 is due: wl)
        os = self._config.array.dataflow in ("os", "is")  # another block shares the port
        if os:
            # The output-stationary feed read the port in the previous cycle (its last
            # weight word, a cycle before a weight-stationary instruction may be taken):
            # the row due now was not read, so the pass begins a cycle later. Invisible in
            # the contract: that instruction feeds no earlier than the OS one's `done`.
            m.d.comb += begin.eq(front_array & ~ld_active & ~loaded_unfed & ~self.blocked)
        else:
            m.d.comb += begin.eq(front_array & ~ld_active & ~loaded_unfed)
        # The pass that begins (when one does): pass 0 of the instruction taken, else
        # `ld_pass` of the held one. Its last-pass flags and the next counts are computed
        # for both from registers; `take` only selects.
        s_last = Mux(take, nxt.kernel_w == 1, ld_pass.s == held.kernel_w - 1)
        r_last = Mux(take, nxt.kernel_h == 1, ld_pass.r == held.kernel_h - 1)
        ct_last = Mux(take, nxt.ct_count == 1, ld_pass.ct == held.ct_count - 1)
        begin_last = s_last & r_last & ct_last
        r_held = Mux(take, 0, ld_pass.r)
        ct_held = Mux(take, 0, ld_pass.ct)
        # The address after the row due in this cycle (when one is).
        with m.If(begin | ld_active):
            m.d.comb += ld_addr_next.eq(Mux(take & ~ld_active, nxt.w_base + 1, ld_addr + 1))
        with m.If(begin):
            m.d.comb += ld_active_next.eq(rows > 1)
            m.d.sync += ld_row.eq(1)
            with m.If(~s_last):
                m.d.sync += [
                    ld_pass.s.eq(Mux(take, 1, ld_pass.s + 1)),
                    ld_pass.r.eq(r_held),
                    ld_pass.ct.eq(ct_held),
                ]
            with m.Elif(~r_last):
                m.d.sync += [
                    ld_pass.s.eq(0),
                    ld_pass.r.eq(Mux(take, 1, ld_pass.r + 1)),
                    ld_pass.ct.eq(ct_held),
                ]
            with m.Else():
                m.d.sync += [ld_pass.s.eq(0), ld_pass.r.eq(0), ld_pass.ct.eq(ct_held + 1)]
        with m.Elif(ld_active):
            with m.If(ld_row == rows - 1):
                m.d.comb += ld_active_next.eq(0)
            with m.Else():
                m.d.sync += ld_row.eq(ld_row + 1)
        if os:  # taken but not begun (blocked): begin from its first pass next cycle
            with m.If(take & ~begin):
                m.d.comb += ld_addr_next.eq(nxt.w_base)
                m.d.sync += ld_pass.eq(0)
        with m.If(take):
            m.d.comb += all_loading_next.eq(begin & begin_last)
        with m.Elif(begin & begin_last):
            m.d.comb += all_loading_next.eq(1)

        # The pass offered to the feeder: loaded earlier, or beginning to load in this cycle.
        m.d.comb += self.weights.valid.eq(loaded_unfed | begin)
        m.d.sync += loaded_unfed.eq(self.weights.valid & ~self.weights.ready)

        # The read one cycle ahead: the row due in the next cycle, if one is. Rows 1 ..
        # rows-1 of a pass and row 0 of the held instruction's next pass are at
        # `ld_addr_next`; otherwise a row due next is row 0 of the instruction the front end
        # takes next, which is in the instruction register already (take >= start + 2).
        held_next_pass = self.i.array & ~all_loading_next
        m.d.comb += [
            self.weight_rd.en.eq(1),
            self.weight_rd.addr.eq(
                Mux(ld_active_next | held_next_pass, ld_addr_next, self.next_w_base)
            ),
        ]

        # The row due in this cycle (read in the previous one, registered out of the buffer
        # in this one) reaches the array's shadow registers in the next.
        assert WEIGHT_READ_LATENCY == 1
        w_valid = Signal()
        w_row = Signal(range(rows), reset_less=True)
        w_data = Signal.like(self.weight_rd.data, reset_less=True)
        m.d.sync += [
            w_valid.eq(begin | ld_active),
            w_row.eq(Mux(ld_active, ld_row, 0)),
            w_data.eq(self.weight_rd.data),
        ]
        m.d.comb += [
            self.w.valid.eq(w_valid),
            self.w.payload.row.eq(w_row),
            self.w.payload.data.eq(w_data),
        ]
        return m
