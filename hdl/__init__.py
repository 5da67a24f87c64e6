"""The Amaranth RTL of the accelerator: one module per hardware block.

Built so far (docs/rtl.md): the data path of the compute engine and the post-processor —
:class:`~hdl.pe.ProcessingElement`, :class:`~hdl.array.SystolicArray`,
:class:`~hdl.window.WindowGenerator`, :class:`~hdl.postproc.PostProcessor` — and
:func:`~hdl.generate.verilog`; and the DMA side — :class:`~hdl.dma.LoadEngine`,
:class:`~hdl.dma.StoreEngine`, the buffers of :mod:`hdl.buffers` and the testbench DRAM model
:class:`~hdl.dram.Dram`; and the compute engine — :class:`~hdl.compute.ComputeEngine` with
:class:`~hdl.accumulator.AccumulatorBuffer` and :class:`~hdl.vector.VectorUnit`. Not yet:
controller, top.
"""

from hdl.accumulator import AccumulatorBuffer
from hdl.array import SystolicArray
from hdl.buffers import InputBuffer, OutputBuffer, ParamBuffer, WeightBuffer
from hdl.compute import ComputeEngine
from hdl.dma import LOAD_LAYOUT, STORE_LAYOUT, LoadEngine, StoreEngine
from hdl.dram import Dram
from hdl.generate import verilog
from hdl.isa import COMPUTE_LAYOUT, POST_LAYOUT, instruction_layout
from hdl.pe import ProcessingElement
from hdl.post import PostEngine
from hdl.postproc import PostProcessor
from hdl.vector import VectorUnit
from hdl.window import WindowGenerator

__all__ = [
    "COMPUTE_LAYOUT",
    "LOAD_LAYOUT",
    "POST_LAYOUT",
    "STORE_LAYOUT",
    "AccumulatorBuffer",
    "ComputeEngine",
    "Dram",
    "InputBuffer",
    "LoadEngine",
    "OutputBuffer",
    "ParamBuffer",
    "PostEngine",
    "PostProcessor",
    "ProcessingElement",
    "StoreEngine",
    "SystolicArray",
    "VectorUnit",
    "WeightBuffer",
    "WindowGenerator",
    "instruction_layout",
    "verilog",
]
