"""The cycle-level model of the accelerator: one module per hardware block.

``sim.run(program, image) -> Result`` runs a compiled :class:`accel.program.Program`.
Blocks: :mod:`sim.dram`, :mod:`sim.dma`, :mod:`sim.buffers`, :mod:`sim.line_buffer` (window
generator), :mod:`sim.array`, :mod:`sim.vector`, :mod:`sim.postproc`, :mod:`sim.controller`
(engines and semaphores, fast mode) and :mod:`sim.trace` (cycle-stepped mode). Their timing
contract is :mod:`accel.timing`.
"""

from sim.run import run
from sim.stats import LayerStats, Result

__all__ = ["LayerStats", "Result", "run"]
