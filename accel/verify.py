"""Verification: the golden model, the cycle model and the RTL on the same program.

The engine of ``accel verify`` (like :mod:`accel.cli`, this module dispatches to :mod:`sim`
and :mod:`hdl`; the rest of :mod:`accel` imports neither). For a quantised network and a
config it compiles the network with every layer's output kept in DRAM
(``compile(..., keep_tensors=True)``), runs the program on the cycle model and on an RTL
backend (Verilator or the Amaranth simulator), computes every layer with
:func:`accel.executor.trace_network`, and checks, per layer:

- **outputs**: the layer's output tensor from the RTL's final DRAM equals the golden model's,
  element for element (and the model's);
- **cycles**: every instruction of the layer starts and is done in the same cycle on the RTL
  as in the model. A layer's *cycles* are counted from the previous layer's completion to its
  own (the last ``done`` of its instructions, as a running maximum), the same definition on
  both sides, so the column adds up to the total.

``layers=[...]`` verifies the named layers one at a time instead, each compiled alone as a
single-layer network fed with the golden model's input tensors (a Flatten in front of a
Linear goes with it). The first mismatch is named: the layer, the instruction (engine and
index), the cycles, and for data the first differing output element.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

import numpy as np

from accel import executor, graph
from accel.backend import Result
from accel.compiler import compile
from accel.config import AccelConfig
from accel.deploy import Deployment, HostStep, alone, deploy
from accel.isa import Engine
from accel.program import Program
from accel.quantized import QuantizedNetwork
from accel.synthetic import random_int8_inputs, random_program_inputs, stack_images

__all__ = [
    "BACKENDS",
    "LayerCheck",
    "Verification",
    "layer_network",
    "layer_window",
    "verify",
    "verify_program",
]

BACKENDS = ("verilator", "amaranth")


@dataclass
class LayerCheck:
    """One layer: were its outputs and its cycles the model's?"""

    index: int
    name: str
    kind: str
    instructions: int
    outputs_equal: bool
    model_cycles: int
    rtl_cycles: int
    cycles_equal: bool
    mismatch: str | None = None  # the first one, named


@dataclass
class Verification:
    """The outcome of one verification run."""

    network: str
    config: str
    backend: str
    layers: list[LayerCheck]
    model_cycles: int
    rtl_cycles: int
    counters_equal: bool
    seconds: dict[str, float] = field(default_factory=dict)
    #: What the outputs are held to: the golden model, or (a compiled program) the model.
    reference: str = "golden"
    #: Images of the batch its one program ran (every layer's outputs checked per image).
    images: int = 1

    @property
    def ok(self) -> bool:
        return (
            all(layer.outputs_equal and layer.cycles_equal for layer in self.layers)
            and self.model_cycles == self.rtl_cycles
            and self.counters_equal
        )

    @property
    def first_mismatch(self) -> str | None:
        for layer in self.layers:
            if layer.mismatch:
                return f"layer {layer.index} {layer.name!r}: {layer.mismatch}"
        if self.model_cycles != self.rtl_cycles:
            return f"total cycles: model {self.model_cycles}, RTL {self.rtl_cycles}"
        if not self.counters_equal:
            return "performance counters differ from the model's"
        return None

    def to_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok, "first_mismatch": self.first_mismatch}

    def table(self) -> str:
        """The per-layer table ``accel verify`` prints."""
        head = ("#", "layer", "kind", "instrs", "bit-exact", "model cycles", "RTL cycles", "equal")
        rows = [
            (
                str(layer.index),
                layer.name,
                layer.kind,
                str(layer.instructions),
                "yes" if layer.outputs_equal else "NO",
                f"{layer.model_cycles:,}",
                f"{layer.rtl_cycles:,}",
                "yes" if layer.cycles_equal else "NO",
            )
            for layer in self.layers
        ]
        rows.append(
            (
                "",
                "total",
                "",
                str(sum(layer.instructions for layer in self.layers)),
                "yes" if all(layer.outputs_equal for layer in self.layers) else "NO",
                f"{self.model_cycles:,}",
                f"{self.rtl_cycles:,}",
                "yes" if self.model_cycles == self.rtl_cycles else "NO",
            )
        )
        widths = [max(len(row[i]) for row in [head, *rows]) for i in range(len(head))]
        right = {0, 3, 5, 6}

        def line(row) -> str:
            return "  ".join(
                cell.rjust(w) if i in right else cell.ljust(w)
                for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            ).rstrip()

        out = [line(head), line(["-" * w for w in widths]), *map(line, rows)]
        verdict = "PASS" if self.ok else f"FAIL: {self.first_mismatch}"
        held = "" if self.reference == "golden" else "; outputs held to the model's"
        out.append(
            f"{self.backend} vs model on {self.config!r}: {verdict} "
            f"(counters {'equal' if self.counters_equal else 'DIFFER'}{held})"
        )
        return "\n".join(out)


def layer_network(qnet: QuantizedNetwork, name: str) -> QuantizedNetwork:
    """Layer ``name`` of ``qnet`` alone: an Input per input tensor (same shape and
    quantisation), a Flatten in front of a Linear that had one, the layer itself."""
    net = qnet.network
    if name not in net or isinstance(net.op(name), graph.Input):
        layers = [n for n in net.order() if not isinstance(net.op(n), graph.Input)]
        raise ValueError(f"network {net.name!r} has no layer {name!r}; its layers: {layers}")
    sub = graph.Network(f"{net.name}.{name}")
    tensors = {}
    inputs = []
    for src in net.inputs(name):
        if isinstance(net.op(src), graph.Flatten):
            (before,) = net.inputs(src)
            sub.add(before, graph.Input(tuple(net.shape(before))))
            tensors[before] = qnet.tensors[before]
            sub.add(src, net.op(src), [before])
        else:
            sub.add(src, graph.Input(tuple(net.shape(src))))
        tensors[src] = qnet.tensors[src]
        inputs.append(src)
    sub.add(name, net.op(name), inputs)
    weights = net.weights(name)
    if weights:
        sub.set_weights(name, weights["weight"], weights.get("bias"))
    tensors[name] = qnet.tensors[name]
    layers = {name: qnet.layers[name]} if name in qnet.layers else {}
    return QuantizedNetwork(sub, tensors, layers)


@contextmanager
def _timed(seconds: dict[str, float], key: str):
    """Add the wall time of the ``with`` block to ``seconds[key]``."""
    clock = time.perf_counter()
    try:
        yield
    finally:
        seconds[key] = seconds.get(key, 0.0) + time.perf_counter() - clock


def _run_rtl(backend: str, program: Program, image: np.ndarray, **options):
    if backend == "verilator":
        from hdl.flow import verilator

        return verilator.run(program, image, **options)
    if backend == "amaranth":
        from hdl.flow import amaranth_sim

        options.pop("log", None)
        options.pop("vcd_window", None)
        return amaranth_sim.run(program, image, **options)
    raise ValueError(f"backend must be one of {BACKENDS}, not {backend!r}")


def layer_window(program: Program, result: Result, name: str) -> tuple[int, int]:
    """The cycles from the first start to the last done of layer ``name``'s instructions in
    ``result``, a run of ``program``."""
    index = {info.name: info.index for info in program.layers}.get(name)
    if index is None:
        raise ValueError(f"program {program.network!r} has no layer {name!r}")
    spans = [
        (result.start[engine][i], result.done[engine][i])
        for engine in Engine
        for i, instr in enumerate(program.streams[engine])
        if instr.layer == index
    ]
    if not spans:
        raise ValueError(f"layer {name!r} has no instructions (nothing to dump)")
    return min(s for s, _ in spans), max(d for _, d in spans)


def _first_difference(name: str, want: np.ndarray, got: np.ndarray) -> str:
    index = tuple(int(i) for i in np.argwhere(want != got)[0])
    return (
        f"output {name!r} element {index}: golden {int(want[index])}, RTL {int(got[index])} "
        f"({int(np.count_nonzero(want != got))} of {want.size} elements differ)"
    )


def _check_program(
    program: Program,
    image: np.ndarray,
    expected: dict[str, np.ndarray],
    backend: str,
    seconds: dict[str, float],
    stage,
    **options,
) -> tuple[list[LayerCheck], int, int, bool, dict[str, np.ndarray]]:
    """Run ``program`` on the model and the RTL; a :class:`LayerCheck` per compiled layer,
    the model's and the RTL's cycles, whether the counters agree, and the RTL's outputs."""
    import sim

    stage(f"cycle model ({program.instruction_count:,} instructions)")
    with _timed(seconds, "model"):
        model = sim.run(program, image)
    stage(f"RTL: {backend} ({model.total_cycles:,} cycles)")
    vcd_layer = options.pop("vcd_layer", None)
    if vcd_layer is not None:
        options["vcd_window"] = layer_window(program, model, vcd_layer)
    window = options.get("vcd_window")
    if window is not None and window[0] > model.total_cycles:
        raise ValueError(
            f"--vcd-window {window[0]}:{window[1]} starts after the run's last cycle "
            f"{model.total_cycles}"
        )
    with _timed(seconds, "rtl"):
        rtl = _run_rtl(backend, program, image, max_cycles=4 * model.total_cycles + 1000, **options)

    n = len(program.layers)
    done = {"model": [0] * n, "rtl": [0] * n}
    count = [0] * n
    divergence: list[str | None] = [None] * n
    events = sorted(
        (model.start[engine][i], engine, i)
        for engine in Engine
        for i in range(len(program.streams[engine]))
    )
    for _, engine, i in events:
        layer = program.streams[engine][i].layer
        count[layer] += 1
        want = (model.start[engine][i], model.done[engine][i])
        got = (rtl.start[engine][i], rtl.done[engine][i])
        done["model"][layer] = max(done["model"][layer], want[1])
        done["rtl"][layer] = max(done["rtl"][layer], got[1])
        if want != got and divergence[layer] is None:
            divergence[layer] = (
                f"{engine.name}[{i}] starts/is done in cycles {got} on the RTL, {want} in the model"
            )
    checks = []
    previous = {"model": 0, "rtl": 0}
    for info in program.layers:
        cycles = {}
        for side in ("model", "rtl"):
            end = max(previous[side], done[side][info.index])
            cycles[side] = end - previous[side]
            previous[side] = end
        mismatch = divergence[info.index]
        outputs_equal = True
        if info.name in rtl.outputs:
            got = rtl.outputs[info.name]
            # The golden model's tensor where there is one, else (a compiled program
            # verified alone) the model's.
            reference = expected.get(info.name, model.outputs[info.name])
            want, got = reference, got.reshape(reference.shape)
            outputs_equal = bool(np.array_equal(want, got)) and bool(
                np.array_equal(want, model.outputs[info.name].reshape(want.shape))
            )
            if not np.array_equal(want, got):
                mismatch = mismatch or _first_difference(info.name, want, got)
            elif not outputs_equal:
                mismatch = mismatch or f"output {info.name!r}: the model differs from golden"
        checks.append(
            LayerCheck(
                index=info.index,
                name=info.name,
                kind=info.kind,
                instructions=count[info.index],
                outputs_equal=outputs_equal,
                model_cycles=cycles["model"],
                rtl_cycles=cycles["rtl"],
                cycles_equal=divergence[info.index] is None,
                mismatch=mismatch,
            )
        )
    counters_equal = rtl.counters == model.counters
    return checks, model.total_cycles, rtl.total_cycles, counters_equal, dict(rtl.outputs)


def _check_deployment(
    deployment: Deployment,
    inputs: dict[str, np.ndarray],
    trace: dict[str, np.ndarray],
    backend: str,
    seconds: dict[str, float],
    stage,
    **options,
) -> tuple[list[LayerCheck], int, int, bool]:
    """Every step in order, end to end: each segment on the model and the RTL from the
    tensors the steps before it gave (its layers checked against the golden ``trace``), each
    host op on the RTL's tensors (checked against the golden model too)."""
    qnet = deployment.qnet
    values = dict(inputs)
    checks: list[LayerCheck] = []
    model_cycles = rtl_cycles = 0
    counters = True
    for step in deployment.steps:
        if isinstance(step, HostStep):
            got = step.run(qnet, [values[src] for src in step.inputs])
            values[step.node] = got
            want = trace[step.node]
            equal = bool(np.array_equal(want, got.reshape(want.shape)))
            checks.append(
                LayerCheck(
                    index=len(checks),
                    name=step.node,
                    kind=f"{step.kind} (host)",
                    instructions=0,
                    outputs_equal=equal,
                    model_cycles=0,
                    rtl_cycles=0,
                    cycles_equal=True,
                    mismatch=None if equal else _first_difference(step.node, want, got),
                )
            )
            continue
        program = step.program
        feeds = {
            name: values[name].reshape(1, t.channels, t.height, t.width)
            for name, t in program.inputs.items()
        }
        layer_checks, m, r, c, outputs = _check_program(
            program, program.make_image(feeds), trace, backend, seconds, stage, **options
        )
        for check in layer_checks:
            check.index = len(checks)
            checks.append(check)
        values.update(outputs)
        model_cycles += m
        rtl_cycles += r
        counters = counters and c
    return checks, model_cycles, rtl_cycles, counters


def verify_program(
    program: Program,
    *,
    backend: str = "verilator",
    seed: int = 0,
    stage=None,
    **options,
) -> Verification:
    """Verify a compiled program (``accel verify prog.bin``): the RTL against the cycle model,
    per instruction, and its outputs against the model's (a program carries no network, so
    there is no golden model to hold both to)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, not {backend!r}")
    stage = stage or (lambda text: None)
    seconds: dict[str, float] = {}
    image = program.make_image(random_program_inputs(program, seed))
    checks, model_cycles, rtl_cycles, counters, _ = _check_program(
        program, image, {}, backend, seconds, stage, **options
    )
    return Verification(
        program.network,
        program.config.name,
        backend,
        checks,
        model_cycles,
        rtl_cycles,
        counters,
        seconds,
        reference="model",
        images=program.batch,
    )


def verify(
    qnet: QuantizedNetwork,
    config: AccelConfig,
    *,
    backend: str = "verilator",
    layers: list[str] | None = None,
    seed: int = 0,
    stage=None,
    host_ops: bool = True,
    images: int = 1,
    **options,
) -> Verification:
    """Verify ``qnet`` on ``config`` (see the module docstring). A network with host ops
    (:mod:`accel.deploy`) is verified segment after segment, its host ops against the golden
    model; ``host_ops=False`` rejects them.

    ``images`` > 1 verifies the program of a batch (``compile(..., batch=images)``, weights
    resident across the batch) on the random inputs of seeds ``seed .. seed + images - 1``:
    every image's every layer against the golden model of that image, every instruction's
    cycles against the model. Only for a network the accelerator runs alone
    (:func:`accel.deploy.alone`; ``ValueError`` otherwise) and the whole network.

    ``stage``, if given, is called with a short description of each step as it begins (for
    a progress line). ``options`` go to the backend's ``run`` (``vcd``, ``vcd_window``,
    ``log``), except ``vcd_layer``: the VCD window becomes that layer's cycles in the model
    (its first start to its last done). Raises
    ``ValueError`` for an unknown backend or layer name, and whatever the compiler raises for
    a network the config cannot run.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, not {backend!r}")
    stage = stage or (lambda text: None)
    seconds: dict[str, float] = {}
    if images > 1:
        return _verify_batch(qnet, config, backend, seed, stage, host_ops, images, **options)
    inputs = random_int8_inputs(qnet, seed)
    stage("golden model")
    with _timed(seconds, "golden"):
        trace = executor.trace_network(qnet, inputs)
    if not layers:
        stage("compiling")
        with _timed(seconds, "compile"):
            deployment = deploy(qnet, config, keep_tensors=True, host_ops=host_ops)
        checks, model_cycles, rtl_cycles, counters = _check_deployment(
            deployment, inputs, trace, backend, seconds, stage, **options
        )
    else:
        subs = [layer_network(qnet, name) for name in layers]  # reject unknown names up front
        checks, model_cycles, rtl_cycles, counters = [], 0, 0, True
        for index, (name, sub) in enumerate(zip(layers, subs, strict=True)):
            stage(f"layer {name}: compiling")
            with _timed(seconds, "compile"):
                program = compile(sub, config, keep_tensors=True)
            image = program.make_image({n: trace[n] for n in sub.network.input_names})
            layer_checks, m, r, c, _ = _check_program(
                program, image, {name: trace[name]}, backend, seconds, stage, **options
            )
            # A single-layer program may hold a Flatten before its layer: report the layer.
            (check,) = [lc for lc in layer_checks if lc.name == name]
            check.index = index
            check.instructions = sum(lc.instructions for lc in layer_checks)
            check.model_cycles, check.rtl_cycles = m, r
            checks.append(check)
            model_cycles += m
            rtl_cycles += r
            counters = counters and c
    return Verification(
        qnet.network.name,
        config.name,
        backend,
        checks,
        model_cycles,
        rtl_cycles,
        counters,
        seconds,
    )


def _verify_batch(
    qnet: QuantizedNetwork,
    config: AccelConfig,
    backend: str,
    seed: int,
    stage,
    host_ops: bool,
    images: int,
    **options,
) -> Verification:
    """:func:`verify` of the program of a batch of ``images``."""
    if not alone(qnet.network, host_ops=host_ops):
        raise ValueError(
            f"{qnet.network.name!r} has host steps: its batch runs image by image, verify "
            "each image on its own"
        )
    seconds: dict[str, float] = {}
    feeds = [random_int8_inputs(qnet, seed + i) for i in range(images)]
    stage("golden model")
    with _timed(seconds, "golden"):
        traces = [executor.trace_network(qnet, feed) for feed in feeds]
    # Every tensor with the batch first: image i's golden tensor at [i].
    expected = {name: np.stack([trace[name] for trace in traces]) for name in traces[0]}
    stage("compiling")
    with _timed(seconds, "compile"):
        program = compile(qnet, config, keep_tensors=True, batch=images)
    checks, model_cycles, rtl_cycles, counters, _ = _check_program(
        program,
        program.make_image(stack_images(feeds)),
        expected,
        backend,
        seconds,
        stage,
        **options,
    )
    return Verification(
        qnet.network.name,
        config.name,
        backend,
        checks,
        model_cycles,
        rtl_cycles,
        counters,
        seconds,
        images=images,
    )
