"""Where a build may write: an empty or new directory, or a store (of this build: resume; the journal checks that);
and which inputs are the build's own output (inside `--out`), never read back as inputs.

Building into an unrelated, non-empty directory used to write the store next to the user's own files. Now any
other directory is refused with one line that names what it holds and `--force` (`force=True`), which builds
into it anyway (nothing that is there is deleted or overwritten, except files with a store's own names).
"""

from __future__ import annotations

import os

from shardstore.errors import ConfigError
from shardstore.preprocess.inputs import InputFile
from shardstore.preprocess.journal import JOURNAL_DIR
from shardstore.store.manifest import MANIFEST_NAME

__all__ = ["check_output_dir", "inside_output", "outside_output"]


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


def inside_output(url: str, out: str) -> bool:
    """Whether a local input path lies inside the store directory `out`."""
    return "://" not in url and os.path.realpath(url).startswith(os.path.realpath(out) + os.sep)


def outside_output(files: list[InputFile], out: str) -> list[InputFile]:
    """Drop inputs inside the store directory itself (`build data/ --out data/store` must not read its own
    provenance files back as inputs when it resumes)."""
    kept = [f for f in files if not inside_output(f.url, out)]
    if not kept:
        raise ConfigError(f"every input is inside the output directory {out!r}; nothing to build")
    return kept
