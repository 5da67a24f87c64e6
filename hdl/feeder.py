"""The compute engine's feeder: the window generator's words onto the array or the vector unit.

In cycle ``D`` it takes the word on offer (:class:`hdl.window.WindowGenerator`'s ``o``), to
be fed in ``D + 1``: the input buffer (``input_rd``) is read in ``D``, the word (or
``pad_value`` in every lane) is on the array or the vector unit in ``D + 1``. Within a pass
it takes a word every cycle; the first word of a pass waits until the pass may start:

- ARRAY: its weights have begun loading (``f >= wl + 1``: the weight loader offers them on
  ``weights``, from the cycle their row 0 is read);
- vector: its feed slot is free, ``VECTOR_MIN_PASS`` after the previous vector pass's first
  word (a counter; back-to-back words give ``f[j-1] + T`` by themselves);
- if the previous pass fed the other unit, that unit's last instruction is done (a counter
  started at its last word, so that the first word of the other unit is fed in ``done`` at
  the earliest: the units share the accumulator write port).

Every fed word carries its accumulator row (``acc_base`` + pixel, a counter), whether it
overwrites (first pass, ``accumulate`` off), the VADD operand (a on the first pass, b on the
second; VSUM always a) and whether it is its instruction's last.

The feeder learns the fields of each instruction (``instr``) in the cycle the window
generator accepts it, and keeps them while the generator walks it; a 1-bit parity per
instruction tells the front end's instruction from the one the generator is still walking.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import ReadPort
from amaranth.lib.wiring import In, Out

from accel import isa, timing
from accel.config import AccelConfig
from accel.isa import ComputeMode
from hdl._check import check_config
from hdl.accumulator import acc_addr_bits, vector_read_layout
from hdl.array import array_input_layout, os_input_layout
from hdl.vector import vector_input_layout
from hdl.weight_loader import WEIGHTS_SIGNATURE, weight_addr_bits
from hdl.window import addr_bits, depthwise_mode, window_word_layout

__all__ = [
    "INPUT_READ_LATENCY",
    "Feeder",
    "done_latency",
    "feed_fields_layout",
    "meta_layout",
    "taken_layout",
]

#: Cycles from the input buffer read address to its data: the window generator issues the
#: address of the word fed in cycle ``f`` in cycle ``f - 1``.
INPUT_READ_LATENCY = 1

_WIDTH = {name: width for name, width, _ in isa.FIELDS[isa.Compute]}


def feed_fields_layout(config: AccelConfig) -> data.StructLayout:
    """What the feeder needs of the instruction whose words it takes (``instr``; on an
    output-stationary machine also ``os`` and ``w_base``: the feeder reads its weights)."""
    extra = {}
    if config.array.dataflow == "os":
        extra = {"os": 1, "w_base": unsigned(weight_addr_bits(config))}
    return data.StructLayout(
        {
            **extra,
            "mode": ComputeMode,
            "accumulate": 1,
            "acc_base": unsigned(acc_addr_bits(config)),
            "pad_value": signed(_WIDTH["pad_value"]),
            "zero_point_a": signed(_WIDTH["zero_point_a"]),
            "zero_point_b": signed(_WIDTH["zero_point_b"]),
            "multiplier_a": signed(_WIDTH["multiplier_a"]),
            "shift_a": unsigned(_WIDTH["shift_a"]),
            "multiplier_b": signed(_WIDTH["multiplier_b"]),
            "shift_b": unsigned(_WIDTH["shift_b"]),
            "mul": 1,
            "parity": 1,  # tells the front end's instruction from the one before it
        }
    )


def taken_layout() -> data.StructLayout:
    """A word the feeder takes, as the front end sees it (``taken``)."""
    return data.StructLayout({"pass_start": 1, "last_pass": 1, "last": 1, "parity": 1})


def meta_layout(config: AccelConfig) -> data.StructLayout:
    """What travels beside a word through the array (``meta``)."""
    return data.StructLayout(
        {"acc_row": unsigned(acc_addr_bits(config)), "overwrite": 1, "last": 1}
    )


def done_latency(config: AccelConfig, *, vector: bool, os: bool = False) -> int:
    """``done`` minus the last feed cycle of an instruction: ARRAY ``rows + cols - 1 +
    ACC_LATENCY + 1``, vector ``VECTOR_LATENCY + 1``, output-stationary ``2*rows + cols +
    ACC_LATENCY + 1`` (``accel.timing``: ``done = F + G*S - 1 + 2*rows + cols +
    ACC_LATENCY + 1``, the last exit plus ``ACC_LATENCY + 1``)."""
    if vector:
        return timing.VECTOR_LATENCY + 1
    a = check_config(config).array
    if os:
        return 2 * a.rows + a.cols + timing.ACC_LATENCY + 1
    return a.rows + a.cols - 1 + timing.ACC_LATENCY + 1


def _fed_layout(config: AccelConfig) -> data.StructLayout:
    """A word between the feeder's decision (cycle D) and its feed (D + 1), without ``x``."""
    return data.StructLayout(
        {
            "vector": 1,
            "pad": 1,
            "switch": 1,  # first word of a pass
            "last": 1,  # last word of its instruction
            "acc_row": unsigned(acc_addr_bits(config)),
            "overwrite": 1,
            "pad_value": signed(_WIDTH["pad_value"]),
            "mode": ComputeMode,
            "mul": 1,
            "zero_point": signed(_WIDTH["zero_point_a"]),
            "multiplier": signed(_WIDTH["multiplier_a"]),
            "shift": unsigned(_WIDTH["shift_a"]),
            "dw": 1,
        }
    )


def _os_fed_layout(config: AccelConfig) -> data.StructLayout:
    """An output-stationary word between the decision and the feed: as ``os_input_layout``
    without the activations and weights (they come from the buffers' read ports)."""
    members = dict(os_input_layout(config).members)
    del members["x"], members["w"]
    return data.StructLayout({"os": 1, **members})


class Feeder(wiring.Component):
    """Takes one window word per cycle when the pass may start; feeds it one cycle later.

    Parameters
    ----------
    config : AccelConfig
        Array size, activation width, the input buffer and accumulator sizes.

    Raises
    ------
    TypeError
        If ``config`` is not an :class:`~accel.config.AccelConfig`.

    Ports
    -----
    instr : In(stream.Signature(feed_fields_layout, always_ready=True))
        From the front end: the fields (and parity) of the instruction the window generator
        accepts, in the cycle it accepts it.
    word : In(stream.Signature(window_word_layout))
        The window generator's words; ``ready`` depends on ``weights.valid``, the payloads
        of ``word`` and ``instr``, and registers.
    walked_ready : Out(1)
        ``word.ready`` for a word of the instruction the window generator walks (the fields
        kept from an earlier ``instr``): equal to ``word.ready`` while it walks one; not
        dependent on ``instr``. To :attr:`hdl.window.WindowGenerator.held_ready`.
    weights : In(WEIGHTS_SIGNATURE)
        From the weight loader: an ARRAY pass may start only while ``valid``; ``ready`` in
        the cycle the feeder takes an ARRAY pass's first word.
    taken : Out(stream.Signature(taken_layout, always_ready=True))
        To the front end: the word taken in this cycle (``pass_start``, ``last_pass``,
        ``last`` of its instruction, the instruction's ``parity``).
    slot_free : Out(1)
        To the front end: no vector pass's ``VECTOR_MIN_PASS`` feed slot is running into
        the next cycle (a vector pass may start now).
    input_rd : In(ReadPort.Signature(addr_bits, ArrayLayout(signed(8), rows)))
        The input buffer's synchronous read port: the taken word's address in ``D`` (not for
        padding).
    array : Out(stream.Signature(ArrayInput, always_ready=True))
        To :attr:`hdl.array.SystolicArray.i`: the ARRAY word fed in ``D + 1``, ``switch`` on
        the first word of a pass.
    vector : Out(stream.Signature(VectorInput, always_ready=True))
        To :attr:`hdl.vector.VectorUnit.i`: the vector word fed in ``D + 1``.
    acc_rd : Out(stream.Signature(VectorRead, always_ready=True))
        To :attr:`hdl.accumulator.AccumulatorBuffer.v_rd`: the vector word's row, in ``D + 1``.
    meta : Out(meta_layout)
        The fed word's accumulator row, overwrite bit and last mark, in ``D + 1`` (for the
        ARRAY word to carry beside it through the array).
    tap_rd : In(ReadPort.Signature(addr_bits, ArrayLayout(signed(8), rows))).array(rows - 1)
        Square arrays only (the depthwise mode): the input buffer's read port of array row
        ``t`` (element ``t - 1``), read in ``D + t - 1`` for a depthwise word taken in ``D``.
    dwx : Out(ArrayLayout(ArrayLayout(signed(8), rows), rows))
        Square arrays only: row ``t``'s word (its tap's, or ``pad_value``) in ``D + 1 + t``,
        to :attr:`hdl.array.SystolicArray.dwx`.
    os_weight_rd : Out(stream.Signature(unsigned(weight_addr_bits), always_ready=True))
        Output-stationary machines only: the weight word of the OS step taken in ``D``
        (``w_base + s``), read in ``D`` (the compute engine gives it the weight port).
    os_weight : In(ArrayLayout(signed(8), cols))
        Output-stationary machines only: that word, in ``D + 1``.
    os : Out(stream.Signature(os_input_layout, always_ready=True))
        Output-stationary machines only: the step fed in ``D + 1``, to
        :attr:`hdl.array.SystolicArray.os_i`.
    is_start, is_last, is_busy : In(1)
        Input-stationary machines only, from :class:`hdl.is_stream.InputStationary`, the
        third unit: a tile's first weight word is decided in this cycle (``D``); an
        instruction's last one is (its ``done`` is the array's latency later, counted here
        as a weight-stationary instruction's); the stream is inside a tile.
    is_free : Out(1)
        Input-stationary machines only: a tile may begin streaming in this cycle as far as
        the other units go (the last pass fed was a tile, or the last instruction of the
        other units is done and none is being fed).
    """

    def __init__(self, config: AccelConfig) -> None:
        self._config = check_config(config)
        rows = config.array.rows
        read = ReadPort.Signature(
            addr_width=addr_bits(config),
            shape=data.ArrayLayout(signed(config.data.act_bits), rows),
        )
        extra = {}
        if depthwise_mode(config):
            extra = {
                "tap_rd": In(read).array(rows - 1),
                "dwx": Out(
                    data.ArrayLayout(data.ArrayLayout(signed(config.data.act_bits), rows), rows)
                ),
            }
        if config.array.dataflow == "is":
            extra.update(
                {
                    "is_start": In(1),
                    "is_last": In(1),
                    "is_busy": In(1),
                    "is_free": Out(1),
                }
            )
        if config.array.dataflow == "os":
            extra["os_weight_rd"] = Out(
                stream.Signature(unsigned(weight_addr_bits(config)), always_ready=True)
            )
            extra["os_weight"] = In(
                data.ArrayLayout(signed(config.data.weight_bits), config.array.cols)
            )
            extra["os"] = Out(stream.Signature(os_input_layout(config), always_ready=True))
        super().__init__(
            {
                **extra,
                "instr": In(stream.Signature(feed_fields_layout(config), always_ready=True)),
                "word": In(stream.Signature(window_word_layout(config))),
                "walked_ready": Out(1),
                "weights": In(WEIGHTS_SIGNATURE),
                "taken": Out(stream.Signature(taken_layout(), always_ready=True)),
                "slot_free": Out(1),
                "input_rd": In(
                    ReadPort.Signature(
                        addr_width=addr_bits(config),
                        shape=data.ArrayLayout(signed(config.data.act_bits), rows),
                    )
                ),
                "array": Out(stream.Signature(array_input_layout(config), always_ready=True)),
                "vector": Out(stream.Signature(vector_input_layout(config), always_ready=True)),
                "acc_rd": Out(stream.Signature(vector_read_layout(config), always_ready=True)),
                "meta": Out(meta_layout(config)),
            }
        )

    @property
    def config(self) -> AccelConfig:
        return self._config

    def elaborate(self, platform) -> Module:
        m = Module()
        config = self._config
        rows = config.array.rows

        # Which instruction the word on offer belongs to: the one the window generator is
        # walking (`inflight`), or, when it is idle, the one it accepts now.
        inflight = Signal()
        walked = Signal(feed_fields_layout(config), reset_less=True)
        fields = Signal(feed_fields_layout(config))
        m.d.comb += fields.eq(Mux(inflight, walked, self.instr.payload))
        with m.If(self.instr.valid):
            m.d.sync += walked.eq(self.instr.payload)

        # ---- cycle D, decide ------------------------------------------------------------
        gap = Signal(range(max(timing.VECTOR_MIN_PASS, 2)))  # vector feed slot still busy
        os = config.array.dataflow == "os"
        array_latency = done_latency(config, vector=False)
        vector_latency = done_latency(config, vector=True)
        os_latency = done_latency(config, vector=False, os=True)
        drain = Signal(range(max(array_latency, vector_latency, *([os_latency] if os else [])) + 1))
        last_vector = Signal()  # the unit of the last pass fed
        word = self.word.payload
        word_vector = fields.mode != ComputeMode.ARRAY
        if os:  # a third unit: the output-stationary array
            last_os = Signal()
            word_os = Signal()
            m.d.comb += word_os.eq(fields.os & ~word_vector)
        elif config.array.dataflow == "is":  # a third unit, fed by hdl.is_stream
            last_is = Signal()  # the last pass fed was an input-stationary tile
            busy = Signal()  # inside an instruction of this feeder's (its last word not taken)
            m.d.comb += self.is_free.eq(last_is | ((drain == 0) & ~busy))

        def may_start(f):
            """A pass of the instruction with the fields ``f`` may start in this cycle."""
            vector = f.mode != ComputeMode.ARRAY
            if os:
                f_os = f.os & ~vector
                unit_free = ((vector == last_vector) & (f_os == last_os)) | (drain == 0)
                weights_ok = f_os | self.weights.valid
            elif config.array.dataflow == "is":
                same_unit = (vector == last_vector) & ~last_is
                unit_free = same_unit | ((drain == 0) & ~self.is_busy)
                weights_ok = self.weights.valid
            else:
                unit_free = (vector == last_vector) | (drain == 0)
                weights_ok = self.weights.valid
            return Mux(vector, gap == 0, weights_ok) & unit_free

        # Side by side for the walked instruction and the one accepted now, `inflight` only
        # selecting: the walked one's is the generator's `held_ready`, which the instruction
        # handed over does not reach.
        walked_may_start = may_start(walked)
        pass_may_start = Mux(inflight, walked_may_start, may_start(self.instr.payload))
        m.d.comb += [
            self.word.ready.eq(~word.pass_start | pass_may_start),
            self.walked_ready.eq(~word.pass_start | walked_may_start),
        ]
        took = Signal()  # a word is taken: it is fed in the next cycle
        m.d.comb += took.eq(self.word.valid & self.word.ready)
        word_last = word.pass_end & word.last_pass
        pass_begins = took & word.pass_start
        m.d.comb += [
            self.weights.ready.eq(
                pass_begins & ~word_vector & ~word_os if os else pass_begins & ~word_vector
            ),
            self.slot_free.eq(gap == 0),
            self.taken.valid.eq(took),
            self.taken.payload.pass_start.eq(word.pass_start),
            self.taken.payload.last_pass.eq(word.last_pass),
            self.taken.payload.last.eq(word_last),
            self.taken.payload.parity.eq(fields.parity),
        ]

        if os:
            with m.If(took & word_last):
                latency = Mux(word_vector, vector_latency - 1, array_latency - 1)
                m.d.sync += drain.eq(Mux(word_os, os_latency - 1, latency))
            with m.Elif(drain != 0):
                m.d.sync += drain.eq(drain - 1)
            with m.If(pass_begins):
                m.d.sync += last_os.eq(word_os)
        elif config.array.dataflow == "is":
            # The input-stationary array's latency after its last word is the array's.
            with m.If(took & word_last):
                m.d.sync += drain.eq(Mux(word_vector, vector_latency - 1, array_latency - 1))
            with m.Elif(self.is_last):
                m.d.sync += drain.eq(array_latency - 1)
            with m.Elif(drain != 0):
                m.d.sync += drain.eq(drain - 1)
            with m.If(pass_begins):
                m.d.sync += last_is.eq(0)
            with m.Elif(self.is_start):
                m.d.sync += last_is.eq(1)
            with m.If(took):
                m.d.sync += busy.eq(~word_last)
        else:
            with m.If(took & word_last):
                m.d.sync += drain.eq(Mux(word_vector, vector_latency - 1, array_latency - 1))
            with m.Elif(drain != 0):
                m.d.sync += drain.eq(drain - 1)
        with m.If(pass_begins):
            m.d.sync += [
                last_vector.eq(word_vector),
                gap.eq(Mux(word_vector, timing.VECTOR_MIN_PASS - 1, 0)),
            ]
        with m.Elif(gap != 0):
            m.d.sync += gap.eq(gap - 1)
        ends = took & word_last  # the walked instruction's last word leaves the generator
        m.d.sync += inflight.eq(Mux(inflight, ~ends | self.instr.valid, self.instr.valid & ~ends))

        # The word's accumulator row and operands.
        acc_row = Signal(acc_addr_bits(config), reset_less=True)  # row of the last word taken
        row_now = Mux(word.pass_start, fields.acc_base, acc_row + 1)
        with m.If(took):
            m.d.sync += acc_row.eq(row_now)
        operand_b = (fields.mode == ComputeMode.VADD) & ~word.first_pass
        fed = Signal(_fed_layout(config), reset_less=True)
        fed_valid = Signal()
        m.d.sync += [
            fed_valid.eq(took),
            fed.vector.eq(word_vector),
            fed.pad.eq(word.pad),
            fed.switch.eq(word.pass_start),
            fed.last.eq(word_last),
            fed.acc_row.eq(row_now),
            fed.overwrite.eq(word.first_pass & ~fields.accumulate),
            fed.pad_value.eq(fields.pad_value),
            fed.mode.eq(fields.mode),
            fed.mul.eq(fields.mul),
            fed.zero_point.eq(Mux(operand_b, fields.zero_point_b, fields.zero_point_a)),
            fed.multiplier.eq(Mux(operand_b, fields.multiplier_b, fields.multiplier_a)),
            fed.shift.eq(Mux(operand_b, fields.shift_b, fields.shift_a)),
        ]
        if depthwise_mode(config):
            m.d.sync += fed.dw.eq(word.dw & ~word_vector)
        # Padding is produced, not read.
        assert INPUT_READ_LATENCY == 1
        m.d.comb += [
            self.input_rd.en.eq(took & ~word.pad),
            self.input_rd.addr.eq(word.addr),
        ]

        if os:
            word_os_fed = self._output_stationary(m, took & word_os, word, fields, word_last)

        # ---- cycle D + 1, feed ----------------------------------------------------------
        x = Signal(data.ArrayLayout(signed(config.data.act_bits), rows))
        for lane in range(rows):
            m.d.comb += x[lane].eq(Mux(fed.pad, fed.pad_value, self.input_rd.data[lane]))
        m.d.comb += [
            self.array.valid.eq(fed_valid & ~fed.vector),
            self.array.payload.x.eq(x),
            self.array.payload.switch.eq(fed.switch),
            *([self.array.payload.dw.eq(fed.dw)] if depthwise_mode(config) else []),
            self.vector.valid.eq(fed_valid & fed.vector),
            self.vector.payload.x.eq(x),
            self.vector.payload.mode.eq(fed.mode),
            self.vector.payload.mul.eq(fed.mul),
            self.vector.payload.overwrite.eq(fed.overwrite),
            self.vector.payload.zero_point.eq(fed.zero_point),
            self.vector.payload.multiplier.eq(fed.multiplier),
            self.vector.payload.shift.eq(fed.shift),
            self.acc_rd.valid.eq(fed_valid & fed.vector),
            self.acc_rd.payload.addr.eq(fed.acc_row),
            self.acc_rd.payload.last.eq(fed.last),
            self.meta.acc_row.eq(fed.acc_row),
            self.meta.overwrite.eq(fed.overwrite),
            self.meta.last.eq(fed.last),
        ]
        if depthwise_mode(config):
            self._depthwise_rows(m, took & ~word_vector & word.dw, word, fields.pad_value, x)
        if os:
            m.d.comb += self.array.valid.eq(fed_valid & ~fed.vector & ~word_os_fed)
        return m

    def _output_stationary(self, m: Module, took, word, fields, word_last):
        """An output-stationary word taken in ``D`` (``took``): its weight word (step ``s``
        of its group at ``w_base + s``) is read in ``D`` too (``os_weight_rd``), and both are
        on ``os`` in ``D + 1`` with the step's flags and, with a group's last step, the
        group's drain record (its accumulator row ``acc_base + g*rows``, which of its rows
        hold pixels). Returns the registered "the fed word is an OS one"."""
        config = self._config
        rows = config.array.rows
        w_addr = Signal(weight_addr_bits(config), name="os_w_addr", reset_less=True)
        w_now = Mux(word.first_step, fields.w_base, w_addr + 1)
        group_row = Signal(acc_addr_bits(config), name="os_group_row", reset_less=True)
        row_now = Mux(word.pass_start, fields.acc_base, group_row)
        mask = Signal(rows, name="os_mask", reset_less=True)
        mask_now = Signal(rows, name="os_mask_now")
        m.d.comb += mask_now.eq(Cat(mask[1:], ~word.dummy))
        with m.If(took):
            m.d.sync += [
                w_addr.eq(w_now),
                group_row.eq(Mux(word.last_step, row_now + rows, row_now)),
                mask.eq(mask_now),
            ]
        m.d.comb += [self.os_weight_rd.valid.eq(took), self.os_weight_rd.payload.eq(w_now)]
        fed = Signal(_os_fed_layout(config), name="os_fed", reset_less=True)
        fed_valid = Signal(name="os_fed_valid")
        m.d.sync += [
            fed_valid.eq(took),
            fed.row.eq(word.row),
            fed.first.eq(word.first_step),
            fed.last.eq(word.last_step),
            fed.rec.acc_row.eq(row_now),
            fed.rec.mask.eq(mask_now),
            fed.rec.overwrite.eq(~fields.accumulate),
            fed.rec.last.eq(word_last),
        ]
        p = self.os.payload
        m.d.comb += [
            self.os.valid.eq(fed_valid),
            p.x.eq(self.array.payload.x),
            p.w.eq(self.os_weight),
            p.row.eq(fed.row),
            p.first.eq(fed.first),
            p.last.eq(fed.last),
            p.rec.eq(fed.rec),
        ]
        return fed_valid

    def _depthwise_rows(self, m: Module, took, word, pad_value, x) -> None:
        """Depthwise mode: row ``t``'s word (its tap's) read ``t - 1`` cycles after row 0's,
        in ``D + t - 1`` (address and padding delayed in registers), registered with its
        padding and on ``dwx[t]`` in ``D + 1 + t`` = ``f + t``, the cycle the pass's word
        reaches array row ``t`` (the skew of :mod:`accel.timing`); row 0 is ``x``. The
        register keeps the block RAM's output and the pad multiplexer off the array's
        multipliers."""
        rows = self._config.array.rows
        stage = data.StructLayout(
            {
                "en": 1,
                "addr": unsigned(addr_bits(self._config)),
                "pad": 1,
                "pad_value": signed(_WIDTH["pad_value"]),
            }
        )
        m.d.comb += self.dwx[0].eq(x)
        for t in range(1, rows):
            now = Signal(stage, name=f"tap{t}_d0")
            m.d.comb += [
                now.en.eq(took & ~word.taps[t].pad),
                now.addr.eq(word.taps[t].addr),
                now.pad.eq(word.taps[t].pad),
                now.pad_value.eq(pad_value),
            ]
            chain = [now]
            for k in range(1, t + 1):
                reg = Signal(stage, name=f"tap{t}_d{k}", reset_less=True)
                m.d.sync += reg.eq(chain[-1])
                chain.append(reg)
            port, got = self.tap_rd[t - 1], chain[t]
            m.d.comb += [port.en.eq(chain[t - 1].en), port.addr.eq(chain[t - 1].addr)]
            tap_word = Signal.like(self.dwx[t], name=f"tap{t}_word", reset_less=True)
            for lane in range(rows):
                m.d.sync += tap_word[lane].eq(Mux(got.pad, got.pad_value, port.data[lane]))
            m.d.comb += self.dwx[t].eq(tap_word)
