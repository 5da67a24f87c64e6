"""The compiler's one error: a layer the hardware cannot run, named with the limit it exceeds."""

from __future__ import annotations

from accel import graph as g


class CompileError(ValueError):
    """A layer that the hardware cannot run, naming the layer and the limit."""

    # Its public name, as tracebacks and pickles give it (accel.compiler re-exports it).
    __module__ = "accel.compiler"


def layer_error(net: g.Network, node: str, message: str) -> CompileError:
    """``CompileError`` for ``node``: ``layer 'name' (OpType): message``."""
    return CompileError(f"layer {node!r} ({type(net.op(node)).__name__}): {message}")
