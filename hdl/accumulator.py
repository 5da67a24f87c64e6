"""The accumulator buffer and its read-modify-write.

``depth = config.acc_rows`` rows of ``cols`` int32 accumulators, stored as ``cols``
banks (one per array column, one int32 per word), because the systolic array's columns
leave it skewed: the sum of column ``c`` for a vector fed in cycle ``t`` exits in cycle
``t + rows + c``, so in any cycle every column reads and writes a different row. Each bank
has one write port and two synchronous read ports: the read-modify-write port (transparent
for the write port) and the POST port.

Read-modify-write, :mod:`accel.timing`:

* **Array** (``a[c]``, :data:`~accel.timing.ACC_LATENCY` = 1). Column ``c``'s sum is on
  ``a[c]`` in its exit cycle ``X`` with its row ``addr`` and ``overwrite``; the row is read in
  ``X`` and written in ``X + 1`` with ``overwrite ? sum : old + sum`` (wrapping).
* **Vector unit** (``v_rd``, ``v_acc``, ``v_wr``, :data:`~accel.timing.VECTOR_LATENCY`).
  A whole row is read in cycle ``t`` (``v_rd``), is on ``v_acc`` in ``t + 1``, and the row
  the vector unit computes from it is on ``v_wr`` in ``t + VECTOR_LATENCY``, written to the
  address read in ``t`` (delayed here, so the vector unit carries no address).

A read in the cycle of a write to the same row returns the written value (the RMW read port is
write-transparent), so a row may be read again as early as the cycle of its write: the
contract's schedules never read a row before its previous write, and with ARRAY passes one
cycle apart (``T = 1``) they read it in exactly that cycle. The array and the vector unit
never use the buffer in the same cycle (the contract separates them by ``done``); if they do,
the array wins. Addresses are taken modulo ``2**addr_bits``; rows at or above ``depth`` (when
``depth`` is not a power of two) do not exist, the compiler never addresses them.

Completion (``complete``). Each array word and vector read carries ``last``, set on its
instruction's last word; ``complete`` is high exactly in the cycle the buffer writes a row so
marked (column ``cols - 1``'s write strobe for the array, whose last column exits last; the
whole-row write for the vector unit). So the compute engine's ``complete`` is the real write of
its instruction's last result, not a count kept beside the data path: a pipeline stage added
or lost anywhere between the feed and the write moves it (or loses it) with the data.

POST (``post``) is an ordinary synchronous read port of whole rows (``addr`` in cycle ``k``,
``data`` in ``k + 1``, :data:`hdl.postproc.ACC_READ_LATENCY`), independent of the RMW.

Ports
-----
a : In(stream.Signature(ArrayAcc), always ready).array(cols)
    ``a[c]``: ``addr``, ``overwrite``, ``sum`` (int32) and ``last`` of column ``c`` in its
    exit cycle (only column ``cols - 1``'s ``last`` is used).
v_rd : In(stream.Signature(VectorRead), always ready)
    ``addr`` of a whole-row read for the vector unit, and ``last`` for its write.
v_acc : Out(ArrayLayout(signed(32), cols))
    The row read by ``v_rd`` one cycle earlier.
v_wr : In(stream.Signature(ArrayLayout(signed(32), cols)), always ready)
    The new row, ``VECTOR_LATENCY`` cycles after its ``v_rd``.
post : Out(ReadPort.Signature(addr_bits, ArrayLayout(signed(32), cols)))
    Read port for the post-processor.
a_end : In(1)
    Input-stationary machines only (``array.dataflow == "is"``): an instruction's final
    column exit, written or a dummy (:attr:`hdl.rotation.Rotation.end`); ``complete`` one
    cycle later.
complete : Out(1)
    High in the cycle of a write marked ``last`` (or one cycle after ``a_end``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory, MemoryData, ReadPort
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from accel import timing
from accel.config import AccelConfig
from hdl._check import check_config

__all__ = [
    "AccumulatorBuffer",
    "acc_addr_bits",
    "acc_depth",
    "array_acc_layout",
    "vector_read_layout",
]

#: Cycles from a read address to its data (synchronous SRAM ports).
READ_LATENCY = 1


def acc_depth(config: AccelConfig) -> int:
    """Rows of the accumulator buffer: ``config.acc_rows``."""
    return check_config(config).acc_rows


def acc_addr_bits(config: AccelConfig) -> int:
    """Width of an accumulator row address."""
    return max(1, ceil_log2(acc_depth(config)))


def array_acc_layout(config: AccelConfig) -> data.StructLayout:
    """Payload of ``a[c]``: one column's sum, its row and whether it overwrites."""
    return data.StructLayout(
        {
            "addr": unsigned(acc_addr_bits(config)),
            "overwrite": 1,
            "sum": signed(config.data.acc_bits),
            "last": 1,
        }
    )


def _held_layout(config: AccelConfig) -> data.StructLayout:
    """What a column keeps of ``a[c]`` from its read to its write (``last``: only the last
    column keeps it, as its own register)."""
    members = dict(array_acc_layout(config).members)
    del members["last"]
    return data.StructLayout(members)


def vector_read_layout(config: AccelConfig) -> data.StructLayout:
    """Payload of ``v_rd``: the row the vector unit reads (and writes back), and whether that
    write is its instruction's last."""
    return data.StructLayout({"addr": unsigned(acc_addr_bits(config)), "last": 1})


class AccumulatorBuffer(wiring.Component):
    """``cols`` banks of int32 accumulators with the array's and the vector unit's RMW.

    Parameters
    ----------
    config : AccelConfig
        ``config.buffers.acc_bytes`` sets the depth, ``config.array.cols`` the banks.
    init : array_like of int, shape (depth, cols), optional
        Initial contents (int32 values; default zero).

    Raises
    ------
    TypeError
        If ``config`` is not an :class:`~accel.config.AccelConfig`.
    ValueError
        If ``init`` has the wrong shape or values outside int32, or if
        :data:`accel.timing.ACC_LATENCY` is not 1 (the add sits in the cycle after the read).
    """

    def __init__(self, config: AccelConfig, *, init: Sequence | np.ndarray | None = None) -> None:
        self._config = check_config(config)
        if timing.ACC_LATENCY != READ_LATENCY:
            raise ValueError(
                f"accel.timing.ACC_LATENCY = {timing.ACC_LATENCY}, but the accumulator writes "
                f"{READ_LATENCY} cycle after its read"
            )
        cols = config.array.cols
        depth = acc_depth(config)
        bits = config.data.acc_bits
        if init is None:
            init = np.zeros((depth, cols), dtype=np.int64)
        init = np.asarray(init)
        if init.shape != (depth, cols):
            raise ValueError(f"init must have shape {(depth, cols)}, not {init.shape}")
        if init.dtype.kind not in "iu":
            raise ValueError(f"init must be integers, not {init.dtype}")
        if init.size and (init.min() < -(1 << (bits - 1)) or init.max() >= 1 << (bits - 1)):
            raise ValueError(f"init values must be int{bits}")
        self._banks = tuple(
            MemoryData(shape=signed(bits), depth=depth, init=[int(v) for v in init[:, c]])
            for c in range(cols)
        )
        row = data.ArrayLayout(signed(bits), cols)
        extra = {}
        if config.array.dataflow == "is":
            extra["a_end"] = In(1)
        super().__init__(
            {
                **extra,
                "a": In(stream.Signature(array_acc_layout(config), always_ready=True)).array(cols),
                "v_rd": In(stream.Signature(vector_read_layout(config), always_ready=True)),
                "v_acc": Out(row),
                "v_wr": In(stream.Signature(row, always_ready=True)),
                "post": Out(ReadPort.Signature(addr_width=acc_addr_bits(config), shape=row)),
                "complete": Out(1),
            }
        )

    @property
    def config(self) -> AccelConfig:
        return self._config

    @property
    def depth(self) -> int:
        return acc_depth(self._config)

    @property
    def addr_bits(self) -> int:
        return acc_addr_bits(self._config)

    @property
    def banks(self) -> tuple[MemoryData, ...]:
        """The contents of column ``c``'s bank (for testbenches: ``ctx.get(banks[c][row])``)."""
        return self._banks

    def elaborate(self, platform) -> Module:
        m = Module()
        cols = len(self._banks)
        # The vector unit's write goes to the row it read VECTOR_LATENCY cycles earlier (its
        # last mark travels with the address).
        v_row = self.v_rd.payload
        for k in range(timing.VECTOR_LATENCY):
            delayed = Signal.like(v_row, name=f"v_row_d{k + 1}", reset_less=True)
            m.d.sync += delayed.eq(v_row)
            v_row = delayed
        v_addr = v_row.addr

        for c, bank in enumerate(self._banks):
            m.submodules[f"bank_{c}"] = mem = Memory(data=bank)
            wr = mem.write_port()
            rmw = mem.read_port(transparent_for=[wr])
            post = mem.read_port()
            a = self.a[c]

            # Cycle X: read the row (the array's column c, or the vector unit's row).
            m.d.comb += [
                rmw.en.eq(a.valid | self.v_rd.valid),
                rmw.addr.eq(Mux(a.valid, a.payload.addr, self.v_rd.payload.addr)),
                self.v_acc[c].eq(rmw.data),
            ]
            # Cycle X + 1: write old + sum (or sum), or the vector unit's row.
            a_valid = Signal(name=f"a{c}_valid")
            a_held = Signal(_held_layout(self._config), name=f"a{c}_held", reset_less=True)
            m.d.sync += [
                a_valid.eq(a.valid),
                a_held.addr.eq(a.payload.addr),
                a_held.overwrite.eq(a.payload.overwrite),
                a_held.sum.eq(a.payload.sum),
            ]
            m.d.comb += [
                wr.en.eq(a_valid | self.v_wr.valid),
                wr.addr.eq(Mux(a_valid, a_held.addr, v_addr)),
                wr.data.eq(
                    Mux(
                        a_valid,
                        Mux(a_held.overwrite, a_held.sum, rmw.data + a_held.sum),
                        self.v_wr.payload[c],
                    )
                ),
            ]
            m.d.comb += [
                post.en.eq(self.post.en),
                post.addr.eq(self.post.addr),
                self.post.data[c].eq(post.data),
            ]
            if c == cols - 1:
                # `complete` is this bank's write strobe, for a write marked last: an
                # instruction's last write (the array's last column exits last; a vector
                # write covers every bank). Only this column keeps its last mark.
                a_last = Signal(name=f"a{c}_last", reset_less=True)
                m.d.sync += a_last.eq(a.payload.last)
                m.d.comb += self.complete.eq(wr.en & Mux(a_valid, a_last, v_row.last))
                if self._config.array.dataflow == "is":
                    # An input-stationary instruction's final exit may be a dummy column's
                    # (no write): its mark comes on `a_end` (hdl.rotation) and completes it
                    # in the cycle its write would have been.
                    a_end = Signal(name="a_end_d1")
                    m.d.sync += a_end.eq(self.a_end)
                    m.d.comb += self.complete.eq((wr.en & Mux(a_valid, a_last, v_row.last)) | a_end)
        return m
