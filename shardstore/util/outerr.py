"""Out of disk, quota, read-only or file-size limit while *writing*: one clear line that names the output path.

These errno values mean the destination cannot take the bytes, whatever the input: ENOSPC (disk full), EDQUOT
(quota), EROFS (read-only file system) and EFBIG (file too large, also what `RLIMIT_FSIZE` gives: Python ignores
SIGXFSZ, so the write fails with EFBIG instead of killing the process). Retrying cannot help, and the message has
to send the operator to the output (or cache) folder, not to the input file being read at the time.
"""

from __future__ import annotations

import errno
import os
import re

__all__ = ["OUTPUT_ERRNOS", "describe_output_error", "is_output_error"]

OUTPUT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG})
_WHY = {
    errno.ENOSPC: "no space left on device (ENOSPC)",
    errno.EDQUOT: "disk quota exceeded (EDQUOT)",
    errno.EROFS: "read-only file system (EROFS)",
    errno.EFBIG: "file too large for this file system or process limit (EFBIG)",
}
_TEMP = re.compile(r"\.tmp\.[^/]*$")


def is_output_error(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in OUTPUT_ERRNOS


def describe_output_error(exc: OSError, where: str) -> str:
    """One line: which file (its final name, not the temp name) or folder could not be written, and why."""
    path = os.fspath(exc.filename) if exc.filename is not None else where
    path = _TEMP.sub("", str(path))
    why = _WHY.get(exc.errno or 0, exc.strerror or str(exc))
    return f"cannot write {path}: {why}; free space (or quota) on that file system or use another folder"
