"""What the input fingerprints (issue 17, case 4) cost a build: the xxh3 of every input byte, while reading.

    python benchmarks/bench_input_digest.py [--mb 32] [--rounds 3]

In one run, on one synthetic JSON Lines corpus: (a) a whole `shardstore.build` with 1 worker, whose report gives
the CPU seconds of its units (read, parse, encode, write, fsync); (b) reading the same files the way a unit does
(4 MiB `readinto` blocks) once plainly and once through `inputdigest.HashingReader`, in CPU seconds. The
fingerprint's cost is (b, hashed) - (b, plain), printed as a share of (a). Median of the rounds.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import statistics
import tempfile
import time
from pathlib import Path


def make_corpus(root: Path, mb: int) -> list[Path]:
    rng = random.Random(0)
    words = [
        "".join(rng.choice("etaoinshrdlucmfwypvbgkjqxz") for _ in range(rng.randint(2, 9)))
        for _ in range(5000)
    ]
    paths = []
    for i in range(4):
        path = root / f"part-{i}.jsonl"
        with open(path, "w") as f:
            size = 0
            while size < (mb << 20) // 4:
                line = json.dumps({"text": " ".join(rng.choices(words, k=rng.randint(50, 800)))}) + "\n"
                f.write(line)
                size += len(line)
        paths.append(path)
    return paths


def read_cpu(paths: list[Path], hashed: bool) -> float:
    from shardstore.preprocess.inputdigest import InputDigest
    from shardstore.preprocess.inputs import Compression, InputFile, InputFormat

    buf = bytearray(1 << 22)
    start = time.process_time()
    for p in paths:
        raw: io.BufferedIOBase = open(p, "rb", buffering=1 << 16)  # noqa: SIM115 - closed below
        digest = None
        if hashed:
            file = InputFile(str(p), p.stat().st_size, InputFormat.JSONL, Compression.NONE)
            digest = InputDigest(file)
            raw = digest.wrap(raw)  # type: ignore[assignment]
        with raw:
            while raw.readinto(buf):
                pass
        if digest is not None:
            digest.to_dict()
    return time.process_time() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    import shardstore
    import tokenizer

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "in").mkdir()
        paths = make_corpus(root / "in", args.mb)
        sample = [json.loads(line)["text"] for line in paths[0].read_text().splitlines()[:400]]
        tok = tokenizer.train(sample, vocab_size=2048, progress=False)
        tok.save(root / "tok.json")
        units, plain, hashed = [], [], []
        for r in range(args.rounds):
            report = shardstore.build(
                [str(root / "in")],
                tokenizer=root / "tok.json",
                out=root / f"st{r}",
                workers=1,
                progress=False,
            )
            units.append(report.cpu_seconds_run)
            plain.append(read_cpu(paths, hashed=False))
            hashed.append(read_cpu(paths, hashed=True))
        total = sum(p.stat().st_size for p in paths)
        cost = statistics.median(h - p for h, p in zip(hashed, plain, strict=True))
        build = statistics.median(units)
        print(f"corpus {total / 1e6:.1f} MB, {args.rounds} rounds (median)")
        print(f"build, units' CPU:            {build:.3f} s  ({total / 1e6 / build:.1f} MB per CPU-s)")
        print(f"read, plain:                  {statistics.median(plain):.4f} s")
        print(f"read, through HashingReader:  {statistics.median(hashed):.4f} s")
        print(
            f"fingerprint cost:             {cost:.4f} s = {100 * cost / build:.2f}% of the build's unit CPU"
        )


if __name__ == "__main__":
    main()
