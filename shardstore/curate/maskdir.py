"""The MASKDIR a curation command writes: one mask per store (``<store fingerprint>.mask``) plus its report.

A folder holds the masks of one command: dedup and decontaminate masks of the same store would share a file name,
so writing one command's masks into the other's folder is refused, naming the fix (two folders, both listed in
the mixture source's ``exclude``).
"""

from __future__ import annotations

import os

from shardstore.errors import ConfigError

__all__ = ["check_out_dir"]


def check_out_dir(out: str, other_report: str, other_cmd: str) -> None:
    """Raise `ConfigError` if `out` holds the report (so the masks) of `other_cmd`."""
    if os.path.exists(os.path.join(out, other_report)):
        raise ConfigError(
            f"{out} holds the masks of `shardstore {other_cmd}`; write into another folder and list both in the "
            'mixture source (exclude = ["dedup-masks", "decontam-masks"])'
        )
