"""A separate process of the remote-cache tests: `python remote_worker.py MODE URL CACHE OPTIONS_JSON [ARG]`.

MODE read: wait for the file `CACHE.go`, open the store, read every shard from THREADS threads (each in its own
rotated order, with prefetch hints), print the sha256 of all tokens. MODE shard: stage shard ARG and print its path;
MODE hold: the same, then keep it pinned until stdin is closed. MODE limited: read every shard forwards then
backwards through a cache of ARG bytes, one shard mapped at a time; print the sha256 of what was read.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import threading
import time

from shardstore.remote.cache import CacheConfig, RemoteOptions, open_remote
from shardstore.remote.fetch import RetryPolicy
from shardstore.store.store import Store


def main() -> None:
    mode, url, cache, options_json = sys.argv[1:5]
    options = json.loads(options_json)
    config = CacheConfig(retry=RetryPolicy(attempts=8, backoff_s=0.005, max_backoff_s=0.05))
    if mode in ("shard", "hold"):
        _, locator = open_remote(url, RemoteOptions(cache, options), config=config)
        print(locator.shard_path(int(sys.argv[5])), flush=True)
        if mode == "hold":  # keep the shard pinned (as a Store mapping it would) until stdin closes
            sys.stdin.read()
        return
    if mode == "limited":  # read every shard twice through a small cache, mapping one shard at a time
        limited = CacheConfig(cache_limit=int(sys.argv[5]), retry=config.retry, max_prefetch_pins=1)
        _, locator = open_remote(url, RemoteOptions(cache, options), config=limited)
        store = Store(locator.manifest, locator, root=url, max_open_shards=1)
        span = store.shard_token_offsets
        digest = hashlib.sha256()
        n = store.num_shards
        for i in [*range(n), *range(n - 1, -1, -1)]:
            store.prefetch([(i + 1) % n])
            digest.update(store.tokens(int(span[i]), int(span[i + 1])).tobytes())
        locator.close()
        print(digest.hexdigest(), flush=True)
        return
    threads = int(sys.argv[5])
    while not os.path.exists(cache + ".go"):
        time.sleep(0.005)
    _, locator = open_remote(url, RemoteOptions(cache, options), config=config)
    store = Store(locator.manifest, locator, root=url)
    n = store.num_shards
    errors: list[BaseException] = []

    def reader(k: int) -> None:
        try:
            order = [(k + i) % n for i in range(n)]
            store.prefetch(order[:3])
            for i in order:
                span = store.shard_token_offsets
                store.tokens(int(span[i]), int(span[i + 1]))
        except BaseException as exc:
            errors.append(exc)

    pool = [threading.Thread(target=reader, args=(k,)) for k in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    if errors:
        raise errors[0]
    print(
        hashlib.sha256(store.tokens(0, store.num_tokens).tobytes()).hexdigest(), locator.downloads, flush=True
    )


if __name__ == "__main__":
    main()
