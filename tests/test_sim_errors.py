"""Bad input to the compiler and the model: clear errors, raised before anything runs."""

from __future__ import annotations

import numpy as np
import pytest

import sim
from accel import config, graph, models, ptq
from accel.compiler import CompileError, compile
from tests.layers import conv_qnet


@pytest.fixture(scope="module")
def program():
    qnet = conv_qnet(np.random.default_rng(0), c=4, k=4, hw=(6, 6), kernel=(3, 3))
    return compile(qnet, config.preset("tiny"))


def image_for(program):
    x = np.zeros((1, 4, 6, 6), dtype=np.int8)
    return program.make_image({"input": x})


def test_image_of_wrong_size(program):
    with pytest.raises(ValueError, match=r"image has 10 bytes but the program's DRAM layout has"):
        sim.run(program, np.zeros(10, dtype=np.uint8))


def test_image_with_other_constants(program):
    image = image_for(program)
    image[0] ^= 0xFF
    with pytest.raises(ValueError, match=r"constants \(weights/parameters\) do not match"):
        sim.run(program, image)


def test_image_of_wrong_type(program):
    with pytest.raises(TypeError, match=r"1-D numpy uint8"):
        sim.run(program, image_for(program).astype(np.int8))


def test_config_the_program_was_not_compiled_for(program):
    with pytest.raises(ValueError, match=r"compiled for config 'tiny' \(\w+\), not 'edge'"):
        sim.run(program, image_for(program), config=config.preset("edge"))


def test_unknown_mode(program):
    with pytest.raises(ValueError, match=r"mode must be one of \('fast', 'trace'\), not 'slow'"):
        sim.run(program, image_for(program), mode="slow")


def test_outputs_need_an_image(program):
    with pytest.raises(ValueError, match=r"an image is needed"):
        sim.run(program)


@pytest.mark.parametrize(
    ("inputs", "error", "match"),
    [
        ({}, ValueError, r"missing network inputs: \['input'\]"),
        ({"input": np.zeros((1, 4, 6, 6), np.int8), "x": 1}, ValueError, r"unknown network inputs"),
        (
            {"input": np.zeros((1, 4, 5, 6), np.int8)},
            ValueError,
            r"has shape \(4, 5, 6\), expected",
        ),
        ({"input": np.zeros((2, 4, 6, 6), np.int8)}, ValueError, r"batch 2"),
        ({"input": np.zeros((1, 4, 6, 6), np.float32)}, TypeError, r"must be int8, not float32"),
    ],
)
def test_bad_inputs(program, inputs, error, match):
    with pytest.raises(error, match=match):
        program.make_image(inputs)


def test_layer_that_cannot_fit_names_layer_and_limit():
    qnet = conv_qnet(np.random.default_rng(0), c=4, k=4, hw=(40, 40), kernel=(39, 39))
    small = config.preset("tiny").replace(buffers={"input_bytes": 256})
    with pytest.raises(CompileError, match=r"layer 'conv' \(Conv2d\): .*buffers.input_bytes = 256"):
        compile(qnet, small)


def test_stride_beyond_the_hardware_limit():
    qnet = conv_qnet(np.random.default_rng(0), c=8, k=2, hw=(40, 40), kernel=(1, 2), stride=(16, 1))
    with pytest.raises(
        CompileError, match=r"layer 'conv' \(Conv2d\): stride 16 exceeds the hardware limit 15"
    ):
        compile(qnet, config.preset("tiny"))


def test_an_instruction_field_limit_names_the_layer():
    """A 1-D pool over 70,000 samples: its rows fit the buffers in pieces, but the image
    width does not fit a COMPUTE field; the error names the layer, the field and the value."""
    net = graph.Network("long")
    net.add("input", graph.Input((1, 1, 70_000)))
    net.add("pool", graph.MaxPool2d((1, 2), (1, 2)), ["input"])
    qnet = ptq.quantize(net, seed=0)
    with pytest.raises(
        CompileError,
        match=r"layer 'pool' \(MaxPool2d\): Compute.image_w = 70000 does not fit its 16-bit",
    ):
        compile(qnet, config.preset("edge"))


def test_standalone_activation_is_rejected():
    net = graph.Network("n")
    net.add("input", graph.Input((4, 4, 4)))
    net.add("pool", graph.MaxPool2d((2, 2), (2, 2)), ["input"])
    net.add("relu", graph.Activation("relu"), ["pool"])
    qnet = ptq.quantize(net, seed=0)
    with pytest.raises(CompileError, match=r"layer 'relu' \(Activation\): a standalone activation"):
        compile(qnet, config.preset("tiny"))


@pytest.mark.parametrize("network", ["resnet18", models.get("tinyconv")], ids=["str", "Network"])
def test_compile_takes_quantised_networks_only(network):
    with pytest.raises(
        TypeError,
        match=r"compile\(\) takes a QuantizedNetwork \(quantise a float network with "
        r"accel.ptq.quantize first\), not (str|Network)$",
    ):
        compile(network, config.preset("tiny"))


def test_quantise_then_compile_is_deterministic():
    tiny = config.preset("tiny")
    a, b = (compile(ptq.quantize(models.get("tinyconv"), seed=3), tiny) for _ in "ab")
    np.testing.assert_array_equal(a.constants, b.constants)


def test_empty_transfer_is_rejected_before_running(program):
    import dataclasses

    from accel import isa

    broken = dataclasses.replace(program, streams=dict(program.streams))
    loads = list(broken.streams[isa.Engine.LOAD])
    loads[0] = isa.with_fields(loads[0], run_bytes=0)
    broken.streams[isa.Engine.LOAD] = loads
    with pytest.raises(ValueError, match=r"LOAD\[0\] \(layer 0\): run_bytes = 0 < 1"):
        sim.run(broken, compute_outputs=False)


@pytest.mark.parametrize(("rows", "cols"), [(2, 1), (4, 4), (3, 5)])
def test_the_smallest_valid_buffers_compile_and_run_a_1x1_convolution(rows, cols):
    """docs/user-guide.md's minimums: two of every buffer's unit. Anything smaller is
    rejected by the config; at exactly these a 1x1 convolution compiles and runs exactly."""
    from accel.config import AccelConfig, ArrayConfig, BufferConfig
    from tests.layers import conv_qnet, conv_reference, random_input

    smallest = BufferConfig(
        input_bytes=2 * rows,
        weight_bytes=2 * rows * cols,
        acc_bytes=2 * 4 * cols,
        output_bytes=2 * cols,
        param_bytes=2 * 12 * cols,
    )
    cfg = AccelConfig(name="smallest", array=ArrayConfig(rows=rows, cols=cols), buffers=smallest)
    for field in ("input_bytes", "weight_bytes", "acc_bytes", "output_bytes", "param_bytes"):
        with pytest.raises(ValueError, match=rf"buffers.{field} = \d+ is too small"):
            cfg.replace(buffers={field: getattr(smallest, field) - 1})
    rng = np.random.default_rng(rows * cols)
    qnet = conv_qnet(rng, c=rows + 1, k=cols + 1, hw=(3, 2), kernel=(1, 1))
    program = compile(qnet, cfg)
    x = random_input(rng, qnet)
    result = sim.run(program, program.make_image({"input": x}))
    np.testing.assert_array_equal(result.outputs["conv"], conv_reference(qnet, x), strict=True)


def _signals_then_waits(tokens: int, waits_from: int):
    """LOADs signalling L2C at cycles 1..tokens, COMPUTEs taking them from ``waits_from``."""
    from accel.isa import Compute, Engine, Load, Sem
    from sim.controller import Schedule

    streams = {e: [] for e in Engine}
    streams[Engine.LOAD] = [Load(signal=1 << Sem.L2C)] * tokens
    streams[Engine.COMPUTE] = [Compute(wait=1 << Sem.L2C)] * tokens
    sched = Schedule()
    sched.start[Engine.LOAD] = list(range(tokens))
    sched.done[Engine.LOAD] = list(range(1, tokens + 1))
    sched.start[Engine.COMPUTE] = list(range(waits_from, waits_from + tokens))
    sched.done[Engine.COMPUTE] = list(range(waits_from + 1, waits_from + tokens + 1))
    return streams, sched


@pytest.mark.parametrize("waits_from", [1, 10**6])
def test_a_semaphore_deeper_than_its_bits_is_refused(waits_from):
    """2**16 tokens at once fit only if the consumer takes them as they come: the level after
    the k-th signal is k minus the waits begun before it."""
    from accel.isa import SEMAPHORE_BITS
    from sim.controller import check_semaphore_depth

    streams, sched = _signals_then_waits(1 << SEMAPHORE_BITS, waits_from)
    if waits_from == 1:  # each token taken in the cycle after its signal: level 1
        check_semaphore_depth(streams, sched)
    else:
        with pytest.raises(OverflowError, match="semaphore L2C would hold more than 65535"):
            check_semaphore_depth(streams, sched)
