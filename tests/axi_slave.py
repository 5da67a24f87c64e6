"""An AXI4 slave memory model with the contract's timing, for testbenches (no project imports:
tests/cocotb_axi_bench.py loads it inside the simulator too).

:class:`AxiSlave` answers a read burst ``latency`` cycles after its AR handshake, one beat per
cycle in order, and a write burst ``latency`` cycles after its last W beat; with ``pause`` > 0
each ready and each due response is held back with that probability per cycle. It checks the
AXI4 rules the master must keep (INCR, full-width beats, aligned addresses, no burst across
4 KiB, WLAST on the last beat, a valid held with its payload until its handshake). With
``faulty`` (a byte range ``(lo, hi)``) every burst that touches the range is answered with
``fault`` (SLVERR, 2, by default; DECERR is 3): each R beat of a read, the B of a write (whose
data is still written). A port
without ``awvalid`` is a read-only master's (``hdl.axi_master.ReadSignature``): only AR and R.

It is stepped once per cycle through a ``ctx`` with ``get(signal)`` and ``set(signal,
value)`` (the Amaranth simulator's testbench context, or a shim over cocotb handles):
:meth:`AxiSlave.drive` sets its outputs from its state, :meth:`AxiSlave.sample` takes the
cycle's handshakes once the master's outputs are settled.
"""

from __future__ import annotations

from collections import deque

import numpy as np


class AxiSlave:
    """A memory behind an AXI4 slave port, stepped once per cycle by a testbench.

    ``pause`` is the probability that, in a cycle, a ready is low or a due response is held
    back (independently per channel); 0 gives the contract's slave.
    """

    def __init__(
        self,
        port,
        image: np.ndarray,
        latency: int,
        size: int,
        rng,
        pause=0.0,
        *,
        faulty=None,
        fault=2,
    ):
        self.port = port
        self.faulty = faulty
        self.fault = fault
        self.mem = image.copy()
        self.latency = latency
        self.size = size
        self.rng = rng
        self.pause = pause
        self.reads: deque[list[int]] = deque()  # [due cycle, addr, beats, beat]
        self.writes: deque[list[int]] = deque()  # [addr, beats, beat] (AW taken)
        self.w_early: deque[tuple[int, int, bool]] = deque()  # W beats before their AW
        self.responses: deque[tuple[int, int]] = deque()  # (due cycle, BRESP) of each B
        self.held: dict[str, tuple] = {}  # channel -> payload offered and not yet taken
        self.bursts: list[tuple[str, int, int]] = []  # ("ar"/"aw", addr, beats) taken
        self.writable = hasattr(port, "awvalid")

    def _ready(self) -> bool:
        return not (self.pause and self.rng.random() < self.pause)

    def drive(self, ctx, cycle: int) -> None:
        """Set the slave's outputs for this cycle (they depend on its state only)."""
        p = self.port
        ctx.set(p.arready, self._ready())
        if self.writable:
            ctx.set(p.awready, self._ready())
            ctx.set(p.wready, self._ready())
        read = self.reads[0] if self.reads and self.reads[0][0] <= cycle else None
        r_valid = read is not None and self._ready()
        ctx.set(p.rvalid, r_valid)
        ctx.set(p.rresp, self._resp(read[1], read[2]) if r_valid else 0)
        if r_valid:
            _, addr, beats, beat = read
            start = addr + beat * self.size
            ctx.set(
                p.rdata, int.from_bytes(self.mem[start : start + self.size].tobytes(), "little")
            )
            ctx.set(p.rlast, beat == beats - 1)
        if self.writable:
            b_valid = bool(self.responses) and self.responses[0][0] <= cycle and self._ready()
            ctx.set(p.bvalid, b_valid)
            ctx.set(p.bresp, self.responses[0][1] if b_valid else 0)

    def _resp(self, addr: int, beats: int) -> int:
        """The response to a burst of ``beats`` from ``addr``: OKAY, or ``fault`` if it
        touches ``faulty``."""
        if self.faulty is None:
            return 0
        lo, hi = self.faulty
        return self.fault if addr < hi and lo < addr + beats * self.size else 0

    def _address(self, prefix: str) -> tuple[int, int]:
        addr = self.ctx.get(getattr(self.port, f"{prefix}addr"))
        beats = self.ctx.get(getattr(self.port, f"{prefix}len")) + 1
        assert self.ctx.get(getattr(self.port, f"{prefix}burst")) == 1, "INCR"
        assert 1 << self.ctx.get(getattr(self.port, f"{prefix}size")) == self.size
        assert addr % self.size == 0, f"{prefix} address {addr} not aligned"
        assert addr // 4096 == (addr + beats * self.size - 1) // 4096, "burst crosses 4 KiB"
        assert addr + beats * self.size <= self.mem.size, "burst beyond the memory"
        self.bursts.append((prefix, addr, beats))
        return addr, beats

    def _stable(self, channel: str, valid: bool, ready: bool, payload: tuple) -> None:
        if channel in self.held:
            assert valid and payload == self.held[channel], f"{channel} changed before ready"
        if valid and not ready:
            self.held[channel] = payload
        else:
            self.held.pop(channel, None)

    def _write_beat(self, data: int, strb: int, last: bool) -> None:
        burst = self.writes[0]
        addr, beats, beat = burst
        assert last == (beat == beats - 1), "WLAST"
        base = addr + beat * self.size
        for k in range(self.size):
            if strb >> k & 1:
                self.mem[base + k] = data >> (8 * k) & 0xFF
        burst[2] += 1
        if last:
            self.writes.popleft()
            self.responses.append((self.cycle + self.latency, self._resp(addr, beats)))

    def sample(self, ctx, cycle: int) -> None:
        """Take this cycle's handshakes (call after the master's outputs have settled)."""
        self.ctx, self.cycle, p = ctx, cycle, self.port
        ar = (ctx.get(p.araddr), ctx.get(p.arlen))
        self._stable("ar", ctx.get(p.arvalid), ctx.get(p.arready), ar)
        if ctx.get(p.arvalid) and ctx.get(p.arready):
            addr, beats = self._address("ar")
            self.reads.append([cycle + self.latency, addr, beats, 0])
        if ctx.get(p.rvalid) and ctx.get(p.rready):
            read = self.reads[0]
            read[3] += 1
            if read[3] == read[2]:
                self.reads.popleft()
        if self.writable:
            self._sample_writes(ctx)

    def _sample_writes(self, ctx) -> None:
        p = self.port
        aw = (ctx.get(p.awaddr), ctx.get(p.awlen))
        self._stable("aw", ctx.get(p.awvalid), ctx.get(p.awready), aw)
        if ctx.get(p.awvalid) and ctx.get(p.awready):
            addr, beats = self._address("aw")
            self.writes.append([addr, beats, 0])
            while self.w_early and self.writes:
                self._write_beat(*self.w_early.popleft())
        w = (ctx.get(p.wdata), ctx.get(p.wstrb), ctx.get(p.wlast))
        self._stable("w", ctx.get(p.wvalid), ctx.get(p.wready), w)
        if ctx.get(p.wvalid) and ctx.get(p.wready):
            if self.writes and not self.w_early:
                self._write_beat(*w)
            else:
                self.w_early.append(w)
        if ctx.get(p.bvalid) and ctx.get(p.bready):
            self.responses.popleft()
