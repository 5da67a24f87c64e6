"""accel: a toolkit for convolution accelerators.

Networks in (model zoo, ONNX, SCALE-Sim topologies), a compiler that maps them onto a
weight-stationary systolic accelerator, a NumPy golden model, and the numerics of the
hardware. The cycle-level model lives in :mod:`sim`, the Amaranth RTL in :mod:`hdl`.
"""

__version__ = "0.1.0"
