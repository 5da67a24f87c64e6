"""The Amaranth RTL of the accelerator: one module per hardware block.

Built so far (docs/rtl.md): the data path of the compute engine and the post-processor —
:class:`~hdl.pe.ProcessingElement`, :class:`~hdl.array.SystolicArray`,
:class:`~hdl.window.WindowGenerator`, :class:`~hdl.postproc.PostProcessor` — and
:func:`~hdl.generate.verilog`. Not yet: DMA, buffers, controller, top.
"""

from hdl.array import SystolicArray
from hdl.generate import verilog
from hdl.isa import COMPUTE_LAYOUT, POST_LAYOUT, instruction_layout
from hdl.pe import ProcessingElement
from hdl.postproc import PostProcessor
from hdl.window import WindowGenerator

__all__ = [
    "COMPUTE_LAYOUT",
    "POST_LAYOUT",
    "PostProcessor",
    "ProcessingElement",
    "SystolicArray",
    "WindowGenerator",
    "instruction_layout",
    "verilog",
]
