"""The instruction fetch of the AXI top, stepped cycle by cycle (the RTL is ``hdl/fetch.py``).

Trace mode's side of :mod:`accel.timing` (INSTRUCTION FETCH): each engine owns an AR slot every
``4 * B`` cycles, and in its slot requests its next instruction if the stream has one and its
buffer has a free entry (an entry is freed by the grant of the instruction in it, and seen free
from the next cycle). The instruction may start ``latency + B + 1`` cycles after its request
(:func:`accel.timing.fetch_available`). The fast mode uses :class:`accel.timing.FetchTimes`
instead; the tests hold the two to the same cycles.
"""

from __future__ import annotations

from accel import timing
from accel.config import AccelConfig
from accel.isa import Engine


class Fetcher:
    """The fetch of one engine's stream of ``length`` instructions."""

    def __init__(self, engine: Engine, length: int, fetch: timing.Fetch, config: AccelConfig):
        beats = fetch.beats()
        self._period = len(Engine) * beats
        self._offset = int(engine) * beats
        self._fetch = fetch
        self._config = config
        self._depth = fetch.depth
        self._length = length
        self._arrivals: list[int] = []  # per requested instruction: the cycle it may start
        self._granted = 0

    def step(self, cycle: int) -> None:
        """Cycle ``cycle`` begins: request in the engine's slot if there is credit (grants of
        earlier cycles only)."""
        requested = len(self._arrivals)
        if (
            cycle % self._period == self._offset
            and requested < self._length
            and requested - self._granted < self._depth
        ):
            self._arrivals.append(timing.fetch_available(cycle, self._fetch, self._config))

    def present(self, index: int, cycle: int) -> bool:
        """Instruction ``index`` is in the buffer in cycle ``cycle``."""
        return index < len(self._arrivals) and self._arrivals[index] <= cycle

    def granted(self) -> None:
        self._granted += 1
