"""The Amaranth RTL of the accelerator: one module per hardware block, and the top.

The top is :class:`~hdl.top.Accelerator` (controller, LOAD/COMPUTE/POST/STORE engines,
buffers; ``docs/rtl.md``). The tooling around it is :mod:`hdl.flow`: Verilog generation and
lint, the manifest, synthesis, and the two RTL backends (the Amaranth simulator and
Verilator, ``docs/verify.md``). The blocks: :class:`~hdl.pe.ProcessingElement`,
:class:`~hdl.array.SystolicArray`, :class:`~hdl.window.WindowGenerator`,
:class:`~hdl.postproc.PostProcessor`, :class:`~hdl.post.PostEngine`,
:class:`~hdl.compute.ComputeEngine` with :class:`~hdl.accumulator.AccumulatorBuffer` and
:class:`~hdl.vector.VectorUnit`, :class:`~hdl.dma.LoadEngine`, :class:`~hdl.dma.StoreEngine`,
the buffers of :mod:`hdl.buffers`, :class:`~hdl.controller.Controller`, and the testbench DRAM
model :class:`~hdl.dram.Dram`. On an input-stationary machine the compute engine adds
:class:`~hdl.is_stream.InputStationary` (reader, :class:`~hdl.transposer.Transposer`, row
loader, weight stream, :class:`~hdl.rotation.Rotation`).
"""

from hdl.accumulator import AccumulatorBuffer
from hdl.array import SystolicArray
from hdl.buffers import InputBuffer, OutputBuffer, ParamBuffer, WeightBuffer
from hdl.compute import ComputeEngine
from hdl.controller import Controller
from hdl.dma import LOAD_LAYOUT, STORE_LAYOUT, LoadEngine, StoreEngine
from hdl.dram import Dram
from hdl.isa import COMPUTE_LAYOUT, POST_LAYOUT, instruction_layout
from hdl.pe import ProcessingElement
from hdl.post import PostEngine
from hdl.postproc import PostProcessor
from hdl.rotation import Rotation
from hdl.top import Accelerator
from hdl.transposer import Transposer
from hdl.vector import VectorUnit
from hdl.window import WindowGenerator

#: The dataflows the RTL implements (``array.dataflow``): weight-stationary, and output- or
#: input-stationary beside it (``docs/architecture.md``, "Output-stationary datapath (RTL)",
#: "Input-stationary datapath (RTL)").
DATAFLOWS = ("ws", "os", "is")

__all__ = [
    "COMPUTE_LAYOUT",
    "DATAFLOWS",
    "LOAD_LAYOUT",
    "POST_LAYOUT",
    "STORE_LAYOUT",
    "Accelerator",
    "AccumulatorBuffer",
    "ComputeEngine",
    "Controller",
    "Dram",
    "InputBuffer",
    "LoadEngine",
    "OutputBuffer",
    "ParamBuffer",
    "PostEngine",
    "PostProcessor",
    "ProcessingElement",
    "Rotation",
    "StoreEngine",
    "SystolicArray",
    "Transposer",
    "VectorUnit",
    "WeightBuffer",
    "WindowGenerator",
    "instruction_layout",
]
