"""Where a remote store's cache lives on this node, and its manifest through the node-local index.

`store_key` names a store's cache directory (``<root>/<url hash>-<fingerprint>/``); `load_manifest` opens the
manifest through a ``manifest.idx`` an earlier process of this node wrote there, or parses the JSON. Split out of
`shardstore.remote.cache` (issue 15: no module over 500 lines).
"""

from __future__ import annotations

import hashlib
import os

from shardstore.remote.fetch import join_url
from shardstore.store.manifest import MANIFEST_NAME, Manifest, ShardInfo
from shardstore.store.manifest_index import open_index

__all__ = ["load_manifest", "store_key"]


def store_key(url: str, fingerprint: str) -> str:
    """The cache directory name of the store at `url` with `fingerprint` (url hash, then fingerprint prefix)."""
    return f"{hashlib.sha256(url.encode()).hexdigest()[:16]}-{fingerprint[:16]}"


def load_manifest(cache_root: str, url: str, manifest_bytes: bytes) -> tuple[Manifest, bool]:
    """(manifest of `manifest_bytes`, whether it came through a node-local `manifest.idx`).

    An earlier process of this node that opened `url` wrote the index beside its cache (`<root>/<key>/`, the key
    holding the url hash and the store fingerprint). An index is used only if it is the index of exactly these
    bytes (size and xxh3 of the manifest, and of its own body: `manifest_index.open_index`) and sits in the
    directory of its own fingerprint; otherwise the JSON is parsed and validated (~1 s and ~100 MB per process
    at 100,000 shards, issue 19).
    """
    source = join_url(url, MANIFEST_NAME)
    prefix = store_key(url, "")
    try:
        keys = sorted(e.name for e in os.scandir(cache_root) if e.name.startswith(prefix) and e.is_dir())
    except OSError:
        keys = []
    view = memoryview(manifest_bytes)
    for key in keys:
        found = open_index(os.path.join(cache_root, key), view, ShardInfo)
        if found is not None and key == store_key(url, str(found[0].get("fingerprint"))):
            return Manifest.from_index(found[0], found[1], source=source), True
    return Manifest.from_json_bytes(manifest_bytes, source=source), False
