"""The cycle-level model of the accelerator: one module per hardware block."""
