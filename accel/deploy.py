"""A network the accelerator runs in part: accelerator segments, host ops between them.

:func:`deploy` cuts a :class:`~accel.quantized.QuantizedNetwork` at its host ops
(:class:`accel.graph.HostOp`): every maximal run of accelerator layers (in the network's
topological order) becomes a :class:`Segment`, a network of its own compiled into one
:class:`~accel.program.Program`; every host op a :class:`HostStep` between them. A network
without host ops is one segment, compiled exactly as :func:`accel.compiler.compile` compiles
it.

A segment's inputs are the tensors it reads that it does not compute (network inputs, host
op results, earlier segments' results): the host writes them into the segment's DRAM image.
Its outputs are the tensors it computes that a later step or the caller needs (the network's
outputs, host op inputs, later segments' inputs): the host reads them from the final DRAM.
That traffic across the boundary is what :attr:`DeploymentRun.boundary_bytes` counts.

:func:`run` executes a deployment on any :class:`~accel.backend.Backend`, the host steps in
int8 as the golden model runs them (:func:`accel.executor.int8_node`), and returns every
step's result.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from accel import compiler, executor, graph
from accel.backend import STALL_CAUSES, Result
from accel.compiler import CompileError
from accel.compiler.plan import concat_in_place, prefix_concats
from accel.config import AccelConfig
from accel.program import Program
from accel.quantized import QuantizedNetwork

__all__ = [
    "Deployment",
    "DeploymentRun",
    "HostStep",
    "Segment",
    "alone",
    "deploy",
    "plan_runs",
    "run",
    "sub_network",
]


@dataclass(frozen=True)
class Segment:
    """Consecutive accelerator layers, compiled together."""

    index: int
    layers: tuple[str, ...]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    program: Program


@dataclass(frozen=True)
class HostStep:
    """A layer the host runs between segments: a host op, or a layer the accelerator cannot
    place where it stands, or should not (a standalone activation, a table between host ops,
    a concat of tensors it does not compute in one segment)."""

    node: str
    op: graph.Op
    inputs: tuple[str, ...]

    @property
    def kind(self) -> str:
        """``HostOp Softmax``, ``Activation relu``, ``Pointwise gelu``, ``Concat``: what the
        host runs."""
        if isinstance(self.op, graph.HostOp):
            return f"HostOp {self.op.op_type}"
        if isinstance(self.op, graph.Activation):
            return f"Activation {self.op.kind}"
        if isinstance(self.op, graph.Pointwise):
            return f"Pointwise {self.op.function}"
        return type(self.op).__name__

    def run(self, qnet: QuantizedNetwork, xs: Sequence[np.ndarray]) -> np.ndarray:
        """The layer on its int8 inputs, as the golden model runs it."""
        return executor.int8_node(qnet, self.node, list(xs))


def on_host(
    net: graph.Network, node: str, segment: Sequence[str], prefixes: dict[str, str]
) -> bool:
    """Whether ``node`` runs on the host (``segment``: the accelerator layers just before
    it, which it would join; ``prefixes``: the network's
    :func:`~accel.compiler.plan.prefix_concats`): a host op, an activation the compiler could
    not fuse into its producer, a table (Pointwise) between host ops (read from a host op,
    read only by host ops: a segment of its own would cost a DRAM round trip for one lookup
    per element), or a concat whose inputs are not layers of that segment used by this concat
    alone or by a chain of concats each the channel prefix of the next (a concat costs the
    accelerator nothing because its producers store into it:
    :func:`accel.compiler.plan.concat_in_place`)."""
    op = net.op(node)
    if isinstance(op, graph.HostOp | graph.Activation):
        return True
    if isinstance(op, graph.Pointwise):
        readers = net.consumers(node)
        hosted = [net.op(net.inputs(node)[0]), *(net.op(r) for r in readers)]
        return bool(readers) and all(isinstance(o, graph.HostOp) for o in hosted)
    if isinstance(op, graph.Concat):
        return any(src not in segment for src in net.inputs(node)) or not concat_in_place(
            net, node, prefixes
        )
    return False


@dataclass(frozen=True)
class Deployment:
    """The steps of one network on one config, in execution order."""

    qnet: QuantizedNetwork
    config: AccelConfig
    steps: tuple[Segment | HostStep, ...]
    #: Images its one program runs at once (:func:`deploy`'s ``batch``); 1 when it has
    #: host steps, whose segments run one image at a time.
    batch: int = 1

    @property
    def segments(self) -> list[Segment]:
        return [s for s in self.steps if isinstance(s, Segment)]

    @property
    def host_steps(self) -> list[HostStep]:
        return [s for s in self.steps if isinstance(s, HostStep)]

    @property
    def whole(self) -> bool:
        """One segment and no host op: the network runs on the accelerator alone."""
        return len(self.steps) == 1 and isinstance(self.steps[0], Segment)


def sub_network(
    qnet: QuantizedNetwork, layers: Sequence[str], name: str | None = None
) -> QuantizedNetwork:
    """``layers`` of ``qnet`` as a network of their own: every tensor they read but do not
    compute becomes an Input of its shape (a flat ``(F,)`` one as ``(F, 1, 1)``) and its
    quantisation; weights and layer parameters are shared."""
    net = qnet.network
    inside = set(layers)
    sub = graph.Network(name or net.name)
    tensors = {}
    for layer in layers:
        for src in net.inputs(layer):
            if src not in inside and src not in sub:
                shape = tuple(net.shape(src))
                sub.add(src, graph.Input(shape if len(shape) == 3 else (shape[0], 1, 1)))
                tensors[src] = qnet.tensors[src]
    for layer in layers:
        sub.add(layer, net.op(layer), net.inputs(layer))
        weights = net.weights(layer)
        if weights:
            sub.set_weights(layer, weights["weight"], weights.get("bias"))
        sub.meta(layer).update(net.meta(layer))
        tensors[layer] = qnet.tensors[layer]
    layer_params = {n: qnet.layers[n] for n in layers if n in qnet.layers}
    return QuantizedNetwork(sub, tensors, layer_params)


def plan_runs(net: graph.Network, *, host_ops: bool = True) -> list[list[str] | str]:
    """The steps of ``net`` in order: a list of consecutive accelerator layers (a segment),
    or the node of a host step; ``host_ops=False`` makes a host op an error."""
    runs: list[list[str] | str] = []  # a list of accelerator layers, or a host step's node
    prefixes = prefix_concats(net)
    for node in net.layers():
        segment = runs[-1] if runs and isinstance(runs[-1], list) else []
        if on_host(net, node, segment, prefixes):
            if not host_ops and isinstance(net.op(node), graph.HostOp):
                raise CompileError(
                    f"layer {node!r} (HostOp {net.op(node).op_type}) runs on the host, and "
                    "host ops are off (--no-host)"
                )
            runs.append(node)
        elif runs and isinstance(runs[-1], list):
            runs[-1].append(node)
        else:
            runs.append([node])
    return runs


def alone(net: graph.Network, *, host_ops: bool = True) -> bool:
    """Whether the accelerator runs ``net`` alone (no host step): :func:`deploy` then
    compiles it as one program, for a whole batch if asked."""
    runs = plan_runs(net, host_ops=host_ops)
    return len(runs) == 1 and isinstance(runs[0], list)


def deploy(
    qnet: QuantizedNetwork,
    config: AccelConfig,
    *,
    host_ops: bool = True,
    keep_tensors: bool = False,
    compile: Callable[..., Program] | None = None,
    batch: int = 1,
) -> Deployment:
    """Cut ``qnet`` at its host ops and compile every accelerator segment for ``config``.

    ``host_ops=False`` makes a host op an error naming the node and the op. ``keep_tensors`` as
    :func:`accel.compiler.compile`'s (every layer's output kept, for verification);
    ``batch`` > 1 compiles a network without host steps as one program for that many images
    (:func:`accel.compiler.compile`'s ``batch``: weights kept resident across the batch); a
    network with host steps is compiled for one image whatever ``batch`` says (its segments
    run image by image, :attr:`Deployment.batch` is 1);
    ``compile`` replaces that function (same arguments; e.g. one that goes through the
    program cache, :func:`accel.cache.compile_cached`). Raises
    :class:`~accel.compiler.CompileError` naming the layer and the limit for a layer the
    hardware cannot run.
    """
    compile = compile or compiler.compile
    net = qnet.network
    runs = plan_runs(net, host_ops=host_ops)
    if len(runs) == 1 and isinstance(runs[0], list):
        options = {"batch": batch} if batch != 1 else {}
        program = compile(qnet, config, keep_tensors=keep_tensors, **options)
        segment = Segment(
            0, tuple(runs[0]), tuple(net.input_names), tuple(program.outputs), program
        )
        return Deployment(qnet, config, (segment,), batch=program.batch)
    steps: list[Segment | HostStep] = []
    for position, item in enumerate(runs):
        if isinstance(item, str):
            steps.append(HostStep(item, net.op(item), tuple(net.inputs(item))))
            continue
        later = {
            n
            for other in runs[position + 1 :]
            for n in ([other] if isinstance(other, str) else other)
        }
        needed = {src for n in later for src in net.inputs(n)} | set(net.output_names)
        keep = [n for n in item if n in needed]
        index = len([s for s in steps if isinstance(s, Segment)])
        sub = sub_network(qnet, item, f"{net.name}.segment{index}")
        program = compile(sub, config, keep_tensors=keep_tensors, keep=keep)
        steps.append(
            Segment(index, tuple(item), tuple(sub.network.input_names), tuple(keep), program)
        )
    return Deployment(qnet, config, tuple(steps))


@dataclass(frozen=True)
class DeploymentRun:
    """What running a deployment gave: every segment's :class:`~accel.backend.Result`, and
    (when tensors were computed) every tensor the steps passed on, the outputs among them."""

    deployment: Deployment
    results: tuple[Result, ...]
    values: Mapping[str, np.ndarray]

    @property
    def outputs(self) -> dict[str, np.ndarray]:
        names = self.deployment.qnet.network.output_names
        return {n: self.values[n] for n in names if n in self.values}

    @property
    def total_cycles(self) -> int:
        """Accelerator cycles, segment after segment (host time is not counted)."""
        return sum(r.total_cycles for r in self.results)

    @property
    def macs(self) -> int:
        return sum(r.macs for r in self.results)

    @property
    def utilization(self) -> float:
        peak = self.deployment.config.array.pes * self.total_cycles
        return self.macs / peak if peak else 0.0

    @property
    def seconds(self) -> float:
        return self.total_cycles / (self.deployment.config.clock_mhz * 1e6)

    @property
    def gops(self) -> float:
        return 2 * self.macs / self.seconds / 1e9 if self.total_cycles else 0.0

    @property
    def stalls(self) -> dict[str, int]:
        return {cause: sum(r.stalls[cause] for r in self.results) for cause in STALL_CAUSES}

    @property
    def dram_read_bytes(self) -> int:
        return sum(r.dram_read_bytes for r in self.results)

    @property
    def dram_written_bytes(self) -> int:
        return sum(r.dram_written_bytes for r in self.results)

    def boundary(self, segment: Segment) -> tuple[int, int]:
        """``(written, read)``: the DRAM bytes the host writes into ``segment`` (its inputs
        that are not network inputs) and reads out of it (its outputs that are not network
        outputs); int8 tensors, one byte an element."""
        net = self.deployment.qnet.network

        def size(names: Sequence[str]) -> int:
            return sum(int(np.prod(net.shape(n))) for n in names)

        written = size([n for n in segment.inputs if n not in net.input_names])
        read = size([n for n in segment.outputs if n not in net.output_names])
        return written, read

    @property
    def boundary_bytes(self) -> int:
        """DRAM bytes the host writes into and reads out of segments between the first
        segment's inputs and the last one's outputs (zero for a network without host ops)."""
        if self.deployment.whole:
            return 0
        return sum(sum(self.boundary(s)) for s in self.deployment.segments)


def run(
    deployment: Deployment,
    inputs: Mapping[str, np.ndarray] | None,
    backend: Callable[[Program, np.ndarray | None], Result],
) -> DeploymentRun:
    """Run every step: segments on ``backend`` (``backend(program, image)``; with ``inputs``
    None, ``backend(program, None)``, a cycles-only run), host ops in int8 in between. A
    deployment of a batch takes every input as (batch, C, H, W) and gives every tensor with
    the batch first."""
    qnet = deployment.qnet
    values: dict[str, np.ndarray] = dict(inputs or {})
    results = []
    for step in deployment.steps:
        if isinstance(step, HostStep):
            if inputs is not None:
                values[step.node] = step.run(qnet, [values[src] for src in step.inputs])
            continue
        image = None
        if inputs is not None:
            program = step.program
            feeds = {}
            for name, layout in program.inputs.items():
                shape = (program.batch, layout.channels, layout.height, layout.width)
                feeds[name] = values[name].reshape(shape)
            image = program.make_image(feeds)
        result = backend(step.program, image)
        results.append(result)
        values.update(result.outputs)
    return DeploymentRun(deployment, tuple(results), values)
