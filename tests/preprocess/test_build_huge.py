"""A single 200 MB plain-text document builds in memory bounded by the piece size: the text is streamed in pieces,
each piece's ids go to the shard writer at once (`ShardWriter.begin/extend/end_document`), and the shard's whole-file
checksum is read back through a small buffer (not mapped), so peak RSS does not grow with the document's text or its
token count."""

from __future__ import annotations

import json
import random
import subprocess
import sys

import pytest
from test_build_support import text_of, train_tokenizer

_PROBE = """
import json, resource, sys
import shardstore
from shardstore.store.store import Store
report = shardstore.build([sys.argv[1]], tokenizer=sys.argv[2], out=sys.argv[3], workers=1, progress=False)
peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # before reading: mapped shard pages count too
s = Store.open(sys.argv[3])
print(json.dumps({"peak_mib": peak_kib / 1024, "docs": s.num_docs, "tokens": s.num_tokens,
                  "last": int(s.doc(0)[-1]), "eos": s.eos_id}))
"""


def _build_rss(inputs, tok, out) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, str(inputs), str(tok), str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_200mb_document_has_bounded_memory(tmp_path):
    tok = train_tokenizer(tmp_path / "tok.json")
    rng = random.Random(3)
    chunk = (text_of(rng, 170_000) + " ").encode()  # ~1 MB of words; safe cut points everywhere
    big = tmp_path / "big.txt"
    with open(big, "wb") as f:
        while f.tell() < 200 << 20:
            f.write(chunk)
    size_mib = big.stat().st_size / (1 << 20)
    small = tmp_path / "small.txt"
    small.write_bytes(chunk[:10_000])

    base = _build_rss(small, tok, tmp_path / "small")
    huge = _build_rss(big, tok, tmp_path / "big")
    assert huge["docs"] == 1 and huge["last"] == huge["eos"]
    growth = huge["peak_mib"] - base["peak_mib"]
    token_mib = huge["tokens"] * 2 / (1 << 20)
    # Holding the text would add ~size_mib, holding the ids ~token_mib; pieces (8 Mi chars), their ids and I/O
    # buffers stay under 64 MiB.
    assert growth < 64, f"peak RSS grew by {growth:.0f} MiB; the tokens alone are {token_mib:.0f} MiB"
    print(
        f"{size_mib:.0f} MiB document: peak RSS +{growth:.0f} MiB over a tiny build ({token_mib:.0f} MiB of tokens)"
    )
