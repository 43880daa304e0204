"""The boilerplate rule of `dedup`: n-grams in more than max(min_docs, fraction x documents) documents are left out
of signatures and Jaccard sets, and counted, so documents that are mostly one shared licence header are kept while
true near duplicates are still found; the output stays byte-identical across workers, units and partitions."""

from __future__ import annotations

import json
import os
import random

import numpy as np
import pytest
from curate_reference import fmix32
from curate_reference import signature as ref_signature

from shardstore.curate.boiler import boiler_signatures, doc_ngrams
from shardstore.curate.dedup import dedup
from shardstore.curate.minhash import MinHashParams, signatures
from shardstore.curate.synthetic import LICENCE, make_corpus, vocabulary
from shardstore.errors import ConfigError
from shardstore.store.mask import mask_file_name, read_mask
from shardstore.store.store import Store


def _trap_corpus() -> tuple[list[str], list[int]]:
    """160 short documents = the licence header + 12 distinct words, and 8 families of true near duplicates
    (original + a copy with one word changed); returns the texts and the family of each (-1: licence doc)."""
    rng = random.Random(11)
    words = vocabulary(3000, seed=9)
    texts, family = [], []
    for _ in range(160):
        texts.append(LICENCE + "\n" + " ".join(rng.choices(words, k=12)))
        family.append(-1)
    c = make_corpus(families=8, copies=1, rates=(0.0,), unrelated=0, seed=2)
    for f in range(8):
        body = next(t for t, ff in zip(c.texts, c.family, strict=True) if ff == f).split(" ")
        edited = list(body)
        edited[len(edited) // 2] = "zzqx"
        for t in (body, edited):
            texts.append(" ".join(t))
            family.append(f)
    order = list(range(len(texts)))
    rng.shuffle(order)
    return [texts[i] for i in order], [family[i] for i in order]


def _removed(out, store_path) -> set[int]:
    st = Store.open(store_path)
    return set(read_mask(out / mask_file_name(st.fingerprint)).excluded_ids().tolist())


def test_licence_header_documents_are_kept_and_true_near_duplicates_found(make_store, tmp_path) -> None:
    texts, family = _trap_corpus()
    a = make_store("a", texts)
    off = dedup([a], out=tmp_path / "off", workers=1, params=MinHashParams(boilerplate_fraction=1.0))
    trapped = [i for i in _removed(tmp_path / "off", a) if family[i] == -1]
    assert len(trapped) >= 50, "without the rule the licence documents must look like near duplicates"
    assert off.to_dict()["ngrams"]["boilerplate"] == 0
    report = dedup([a], out=tmp_path / "on", workers=1)
    removed = _removed(tmp_path / "on", a)
    assert all(family[i] >= 0 for i in removed), "a licence-header document was removed"
    assert len(removed) == 8 and {family[i] for i in removed} == set(range(8))
    ng = report.to_dict()["ngrams"]
    assert ng["boilerplate_distinct"] > 0 and ng["boilerplate"] >= 160 * ng["boilerplate_distinct"] // 2
    assert report.to_dict()["params"]["boilerplate_min_docs"] == 100


def test_boilerplate_output_is_byte_identical_for_any_workers_units_and_partitions(
    make_store, tmp_path
) -> None:
    texts, _ = _trap_corpus()
    a = make_store("a", texts)
    blobs = {}
    for name, kw in {"one": {"workers": 1}, "two": {"workers": 2, "unit_docs": 9, "partitions": 5}}.items():
        dedup([a], out=tmp_path / name, **kw)  # type: ignore[arg-type]
        files = {p: (tmp_path / name / p).read_bytes() for p in sorted(os.listdir(tmp_path / name))}
        rep = json.loads(files.pop("dedup-report.json"))
        blobs[name] = (files, {k: v for k, v in rep.items() if k not in ("partitions", "units")})
    assert blobs["one"] == blobs["two"]


def test_the_numpy_signature_without_boilerplate_equals_the_reference() -> None:
    params = MinHashParams(ngram=3)
    rng = np.random.default_rng(3)
    docs = [rng.integers(0, 500, size=k).astype(np.uint32) for k in (40, 2, 60, 25)]
    tokens = np.concatenate(docs)
    offs = np.concatenate([[0], np.cumsum([d.size for d in docs])]).astype(np.uint64)
    _, info = signatures(tokens, offs, params)
    doc, h = doc_ngrams(tokens, offs, params)
    boiler = np.unique(h[doc == 0][:10])  # a few n-grams of document 0 (and wherever else they occur)
    sig2, info2, dropped = boiler_signatures(tokens, offs, boiler, params)
    assert dropped >= 10
    seeds = params.permutations()
    for d, toks in enumerate(docs):
        want_sig, used, _ = ref_signature(toks.tolist(), 3, params.distinct, seeds)
        hs = h[doc == d]
        if np.isin(hs, boiler).any() and not np.isin(hs, boiler).all():
            keep = {int(x) for x in hs if x not in set(boiler.tolist())}
            want = [min(ref_fold(x, s) for x in keep) for s in seeds.tolist()]
            assert sig2[d].tolist() == want and info2[d, 1] == np.count_nonzero(~np.isin(hs, boiler))
        else:
            assert sig2[d].tolist() == want_sig and info2[d, 1] == used == info[d, 1]


def ref_fold(h: int, s: int) -> int:
    return fmix32(((h & 0xFFFFFFFF) ^ (h >> 32)) ^ s)


@pytest.mark.parametrize("kw", [{"boilerplate_fraction": 0.0}, {"boilerplate_fraction": 1.5},
                                {"boilerplate_min_docs": 0}])  # fmt: skip
def test_bad_boilerplate_options_are_refused(kw) -> None:
    with pytest.raises(ConfigError):
        MinHashParams(**kw)
