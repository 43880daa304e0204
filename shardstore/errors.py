"""One exception hierarchy for everything shardstore raises on purpose.

Every message says what was received, which rule it broke and how to fix it, and names the file (and offset)
when there is one. Callers catch `ShardStoreError` to handle any of them; the CLI turns one into a single line
and a non-zero exit code.
"""

from __future__ import annotations

__all__ = [
    "BuildError",
    "BuildInterrupted",
    "CacheError",
    "ChecksumError",
    "ConfigError",
    "FormatError",
    "InputError",
    "InvalidUtf8Error",
    "LoaderRebuiltError",
    "ManifestError",
    "MaskError",
    "MismatchError",
    "RemoteError",
    "ShardStoreError",
    "StateError",
]


class ShardStoreError(Exception):
    """Base class of every error shardstore raises deliberately."""


class ConfigError(ShardStoreError, ValueError):
    """An option, config file or argument is invalid."""


class FormatError(ShardStoreError):
    """A file is not in the expected on-disk format (bad magic, version, truncated, impossible header)."""


class ChecksumError(FormatError):
    """Bytes on disk do not match their recorded checksum."""


class ManifestError(FormatError):
    """A store manifest is missing, malformed, or hostile (path traversal, absurd counts, wrong types)."""


class MaskError(FormatError):
    """A document mask file is malformed, truncated, corrupt or hostile (ids outside its store, unsorted ids)."""


class MismatchError(ShardStoreError):
    """Things that must agree do not: stores of different tokenizers, a resume state against other data."""


class StateError(MismatchError):
    """A loader state dict cannot be applied to this loader."""


class InputError(ShardStoreError):
    """An input file cannot be read (missing, truncated compressed stream, unsupported format)."""


class InvalidUtf8Error(InputError):
    """Bytes that must be UTF-8 are not: `index` of the text in its batch, `offset` of the first bad byte in it.

    Raised by the native encoder itself (``tokenizer/_native/encoder.cc``), so callers test the type, never the text.
    """

    def __init__(self, message: str, index: int | None = None, offset: int | None = None) -> None:
        super().__init__(message)
        self.index = index
        self.offset = offset

    def __reduce__(
        self,
    ) -> tuple[type, tuple[str, int | None, int | None]]:  # keeps the fields across processes
        return type(self), (str(self), self.index, self.offset)


class BuildError(ShardStoreError):
    """A build could not complete (some work units failed, inconsistent journal, options changed on resume)."""


class BuildInterrupted(KeyboardInterrupt):
    """A build stopped by ^C (SIGINT); the message says how many work units are committed and how to resume.

    A `KeyboardInterrupt` (not a `ShardStoreError`), so that handlers of errors never swallow an interrupt."""


class RemoteError(ShardStoreError):
    """Remote storage failed after bounded retries."""


class CacheError(ShardStoreError):
    """The node-local cache cannot hold or produce a file."""


class LoaderRebuiltError(ConfigError, TypeError):
    """A `DataLoader` was rebuilt around the shardstore dataset (accelerate's ``prepare`` or ``skip_first_batches``,
    a framework's sampler injection): it would read other batches than the loader's. A `TypeError` as well, so code
    that probes ``len()`` for a length (``has_length``) moves on, and the error comes when batches are read."""
