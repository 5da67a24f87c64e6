"""Tooling around the RTL: everything that is not a hardware block.

:mod:`hdl.flow.generate` (Verilog of the top, Verilator lint), :mod:`hdl.flow.manifest` (the
JSON manifest and text report ``accel generate`` writes), :mod:`hdl.flow.synth` (Yosys
resource counts), and the two RTL backends of :class:`accel.backend.Backend`:
:mod:`hdl.flow.amaranth_sim` (the Amaranth simulator) and :mod:`hdl.flow.verilator` (the
generated Verilog compiled with the C++ harness ``verilator_harness.cpp``).
"""
