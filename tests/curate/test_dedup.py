"""`dedup`: exact and near duplicates within and across stores, the keep rule, reasons, report, determinism."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from shardstore.cli import main
from shardstore.curate.buckets import confirm_exact_bucket
from shardstore.curate.dedup import dedup
from shardstore.curate.minhash import MinHashParams
from shardstore.curate.synthetic import make_corpus
from shardstore.errors import BuildError, MismatchError
from shardstore.store.mask import find_masks, mask_file_name, read_mask
from shardstore.store.store import Store


def _texts(seed: int = 0) -> list[str]:
    c = make_corpus(families=12, copies=2, rates=(0.0, 0.02, 0.05), unrelated=60, seed=seed)
    return c.texts


def test_exact_and_near_duplicates_across_stores(make_store, tmp_path) -> None:
    texts = _texts()
    a = make_store("a", texts[:60], files=2)
    extra = [texts[3], texts[10] + " extra words at the end", "a lone short text"]
    b = make_store("b", extra + texts[60:])
    out = tmp_path / "masks"
    report = dedup([a, b], out=out, workers=1)
    sa, sb = Store.open(a), Store.open(b)
    ma = read_mask(out / mask_file_name(sa.fingerprint), store_fingerprint=sa.fingerprint)
    mb = read_mask(out / mask_file_name(sb.fingerprint), store_fingerprint=sb.fingerprint)
    # across stores, the first in store order is kept: store a's copy stays, b's goes
    assert mb.reason(0) == "exact duplicate of store a doc 3"
    near = mb.reason(1)
    assert near is not None and near.startswith("near duplicate of store a doc ")
    assert int(near.split()[-1]) <= 10  # doc 10 or an earlier member of its family
    assert mb.reason(2) is None
    # every exact reason names a document with equal tokens; the kept one is earlier in store order
    stores = {"a": sa, "b": sb}
    for store, mask, si in ((sa, ma, 0), (sb, mb, 1)):
        for doc, reason in zip(mask.excluded_ids().tolist(), mask.reasons_of_excluded(), strict=True):
            kind, _, _, _, name, _, kept = reason.split()
            kept_store = stores[name]
            assert (["a", "b"].index(name), int(kept)) < (si, doc)
            assert kept_store.doc(int(kept)).size > 0
            if kind == "exact":
                assert np.array_equal(kept_store.doc(int(kept)), store.doc(doc))
    d = report.to_dict()
    assert [s["store"] for s in d["stores"]] == ["a", "b"]
    for s, m, st in zip(d["stores"], (ma, mb), (sa, sb), strict=True):
        assert s["removed_docs"] == m.num_excluded and s["docs"] == st.num_docs
        assert s["removed_tokens"] == sum(st.doc(i).size for i in m.excluded_ids().tolist())
        assert sum(x["removed_docs"] for x in s["sources"]) == s["removed_docs"]
    assert len(d["stores"][0]["sources"]) == 2 and d["stores"][0]["sources"][0]["file"].endswith(
        "part-0.jsonl"
    )
    assert (
        sum(int(k) * v for k, v in d["clusters"]["sizes"].items())
        == report.removed_docs + d["clusters"]["count"]
    )
    ex = d["examples"][0]
    assert ex["removed"]["file"].endswith(".jsonl") and isinstance(ex["removed"]["record"], int)
    assert ex["removed"]["text"] and ex["kept"]["text"] and ex["jaccard"] >= 0.8
    saved = json.loads((out / "dedup-report.json").read_text())
    assert saved == json.loads(json.dumps(d))
    assert not (out / ".dedup-work").exists()


@pytest.mark.parametrize("confirm", ["exact", "estimate"])
def test_the_family_copies_are_found_and_unrelated_documents_kept(make_store, tmp_path, confirm) -> None:
    c = make_corpus(families=20, copies=2, rates=(0.0, 0.005, 0.01), unrelated=80, seed=3)
    a = make_store("a", c.texts)
    report = dedup([a], out=tmp_path / "m", workers=1, params=MinHashParams(confirm=confirm))
    assert report.to_dict()["params"]["confirm"] == confirm
    st = Store.open(a)
    mask = read_mask(tmp_path / "m" / mask_file_name(st.fingerprint))
    removed = set(mask.excluded_ids().tolist())
    assert all(c.family[i] >= 0 for i in removed), "an unrelated document was removed"
    families = [f for f in c.family if f >= 0]
    assert len(removed) >= 0.9 * (len(families) - 20)  # all but one document of each family


def test_output_is_byte_identical_for_any_workers_partitions_and_units(make_store, tmp_path) -> None:
    texts = _texts(1)
    a = make_store("a", texts[:70])
    b = make_store("b", texts[40:])
    runs = {
        "one": {"workers": 1},
        "two": {"workers": 2, "unit_docs": 7, "partitions": 5},
    }
    blobs = {}
    for name, kw in runs.items():
        report = dedup([a, b], out=tmp_path / name, **kw)  # type: ignore[arg-type]
        blobs[name] = {p: (tmp_path / name / p).read_bytes() for p in sorted(os.listdir(tmp_path / name))}
        if name == "two":
            assert report.partitions == 5 and report.units > 10
    strip = ("partitions", "units")
    one = {k: v for k, v in json.loads(blobs["one"].pop("dedup-report.json")).items() if k not in strip}
    two = {k: v for k, v in json.loads(blobs["two"].pop("dedup-report.json")).items() if k not in strip}
    assert one == two
    assert blobs["one"] == blobs["two"] and len(blobs["one"]) == 2


def test_exact_hash_collisions_are_confirmed_by_the_tokens() -> None:
    class FakeDocs:
        def __init__(self, docs: dict[int, np.ndarray]) -> None:
            self.docs = docs

        def tokens(self, gid: int) -> np.ndarray:
            return self.docs[gid]

    docs = {1: np.array([1, 2, 3]), 4: np.array([1, 2, 4]), 7: np.array([1, 2, 3]), 9: np.array([1, 2, 4])}
    edges: list[tuple[int, int, int]] = []
    stats = {"exact_hash_collisions": 0}
    confirm_exact_bucket([1, 4, 7, 9], FakeDocs(docs), edges, stats)  # type: ignore[arg-type]
    assert edges == [(1, 7, 0), (4, 9, 0)] and stats["exact_hash_collisions"] == 1


def test_degenerate_ngrams_are_skipped_and_counted(make_store, tmp_path) -> None:
    zeros = ["0 " * 200, "0 " * 180 + "1", "─" * 300]
    other = _texts(2)[:10]
    a = make_store("a", zeros + other)
    report = dedup([a], out=tmp_path / "m", workers=1)
    d = report.to_dict()
    assert d["ngrams"]["degenerate"] > 700  # nearly every 5-gram of the three runs
    st = Store.open(a)
    mask = read_mask(tmp_path / "m" / mask_file_name(st.fingerprint))
    assert not {0, 1, 2} & set(mask.excluded_ids().tolist()), (
        "runs of one token made documents near duplicates"
    )


def test_a_resume_with_other_options_is_refused(make_store, tmp_path) -> None:
    a = make_store("a", _texts()[:20])
    work = tmp_path / "work"
    dedup([a], out=tmp_path / "m", work_dir=work, workers=1)
    with pytest.raises(BuildError, match="other stores or options"):
        dedup([a], out=tmp_path / "m", work_dir=work, workers=1, params=MinHashParams(ngram=4))


def test_stores_of_other_tokenizers_are_refused(make_store, tmp_path) -> None:
    import sys

    sys.path.insert(0, os.path.dirname(os.path.dirname(__file__)))
    from storeutil import make_docs, write_store

    a = make_store("a", _texts()[:5])
    other = write_store(tmp_path / "other", make_docs(1, 10))
    with pytest.raises(MismatchError, match="different tokenizers"):
        dedup([a, other], out=tmp_path / "m")


def test_a_mask_for_another_store_is_refused(make_store, tmp_path) -> None:
    a = make_store("a", _texts()[:30])
    b = make_store("b", _texts()[30:60])
    dedup([a], out=tmp_path / "m", workers=1)
    sa, sb = Store.open(a), Store.open(b)
    os.rename(
        tmp_path / "m" / mask_file_name(sa.fingerprint), tmp_path / "m" / mask_file_name(sb.fingerprint)
    )
    with pytest.raises(MismatchError, match="not for store"):
        find_masks(tmp_path / "m", sb.fingerprint, sb.num_docs)


def test_cli_json_report_and_errors(make_store, tmp_path, capsys) -> None:
    a = make_store("a", _texts()[:40])
    rc = main(
        ["dedup", a, "--out", str(tmp_path / "m"), "--json", "--workers", "1", "--bands", "20", "--rows", "5"]
    )
    assert rc == 0
    d = json.loads(capsys.readouterr().out)
    assert d["params"]["bands"] == 20 and d["params"]["rows"] == 5
    s = d["stores"][0]
    assert {"store", "docs", "removed_docs", "removed_tokens"} <= set(s) and s["removed_docs"] > 0
    rc = main(["dedup", str(tmp_path / "nothing"), "--out", str(tmp_path / "m2")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1 and err[0].startswith("shardstore: ")
    rc = main(["dedup", a, "--out", str(tmp_path / "m3"), "--memory-limit", "lots"])
    assert rc == 1 and capsys.readouterr().err.startswith("shardstore: ")


def test_memory_limit_sets_partitions_and_units_and_signatures_spill(make_store, tmp_path) -> None:
    from shardstore.curate.dedup import plan_partitions, unit_docs_for

    p = MinHashParams()
    assert plan_partitions(10**5, p, 1 << 30) == 8 and plan_partitions(10**8, p, 1 << 30) == 179
    assert unit_docs_for(p, 1 << 20) == 259 and unit_docs_for(p, 1 << 34) == 8192
    c = make_corpus(families=60, copies=2, rates=(0.0, 0.01), unrelated=500, paragraphs=1, words=12, seed=5)
    a = make_store("a", c.texts)
    work = tmp_path / "work"
    est = MinHashParams(confirm="estimate")
    small = dedup([a], out=tmp_path / "small", workers=1, memory_limit=1 << 20, work_dir=work, params=est)
    assert small.partitions == 8 and small.units >= 3  # 8: the floor; plan_partitions above shows the bound
    for suffix in (
        ".sig.npy",
        ".rec.npy",
    ):  # signatures and LSH records went to disk, read back memory-mapped
        assert len([n for n in os.listdir(work) if n.endswith(suffix)]) == small.units
    big = dedup([a], out=tmp_path / "big", workers=1, params=est)
    assert big.partitions == 8 and big.units == 1
    st = Store.open(a)
    name = mask_file_name(st.fingerprint)
    assert (tmp_path / "small" / name).read_bytes() == (tmp_path / "big" / name).read_bytes()


def test_a_rerun_into_the_same_maskdir_removes_masks_of_stores_it_no_longer_covers(
    make_store, tmp_path
) -> None:
    a = make_store("a", _texts()[:30])
    b = make_store("b", _texts()[30:60])
    out = tmp_path / "m"
    dedup([a, b], out=out, workers=1)
    sa, sb = Store.open(a), Store.open(b)
    (out / "notes.txt").write_text("mine")
    again = dedup([a], out=out, workers=1)
    assert again.stale_masks_removed == [mask_file_name(sb.fingerprint)]
    assert sorted(os.listdir(out)) == sorted(
        [mask_file_name(sa.fingerprint), "dedup-report.json", "notes.txt"]
    )
