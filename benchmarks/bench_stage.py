"""Staging a remote store to node-local disk, against plain fsspec `get` of the same files, in the same run.

A moto S3 server runs in its own process on loopback (so client and server do not share a GIL). One store is
uploaded twice: plain, and as zstd copies (`compress_store(..., keep_originals=False)`).

1. Throughput, `--rounds` rounds (the order inside a round alternates), each into a fresh local directory:
   - peer: `s3fs.get([every file of the store], dir)`: fsspec's own concurrent download, no verification;
   - ours: `shardstore.remote.stage.stage(url, RemoteOptions(cache_dir), workers=8)`: per-file flock, temp file, size + xxh3 check
     against the manifest, fsync, rename (and, for the zstd copy, streaming decompression).
   Prints MB/s (of the store's plain bytes) and two ours/peer throughput ratios: of the median times, and the
   median over rounds of each round's ratio (pairing cancels some drift of a shared machine); target >= 0.9.
2. First batch from a cold remote store: a torch DataLoader (`make_dataloader`, batch 8 x 2048 tokens) over the
   URL with an empty cache. Prints when the first batch arrived and how many shards had been requested from the
   server by then (counted by a proxy) vs the store's total: once with the loader's lookahead off (exactly what the
   batch needs), once as shipped (the loader also starts fetching the next batch's shards).

    python benchmarks/bench_stage.py --shards 32 --shard-mb 8 --rounds 3
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

import numpy as np

from shardstore.remote.cache import RemoteOptions
from shardstore.remote.stage import stage
from shardstore.store.compress import compress_store
from shardstore.store.manifest import Manifest, read_manifest, write_manifest
from shardstore.store.writer import ShardWriter

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_moto() -> tuple[subprocess.Popen[bytes], str]:
    port = _port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("moto server did not start")


def options(endpoint: str) -> dict[str, Any]:
    return {
        "key": "testing",
        "secret": "testing",
        "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"},
        "skip_instance_cache": True,
    }


def build(directory: str, *, shards: int, shard_mb: int, seed: int) -> None:
    """Zipf-distributed token ids (like BPE output: zstd compresses them), documents of ~1500 tokens."""
    rng = np.random.default_rng(seed)
    tokens_per_shard = (shard_mb << 20) // 2 - 8192
    with ShardWriter(directory, dtype="uint16", max_shard_bytes=shard_mb << 20) as writer:
        for _ in range(shards):
            chunk = np.minimum(rng.zipf(1.2, size=tokens_per_shard), 50_000).astype(np.uint16)
            cuts = np.sort(rng.integers(0, chunk.size, size=chunk.size // 1500))
            for doc in np.split(chunk, cuts):
                writer.add_document(doc)
    write_manifest(directory, Manifest(dtype="uint16", shards=tuple(writer.shards)))


def upload(fs: Any, local: str, remote: str) -> None:
    for name in sorted(os.listdir(local)):
        fs.put_file(os.path.join(local, name), f"{remote}/{name}")


def run_peer(endpoint: str, remote: str, out: str) -> float:
    """What a user would type: make the filesystem, list the store, get every file (timed as a whole, like ours)."""
    import s3fs

    start = time.perf_counter()
    fs = s3fs.S3FileSystem(**options(endpoint))
    fs.get(fs.ls(remote), out + "/")
    return time.perf_counter() - start


def run_ours(endpoint: str, url: str, cache: str, workers: int) -> float:
    start = time.perf_counter()
    report = stage(url, RemoteOptions(cache, options(endpoint)), workers=workers)
    seconds = time.perf_counter() - start
    if report.downloaded != report.files:
        raise SystemExit(f"stage downloaded {report.downloaded} of {report.files} files into a fresh cache")
    return seconds


def first_batch(endpoint: str, url: str, cache_root: str, total_shards: int) -> None:
    from s3proxy import S3Proxy

    from shardstore.loader.mixture import Mixture
    from shardstore.torch import make_dataloader

    with S3Proxy(endpoint) as proxy:
        os.environ.update(AWS_ENDPOINT_URL=proxy.endpoint, AWS_ACCESS_KEY_ID="testing")
        os.environ.update(AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
        for lookahead in (False, True):
            proxy.reset_counts()
            mixture = Mixture.from_dict(
                {"seq_len": 2048, "seed": 0, "sources": [{"name": "web", "store": url, "weight": 1.0}]}
            )
            start = time.perf_counter()
            loader = make_dataloader(
                mixture, batch_size=8, cache_dir=os.path.join(cache_root, str(lookahead))
            )
            loader.dataset.prefetch = lookahead
            batch = next(iter(loader))
            seconds = time.perf_counter() - start
            fetched = proxy.gets(".shard")
            what = (
                "with the next-batch lookahead started"
                if lookahead
                else "lookahead off: what the batch needs"
            )
            print(
                f"first batch {tuple(batch['input_ids'].shape)} from a cold cache in {seconds:.2f}s: "
                f"{fetched} of {total_shards} shards requested ({what})"
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shards", type=int, default=32)
    parser.add_argument("--shard-mb", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args()
    import s3fs

    root = tempfile.mkdtemp(prefix="bench_stage_")
    moto, endpoint = start_moto()
    try:
        plain, packed = os.path.join(root, "plain"), os.path.join(root, "zstd")
        build(plain, shards=args.shards, shard_mb=args.shard_mb, seed=0)
        shutil.copytree(plain, packed)
        compress_store(packed, keep_originals=False)
        total = sum(s.size for s in read_manifest(plain).shards)
        zsize = sum(
            os.path.getsize(os.path.join(packed, n)) for n in os.listdir(packed) if n.endswith(".zst")
        )
        fs = s3fs.S3FileSystem(**options(endpoint))
        import boto3

        boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        ).create_bucket(Bucket="bench")
        upload(fs, plain, "bench/plain")
        upload(fs, packed, "bench/zstd")
        print(f"store: {args.shards} shards, {total / 1e6:.0f} MB plain, {zsize / 1e6:.0f} MB as zstd copies")
        results: dict[str, list[float]] = {"peer fsspec get": [], "ours stage": [], "ours stage (zstd)": []}
        for r in range(args.rounds):
            work = os.path.join(root, f"round{r}")
            runs = {
                "peer fsspec get": lambda work=work: run_peer(
                    endpoint, "bench/plain", os.path.join(work, "get")
                ),
                "ours stage": lambda work=work: run_ours(
                    endpoint, "s3://bench/plain", os.path.join(work, "c1"), args.workers
                ),
                "ours stage (zstd)": lambda work=work: run_ours(
                    endpoint, "s3://bench/zstd", os.path.join(work, "c2"), args.workers
                ),
            }
            order = list(runs) if r % 2 == 0 else list(reversed(runs))  # no side always runs first
            for name in order:
                results[name].append(runs[name]())
            shutil.rmtree(work)
        peer = results["peer fsspec get"]
        for name, times in results.items():
            med = statistics.median(times)
            paired = statistics.median(p / t for p, t in zip(peer, times, strict=True))
            print(
                f"{name:20s} median {med:6.2f}s  {total / 1e6 / med:7.1f} MB/s  ours/peer: of medians "
                f"{statistics.median(peer) / med:4.2f}x, paired {paired:4.2f}x  (runs: {', '.join(f'{t:.2f}' for t in times)})"
            )
        first_batch(endpoint, "s3://bench/plain", os.path.join(root, "cold"), args.shards)
    finally:
        moto.kill()
        moto.wait()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
