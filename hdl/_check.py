"""Constructor argument checks shared by the components."""

from __future__ import annotations

from accel.config import AccelConfig


def check_config(config: object) -> AccelConfig:
    """``config`` if it is an :class:`~accel.config.AccelConfig`, else ``TypeError``."""
    if not isinstance(config, AccelConfig):
        raise TypeError(f"config must be an AccelConfig, not {config!r}")
    return config
