"""URL to filesystem: the one place that turns a path or fsspec URL into ``(filesystem, path inside it)``.

A missing backend (``s3://`` without s3fs) or an unusable URL raises one error type, `ConfigError`, whose message
names the URL and the package to install: the same failure reads the same whether it comes from an input file of
a build or from a remote store.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shardstore.errors import ConfigError

__all__ = ["is_url", "url_to_fs"]


def is_url(path: str) -> bool:
    """True for ``protocol://...`` (fsspec URLs), False for local paths."""
    return "://" in path


def url_to_fs(url: str, storage_options: Mapping[str, Any] | None = None) -> tuple[Any, str]:
    """(fsspec filesystem, path inside it) for `url`, with `storage_options` passed to the backend."""
    import fsspec.core

    try:
        fs, path = fsspec.core.url_to_fs(url, **dict(storage_options or {}))
    except ImportError as exc:
        raise ConfigError(
            f"{url}: the filesystem backend is not installed ({exc}); e.g. pip install s3fs (s3://) or gcsfs (gs://)"
        ) from exc
    except ValueError as exc:
        raise ConfigError(f"{url}: not a usable fsspec URL ({exc})") from exc
    return fs, str(path)
