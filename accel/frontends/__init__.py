"""Ways networks come in: the model zoo, ONNX files and SCALE-Sim topology CSVs."""

from __future__ import annotations

from pathlib import Path


def load_model(spec: str, *, input_size: int | None = None, host: bool = True):
    """A zoo name, a path to an ``.onnx`` file or a path to a SCALE-Sim ``.csv`` topology.

    Returns a :class:`~accel.graph.Network` (float, or without weights) or, for quantised
    ONNX models, a :class:`~accel.quantized.QuantizedNetwork`. ONNX ops without an accelerator
    mapping become host ops, or errors with ``host=False``.

    The network describes one image; an ONNX model's static batch ``N`` is recorded
    (:func:`accel.frontends.onnx.batch_size`): ``accel simulate`` and ``accel verify`` run
    ``N`` images (:mod:`accel.batch`), the other commands describe one.
    """
    from accel import models

    path = Path(spec)
    suffix = path.suffix.lower()
    if suffix == ".bin":
        raise ValueError(
            f"{spec} is a compiled program: `accel simulate` and `accel verify` run one; "
            "this command needs a network (a zoo name, .onnx or .csv)"
        )
    if suffix in (".onnx", ".csv"):
        if not path.exists():
            raise FileNotFoundError(f"model file {spec!r} does not exist")
        if input_size is not None:
            raise ValueError(f"--input-size applies to zoo models, not to {spec!r}")
        if suffix == ".onnx":
            from accel.frontends import onnx

            return onnx.load(path, host=host)
        from accel.frontends import scalesim

        return scalesim.load_topology(path)
    if spec not in models.names():
        raise ValueError(
            f"unknown model {spec!r}: not a zoo name ({', '.join(models.names())}) "
            "nor an .onnx/.csv file"
        )
    return models.get(spec, input_size=input_size)
