"""The cycle-level model of the accelerator: one module per hardware block.

``sim.run(program, image) -> accel.backend.Result`` runs a compiled
:class:`accel.program.Program`. Blocks (each mirrors the :mod:`hdl` module of the same name
where the RTL has one): :mod:`sim.dram`, :mod:`sim.dma` (LOAD/STORE), :mod:`sim.buffers`,
:mod:`sim.window` (window generator), :mod:`sim.array` (systolic array), :mod:`sim.vector`
(vector unit), :mod:`sim.compute` (the compute engine that joins them), :mod:`sim.postproc`
(POST), :mod:`sim.controller` (engines and semaphores, fast mode) and :mod:`sim.trace` (the
same machine stepped cycle by cycle). Their timing contract is :mod:`accel.timing`.
"""

from sim.run import run

__all__ = ["run"]
