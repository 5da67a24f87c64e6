"""Constructor argument checks shared by the components."""

from __future__ import annotations

from accel.config import AccelConfig


def check_config(config: object) -> AccelConfig:
    """``config`` if it is an :class:`~accel.config.AccelConfig`, else ``TypeError``."""
    if not isinstance(config, AccelConfig):
        raise TypeError(f"config must be an AccelConfig, not {config!r}")
    return config


def check_count(value: object, what: str, minimum: int) -> int:
    """``value`` if it is an int (not a bool) >= ``minimum``; else ``TypeError`` or
    ``ValueError`` naming ``what`` and the value."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, not {value!r}")
    if value < minimum:
        raise ValueError(f"{what} must be >= {minimum}, not {value}")
    return value
