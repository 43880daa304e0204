"""Both commands feed `mix plan`: a mixture source with ``exclude = ["dedup-masks", "decontam-masks"]`` (the
MASKDIRs) leaves out exactly the union of the documents the two masks name, and the plan shows those tokens."""

from __future__ import annotations

import json
import random

from shardstore.cli import main
from shardstore.curate.decontam import decontaminate
from shardstore.curate.dedup import dedup
from shardstore.curate.synthetic import make_corpus, vocabulary
from shardstore.store.mask import mask_file_name, read_mask
from shardstore.store.store import Store


def test_dedup_and_decontaminate_masks_feed_mix_plan(make_store, tmp_path, capsys) -> None:
    c = make_corpus(families=10, copies=2, rates=(0.0, 0.01), unrelated=40, seed=6)
    rng = random.Random(6)
    words = vocabulary(2000, seed=4)
    items = [" ".join(rng.choices(words, k=30)) for _ in range(3)]
    texts = list(c.texts)
    texts[2] += " " + items[0]
    texts[9] = items[1]
    store = make_store("web", texts)
    other = make_store("books", make_corpus(families=0, copies=0, rates=(0.0,), unrelated=20, seed=8).texts)
    with open(tmp_path / "bench.jsonl", "w") as f:
        f.writelines(json.dumps({"text": t}) + "\n" for t in items)
    dd = dedup([store, other], out=tmp_path / "dedup-masks", workers=1)
    dc = decontaminate([store], evals=[tmp_path / "bench.jsonl"], out=tmp_path / "decontam-masks", workers=1)
    assert dd.stores[0]["removed_docs"] > 0 and dc["stores"][0]["removed_docs"] == 2
    (tmp_path / "mix.toml").write_text(
        """
seq_len = 64
seed = 1

[[sources]]
name = "web"
store = "web"
weight = 3
exclude = ["dedup-masks", "decontam-masks"]

[[sources]]
name = "books"
store = "books"
weight = 1
exclude = ["dedup-masks"]
"""
    )
    assert main(["mix", "plan", str(tmp_path / "mix.toml"), "--tokens", "20000", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    st = Store.open(store)
    name = mask_file_name(st.fingerprint)
    removed = set(read_mask(tmp_path / "dedup-masks" / name).excluded_ids().tolist())
    removed |= set(read_mask(tmp_path / "decontam-masks" / name).excluded_ids().tolist())
    web = plan["sources"][0]
    assert web["excluded_tokens"] == sum(st.doc(d).size for d in removed)
    assert plan["sources"][1]["excluded_tokens"] == dd.stores[1]["removed_tokens"]
