"""A batch of images through one network: the per-batch and per-image figures.

A network the accelerator runs alone (no host steps) is compiled for the whole batch as
one program (:func:`accel.compiler.compile`'s ``batch``, :func:`accel.deploy.deploy`'s):
layer by layer over the images, with the weights kept resident across the batch where the
buffers allow (:data:`WEIGHTS_NOTE` says where). A network with host steps runs its
segments one image after the other, each image loading every weight again, so its batch
takes exactly ``N`` times one image's cycles (the schedule does not depend on the data).

:func:`run` runs the images, :class:`Batch` holds the figures; :func:`images` says how many
images a command runs (``--batch N``, or an ONNX model's static batch).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from accel import deploy, synthetic
from accel.backend import Result
from accel.config import AccelConfig
from accel.isa import Buffer, Engine, Load
from accel.program import Program

__all__ = ["IMAGE_BY_IMAGE_NOTE", "WEIGHTS_NOTE", "Batch", "images", "run", "weight_bytes"]

#: What a batch compiled as one program reuses, said wherever its figures are shown.
WEIGHTS_NOTE = (
    "one program for the whole batch, layer by layer: a layer whose weights fit the weight "
    "buffer loads them once for all the images; a layer on 1x1 maps (fully connected after "
    "global pooling) runs the images as the pixels of one tile, each weight tile loaded once "
    "per batch; a layer whose weights stream (too large for the buffer) loads each weight "
    "chunk once for a tile of every image where the input and accumulator buffers hold them "
    "and the cost model finds that faster, else again for every tile of every image (buffers "
    "too small: no reuse)"
)
#: What a batch run image by image (a network with host steps) does not reuse.
IMAGE_BY_IMAGE_NOTE = (
    "weights are not kept resident across the batch: the network has host steps, so each "
    "image runs every segment and loads every weight again"
)


def images(requested: int | None, static: int | None) -> int:
    """How many images to run: ``requested`` (``--batch``) or the model's ``static`` batch
    (an ONNX input's ``N``), else 1.

    Raises
    ------
    ValueError
        If ``requested`` is not a positive int, or differs from a static batch.
    """
    if requested is not None:
        if isinstance(requested, bool) or not isinstance(requested, int) or requested < 1:
            raise ValueError(f"--batch must be a positive integer, got {requested!r}")
        if static is not None and static != requested:
            raise ValueError(
                f"--batch {requested} differs from the model's static batch of {static} "
                f"images (N={static} in its input shapes)"
            )
        return requested
    return static or 1


def run(
    deployment: deploy.Deployment,
    backend: Callable[[Program, np.ndarray | None], Result],
    *,
    images: int = 1,
    seed: int = 0,
    compute: bool = True,
) -> list[deploy.DeploymentRun]:
    """Run ``images`` images through ``deployment`` (:func:`accel.deploy.run`), image ``i``
    on the random int8 inputs of ``seed + i`` (:func:`accel.synthetic.random_int8_inputs`).

    A deployment compiled for the batch (``deployment.batch == images``) runs once, every
    tensor with the batch first: one run is returned. Otherwise every image runs on its
    own, one run each; ``compute=False`` (cycles only) then runs one image, whose cycles
    every image takes (:meth:`Batch.of` repeats them)."""
    qnet = deployment.qnet
    if deployment.batch not in (1, images):
        raise ValueError(f"a deployment of a batch of {deployment.batch} runs {images} images")
    if deployment.batch > 1:
        if not compute:
            return [deploy.run(deployment, None, backend)]
        feeds = [synthetic.random_int8_inputs(qnet, seed + i) for i in range(images)]
        return [deploy.run(deployment, synthetic.stack_images(feeds), backend)]
    if not compute:
        return [deploy.run(deployment, None, backend)]
    return [
        deploy.run(deployment, synthetic.random_int8_inputs(qnet, seed + i), backend)
        for i in range(images)
    ]


def weight_bytes(program: Program) -> int:
    """DRAM bytes the program's weight loads read (the whole program: every image of its
    batch)."""
    return sum(
        instr.outer_count * instr.inner_count * instr.run_bytes
        for instr in program.streams[Engine.LOAD]
        if isinstance(instr, Load) and instr.buffer == Buffer.WEIGHT
    )


@dataclass(frozen=True)
class Batch:
    """``images`` images in ``total_cycles`` accelerator cycles (host time not counted): the
    throughput figures per image are the batch's divided among its images;
    ``macs``: MACs of one image on the accelerator; ``resident``: one program ran the whole
    batch (:data:`WEIGHTS_NOTE`), else every image ran on its own
    (:data:`IMAGE_BY_IMAGE_NOTE`); ``simulated``: every image was simulated (False: a
    cycles-only run of one image by image, whose cycles every image takes)."""

    images: int
    total_cycles: int
    macs: int
    config: AccelConfig
    resident: bool = False
    simulated: bool = True

    def __post_init__(self) -> None:
        if self.images < 1:
            raise ValueError("a batch has at least one image")

    @classmethod
    def of(
        cls,
        runs: list[deploy.DeploymentRun],
        config: AccelConfig,
        *,
        images: int,
    ) -> Batch:
        """From :func:`run`'s runs of a batch of ``images``."""
        first = runs[0]
        batched = first.deployment.batch
        if batched > 1:
            if len(runs) != 1 or batched != images:
                raise ValueError(f"{len(runs)} runs of a batch of {batched} for {images} images")
            return cls(images, first.total_cycles, first.macs // images, config, resident=True)
        if len(runs) == images:
            return cls(images, sum(r.total_cycles for r in runs), first.macs, config)
        if len(runs) != 1:
            raise ValueError(f"{len(runs)} images simulated for a batch of {images}")
        return cls(images, images * first.total_cycles, first.macs, config, simulated=False)

    @property
    def cycles_per_image(self) -> float:
        return self.total_cycles / self.images

    @property
    def seconds(self) -> float:
        return self.total_cycles / (self.config.clock_mhz * 1e6)

    @property
    def images_per_second(self) -> float:
        return self.images / self.seconds if self.total_cycles else 0.0

    @property
    def utilization(self) -> float:
        peak = self.config.array.pes * self.total_cycles
        return self.images * self.macs / peak if peak else 0.0

    @property
    def latency_seconds(self) -> float:
        """From a batch's start to an image's result: the whole batch for one program (its
        layers run over every image, so all finish together), one image's time image by
        image."""
        return self.seconds if self.resident else self.seconds / self.images

    @property
    def note(self) -> str:
        return WEIGHTS_NOTE if self.resident else IMAGE_BY_IMAGE_NOTE

    def to_dict(self) -> dict:
        return {
            "images": self.images,
            "total_cycles": self.total_cycles,
            "cycles_per_image": self.cycles_per_image,
            "seconds": self.seconds,
            "seconds_per_image": self.seconds / self.images,
            "latency_seconds": self.latency_seconds,
            "images_per_second": self.images_per_second,
            "utilization": self.utilization,
            "every_image_simulated": self.simulated,
            "weights_resident": self.resident,
            "note": self.note,
        }

    def lines(self) -> list[str]:
        """The batch under a table: the batch's cycles and time, per-image figures, the note."""
        if self.resident:
            how = "one program"
        else:
            how = "image by image" + ("" if self.simulated else ", one simulated, cycles-only")
        return [
            f"batch of {self.images} images ({how}): {self.total_cycles:,} cycles = "
            f"{1e3 * self.seconds:.3f} ms at {self.config.clock_text}, "
            f"{self.cycles_per_image:,.0f} cycles and "
            f"{1e3 * self.seconds / self.images:.3f} ms per image, "
            f"{self.images_per_second:.1f} images/s, latency {1e3 * self.latency_seconds:.3f} "
            f"ms, MAC utilization {100 * self.utilization:.1f}%",
            f"note: {self.note}",
        ]
