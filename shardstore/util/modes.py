"""String modes as enums, and the one parser every option that takes a mode goes through.

Each mode option (``verify``, ``executor``, ``utf8_errors``, ``doc_info``, a schedule's ``ramp``, ...) is a `StrEnum`:
the public API accepts the enum member or its string value (``verify="full"`` and ``verify=VerifyMode.FULL`` are
the same), and `parse_mode` turns either into the member or raises one `ConfigError` that lists the choices. The CLI
builds its ``click.Choice`` from the same enums (`shardstore.cli.options.enum_choice`), so the two cannot drift.

`VerifyMode` lives here rather than in the store because the mixture configuration (pure, in ``shardstore.mix``)
validates it too, and may not import the store.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TypeVar

from shardstore.errors import ConfigError

__all__ = ["Executor", "VerifyMode", "mode_values", "parse_mode"]

M = TypeVar("M", bound=StrEnum)


class Executor(StrEnum):
    """Where the tasks of a job (`build`'s work units, `dedup`/`decontaminate`'s stages) run: a local process pool,
    or Ray tasks."""

    LOCAL = "local"
    RAY = "ray"


class VerifyMode(StrEnum):
    """How much a Store checks: each block on first read (default), everything at open, or nothing (benchmarks)."""

    TOUCH = "touch"
    FULL = "full"
    OFF = "off"


def mode_values(enum: type[StrEnum]) -> list[str]:
    """The string values of `enum`, in definition order (for messages and CLI choices)."""
    return [m.value for m in enum]


def parse_mode(enum: type[M], value: object, *, name: str) -> M:
    """`value` (a member of `enum` or its string value) as the member; ConfigError naming `name` and the choices."""
    if isinstance(value, enum):
        return value
    if isinstance(value, str):
        try:
            return enum(value)
        except ValueError:
            pass
    raise ConfigError(f"{name}={value!r} must be one of {mode_values(enum)}")
