"""The build's mode options as enums, in a module that imports nothing heavy (the CLI builds its choices from them
at import time). `shardstore.preprocess.executors` and `shardstore.preprocess.inputs` re-export them."""

from __future__ import annotations

from enum import StrEnum

from shardstore.util.modes import Executor  # shared with dedup/decontaminate

__all__ = ["DEFAULT_MAX_SKIPPED_FRACTION", "Executor", "Utf8Policy"]

# A work unit (or a tokenizer input) whose records are skipped beyond this share fails (see `yieldcheck`).
DEFAULT_MAX_SKIPPED_FRACTION = 0.9


class Utf8Policy(StrEnum):
    """What to do with a document whose bytes are not valid UTF-8."""

    REPLACE = "replace"  # decode with U+FFFD for each bad sequence; counted as `invalid_utf8_replaced`
    SKIP = "skip"  # drop the document; counted as `invalid_utf8`
    FAIL = "fail"  # raise InputError naming file and byte offset: the work unit fails
