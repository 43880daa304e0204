"""The MASKDIR a curation command writes: one mask per store (``<store fingerprint>.mask``) plus its report.

A folder holds the masks of one command: dedup and decontaminate masks of the same store would share a file name,
so writing one command's masks into the other's folder is refused, naming the fix (two folders, both listed in
the mixture source's ``exclude``). A re-run into the same folder replaces its masks: masks of stores the new run
did not cover are removed (a mixture reading the folder must not apply a stale run's decisions), but only in a
folder that this command's report marks as its own.
"""

from __future__ import annotations

import os

from shardstore.errors import ConfigError

__all__ = ["check_out_dir", "prune_stale_masks"]


def check_out_dir(out: str, other_report: str, other_cmd: str) -> None:
    """Raise `ConfigError` if `out` holds the report (so the masks) of `other_cmd`."""
    if os.path.exists(os.path.join(out, other_report)):
        raise ConfigError(
            f"{out} holds the masks of `shardstore {other_cmd}`; write into another folder and list both in the "
            'mixture source (exclude = ["dedup-masks", "decontam-masks"])'
        )


def prune_stale_masks(out: str, own_report: str, keep: set[str]) -> list[str]:
    """Remove the ``*.mask`` files of `out` not in `keep`, if `out` holds `own_report`; returns the removed names."""
    if not os.path.exists(os.path.join(out, own_report)):
        return []
    stale = sorted(n for n in os.listdir(out) if n.endswith(".mask") and n not in keep)
    for name in stale:
        os.unlink(os.path.join(out, name))
    return stale
