"""`decontaminate`: planted eval items found (paraphrases within the n-gram rule too), a clean control set finds
nothing, the traps (box tables, zero runs, a shared licence header) flag nothing, bad eval input is counted."""

from __future__ import annotations

import json
import random

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shardstore.cli import main
from shardstore.curate.decontam import DecontamParams, decontaminate
from shardstore.curate.synthetic import BOX_TABLE, LICENCE, ZEROS, vocabulary
from shardstore.errors import ConfigError
from shardstore.store.mask import mask_file_name, read_mask
from shardstore.store.store import Store

WORDS = vocabulary(4000, seed=9)


def _sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choices(WORDS, k=n))


def _write_jsonl(path, rows) -> str:
    with open(path, "w") as f:
        for r in rows:
            f.write((r if isinstance(r, str) else json.dumps(r)) + "\n")
    return str(path)


@pytest.fixture
def planted(make_store, tmp_path):
    """A store with planted eval items, a paraphrase, and traps; eval sets: bench (planted), clean, traps."""
    rng = random.Random(1)
    items = [_sentence(rng, 30) for _ in range(6)]
    clean = [_sentence(rng, 30) for _ in range(6)]
    docs = [_sentence(rng, 150) for _ in range(200)]
    docs[5] = docs[5] + " " + items[0] + " " + _sentence(rng, 20)  # inside a document
    docs[17] = items[1]  # a whole document
    words = items[2].split()
    for k in (3, 12, 21):  # a paraphrase: three words changed, 13-grams survive in between
        words[k] = "zzqx"
    docs[40] = _sentence(rng, 10) + " " + " ".join(words)
    docs[90] = docs[90] + " " + items[0]  # item 0 twice
    for i in range(100, 160):  # the shared licence header: 60 of 200 documents (30% > the boilerplate rule)
        docs[i] = LICENCE + "\n\n" + docs[i]
    docs[160] = docs[160] + "\n" + BOX_TABLE + "\n" + ZEROS
    store = make_store("train", docs)
    bench = _write_jsonl(tmp_path / "bench.jsonl", [{"text": t} for t in items])
    control = _write_jsonl(tmp_path / "clean.jsonl", [{"text": t} for t in clean])
    traps = _write_jsonl(
        tmp_path / "traps.jsonl",
        [{"text": LICENCE}, {"text": BOX_TABLE}, {"text": ZEROS}, {"text": "short one"}],
    )
    return store, bench, control, traps


def test_planted_items_are_found_and_a_clean_set_is_not(planted, tmp_path) -> None:
    store, bench, control, traps = planted
    out = tmp_path / "m"
    report = decontaminate([store], evals=[bench, control, traps], out=out, workers=1)
    ev = {e["eval"]: e for e in report["evals"]}
    assert ev["bench"]["items"] == 6 and ev["bench"]["contaminated_items"] == 3
    assert ev["clean"]["contaminated_items"] == 0
    assert ev["traps"]["contaminated_items"] == 0, [i for i in report["items"] if i["eval"] == "traps"]
    found = {(i["eval"], i["item"]): [d["doc"] for d in i["docs"]] for i in report["items"]}
    assert found == {("bench", 0): [5, 90], ("bench", 1): [17], ("bench", 2): [40]}
    doc = report["items"][0]["docs"][0]
    assert doc["file"].endswith("part-0.jsonl") and doc["record"] == 5 and doc["overlap"] >= 18
    st = Store.open(store)
    mask = read_mask(out / mask_file_name(st.fingerprint), store_fingerprint=st.fingerprint)
    assert mask.excluded_ids().tolist() == [5, 17, 40, 90]
    assert mask.reason(17) == "contains 13-grams of eval bench item 1"
    s = report["stores"][0]
    assert s["removed_docs"] == 4 and s["removed_tokens"] == sum(st.doc(d).size for d in (5, 17, 40, 90))
    lines = [json.loads(x) for x in (out / "contaminated-items.jsonl").read_text().splitlines()]
    assert [(x["eval"], x["item"], x["num_docs"]) for x in lines] == [
        ("bench", 0, 2),
        ("bench", 1, 1),
        ("bench", 2, 1),
    ]
    # the traps: the licence header is boilerplate (in 30% of documents), tables and zero runs are degenerate
    assert ev["traps"]["boilerplate_ngrams"] > 0 and ev["traps"]["degenerate_ngrams"] > 0
    assert ev["traps"]["skipped"] == {"too_short": 1} or ev["traps"]["skipped"].get("too_short") == 1
    assert report["boilerplate"]["ngrams"] > 0


def test_without_the_rules_the_traps_would_flag_documents(planted, tmp_path) -> None:
    store, _, _, traps = planted
    loose = DecontamParams(min_distinct=0, min_alnum=0, boilerplate_fraction=1.0, boilerplate_min_docs=10**6)
    report = decontaminate([store], evals=[traps], out=tmp_path / "m", params=loose, workers=1)
    assert report["stores"][0]["removed_docs"] >= 60  # the rules are what keeps these documents


def test_min_overlap_and_n_are_configurable(planted, tmp_path) -> None:
    store, bench, _, _ = planted
    loose = decontaminate([store], evals=[bench], out=tmp_path / "l", workers=1)
    overlap = {i["item"]: max(d["overlap"] for d in i["docs"]) for i in loose["items"]}
    assert 0 < overlap[2] < min(overlap[0], overlap[1])  # the paraphrase shares fewer 13-grams
    params = DecontamParams(min_overlap=overlap[2] + 1)
    strict = decontaminate([store], evals=[bench], out=tmp_path / "a", params=params, workers=1)
    assert {i["item"] for i in strict["items"]} == {0, 1}
    short = decontaminate([store], evals=[bench], out=tmp_path / "b", params=DecontamParams(ngram=8))
    assert short["params"]["ngram"] == 8 and {i["item"] for i in short["items"]} >= {0, 1, 2}


def test_bad_eval_input_is_counted_never_fatal(make_store, tmp_path) -> None:
    rng = random.Random(2)
    item = _sentence(rng, 30)
    store = make_store("s", [_sentence(rng, 100) + " " + item, _sentence(rng, 100)])
    ev = _write_jsonl(
        tmp_path / "bad.jsonl",
        [
            "{not json",
            {"question": "no text field"},
            {"text": "   "},
            {"text": "too short"},
            {"text": item},
            [1, 2],
        ],
    )
    r = decontaminate([store], evals=[ev], out=tmp_path / "m", workers=1)
    e = r["evals"][0]
    assert e["items"] == 6 and e["usable_items"] == 1 and e["contaminated_items"] == 1
    assert e["skipped"] == {"bad_record": 2, "empty": 1, "missing_field": 1, "too_short": 1}


def test_parquet_eval_with_question_choices_answer_fields(make_store, tmp_path) -> None:
    rng = random.Random(3)
    q, choice = _sentence(rng, 25), _sentence(rng, 20)
    store = make_store("s", [_sentence(rng, 80) + " " + choice, _sentence(rng, 80)])
    table = pa.table(
        {"question": [q, _sentence(rng, 25)], "choices": [["a b", choice], ["c", "d"]], "answer": [1, 0]}
    )
    pq.write_table(table, tmp_path / "mc.parquet")
    fields = ("question", "choices", "answer")
    r = decontaminate([store], evals=[tmp_path / "mc.parquet"], out=tmp_path / "m", fields=fields, workers=1)
    assert r["evals"][0]["contaminated_items"] == 1 and r["items"][0]["item"] == 0
    r2 = decontaminate([store], evals=[tmp_path / "mc.parquet"], out=tmp_path / "m2", workers=1)
    assert r2["evals"][0]["skipped"] == {"missing_field": 2}  # default field `text` is absent


def test_output_does_not_depend_on_workers(planted, tmp_path) -> None:
    store, bench, control, traps = planted
    one = decontaminate([store], evals=[bench, control, traps], out=tmp_path / "one", workers=1, unit_docs=17)
    two = decontaminate([store], evals=[bench, control, traps], out=tmp_path / "two", workers=2, unit_docs=50)
    assert one == two
    for name in ("contaminated-items.jsonl", "decontaminate-report.json"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()


def test_cli_json_contract_and_errors(planted, tmp_path, capsys) -> None:
    store, bench, control, _ = planted
    out = str(tmp_path / "m")
    rc = main(
        ["decontaminate", store, "--eval", bench, "--eval", control, "--out", out, "--json", "--workers", "1"]
    )
    assert rc == 0
    d = json.loads(capsys.readouterr().out)
    assert {"store", "docs", "removed_docs", "removed_tokens"} <= set(d["stores"][0])
    assert [(e["eval"], e["items"], e["contaminated_items"]) for e in d["evals"]] == [
        ("bench", 6, 3),
        ("clean", 6, 0),
    ]
    rc = main(["decontaminate", store, "--eval", str(tmp_path / "nope.csv"), "--out", out])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1 and "jsonl or .parquet" in err[0]
    rc = main(["dedup", store, "--out", out])  # one MASKDIR per command
    assert rc == 1 and "another folder" in capsys.readouterr().err
    with pytest.raises(ConfigError):
        DecontamParams(min_overlap=0)
