"""Stage a whole remote store into the node-local cache ahead of training (`shardstore stage URL --cache DIR`).

Every shard and auxiliary file goes through the same locked, verified, atomic path as an on-demand read, with
`workers` downloads in flight at once, so staging on every node of a job at once is safe and a later
`Store.open(url, cache_dir=DIR)` finds everything local. Files already cached are not fetched again. Throughput
is measured over the bytes actually transferred (decompressed bytes for `.zst` copies).
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from shardstore.errors import CacheError, ConfigError
from shardstore.remote.cache import CacheConfig, open_remote
from shardstore.util.remote_options import RemoteOptions

__all__ = ["StageReport", "stage"]


@dataclass(frozen=True, slots=True)
class StageReport:
    """What `stage` did: files in the store, how many it downloaded, bytes moved, wall time."""

    url: str
    directory: str
    files: int
    downloaded: int
    bytes_total: int
    bytes_downloaded: int
    seconds: float

    @property
    def mb_per_s(self) -> float:
        return self.bytes_downloaded / 1e6 / self.seconds if self.seconds > 0 else 0.0


def stage(
    url: str,
    remote: RemoteOptions | None = None,
    *,
    workers: int = 8,
    progress: bool = False,
    config: CacheConfig | None = None,
) -> StageReport:
    """Download every file of the store at `url` into the cache (skipping those already there)."""
    if workers < 1:
        raise ConfigError(f"workers={workers} must be >= 1")
    _, locator = open_remote(url, remote, config=config)
    names = locator.names()
    total = sum(locator.size_of(name) for name in names)
    limit = locator.cache_limit
    if limit is not None and total > limit:
        raise CacheError(
            f"{url}: the store is {total} bytes but cache_limit is {limit}; staging it all would evict it again. "
            "Raise the limit, or skip staging and let the loader fetch shards as it reads them"
        )
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(
            total=total, unit="B", unit_scale=True, unit_divisor=1024, desc="stage", dynamic_ncols=True
        )
    lock = threading.Lock()
    moved = [0]
    start = time.perf_counter()

    def report(n: int) -> None:
        with lock:
            moved[0] += n
            if bar is not None:
                bar.update(n)
                seconds = time.perf_counter() - start
                if seconds > 0:
                    bar.set_postfix_str(f"{moved[0] / 1e6 / seconds:.1f} MB/s", refresh=False)

    def one(name: str) -> None:
        if locator.is_cached(name):  # nothing to move
            if bar is not None:
                with lock:
                    bar.update(locator.size_of(name))
            return
        locator.fetch(name, report=report)

    try:
        with ThreadPoolExecutor(workers, thread_name_prefix="shardstore-stage") as pool:
            for future in [pool.submit(one, name) for name in names]:
                future.result()
    finally:
        if bar is not None:
            bar.close()
        locator.close()
    seconds = time.perf_counter() - start
    return StageReport(
        url=locator.url,
        directory=locator.directory,
        files=len(names),
        downloaded=locator.downloads,
        bytes_total=total,
        bytes_downloaded=moved[0],
        seconds=seconds,
    )
