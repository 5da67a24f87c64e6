"""The window generator of the input buffer: hardware im2col address generation.

For a COMPUTE instruction it issues one input-buffer word address per transfer, in the order of
:func:`accel.window.feed_addresses`: passes (channel tile ``ct``, kernel row ``r``, kernel
column ``s``; ``s`` fastest), and within a pass output pixels (``p``, ``q``; ``q`` fastest)::

    addr = in_base + ct*ct_stride + (p*stride_h + r*dil_h)*tile_w + q*stride_w + s*dil_w
    pad  = the image position (origin_h + p*stride_h + r*dil_h, origin_w + q*stride_w +
           s*dil_w) lies outside image_h x image_w

On an output-stationary machine an ``os`` instruction is walked in another order (the OS
section of :mod:`accel.timing`): groups of ``rows`` pixels, per group the passes, per pass
the array rows (the group's pixels, then dummy rows past the last pixel, ``pad`` and
``dummy`` set); the word carries its ``row`` and whether it is its group's first / last
step. Its address is the pass's plus the pixel's offset (one adder, no multiplier).

In VADD mode there are two passes, at ``in_base`` and ``in_base_b``, with ``r = s = 0``
(``ct_count``, ``kernel_h``, ``kernel_w`` ignored); with ``broadcast_b`` every word of the
second pass has the address ``in_base_b`` (its ``pad`` is still the pixel's). No multiplier
sits in the address path: every address is the previous one plus a step (``stride_w``,
``stride_h*tile_w``, ``dil_w``, ``dil_h*tile_w``, ``ct_stride``), with one register per loop
level to return to. The two products, the VADD step and the last value of every loop counter
are constant for the instruction and come precomputed with it (:func:`decoded_layout`, the
compute engine's decode stage), so neither a multiplier nor a subtractor sits between the
instruction and the next address. Addresses are computed modulo ``2**addr_bits`` (the input
buffer's word address width); image coordinates are exact.

Timing. The first word of an instruction is on ``o`` in the cycle the instruction is on ``i``
(a combinational path from ``i.payload``, which the compute engine presents from registers):
:mod:`accel.timing` allows the first feed in cycle ``take + 1`` and the word reaches the array
one cycle after its address (the buffer's synchronous read), so that address must be issued
in cycle ``take``. After that one word per
cycle in which ``o.ready`` is high. ``i.ready`` is high when the generator is idle, and in the
cycle the last word of the current instruction is accepted, so consecutive instructions follow
each other with no bubble. ``i.ready`` depends on registers and ``held_ready`` only: not on
``i``, so that a consumer whose ``o.ready`` depends on the instruction of the word (the
feeder's, on ``i``'s fields when idle) closes no loop from ``i`` back to ``i.ready``.

Counts (``ct_count``, ``kernel_h``, ``kernel_w``, ``out_h``, ``out_w``) must be >= 1; the
compiler never emits an empty COMPUTE.

Ports
-----
i : In(stream.Signature(decoded_layout))
    The COMPUTE instruction (``instr``: :data:`hdl.isa.COMPUTE_LAYOUT`, bit-identical to
    :func:`accel.isa.encode`) with its precomputed steps and loop bounds (:func:`decode`;
    testbenches: :func:`decode_bits`).
o : Out(stream.Signature(WindowWord))
    ``addr``, ``pad`` (produce ``pad_value`` instead of reading), ``pass_start`` /
    ``pass_end`` (first / last pixel of a pass), ``first_pass`` / ``last_pass`` (the word
    belongs to the instruction's first / last pass). The instruction's last word has
    ``pass_end & last_pass``.
held_ready : In(1)
    ``o.ready`` as it is for a word of the instruction being walked (equal to ``o.ready``
    whenever the generator is busy; read only then). A consumer whose ``ready`` does not
    depend on the word's instruction drives it with ``o.ready``.
"""

from __future__ import annotations

from amaranth.hdl import Array, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from accel import isa
from accel.config import AccelConfig
from accel.isa import ComputeMode
from hdl._check import check_config
from hdl.isa import COMPUTE_LAYOUT

__all__ = [
    "WindowGenerator",
    "addr_bits",
    "decode",
    "decode_bits",
    "decoded_layout",
    "depthwise_mode",
    "window_word_layout",
]

_WIDTH = {name: width for name, width, _ in isa.FIELDS[isa.Compute]}
#: Image coordinates: origin (signed 16) + p*stride + r*dil, exact.
_COORD = signed(
    max(
        _WIDTH["origin_h"] + 1,
        ceil_log2(
            (1 << (_WIDTH["origin_h"] - 1))
            + ((1 << _WIDTH["out_h"]) - 1) * ((1 << _WIDTH["stride_h"]) - 1)
            + ((1 << _WIDTH["kernel_h"]) - 1) * ((1 << _WIDTH["dil_h"]) - 1)
        )
        + 1,
    )
)


def addr_bits(config: AccelConfig) -> int:
    """Width of an input buffer word address (``config.input_words`` words)."""
    return max(1, ceil_log2(check_config(config).input_words))


def depthwise_mode(config: AccelConfig) -> bool:
    """The array has the depthwise mode (``Compute.depthwise``): a square array, whose input
    words' lanes are its columns' channels."""
    return config.array.rows == config.array.cols


def _tap_layout(bits: int) -> data.StructLayout:
    """A depthwise row's tap: its address and image offsets from the pixel's, and whether
    the row is a tap at all (``t < taps_h * taps_w``)."""
    return data.StructLayout({"addr": unsigned(bits), "dh": _COORD, "dw": _COORD, "on": 1})


def _taps(config: AccelConfig, taps_h: int, taps_w: int, dil_h: int, dil_w: int, kr_step: int):
    """(addr, dh, dw, on) of every array row of a depthwise instruction, in Python (the
    reference of :func:`decode`'s taps): row ``t`` is tap ``(t // taps_w, t % taps_w)``."""
    out = []
    for t in range(config.array.rows):
        r, s = divmod(t, taps_w) if taps_w else (t, 0)
        out.append((r * kr_step + s * dil_w, r * dil_h, s * dil_w, int(r < taps_h)))
    return out


def decoded_layout(config: AccelConfig) -> data.StructLayout:
    """A COMPUTE instruction with what the walk needs of it precomputed: the address steps
    (``row_step = stride_h * tile_w``, ``kr_step = dil_h * tile_w``, ``ct_step``: ``ct_stride``,
    or ``in_base_b - in_base`` for VADD; modulo ``2**addr_bits``) and the last value of each
    loop counter (``ct_count - 1``, ``kernel_h - 1``, ... ; VADD: two passes, a 1x1 kernel).
    The compute engine's decode stage (:data:`accel.timing.COMPUTE_DECODE`) registers it, so
    no multiplier or subtractor sits between the instruction and the first address."""
    bits = addr_bits(config)
    fields = {
        "instr": COMPUTE_LAYOUT,
        "row_step": unsigned(bits),
        "kr_step": unsigned(bits),
        "ct_step": unsigned(bits),
        "ct_last": unsigned(_WIDTH["ct_count"]),
        "kh_last": unsigned(_WIDTH["kernel_h"]),
        "kw_last": unsigned(_WIDTH["kernel_w"]),
        "oh_last": unsigned(_WIDTH["out_h"]),
        "ow_last": unsigned(_WIDTH["out_w"]),
    }
    if depthwise_mode(config):  # per array row: its tap's offsets (depthwise mode)
        fields["taps"] = data.ArrayLayout(_tap_layout(bits), config.array.rows)
    return data.StructLayout(fields)


def _times(small, x, bits: int):
    """``small * x`` modulo ``2**bits`` for a narrow unsigned ``small``: a balanced sum of
    the shifted copies of ``x`` its bits select. No multiplier: on an FPGA a DSP block's
    fixed place costs more routing than its few adders (the decode stage's path, tile_w
    -> MULT18X18D -> the taps' chain, was 7.4 ns of routing at 8ee35ed)."""
    terms = [Mux(small[b], x << b, 0)[:bits] for b in range(len(small))]
    while len(terms) > 1:
        pairs = zip(terms[::2], terms[1::2], strict=False)
        terms = [(a + b)[:bits] for a, b in pairs] + terms[len(terms) & ~1 :]
    return terms[0]


def decode(m: Module, instr, config: AccelConfig, *, name: str = "decoded") -> Signal:
    """Combinational :func:`decoded_layout` of the COMPUTE instruction value ``instr``."""
    out = Signal(decoded_layout(config), name=name)
    vadd = instr.mode == ComputeMode.VADD
    bits = addr_bits(config)
    m.d.comb += [
        out.instr.eq(instr),
        out.row_step.eq(_times(instr.stride_h, instr.tile_w[:bits], bits)),
        out.kr_step.eq(_times(instr.dil_h, instr.tile_w[:bits], bits)),
        out.ct_step.eq(Mux(vadd, instr.in_base_b - instr.in_base, instr.ct_stride)),
        out.ct_last.eq(Mux(vadd, 1, instr.ct_count - 1)),
        out.kh_last.eq(Mux(vadd, 0, instr.kernel_h - 1)),
        out.kw_last.eq(Mux(vadd, 0, instr.kernel_w - 1)),
        out.oh_last.eq(instr.out_h - 1),
        out.ow_last.eq(instr.out_w - 1),
    ]
    if depthwise_mode(config):
        # Row t's tap (r, s) = (t // taps_w, t % taps_w), each row on its own (a chain from
        # row to row was the 8x8's critical path: 22.7 ns on the LFE5U-85F at 4f595b4): the
        # quotient and remainder are constants per value of taps_w <= t (taps_w > t: (0, t);
        # taps_w = 0: (t, 0), as the reference), and select the row's offsets among those of
        # every tap row r and column s, computed once (r * kr_step, r * dil_h, s * dil_w).
        rows = config.array.rows
        index = range(rows)
        narrow = ceil_log2(rows) + len(instr.dil_h)  # r * dil_h, s * dil_w < rows * 16
        row_addr = Array(_times(Const(r, index), out.kr_step, bits) for r in index)
        row_dh = Array(_times(Const(r, index), instr.dil_h, narrow) for r in index)
        col_dw = Array(_times(Const(s, index), instr.dil_w, narrow) for s in index)
        for t in index:
            r = Signal(range(max(t + 1, 2)), name=f"{name}_r{t}")  # no zero-width signal
            s = Signal(range(max(t + 1, 2)), name=f"{name}_s{t}")
            with m.Switch(instr.taps_w):
                for w in range(t + 1):
                    with m.Case(w):
                        m.d.comb += [r.eq(t // w if w else t), s.eq(t % w if w else 0)]
                with m.Default():
                    m.d.comb += [r.eq(0), s.eq(t)]
            m.d.comb += [
                out.taps[t].addr.eq(row_addr[r] + col_dw[s]),
                out.taps[t].dh.eq(row_dh[r]),
                out.taps[t].dw.eq(col_dw[s]),
                out.taps[t].on.eq(r < instr.taps_h),
            ]
    return out


def decode_bits(instr: isa.Compute, config: AccelConfig) -> int:
    """The :func:`decoded_layout` payload of ``instr`` as an int (for testbenches)."""
    layout = decoded_layout(config)
    mask = (1 << addr_bits(config)) - 1
    vadd = instr.mode == ComputeMode.VADD

    def last(count: int, name: str) -> int:
        return (count - 1) & ((1 << _WIDTH[name]) - 1)

    values = {
        "instr": int.from_bytes(isa.encode(instr), "little") & ((1 << COMPUTE_LAYOUT.size) - 1),
        "row_step": instr.stride_h * instr.tile_w & mask,
        "kr_step": instr.dil_h * instr.tile_w & mask,
        "ct_step": ((instr.in_base_b - instr.in_base) if vadd else instr.ct_stride) & mask,
        "ct_last": 1 if vadd else last(instr.ct_count, "ct_count"),
        "kh_last": 0 if vadd else last(instr.kernel_h, "kernel_h"),
        "kw_last": 0 if vadd else last(instr.kernel_w, "kernel_w"),
        "oh_last": last(instr.out_h, "out_h"),
        "ow_last": last(instr.out_w, "out_w"),
    }
    word = sum(value << layout[name].offset for name, value in values.items())
    if depthwise_mode(config):
        taps = _taps(
            config, instr.taps_h, instr.taps_w, instr.dil_h, instr.dil_w, instr.dil_h * instr.tile_w
        )
        tap = _tap_layout(addr_bits(config))
        base = layout["taps"].offset
        for t, (addr, dh, dw, on) in enumerate(taps):
            fields = {"addr": addr & mask, "dh": dh, "dw": dw, "on": on}
            for name, value in fields.items():
                member = tap[name]
                value &= (1 << member.width) - 1
                word |= value << (base + t * tap.size + member.offset)
    return word


def window_word_layout(config: AccelConfig, *, grouped: bool = False) -> data.StructLayout:
    """Payload of the window generator's output (with the depthwise mode: ``dw``, and every
    array row's tap address and padding, ``taps``; row 0's is ``addr``, ``pad``; on an
    output-stationary machine, or ``grouped``, the grouped walk's fields)."""
    fields = {
        "addr": unsigned(addr_bits(config)),
        "pad": 1,
        "pass_start": 1,
        "pass_end": 1,
        "first_pass": 1,
        "last_pass": 1,
    }
    if config.array.dataflow == "os" or grouped:
        fields.update(os_word_fields(config))
    if depthwise_mode(config):
        fields["dw"] = 1
        fields["taps"] = data.ArrayLayout(
            data.StructLayout({"addr": unsigned(addr_bits(config)), "pad": 1}),
            config.array.rows,
        )
    return data.StructLayout(fields)


def os_word_fields(config: AccelConfig) -> dict:
    """The output-stationary fields of a window word (``os`` machines): the word is an OS
    instruction's (``os``), for array row ``row``, a dummy row's (``dummy``: no pixel, fed
    ``pad_value``, never written), the first / last step of its group."""
    return {"os": 1, "row": range(config.array.rows), "dummy": 1, "first_step": 1, "last_step": 1}


def _os_state_layout(bits: int, rows: int) -> data.StructLayout:
    """Where an output-stationary walk is: the pass (as the weight-stationary walk's) and
    array row ``p``, the pixel of this word and the group's first pixel (output row ``oh``,
    column ``ow``, address offset ``oh*row_step + ow*stride_w``, the row's offset, the image
    offsets ``oh*stride_h``, ``ow*stride_w``), ``end`` once past the last pixel (dummy
    rows), ``g0`` in the first group."""
    pixel = data.StructLayout(
        {
            "oh": unsigned(_WIDTH["out_h"]),
            "ow": unsigned(_WIDTH["out_w"]),
            "addr": unsigned(bits),
            "row_addr": unsigned(bits),
            "h": _COORD,
            "w": _COORD,
            "end": 1,
        }
    )
    return data.StructLayout(
        {
            "ct": unsigned(_WIDTH["ct_count"]),
            "r": unsigned(_WIDTH["kernel_h"]),
            "s": unsigned(_WIDTH["kernel_w"]),
            "p": range(rows),
            "pass_addr": unsigned(bits),  # in_base + (ct, r, s)
            "kr_addr": unsigned(bits),
            "ct_addr": unsigned(bits),
            "pass_h": _COORD,  # origin_h + r*dil_h
            "pass_w": _COORD,  # origin_w + s*dil_w
            "pix": pixel,
            "group": pixel,
            "g0": 1,
        }
    )


def _state_layout(bits: int) -> data.StructLayout:
    """Where the walk is: loop counters, the address and image position, and the address /
    position each loop level returns to."""
    return data.StructLayout(
        {
            "ct": unsigned(_WIDTH["ct_count"]),
            "r": unsigned(_WIDTH["kernel_h"]),
            "s": unsigned(_WIDTH["kernel_w"]),
            "p": unsigned(_WIDTH["out_h"]),
            "q": unsigned(_WIDTH["out_w"]),
            "addr": unsigned(bits),  # (ct, r, s, p, q)
            "row_addr": unsigned(bits),  # (ct, r, s, p, 0)
            "pass_addr": unsigned(bits),  # (ct, r, s, 0, 0)
            "kr_addr": unsigned(bits),  # (ct, r, 0, 0, 0)
            "ct_addr": unsigned(bits),  # (ct, 0, 0, 0, 0)
            "img_h": _COORD,  # origin_h + p*stride_h + r*dil_h
            "img_w": _COORD,  # origin_w + q*stride_w + s*dil_w
            "pass_h": _COORD,  # origin_h + r*dil_h
            "pass_w": _COORD,  # origin_w + s*dil_w
        }
    )


def _pass_lasts(cur, dec):
    """Whether the walk at ``cur`` (either walk's state) is at the last ``s``, the last
    ``r`` and the last pass of the instruction ``dec``."""
    s_last = cur.s == dec.kw_last
    r_last = cur.r == dec.kh_last
    return s_last, r_last, (cur.ct == dec.ct_last) & r_last & s_last


def _lasts(cur, dec):
    """The walk at ``cur`` (:func:`_state_layout`) is at the last ``q``, ``p``, ``s``,
    ``r`` and the last pass of the instruction ``dec``, and at its last word."""
    q_last = cur.q == dec.ow_last
    p_last = cur.p == dec.oh_last
    s_last, r_last, last_pass = _pass_lasts(cur, dec)
    return q_last, p_last, s_last, r_last, last_pass, q_last & p_last & last_pass


def _os_lasts(cur, dec, rows: int):
    """The grouped walk at ``cur`` (:func:`_os_state_layout`) is at the last array row of a
    pass, at the last pixel, and at the instruction ``dec``'s last word (the last row of the
    last pass of the group with the last pixel, or past it)."""
    p_last = cur.p == rows - 1
    pix = cur.pix
    pix_last = (pix.oh == dec.oh_last) & (pix.ow == dec.ow_last)
    return p_last, pix_last, p_last & _pass_lasts(cur, dec)[2] & (pix.end | pix_last)


class WindowGenerator(wiring.Component):
    """im2col address generator: one (address, pad) per cycle per COMPUTE instruction.

    Parameters
    ----------
    config : AccelConfig
        ``config.input_words`` sets the address width.
    grouped : bool
        Walk every instruction in the grouped order (the output-stationary walk, whatever
        its ``os`` bit): the input-stationary reader's generator (:mod:`hdl.is_stream`),
        whose ``row`` is the tile's column.

    Raises
    ------
    TypeError
        If ``config`` is not an :class:`~accel.config.AccelConfig`.
    """

    def __init__(self, config: AccelConfig, *, grouped: bool = False) -> None:
        self._config = check_config(config)
        self._grouped = grouped
        super().__init__(
            {
                "i": In(stream.Signature(decoded_layout(config))),
                "o": Out(stream.Signature(window_word_layout(config, grouped=grouped))),
                "held_ready": In(1),
            }
        )

    @property
    def config(self) -> AccelConfig:
        return self._config

    @property
    def addr_bits(self) -> int:
        return addr_bits(self._config)

    def elaborate(self, platform) -> Module:
        m = Module()
        bits = self.addr_bits
        layout = _state_layout(bits)

        busy = Signal()  # the only register with a reset
        held = Signal(decoded_layout(self._config), reset_less=True)  # being walked
        state = Signal(layout, reset_less=True)

        # The instruction and position of this cycle: the held ones, or, when idle, the
        # instruction on `i` at its first word.
        dec = Signal(decoded_layout(self._config))
        cur = Signal(layout)
        first = Signal(layout)
        given = self.i.payload.instr
        m.d.comb += [
            first.addr.eq(given.in_base),
            first.row_addr.eq(given.in_base),
            first.pass_addr.eq(given.in_base),
            first.kr_addr.eq(given.in_base),
            first.ct_addr.eq(given.in_base),
            first.img_h.eq(given.origin_h),
            first.pass_h.eq(given.origin_h),
            first.img_w.eq(given.origin_w),
            first.pass_w.eq(given.origin_w),
            dec.eq(Mux(busy, held, self.i.payload)),
            cur.eq(Mux(busy, state, first)),
        ]
        ins = dec.instr
        ct_step = dec.ct_step

        q_last, p_last, s_last, r_last, last_pass, is_last = _lasts(cur, dec)
        first_pass = (cur.ct == 0) & (cur.r == 0) & (cur.s == 0)
        pass_start = (cur.p == 0) & (cur.q == 0)
        pass_end = p_last & q_last
        broadcast = (ins.mode == ComputeMode.VADD) & ins.broadcast_b
        # Whether the held instruction's word (the word on offer while busy) is its last,
        # for `i.ready`: from registers only, so that the instruction on `i` does not reach
        # `i.ready`.
        held_last = _lasts(state, held)[5]

        inside = (
            (cur.img_h >= 0)
            & (cur.img_h < ins.image_h)
            & (cur.img_w >= 0)
            & (cur.img_w < ins.image_w)
        )
        m.d.comb += [
            self.o.valid.eq(busy | self.i.valid),
            # A broadcast operand b stays at its pass's first word (in_base_b).
            self.o.payload.addr.eq(Mux(broadcast & ~first_pass, cur.pass_addr, cur.addr)),
            self.o.payload.pad.eq(~inside),
            self.o.payload.pass_start.eq(pass_start),
            self.o.payload.pass_end.eq(pass_end),
            self.o.payload.first_pass.eq(first_pass),
            self.o.payload.last_pass.eq(last_pass),
        ]
        if depthwise_mode(self._config):
            m.d.comb += self.o.payload.dw.eq(ins.depthwise)
            for t in range(self._config.array.rows):
                tap = dec.taps[t]
                h, w = cur.img_h + tap.dh, cur.img_w + tap.dw
                tap_inside = (h >= 0) & (h < ins.image_h) & (w >= 0) & (w < ins.image_w)
                m.d.comb += [
                    self.o.payload.taps[t].addr.eq(cur.addr + tap.addr),
                    self.o.payload.taps[t].pad.eq(~tap_inside | ~tap.on),
                ]

        # The position after this one (meaningless after the last word).
        nxt = Signal(layout)
        row_step = dec.row_step
        kr_step = dec.kr_step
        m.d.comb += nxt.eq(cur)
        with m.If(~q_last):
            m.d.comb += [
                nxt.q.eq(cur.q + 1),
                nxt.addr.eq(cur.addr + ins.stride_w),
                nxt.img_w.eq(cur.img_w + ins.stride_w),
            ]
        with m.Elif(~p_last):
            row_addr = cur.row_addr + row_step
            m.d.comb += [
                nxt.q.eq(0),
                nxt.p.eq(cur.p + 1),
                nxt.row_addr.eq(row_addr),
                nxt.addr.eq(row_addr),
                nxt.img_w.eq(cur.pass_w),
                nxt.img_h.eq(cur.img_h + ins.stride_h),
            ]
        with m.Elif(~s_last):
            pass_addr = cur.pass_addr + ins.dil_w
            pass_w = cur.pass_w + ins.dil_w
            m.d.comb += [
                nxt.q.eq(0),
                nxt.p.eq(0),
                nxt.s.eq(cur.s + 1),
                nxt.pass_addr.eq(pass_addr),
                nxt.row_addr.eq(pass_addr),
                nxt.addr.eq(pass_addr),
                nxt.pass_w.eq(pass_w),
                nxt.img_w.eq(pass_w),
                nxt.img_h.eq(cur.pass_h),
            ]
        with m.Elif(~r_last):
            kr_addr = cur.kr_addr + kr_step
            pass_h = cur.pass_h + ins.dil_h
            m.d.comb += [
                nxt.q.eq(0),
                nxt.p.eq(0),
                nxt.s.eq(0),
                nxt.r.eq(cur.r + 1),
                nxt.kr_addr.eq(kr_addr),
                nxt.pass_addr.eq(kr_addr),
                nxt.row_addr.eq(kr_addr),
                nxt.addr.eq(kr_addr),
                nxt.pass_h.eq(pass_h),
                nxt.img_h.eq(pass_h),
                nxt.pass_w.eq(ins.origin_w),
                nxt.img_w.eq(ins.origin_w),
            ]
        with m.Else():
            ct_addr = cur.ct_addr + ct_step
            m.d.comb += [
                nxt.q.eq(0),
                nxt.p.eq(0),
                nxt.s.eq(0),
                nxt.r.eq(0),
                nxt.ct.eq(cur.ct + 1),
                nxt.ct_addr.eq(ct_addr),
                nxt.kr_addr.eq(ct_addr),
                nxt.pass_addr.eq(ct_addr),
                nxt.row_addr.eq(ct_addr),
                nxt.addr.eq(ct_addr),
                nxt.pass_h.eq(ins.origin_h),
                nxt.img_h.eq(ins.origin_h),
                nxt.pass_w.eq(ins.origin_w),
                nxt.img_w.eq(ins.origin_w),
            ]

        if self._config.array.dataflow == "os" or self._grouped:
            grouped = Const(1) if self._grouped else ins.os
            os_state, os_first, os_nxt, os_last = self._os_walk(m, busy, dec, given, grouped)
            is_last = Mux(grouped, os_last, is_last)
            held_grouped = Const(1) if self._grouped else held.instr.os
            held_os_last = _os_lasts(os_state, held, self._config.array.rows)[2]
            held_last = Mux(held_grouped, held_os_last, held_last)
            # The OS walk's updates, in the cycles the weight-stationary walk's happen.
            take = self.o.valid & self.o.ready
            with m.If(~busy & self.i.valid):
                with m.If(~take):
                    m.d.sync += os_state.eq(os_first)
                with m.Elif(~is_last):
                    m.d.sync += os_state.eq(os_nxt)
            with m.Elif(busy & take):
                with m.If(~is_last):
                    m.d.sync += os_state.eq(os_nxt)
                with m.Elif(self.i.valid):
                    m.d.sync += os_state.eq(os_first)

        take = self.o.valid & self.o.ready
        # Idle, the generator is ready whatever its word; busy, the word on offer is the
        # held instruction's, and `held_ready` is `o.ready` for it.
        m.d.comb += self.i.ready.eq(~busy | (self.held_ready & held_last))
        with m.If(~busy & self.i.valid):  # take an instruction, maybe issue its first word
            m.d.sync += held.eq(self.i.payload)
            with m.If(~take):
                m.d.sync += [state.eq(first), busy.eq(1)]
            with m.Elif(~is_last):
                m.d.sync += [state.eq(nxt), busy.eq(1)]
        with m.Elif(busy & take):
            with m.If(~is_last):
                m.d.sync += state.eq(nxt)
            with m.Elif(self.i.valid):  # the next instruction follows with no bubble
                m.d.sync += [held.eq(self.i.payload), state.eq(first)]
            with m.Else():
                m.d.sync += busy.eq(0)
        return m

    def _os_walk(self, m: Module, busy, dec, given, grouped):
        """The grouped walk (``grouped``: ``instr.os``, or always): groups of ``rows``
        pixels; per group the passes (``ct``, ``r``, ``s``), per pass the array rows ``p``
        (the group's pixels in order, then dummy rows): one word per step, the order in
        which the OS array's rows take their words (``accel.timing``'s OS section) and the
        IS reader its tiles' columns. Drives the word's outputs when ``grouped``; returns
        (state, first state, next state, is the instruction's last)."""
        rows = self._config.array.rows
        layout = _os_state_layout(self.addr_bits, rows)
        state = Signal(layout, name="os_state", reset_less=True)
        first = Signal(layout, name="os_first")
        cur = Signal(layout, name="os_cur")
        m.d.comb += [
            first.pass_addr.eq(given.in_base),
            first.kr_addr.eq(given.in_base),
            first.ct_addr.eq(given.in_base),
            first.pass_h.eq(given.origin_h),
            first.pass_w.eq(given.origin_w),
            first.g0.eq(1),
            cur.eq(Mux(busy, state, first)),
        ]
        ins = dec.instr
        s_last, r_last, last_pass = _pass_lasts(cur, dec)
        first_pass = (cur.ct == 0) & (cur.r == 0) & (cur.s == 0)
        p_last, pix_last, is_last = _os_lasts(cur, dec, rows)
        pix = cur.pix
        img_h = cur.pass_h + pix.h
        img_w = cur.pass_w + pix.w
        inside = (img_h >= 0) & (img_h < ins.image_h) & (img_w >= 0) & (img_w < ins.image_w)
        o = self.o.payload
        with m.If(grouped):
            m.d.comb += [
                o.addr.eq(cur.pass_addr + pix.addr),
                o.pad.eq(~inside | pix.end),
                o.pass_start.eq(cur.g0 & first_pass & (cur.p == 0)),
                o.pass_end.eq(is_last),
                o.first_pass.eq(first_pass),
                o.last_pass.eq(is_last),
            ]
        m.d.comb += [
            o.os.eq(grouped),
            o.row.eq(cur.p),
            o.dummy.eq(pix.end),
            o.first_step.eq(first_pass & (cur.p == 0)),
            o.last_step.eq(last_pass & p_last),
        ]

        # The pixel after this one (raster order), or past the end.
        step = Signal.like(pix, name="os_pix_next")
        m.d.comb += step.eq(pix)
        with m.If(pix_last):
            m.d.comb += step.end.eq(1)
        with m.Elif(~pix.end & (pix.ow != dec.ow_last)):
            m.d.comb += [
                step.ow.eq(pix.ow + 1),
                step.addr.eq(pix.addr + ins.stride_w),
                step.w.eq(pix.w + ins.stride_w),
            ]
        with m.Elif(~pix.end):
            row_addr = pix.row_addr + dec.row_step
            m.d.comb += [
                step.ow.eq(0),
                step.oh.eq(pix.oh + 1),
                step.row_addr.eq(row_addr),
                step.addr.eq(row_addr),
                step.w.eq(0),
                step.h.eq(pix.h + ins.stride_h),
            ]

        nxt = Signal(layout, name="os_next")
        m.d.comb += nxt.eq(cur)
        with m.If(~p_last):
            m.d.comb += [nxt.p.eq(cur.p + 1), nxt.pix.eq(step)]
        with m.Elif(~last_pass):  # the group's next pass, from its first pixel
            m.d.comb += [nxt.p.eq(0), nxt.pix.eq(cur.group)]
            with m.If(~s_last):
                pass_addr = cur.pass_addr + ins.dil_w
                m.d.comb += [
                    nxt.s.eq(cur.s + 1),
                    nxt.pass_addr.eq(pass_addr),
                    nxt.pass_w.eq(cur.pass_w + ins.dil_w),
                ]
            with m.Elif(~r_last):
                kr_addr = cur.kr_addr + dec.kr_step
                m.d.comb += [
                    nxt.s.eq(0),
                    nxt.r.eq(cur.r + 1),
                    nxt.kr_addr.eq(kr_addr),
                    nxt.pass_addr.eq(kr_addr),
                    nxt.pass_h.eq(cur.pass_h + ins.dil_h),
                    nxt.pass_w.eq(ins.origin_w),
                ]
            with m.Else():
                ct_addr = cur.ct_addr + dec.ct_step
                m.d.comb += [
                    nxt.s.eq(0),
                    nxt.r.eq(0),
                    nxt.ct.eq(cur.ct + 1),
                    nxt.ct_addr.eq(ct_addr),
                    nxt.kr_addr.eq(ct_addr),
                    nxt.pass_addr.eq(ct_addr),
                    nxt.pass_h.eq(ins.origin_h),
                    nxt.pass_w.eq(ins.origin_w),
                ]
        with m.Else():  # the next group: its first pixel follows this group's last
            m.d.comb += [
                nxt.p.eq(0),
                nxt.s.eq(0),
                nxt.r.eq(0),
                nxt.ct.eq(0),
                nxt.pass_addr.eq(ins.in_base),
                nxt.kr_addr.eq(ins.in_base),
                nxt.ct_addr.eq(ins.in_base),
                nxt.pass_h.eq(ins.origin_h),
                nxt.pass_w.eq(ins.origin_w),
                nxt.pix.eq(step),
                nxt.group.eq(step),
                nxt.g0.eq(0),
            ]
        return state, first, nxt, is_last
