"""A batch of images through one network: the per-batch and per-image figures.

The compiler builds a program for one image; a batch of ``N`` images is ``N`` runs of that
program (or of a deployment's segments and host steps), one image after the other. Weights
are **not** kept resident across the batch: every image loads every weight from DRAM again,
so the batch takes exactly ``N`` times one image's cycles (the schedule does not depend on
the data). Reusing the weights across a batch is future work (:data:`WEIGHTS_NOTE`).

:func:`run` runs the images, :class:`Batch` holds the figures; :func:`images` says how many
images a command runs (``--batch N``, or an ONNX model's static batch).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from accel import deploy, synthetic
from accel.backend import Result
from accel.config import AccelConfig
from accel.program import Program

__all__ = ["WEIGHTS_NOTE", "Batch", "images", "run"]

#: What a batch does not do yet, said wherever batch figures are shown.
WEIGHTS_NOTE = (
    "weights are not kept resident across the batch: each image runs the whole program and "
    "loads every weight again (weight reuse across a batch is future work)"
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
    ``compute=False`` is a cycles-only run: one image, no tensors (every image takes its
    cycles; :meth:`Batch.of` repeats them)."""
    qnet = deployment.qnet
    if not compute:
        return [deploy.run(deployment, None, backend)]
    return [
        deploy.run(deployment, synthetic.random_int8_inputs(qnet, seed + i), backend)
        for i in range(images)
    ]


@dataclass(frozen=True)
class Batch:
    """``cycles[i]``: accelerator cycles of image ``i`` (host time not counted);
    ``simulated``: whether every image was simulated (False: a cycles-only run simulated one
    image, and every image takes its cycles, as the schedule does not depend on the data);
    ``macs``: MACs of one image on the accelerator."""

    cycles: tuple[int, ...]
    macs: int
    config: AccelConfig
    simulated: bool = True

    def __post_init__(self) -> None:
        if not self.cycles:
            raise ValueError("a batch has at least one image")

    @classmethod
    def of(
        cls, cycles: Sequence[int], macs: int, config: AccelConfig, *, images: int | None = None
    ) -> Batch:
        """From the simulated images' ``cycles``; ``images`` > ``len(cycles)`` (a cycles-only
        run of one image) repeats the one image's cycles."""
        if images is not None and images != len(cycles):
            if len(cycles) != 1:
                raise ValueError(f"{len(cycles)} images simulated for a batch of {images}")
            return cls(tuple(cycles) * images, macs, config, simulated=False)
        return cls(tuple(cycles), macs, config)

    @property
    def images(self) -> int:
        return len(self.cycles)

    @property
    def total_cycles(self) -> int:
        return sum(self.cycles)

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

    def to_dict(self) -> dict:
        return {
            "images": self.images,
            "cycles_per_image": list(self.cycles),
            "total_cycles": self.total_cycles,
            "seconds": self.seconds,
            "images_per_second": self.images_per_second,
            "utilization": self.utilization,
            "every_image_simulated": self.simulated,
            "weights_resident": False,
            "note": WEIGHTS_NOTE,
        }

    def lines(self) -> list[str]:
        """The batch under a table: the batch's cycles and time, per-image figures, the note."""
        per_image = sorted(set(self.cycles))
        each = f"{per_image[0]:,}" if len(per_image) == 1 else "/".join(f"{c:,}" for c in per_image)
        how = "each simulated" if self.simulated else "one simulated, cycles-only"
        return [
            f"batch of {self.images} images ({how}): {self.total_cycles:,} cycles = "
            f"{1e3 * self.seconds:.3f} ms at {self.config.clock_text}, {each} cycles and "
            f"{1e3 * self.seconds / self.images:.3f} ms per image, "
            f"{self.images_per_second:.1f} images/s, MAC utilization "
            f"{100 * self.utilization:.1f}%",
            f"note: {WEIGHTS_NOTE}",
        ]
