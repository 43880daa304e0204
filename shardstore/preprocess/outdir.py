"""Where a build may write: an empty or new directory, or a store (of this build: resume; the journal checks that).

Building into an unrelated, non-empty directory used to write the store next to the user's own files. Now any
other directory is refused with one line that names what it holds and `--force` (`force=True`), which builds
into it anyway (nothing that is there is deleted or overwritten, except files with a store's own names).
"""

from __future__ import annotations

import os

from shardstore.errors import ConfigError
from shardstore.preprocess.journal import JOURNAL_DIR
from shardstore.store.manifest import MANIFEST_NAME

__all__ = ["check_output_dir"]


def check_output_dir(out: str, *, force: bool) -> None:
    """Raise `ConfigError` unless `out` is missing, empty, or already a store (or `force` is set)."""
    if force or not os.path.isdir(out):
        return
    with os.scandir(out) as it:
        names = sorted(entry.name for entry in it)
    if not names or JOURNAL_DIR in names or MANIFEST_NAME in names:
        return
    shown = ", ".join(names[:5]) + (f", ... ({len(names)} entries)" if len(names) > 5 else "")
    raise ConfigError(
        f"the output directory {out!r} is not empty and is not a shardstore store (it holds {shown}); pass a new "
        "or empty directory as --out, or --force (force=True) to build into it anyway"
    )
