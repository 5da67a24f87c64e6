"""The Amaranth RTL of the accelerator: one module per hardware block."""
