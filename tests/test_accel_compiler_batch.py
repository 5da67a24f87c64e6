"""One program for a batch of images (``compile(..., batch=N)``): every image bit-exact
against its own golden model, weights loaded once per layer where they stay resident, the
layers on 1x1 maps run on the images as pixels, and one image's program unchanged."""

from __future__ import annotations

import numpy as np
import pytest

import sim
from accel import batch, cache, config, deploy, executor, synthetic
from accel import graph as g
from accel.compiler import compile
from accel.isa import Buffer, Engine
from accel.program import Program
from tests.layers import prelu_qnet, quantized, zoo_qnet


def batch_inputs(qnet, images: int, seed: int = 0):
    """Per image feeds (seeds ``seed + i``), and the same stacked with the batch first."""
    feeds = [synthetic.random_int8_inputs(qnet, seed + i) for i in range(images)]
    return feeds, synthetic.stack_images(feeds)


def weight_bytes_per_layer(program: Program) -> list[int]:
    total = [0] * len(program.layers)
    for instr in program.streams[Engine.LOAD]:
        if instr.buffer == Buffer.WEIGHT:
            total[instr.layer] += instr.outer_count * instr.inner_count * instr.run_bytes
    return total


CASES = [
    ("tinynet", None, "tiny", 4),
    ("lenet5", None, "tiny", 4),
    ("tinyconv", None, "edge", 2),
    ("resnet18", 32, "edge", 2),
    ("unet", 16, "edge", 2),  # transposed convolutions: their phases over the batch
]


@pytest.mark.parametrize(("model", "size", "preset", "images"), CASES)
def test_every_image_of_a_batch_program_is_bit_exact(model, size, preset, images):
    qnet = zoo_qnet(model, size)
    program = compile(qnet, config.preset(preset), keep_tensors=True, batch=images)
    assert program.batch == images
    feeds, stacked = batch_inputs(qnet, images)
    assert not np.array_equal(feeds[0]["input"], feeds[1]["input"])
    result = sim.run(program, program.make_image(stacked))
    assert result.outputs.keys() == program.outputs.keys()
    for i, feed in enumerate(feeds):
        golden = executor.trace_network(qnet, feed)
        for name, value in result.outputs.items():  # every layer (keep_tensors)
            assert value.shape[0] == images
            np.testing.assert_array_equal(value[i].reshape(golden[name].shape), golden[name])


def test_resident_weights_load_once_per_layer_for_the_whole_batch():
    qnet, cfg = zoo_qnet("tinynet"), config.preset("tiny")
    one, four = compile(qnet, cfg), compile(qnet, cfg, batch=4)
    by_one, by_four = weight_bytes_per_layer(one), weight_bytes_per_layer(four)
    for layer, w1, w4 in zip(four.layers, by_one, by_four, strict=True):
        if layer.mapping.get("weights") == "resident" or layer.mapping.get("batch") == (
            "images as pixels"
        ):
            assert w4 == w1, layer.name  # once per batch, not once per image
        else:
            assert layer.mapping["batch"] == "image by image", layer.name
            assert w4 == 4 * w1, layer.name  # streamed per tile of every image
    assert {layer.mapping.get("weights") for layer in four.layers} >= {"resident"}
    assert batch.weight_bytes(four) == sum(by_four) < 4 * batch.weight_bytes(one)
    fc = next(layer for layer in four.layers if layer.name == "fc")
    assert fc.mapping["batch"] == "images as pixels" and fc.macs == 4 * next(
        layer.macs for layer in one.layers if layer.name == "fc"
    )
    conv = next(layer for layer in four.layers if layer.name == "conv1")
    assert conv.mapping["batch"] == "image by image" and conv.mapping["images"] == 4


def test_streamed_weight_chunks_serve_every_image_where_the_buffers_allow():
    qnet, cfg = zoo_qnet("lenet5"), config.preset("tiny")
    one, four = compile(qnet, cfg), compile(qnet, cfg, batch=4)
    modes = {layer.name: layer.mapping.get("batch") for layer in four.layers}
    assert modes["conv1"] == "image by image" and modes["fc3"] == "images as pixels"
    assert modes["conv2"] == modes["fc1"] == "images share each streamed weight chunk"
    by_one, by_four = weight_bytes_per_layer(one), weight_bytes_per_layer(four)
    for layer in four.layers:
        if layer.mapping.get("weights") == "streamed":
            # Fewer weight bytes per image than one image alone streams.
            assert by_four[layer.index] < 4 * by_one[layer.index], layer.name
    assert batch.weight_bytes(four) < 2 * batch.weight_bytes(one)


def test_fully_connected_utilization_rises_with_the_batch():
    qnet, cfg = zoo_qnet("tinynet"), config.preset("tiny")
    utilization, per_image = [], []
    for images in (1, 2, 4):
        result = sim.run(compile(qnet, cfg, batch=images), None, compute_outputs=False)
        (fc,) = [layer for layer in result.layers if layer.name == "fc"]
        utilization.append(fc.utilization)
        per_image.append(result.total_cycles / images)
    assert utilization[0] < utilization[1] < utilization[2]
    assert utilization[2] > 3 * utilization[0]
    assert per_image[0] > per_image[1] > per_image[2]


def test_one_image_is_the_program_without_batching():
    qnet, cfg = zoo_qnet("tinynet"), config.preset("tiny")
    program = compile(qnet, cfg, batch=1)
    assert program.batch == 1 and program.image_stride == 0
    assert program.to_bytes() == compile(qnet, cfg).to_bytes()
    assert b'"batch"' not in program.to_bytes()  # program files as before batches
    with pytest.raises(ValueError, match="batch must be a positive integer, got 0"):
        compile(qnet, cfg, batch=0)


def test_a_batch_program_file_round_trips_and_checks_its_inputs():
    qnet, cfg = zoo_qnet("tinyconv"), config.preset("tiny")
    program = compile(qnet, cfg, batch=3)
    again = Program.from_bytes(program.to_bytes())
    assert (again.batch, again.image_stride) == (3, program.image_stride) and again.batch > 1
    assert again.to_bytes() == program.to_bytes()
    assert program.dram_bytes == program.constants.size + 3 * program.image_stride
    _, stacked = batch_inputs(qnet, 3)
    one_image = {name: x[:1] for name, x in stacked.items()}
    with pytest.raises(ValueError, match="batch 1 \\(the program runs a batch of 3\\)"):
        program.make_image(one_image)
    flat = {name: x[0] for name, x in stacked.items()}
    with pytest.raises(ValueError, match="expected \\(3, C, H, W\\)"):
        program.make_image(flat)
    outputs = program.read_outputs(program.make_image(stacked))
    assert all(value.shape[0] == 3 for value in outputs.values())


def test_the_program_cache_keys_on_the_batch(tmp_path):
    qnet, cfg = zoo_qnet("tinyconv"), config.preset("tiny")
    store = cache.ProgramCache(tmp_path / "programs")
    one = cache.compile_cached(qnet, cfg, cache=store)
    two = cache.compile_cached(qnet, cfg, batch=2, cache=store)
    assert not two.hit and two.path != one.path and two.path.name.endswith("-batch2.bin")
    again = cache.compile_cached(qnet, cfg, batch=2, cache=store)
    assert again.hit and again.program.batch == 2
    assert again.program.to_bytes() == compile(qnet, cfg, batch=2).to_bytes()
    assert cache.compile_cached(qnet, cfg, cache=store).program.batch == 1


def test_a_deployment_of_a_batch_runs_once_and_figures_come_from_that_run():
    qnet, cfg = zoo_qnet("tinynet"), config.preset("tiny")
    deployment = deploy.deploy(qnet, cfg, batch=3)
    assert deployment.batch == 3 and deployment.segments[0].program.batch == 3
    runs = batch.run(deployment, sim.run, images=3, seed=7)
    assert len(runs) == 1
    figures = batch.Batch.of(runs, cfg, images=3)
    assert figures.resident and figures.total_cycles == runs[0].total_cycles
    assert figures.cycles_per_image == runs[0].total_cycles / 3
    single = compile(qnet, cfg)
    assert figures.macs == sum(layer.macs for layer in single.layers) > 0
    assert 3 * figures.macs == runs[0].macs
    feeds, _ = batch_inputs(qnet, 3, seed=7)
    for i, feed in enumerate(feeds):
        golden = executor.trace_network(qnet, feed)
        for name, value in runs[0].outputs.items():
            np.testing.assert_array_equal(value[i].reshape(golden[name].shape), golden[name])
    with pytest.raises(ValueError, match="a deployment of a batch of 3 runs 2 images"):
        batch.run(deployment, sim.run, images=2)


def test_only_pixel_by_pixel_layers_run_the_images_as_pixels():
    """ResNet-18 at 32: layer4's maps are 1x1, but its 3x3 convolutions (padding 1) would
    read the neighbouring images as padding pixels if the images were pixels: they run
    image by image (or share weight chunks); the add, the pooling and the FC run on pixels."""
    qnet = zoo_qnet("resnet18", 32)
    program = compile(qnet, config.preset("edge"), batch=2)
    mode = {layer.name: layer.mapping["batch"] for layer in program.layers}
    net = qnet.network
    assert tuple(net.shape("layer4.1.conv2"))[1:] == (1, 1)
    for name in ("layer4.0.conv2", "layer4.1.conv1", "layer4.1.conv2"):
        assert mode[name] != "images as pixels", name
    for name in ("layer4.1.add", "avgpool", "fc"):
        assert mode[name] == "images as pixels", name


def test_a_prelu_pass_runs_every_image_of_a_batch_bit_exact():
    """PRelu (an identity depthwise pass with two-slope POSTs) over a batch of 3."""
    qnet = prelu_qnet(3, 20, (5, 4), after_conv=True)
    program = compile(qnet, config.preset("tiny"), keep_tensors=True, batch=3)
    feeds, stacked = batch_inputs(qnet, 3)
    result = sim.run(program, program.make_image(stacked))
    for i, feed in enumerate(feeds):
        golden = executor.trace_network(qnet, feed)
        for name, value in result.outputs.items():
            np.testing.assert_array_equal(value[i].reshape(golden[name].shape), golden[name])


def test_layout_ops_run_every_image_of_a_batch_bit_exact():
    """Upsample, a channel slice (a view and a copy), depth to space and space to depth:
    identity passes and views addressed in each image's activations."""
    net = g.Network("layout_batch")
    x = net.add("input", g.Input((8, 6, 6)))
    c = net.add("conv", g.Conv2d(8, 20, 3, padding=1), [x])
    up = net.add("up", g.Upsample((2, 2)), [c])
    view = net.add("view", g.ChannelSlice(4, 12), [up])
    d1 = net.add("conv2", g.Conv2d(8, 8, 1), [view])
    s2d = net.add("s2d", g.SpaceToDepth(2), [d1])
    net.add("d2s", g.DepthToSpace(2), [s2d])
    net.add("copy", g.ChannelSlice(0, 5), [c])  # an output: copied
    qnet = quantized(net, seed=5)
    program = compile(qnet, config.preset("tiny"), batch=3)
    feeds, stacked = batch_inputs(qnet, 3)
    result = sim.run(program, program.make_image(stacked))
    for i, feed in enumerate(feeds):
        golden = executor.run_network(qnet, feed)
        for name, value in result.outputs.items():
            np.testing.assert_array_equal(value[i].reshape(golden[name].shape), golden[name])
