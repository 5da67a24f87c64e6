"""Map a quantised network onto the accelerator: tiling, buffers, DRAM layout, instructions.

``compile(network, config) -> Program``, in this pipeline (each module imports only the
ones above it):

- :mod:`~accel.compiler.errors`: :class:`CompileError`, a layer the hardware cannot run,
  naming the layer and the limit.
- :mod:`~accel.compiler.ops`: the abstract instructions (instructions with the buffer words
  and DRAM bytes they read and write) that lowering produces and synchronisation consumes,
  kept as columns: per step of a layer a template and rows of the fields that vary.
- :mod:`~accel.compiler.plan`: **DRAM planning**, once, before lowering: every tensor's root
  (concat inputs and 1x1 flattens are views), lifetime and address (first-fit reuse of dead
  tensors' bytes), the host-side im2col copies, and the bound of the constants' region;
  for a batch, the activations once per image.
- :mod:`~accel.compiler.tiling`: **tiling**, a pure cost model per layer: the largest output
  tile whose input tile, accumulators and outputs fit the buffers with double buffering,
  preferring whole output rows. Everything fits by construction: a layer that cannot be
  placed is rejected, naming the layer and the buffer it exceeds.
- :mod:`~accel.compiler.emit`: the state of lowering (program order, constants, buffer rings
  that continue across layers) and the steps all layer kinds share (input loads, POST and
  STORE, parameters resident or streamed).
- :mod:`~accel.compiler.lower_conv`: **lowering** of convolutions (all kinds, and fully
  connected layers) onto the systolic array; weights stay resident when they fit, otherwise
  they stream through a two-slot ring.
- :mod:`~accel.compiler.lower_vector`: lowering of pooling and residual adds onto the vector
  unit (``docs/architecture.md``).
- :mod:`~accel.compiler.lower`: the per-layer dispatch over the whole network, in one
  sequential *program order* (for each output tile: load the input tile; for each
  output-channel tile: load weights/parameters if they are not resident, compute,
  post-process, store).
- :mod:`~accel.compiler.sync`: **synchronisation**. Engines run their streams in order and
  concurrently; for every instruction the compiler finds the latest instruction of every
  other engine it conflicts with (read-after-write, write-after-read, write-after-write on
  the same buffer words or DRAM bytes) and turns that into one semaphore wait/signal pair.
  The parallel execution is therefore equivalent to the sequential program order, and free
  of deadlock. It works on whole columns with numpy (a one-at-a-time reference gives the
  same streams), then makes the instruction objects of ``Program.streams``.

Lowering and synchronisation make millions of instructions for a large network on a small
configuration; the steps that emit many at once (the channel tiles of an input load, the
(tile, k tile) units of a layer) append numpy columns rather than Python rows, and
:func:`compile` pauses the cyclic garbage collector while it runs.
"""

from __future__ import annotations

from collections.abc import Sequence

from accel import collector, isa
from accel.compiler.errors import CompileError, layer_error
from accel.compiler.lower import check_activations_fused, lower_network
from accel.compiler.order import sink_first_input_loads
from accel.compiler.plan import plan_dram
from accel.compiler.sync import synchronise
from accel.config import PENDING_DATAFLOWS, AccelConfig
from accel.program import Program
from accel.quantized import QuantizedNetwork

__all__ = ["CompileError", "compile"]


def compile(
    qnet: QuantizedNetwork,
    config: AccelConfig,
    *,
    keep_tensors: bool = False,
    keep: Sequence[str] = (),
    batch: int = 1,
) -> Program:
    """Compile a quantised network for ``config``.

    ``qnet`` comes from :func:`accel.ptq.quantize` (or a quantised ONNX model). Raises
    :class:`CompileError` naming the layer and the limit when a layer cannot run on this
    configuration, and ``TypeError`` for anything but a
    :class:`~accel.quantized.QuantizedNetwork`.

    ``keep_tensors=True`` (for layer-by-layer verification) gives every layer's output its
    own DRAM bytes for the whole run and lists it in :attr:`Program.outputs`, so the final
    DRAM holds every intermediate result; the schedule may differ slightly from the default,
    which reuses the bytes of dead tensors. ``keep`` does that for the named tensors only
    (a segment's tensors that later steps of a deployment read, :mod:`accel.deploy`).

    ``batch`` > 1 compiles one program for that many images, layer by layer over the batch
    (:mod:`~accel.compiler.lower`): every activation once per image
    (:attr:`Program.image_stride` apart), the weights once, loaded once per layer for the
    whole batch where they stay resident. ``batch=1`` is the program of one image.
    """
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be a positive integer, got {batch!r}")
    if not isinstance(qnet, QuantizedNetwork):
        raise TypeError(
            f"compile() takes a QuantizedNetwork (quantise a float network with "
            f"accel.ptq.quantize first), not {type(qnet).__name__}"
        )
    if config.array.dataflow in PENDING_DATAFLOWS:
        raise ValueError(
            f"array.dataflow = {config.array.dataflow!r}: "
            f"{PENDING_DATAFLOWS[config.array.dataflow]}"
        )
    array = config.array
    if array.dataflow == "is" and array.rows != array.cols:
        raise ValueError(
            f"array.dataflow = 'is' needs a square array (a weight word's lanes are the array "
            f"rows), not array.rows = {array.rows} x array.cols = {array.cols}"
        )
    net = qnet.network
    unknown = [name for name in keep if name not in net or name in net.input_names]
    if unknown:
        raise ValueError(f"keep names no computed tensor of {net.name!r}: {unknown}")
    check_activations_fused(net)
    plan = plan_dram(qnet, config, keep_tensors=keep_tensors, keep=frozenset(keep), images=batch)
    with collector.paused():
        lowered = lower_network(qnet, config, plan)
        if lowered.constants_size > plan.const_bound:
            raise AssertionError("constants overflowed their DRAM region")
        sink_first_input_loads(lowered.ops)
        streams = synchronise(lowered.ops)
    if not lowered.ops.fields_fit():
        for stream in streams.values():
            for instr in stream:
                try:
                    isa.encode(instr)  # raises, naming the first field that does not fit
                except ValueError as exc:
                    name = lowered.layers[instr.layer].name
                    raise layer_error(net, name, f"{exc} (an instruction field limit)") from None
    constants = lowered.constants  # plan.const_bound bytes
    kept = [*net.output_names, *(n for n in keep if n not in net.output_names)]
    if keep_tensors:
        kept = [layer.name for layer in lowered.layers if layer.kind != "Flatten"]
        kept += [n for n in net.output_names if n not in kept]
    return Program(
        config=config,
        network=net.name,
        streams=streams,
        layers=lowered.layers,
        inputs={n: plan.layout(n) for n in net.input_names},
        outputs={n: plan.layout(n) for n in kept},
        output_shapes={n: tuple(net.shape(n)) for n in kept},
        im2col=list(plan.im2col.values()),
        constants=constants,
        dram_bytes=plan.dram_bytes,
        batch=batch,
        image_stride=plan.image_stride if batch > 1 else 0,
    )
