"""The compute engine's front end: holds one COMPUTE instruction.

It takes the next instruction (``i.valid & i.ready``, the instruction's ``take``; ``i`` is
the compute engine's instruction register, whose instruction is granted, its semaphores
acquired, and decoded: :func:`hdl.window.decoded_layout`) when it is empty or releases the
one it holds in that very cycle: an ARRAY instruction once its last weight load is complete
and its last pass has begun feeding (``max(wl[last] + rows, f[last])``), a vector
instruction in the last cycle of its last pass's feed slot (``f[last] + max(T,
VECTOR_MIN_PASS) - 1``). ``i.ready`` depends on registers only.

The weight loader (:class:`hdl.weight_loader.WeightLoader`) reads the instruction on ``i``
and the one held every cycle rather than keeping a copy (``take`` tells it which is the
instruction of the cycle: the one taken, else the one held). The window generator
(:class:`hdl.window.WindowGenerator`) accepts an instruction in the cycle it is taken if it is
idle (so the first address goes out in ``start``), else at the previous instruction's last
word. In the cycle of that hand-over the feeder (:class:`hdl.feeder.Feeder`) gets the fields
it needs, with a 1-bit parity toggled per instruction taken: the feeder reports each word
it takes with its instruction's parity, which tells the front end's instruction from the
one the window generator is still walking.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from accel.config import AccelConfig
from accel.isa import ComputeMode
from hdl._check import check_config
from hdl.feeder import feed_fields_layout, taken_layout
from hdl.weight_loader import LOAD_SIGNATURE
from hdl.window import decoded_layout

__all__ = ["FrontEnd"]


class FrontEnd(wiring.Component):
    """Holds one COMPUTE instruction; hands it to the window generator, the weight loader
    and the feeder, and releases it when they are done with it.

    Parameters
    ----------
    config : AccelConfig
        The accumulator buffer's size (the width of ``acc_base`` on ``feed``).

    Raises
    ------
    TypeError
        If ``config`` is not an :class:`~accel.config.AccelConfig`.

    Ports
    -----
    i : In(stream.Signature(decoded_layout))
        The decoded instruction, from :class:`hdl.compute.ComputeEngine`'s instruction
        register.
    window : Out(stream.Signature(decoded_layout))
        To :attr:`hdl.window.WindowGenerator.i`: the instruction, from the cycle it is taken
        until the generator accepts it (at once if it is idle, else at the previous
        instruction's last word). Which of the two it is (the held one while it waits, else
        the one on ``i``) depends on registers only.
    load : Out(:data:`hdl.weight_loader.LOAD_SIGNATURE`)
        To the weight loader: the instruction on ``i`` and the one held, whether the one on
        ``i`` is taken now and whether the instruction of this cycle (the one taken, else the
        one held) is an ARRAY one; back, whether every row of its passes has been read.
    feed : Out(stream.Signature(feed_fields_layout, always_ready=True))
        To the feeder: the fields of the instruction the window generator accepts, with the
        instruction's parity (one bit, toggled per instruction taken), in the cycle it
        accepts it.
    taken : In(stream.Signature(taken_layout, always_ready=True))
        From the feeder: the word it takes in this cycle; the parity tells the front end's
        instruction from the one the generator is still walking.
    slot_free : In(1)
        From the feeder: no vector feed slot runs into the next cycle.
    is_instr : Out(stream.Signature(decoded_layout))
        Input-stationary machines only: an ``is_`` instruction, ``valid`` in the cycle it is
        taken, to :class:`hdl.is_stream.InputStationary` (it never goes to the window
        generator, the loader or the feeder).
    is_loaded, is_streamed : In(1)
        Input-stationary machines only: the held ``is_`` instruction's rows are all loaded
        and its last tile streams; it is released then (``max(wl[last] + R, f[last])``).
    """

    def __init__(self, config: AccelConfig) -> None:
        self._config = check_config(config)
        extra = {}
        if config.array.dataflow == "is":
            extra = {
                "is_instr": Out(stream.Signature(decoded_layout(config))),
                "is_loaded": In(1),
                "is_streamed": In(1),
            }
        super().__init__(
            {
                **extra,
                "i": In(stream.Signature(decoded_layout(config))),
                "window": Out(stream.Signature(decoded_layout(config))),
                "load": Out(LOAD_SIGNATURE),
                "feed": Out(stream.Signature(feed_fields_layout(config), always_ready=True)),
                "taken": In(stream.Signature(taken_layout(), always_ready=True)),
                "slot_free": In(1),
            }
        )

    @property
    def config(self) -> AccelConfig:
        return self._config

    def elaborate(self, platform) -> Module:
        m = Module()
        held = Signal(decoded_layout(self._config), reset_less=True)
        held_valid = Signal()
        parity = Signal()  # toggles per instruction taken
        waiting = Signal()  # `held` has not gone to the window generator yet
        last_pass_fed = Signal()  # the held instruction's last pass has begun feeding
        last_word_fed = Signal()  # ... and its last word has been fed

        held_vector = held.instr.mode != ComputeMode.ARRAY
        os = self._config.array.dataflow == "os"
        is_ = self._config.array.dataflow == "is"
        if is_:  # an input-stationary instruction: hdl.is_stream says when
            is_release = self.is_loaded & self.is_streamed
            ws_release = Mux(held.instr.is_, is_release, self.load.loaded & last_pass_fed)
            release = held_valid & Mux(held_vector, last_word_fed & self.slot_free, ws_release)
        elif os:  # an output-stationary instruction loads no weights: its last word is fed
            vector_release = last_word_fed & self.slot_free
            ws_release = Mux(held.instr.os, last_word_fed, self.load.loaded & last_pass_fed)
            release = held_valid & Mux(held_vector, vector_release, ws_release)
        else:
            release = held_valid & Mux(
                held_vector,
                last_word_fed & self.slot_free,
                self.load.loaded & last_pass_fed,
            )
        m.d.comb += self.i.ready.eq(~held_valid | release)
        take = Signal()
        m.d.comb += take.eq(self.i.valid & self.i.ready)
        front_parity = parity ^ take

        # Hand-over to the window generator, and at the same time to the feeder: the held
        # instruction while it waits for the generator (nothing is taken then), else the one
        # taken now. The choice is a register (`waiting`), not `take`, nor logic in front of
        # the multiplexer of the whole instruction.
        handed = Signal(decoded_layout(self._config))
        m.d.comb += [
            handed.eq(Mux(waiting, held, self.i.payload)),
            self.window.valid.eq(take | waiting),
            self.window.payload.eq(handed),
        ]
        if is_:  # an input-stationary instruction goes to hdl.is_stream when it is taken
            taken_is = self.i.payload.instr.is_ & (self.i.payload.instr.mode == ComputeMode.ARRAY)
            m.d.comb += [
                self.window.valid.eq((take & ~taken_is) | waiting),
                self.is_instr.valid.eq(take & taken_is),
                self.is_instr.payload.eq(self.i.payload),
            ]
        accepted = self.window.valid & self.window.ready
        m.d.comb += self.feed.valid.eq(accepted)
        for name in feed_fields_layout(self._config).members:
            if name != "parity":
                m.d.comb += getattr(self.feed.payload, name).eq(getattr(handed.instr, name))
        m.d.comb += self.feed.payload.parity.eq(front_parity)

        m.d.comb += [
            self.load.take.eq(take),
            self.load.array.eq(
                Mux(
                    take,
                    (self.i.payload.instr.mode == ComputeMode.ARRAY) & ~self.i.payload.instr.os,
                    held_valid & ~held_vector & ~held.instr.os,
                )
                if os
                else Mux(
                    take,
                    (self.i.payload.instr.mode == ComputeMode.ARRAY) & ~self.i.payload.instr.is_,
                    held_valid & ~held_vector & ~held.instr.is_,
                )
                if is_
                else Mux(
                    take,
                    self.i.payload.instr.mode == ComputeMode.ARRAY,
                    held_valid & ~held_vector,
                )
            ),
            self.load.next.eq(self.i.payload.instr),
            self.load.held.eq(held.instr),
        ]

        word = self.taken.payload
        word_is_front = word.parity == front_parity
        m.d.sync += [
            last_pass_fed.eq(
                (last_pass_fed & ~take)
                | (self.taken.valid & word.pass_start & word.last_pass & word_is_front)
            ),
            last_word_fed.eq(
                (last_word_fed & ~take) | (self.taken.valid & word.last & word_is_front)
            ),
        ]
        with m.If(take):
            m.d.sync += [held.eq(self.i.payload), held_valid.eq(1), parity.eq(~parity)]
        with m.Elif(release):
            m.d.sync += held_valid.eq(0)
        with m.If(take):
            m.d.sync += waiting.eq(~(accepted | taken_is) if is_ else ~accepted)
        with m.Elif(accepted | release):
            m.d.sync += waiting.eq(0)
        return m
