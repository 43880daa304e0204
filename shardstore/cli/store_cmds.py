"""CLI commands of this area; `register` adds them to the root group."""

from __future__ import annotations

import click


def register(root: click.Group) -> None:
    """Add this area's commands to the root `shardstore` group."""
