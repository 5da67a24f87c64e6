"""The on-chip SRAMs that the DMA fills and drains, as components with one port per client.

==========  ===============================  ===========================  =====================
buffer      word                             written by (port)            read by (port)
==========  ===============================  ===========================  =====================
input       ``rows`` int8                    LOAD (``dma``, byte enables)  window generator
                                                                          (``window``, sync)
weight      ``cols`` int8                    LOAD (``dma``, byte enables)  weight loader
                                                                          (``loader``, sync)
param       ``cols`` x (bias, multiplier,    LOAD (``dma``, byte enables)  POST (``post``, sync)
            shift) int32 = ``12*cols`` bytes
output      ``cols`` int8                    POST (``post``, whole words)  STORE (``store``,
                                                                          asynchronous)
table       16 int8 (activation table        LOAD (``dma``, byte enables)  POST (``post``, a
            entries)                                                      byte per lane, sync)
==========  ===============================  ===========================  =====================

Depths are ``config.buffers.<name>_bytes // word_bytes`` words, as in :mod:`sim.buffers`
(the table buffer: ``config.table_words``, :data:`accel.isa.TABLE_SLOTS` tables);
addresses are ``max(1, ceil_log2(depth))`` bits wide (the window generator's
:func:`hdl.window.addr_bits` for the input buffer). A word is stored as raw little-endian
bytes (the byte order of :mod:`sim.buffers`'s numpy arrays and of the DRAM image): byte ``b``
of a word is bits ``[8*b, 8*b + 8)``, lane ``k`` of an ``ArrayLayout`` read port is bits
``[k*w, (k+1)*w)``, and a parameter lane is :data:`hdl.postproc.param_lane_layout`.

Timing. Writes take effect at the end of the cycle they are presented in and are *visible*
from the next cycle (:mod:`accel.timing`'s ``done``). Synchronous read ports return the word
addressed in cycle ``t`` in cycle ``t + 1`` and do not see a write of cycle ``t``
(non-transparent: the write is not visible yet). The output buffer's ``store`` port is
asynchronous: the STORE engine sends its first beat in the cycle it takes the instruction
(``accel.timing``: ``done = start + beats + latency``), so the word must be read in that same
cycle; it sees every write of earlier cycles.

Write ports are :class:`amaranth.lib.memory.WritePort.Signature`, synchronous read ports
:class:`amaranth.lib.memory.ReadPort.Signature` (``en`` gates the read; the data register
holds otherwise). The contents are a :class:`~amaranth.hdl.MemoryData` of unsigned
``8 * word_bytes``-bit rows (:attr:`SramBuffer.data`), which a testbench reads and writes
directly.
"""

from __future__ import annotations

from collections.abc import Iterable

from amaranth.hdl import MemoryData, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory, ReadPort, WritePort
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from accel.config import AccelConfig
from accel.isa import TABLE_WORD_BYTES, Buffer
from hdl._check import check_config
from hdl.postproc import param_lane_layout, table_lookup_signature

__all__ = [
    "InputBuffer",
    "OutputBuffer",
    "ParamBuffer",
    "SramBuffer",
    "TableBuffer",
    "WeightBuffer",
    "async_read_signature",
    "buffer_addr_bits",
    "dma_write_signature",
    "load_targets",
]


def buffer_addr_bits(depth: int) -> int:
    """Width of a word address of a buffer of ``depth`` words (at least 1)."""
    return max(1, ceil_log2(depth))


def dma_write_signature(depth: int, word_bytes: int) -> WritePort.Signature:
    """The LOAD engine's write port into a buffer: ``addr``, ``data`` (``8 * word_bytes``
    bits) and ``en`` (one enable per byte)."""
    return WritePort.Signature(
        addr_width=buffer_addr_bits(depth), shape=unsigned(8 * word_bytes), granularity=8
    )


def async_read_signature(depth: int, shape) -> wiring.Signature:
    """An asynchronous read port: ``data`` is the word at ``addr`` in the same cycle."""
    return wiring.Signature({"addr": In(buffer_addr_bits(depth)), "data": Out(shape)})


class SramBuffer(wiring.Component):
    """Common part of the buffers: geometry, contents, argument checks.

    Parameters
    ----------
    config : AccelConfig
        Array size (word width) and ``config.buffers`` (size).
    init : iterable of int, optional
        Initial words, as little-endian unsigned integers of ``8 * word_bytes`` bits; missing
        words are zero.

    Raises
    ------
    TypeError
        If ``config`` is not an :class:`~accel.config.AccelConfig`.
    ValueError
        If ``init`` has more words than the buffer or a word that does not fit.
    """

    def __init__(self, config: AccelConfig, *, init: Iterable[int] = ()) -> None:
        self._config = check_config(config)
        depth, word = self.geometry(self._config)
        words = [int(v) for v in init]
        name = type(self).__name__
        if len(words) > depth:
            raise ValueError(f"{name} init has {len(words)} words, the buffer holds {depth}")
        for k, v in enumerate(words):
            if not 0 <= v < 1 << (8 * word):
                raise ValueError(f"{name} init word {k} = {v} does not fit {word} bytes")
        self._word_bytes = word
        self._depth = depth
        self._data = MemoryData(shape=unsigned(8 * word), depth=depth, init=words)
        super().__init__(self._members())

    @classmethod
    def geometry(cls, config: AccelConfig) -> tuple[int, int]:
        """``(depth in words, bytes per word)`` of this buffer for ``config``."""
        raise NotImplementedError

    def _members(self) -> dict:
        raise NotImplementedError

    @property
    def config(self) -> AccelConfig:
        return self._config

    @property
    def word_bytes(self) -> int:
        return self._word_bytes

    @property
    def depth(self) -> int:
        """Number of words."""
        return self._depth

    @property
    def addr_bits(self) -> int:
        return buffer_addr_bits(self._depth)

    @property
    def data(self) -> MemoryData:
        """The contents (rows are little-endian words as unsigned integers)."""
        return self._data

    def word(self, k: int):
        """The simulator's value of word ``k`` (``data[k]``; a banked buffer finds its bank)."""
        return self._data[k]

    def _dma_port(self, words: int = 1):
        """The LOAD engine's write port, ``words`` words wide."""
        return Out(dma_write_signature(self._depth, words * self._word_bytes))

    def _sync_read_port(self, shape):
        return Out(ReadPort.Signature(addr_width=self.addr_bits, shape=shape))

    def _memory(self, m: Module, dma) -> Memory:
        """The buffer's memory, in ``m``, with its byte-enable write port driven by ``dma``."""
        m.submodules.memory = memory = Memory(data=self._data)
        write = memory.write_port(granularity=8)
        m.d.comb += [write.addr.eq(dma.addr), write.data.eq(dma.data), write.en.eq(dma.en)]
        return memory

    def _elaborate(self, dma, reader) -> Module:
        """A memory with a byte-enable DMA write port and a synchronous read port."""
        m = Module()
        read = self._memory(m, dma).read_port()
        m.d.comb += [read.addr.eq(reader.addr), read.en.eq(reader.en), reader.data.eq(read.data)]
        return m


class InputBuffer(SramBuffer):
    """Input (line) buffer: ``rows`` int8 per word.

    Ports
    -----
    dma : Out(dma_write_signature(depth, rows))
        From the LOAD engine.
    window : Out(ReadPort.Signature(addr_bits, ArrayLayout(signed(8), rows)))
        Synchronous read for the window generator's feeder.
    taps : Out(ReadPort.Signature(...)).array(rows - 1)
        On a square array (the depthwise mode): one more synchronous read per array row
        1 .. rows-1, each row's own tap word (:mod:`hdl.feeder`).
    transpose : Out(ReadPort.Signature(...))
        On an input-stationary machine: the reader of :mod:`hdl.is_stream` (it reads while
        the feeder may still read a weight-stationary instruction's words).
    """

    @classmethod
    def geometry(cls, config: AccelConfig) -> tuple[int, int]:
        return config.input_words, config.input_word_bytes

    def _members(self) -> dict:
        rows = self._config.array.rows
        members = {
            "dma": self._dma_port(),
            "window": self._sync_read_port(data.ArrayLayout(signed(8), rows)),
        }
        if rows == self._config.array.cols:  # the depthwise mode: a port per array row
            members["taps"] = self._sync_read_port(data.ArrayLayout(signed(8), rows)).array(
                rows - 1
            )
        if self._config.array.dataflow == "is":  # the input-stationary reader's port
            members["transpose"] = self._sync_read_port(data.ArrayLayout(signed(8), rows))
        return members

    def elaborate(self, platform) -> Module:
        m = self._elaborate(self.dma, self.window)
        readers = list(self.taps) if "taps" in self.signature.members else []
        if "transpose" in self.signature.members:
            readers.append(self.transpose)
        if readers:
            memory = m.submodules.memory
            for reader in readers:
                read = memory.read_port()
                m.d.comb += [
                    read.addr.eq(reader.addr),
                    read.en.eq(reader.en),
                    reader.data.eq(read.data),
                ]
        return m


class WeightBuffer(SramBuffer):
    """Weight buffer: one array row of ``cols`` int8 weights per word.

    With ``buffers.weight_banks`` = 2 the words live in two memories (``bank0``, ``bank1``),
    word ``w`` in bank ``w % 2`` at row ``w // 2``, so the LOAD engine writes two consecutive
    words in a cycle: its port is two words wide, ``addr`` the first word's, the low word's
    byte enables first (``hdl.dma``: a unit of :func:`accel.timing.load_unit_bytes`). The
    read port reads both banks' rows of ``addr`` and keeps the bank of ``addr`` in a register
    for the output multiplexer (registered with ``en``, as the data).

    Ports
    -----
    dma : Out(dma_write_signature(depth, weight_banks * cols))
        From the LOAD engine.
    loader : Out(ReadPort.Signature(addr_bits, ArrayLayout(signed(8), cols)))
        Synchronous read for the weight loader (the array's ``w`` port one cycle later).
    """

    @classmethod
    def geometry(cls, config: AccelConfig) -> tuple[int, int]:
        return config.weight_words, config.weight_word_bytes

    @property
    def banks(self) -> int:
        return self._config.buffers.weight_banks

    def word(self, k: int):
        if self.banks == 1:
            return super().word(k)
        return self._bank_data[k % 2][k // 2]

    def _members(self) -> dict:
        cols = self._config.array.cols
        if self.banks > 1:
            self._bank_data = [
                MemoryData(
                    shape=self._data.shape,
                    depth=self._depth // 2,
                    init=[self._data.init[k] for k in range(bank, self._depth, 2)],
                )
                for bank in range(2)
            ]
        return {
            "dma": self._dma_port(self.banks),
            "loader": self._sync_read_port(data.ArrayLayout(signed(8), cols)),
        }

    def elaborate(self, platform) -> Module:
        if self.banks == 1:
            return self._elaborate(self.dma, self.loader)
        m = Module()
        dma, reader, bits = self.dma, self.loader, 8 * self._word_bytes
        low, high = dma.data[:bits], dma.data[bits:]
        low_en, high_en = dma.en[: self._word_bytes], dma.en[self._word_bytes :]
        odd = dma.addr[0]
        row = dma.addr[1:]
        reads = []
        for bank, bank_data in enumerate(self._bank_data):
            memory = Memory(data=bank_data)
            m.submodules[f"bank{bank}"] = memory
            write = memory.write_port(granularity=8)
            # Even addr: bank 0 takes the low word, bank 1 the high one, both at addr // 2;
            # odd: bank 1 the low word at addr // 2, bank 0 the high one at addr // 2 + 1.
            mine_low = odd if bank else ~odd
            m.d.comb += [
                write.addr.eq(Mux(mine_low | ~odd, row, row + 1)),
                write.data.eq(Mux(mine_low, low, high)),
                write.en.eq(Mux(mine_low, low_en, high_en)),
            ]
            read = memory.read_port()
            m.d.comb += [read.addr.eq(reader.addr[1:]), read.en.eq(reader.en)]
            reads.append(read.data)
        bank_of_read = Signal()
        with m.If(reader.en):
            m.d.sync += bank_of_read.eq(reader.addr[0])
        m.d.comb += reader.data.eq(Mux(bank_of_read, reads[1], reads[0]))
        return m


class ParamBuffer(SramBuffer):
    """Post-processing parameters: per output channel int32 bias, multiplier, shift.

    Ports
    -----
    dma : Out(dma_write_signature(depth, config.param_word_bytes))
        From the LOAD engine.
    post : Out(ReadPort.Signature(addr_bits, ArrayLayout(param_lane_layout, cols)))
        Synchronous read for the post engine (:class:`hdl.postproc.PostProcessor`'s
        ``params``, bit-identical).
    """

    @classmethod
    def geometry(cls, config: AccelConfig) -> tuple[int, int]:
        return config.param_words, config.param_word_bytes

    def _members(self) -> dict:
        cols = self._config.array.cols
        return {
            "dma": self._dma_port(),
            "post": self._sync_read_port(data.ArrayLayout(param_lane_layout, cols)),
        }

    def elaborate(self, platform) -> Module:
        return self._elaborate(self.dma, self.post)


class OutputBuffer(SramBuffer):
    """Output buffer: ``cols`` int8 results per word, waiting for the STORE engine.

    Ports
    -----
    post : Out(WritePort.Signature(addr_bits, ArrayLayout(signed(8), cols)))
        Whole-word writes from the post-processor (``en`` is one bit).
    store : Out(async_read_signature(depth, ArrayLayout(signed(8), cols)))
        Asynchronous read for the STORE engine.
    """

    @classmethod
    def geometry(cls, config: AccelConfig) -> tuple[int, int]:
        return config.output_words, config.output_word_bytes

    def _members(self) -> dict:
        word = data.ArrayLayout(signed(8), self._config.array.cols)
        return {
            "post": Out(WritePort.Signature(addr_width=self.addr_bits, shape=word)),
            "store": Out(async_read_signature(self._depth, word)),
        }

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.memory = memory = Memory(data=self._data)
        write = memory.write_port()
        read = memory.read_port(domain="comb")
        m.d.comb += [
            write.addr.eq(self.post.addr),
            write.data.eq(self.post.data),
            write.en.eq(self.post.en),
            read.addr.eq(self.store.addr),
            self.store.data.eq(read.data),
        ]
        return m


class TableBuffer(SramBuffer):
    """Activation tables: :data:`accel.isa.TABLE_SLOTS` tables of 256 int8 entries, 16 per
    word; byte address ``a`` (``slot * 256 + entry``) is byte ``a % 16`` of word ``a // 16``.

    Every lane of the post-processor looks up its own entry in the same cycle, so the memory
    has one asynchronous read port per lane (a read copy per lane: ``cols`` small LUT RAMs
    with a common write port, as the tools map it); each port reads the addressed word and
    selects the byte in the same cycle. The post-processor drives the addresses from a
    register, so the read is the only logic in front of the byte select.

    Ports
    -----
    dma : Out(dma_write_signature(depth, 16))
        From the LOAD engine.
    post : Out(hdl.postproc.table_lookup_signature(config))
        The lookups of the post-processor: a byte address per lane and the bytes in the same
        cycle ``t``; a LOAD write of cycle ``t`` is seen from ``t + 1``.
    """

    @classmethod
    def geometry(cls, config: AccelConfig) -> tuple[int, int]:
        return config.table_words, TABLE_WORD_BYTES

    def _members(self) -> dict:
        return {"dma": self._dma_port(), "post": Out(table_lookup_signature(self._config))}

    def elaborate(self, platform) -> Module:
        m = Module()
        memory = self._memory(m, self.dma)
        byte_bits = ceil_log2(TABLE_WORD_BYTES)
        for lane in range(self._config.array.cols):
            read = memory.read_port(domain="comb")
            addr = self.post.addr[lane]
            m.d.comb += [
                read.addr.eq(addr[byte_bits:]),
                self.post.data[lane].eq(read.data.word_select(addr[:byte_bits], 8)),
            ]
        return m


def load_targets(config: AccelConfig) -> dict[Buffer, tuple[int, int]]:
    """``{buffer: (depth in words, word bytes)}`` of the LOAD destinations."""
    classes = {
        Buffer.INPUT: InputBuffer,
        Buffer.WEIGHT: WeightBuffer,
        Buffer.PARAM: ParamBuffer,
        Buffer.TABLE: TableBuffer,
    }
    config = check_config(config)
    return {buffer: cls.geometry(config) for buffer, cls in classes.items()}
