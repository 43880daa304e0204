"""The demo: its built-in corpus (stdlib code + its prose) and `shardstore demo` end to end on a small cap."""

from __future__ import annotations

import json
from pathlib import Path

from shardstore.demo.corpus import collect_stdlib_corpus, prose_of, stdlib_files

_SOURCE = '''"""Module doc."""
# -*- coding: utf-8 -*-
import os  # noqa: F401

# First line of a comment block
# continues here.
x = 1  # trailing note


class A:
    """Class doc."""

    def f(self):
        """Method doc.

        More.
        """
        # ------------
        return 1
'''


def test_prose_of_keeps_docstrings_and_comment_paragraphs_and_drops_pragmas():
    assert prose_of(_SOURCE) == (
        "Module doc.\n\nClass doc.\n\nMethod doc.\n\nMore.\n\n"
        "First line of a comment block continues here.\n\ntrailing note"
    )


def _fake_stdlib(root: Path) -> None:
    (root / "pkg").mkdir(parents=True)
    (root / "site-packages").mkdir()
    (root / "a.py").write_text('"""Alpha."""\nA = 1\n')
    (root / "pkg" / "b.py").write_text("# Beta comment.\nB = 2\n")
    (root / "pkg" / "bad.py").write_bytes(b"# -*- coding: ascii -*-\nS = '\xff'\n")  # undecodable as declared
    (root / "pkg" / "broken.py").write_text("def (:\n")  # decodes, does not parse: code yes, prose no
    (root / "empty.py").write_text("\n")
    (root / "site-packages" / "ignored.py").write_text("IGNORED = 1\n")


def test_collect_corpus_counts_skips_and_is_deterministic(tmp_path):
    root = tmp_path / "lib"
    _fake_stdlib(root)
    assert sorted(rel for rel, _ in stdlib_files(str(root))) == [
        "a.py",
        "empty.py",
        "pkg/b.py",
        "pkg/bad.py",
        "pkg/broken.py",
    ]
    info = collect_stdlib_corpus(tmp_path / "out", max_bytes=1 << 20, root=str(root), progress=False)
    assert (info.files_seen, info.code_docs, info.text_docs) == (5, 3, 2)
    assert dict(info.skipped) == {"undecodable_source": 1, "empty_file": 1, "unparsable_source": 1}
    code = [json.loads(line) for line in info.code_path.read_text().splitlines()]
    text = [json.loads(line) for line in info.text_path.read_text().splitlines()]
    assert sorted(d["path"] for d in code) == ["a.py", "pkg/b.py", "pkg/broken.py"]
    assert sorted((d["path"], d["text"]) for d in text) == [("a.py", "Alpha."), ("pkg/b.py", "Beta comment.")]
    # Same files -> same bytes, and an unchanged corpus is not rewritten (builds reading it stay untouched).
    before = (info.code_path.read_bytes(), info.code_path.stat().st_mtime_ns)
    again = collect_stdlib_corpus(tmp_path / "out", max_bytes=1 << 20, root=str(root), progress=False)
    assert (again.code_path.read_bytes(), again.code_path.stat().st_mtime_ns) == before


def test_collect_corpus_bytes_do_not_depend_on_worker_processes(tmp_path):
    root = tmp_path / "lib"
    _fake_stdlib(root)
    one = collect_stdlib_corpus(
        tmp_path / "one", max_bytes=1 << 20, root=str(root), workers=1, progress=False
    )
    two = collect_stdlib_corpus(
        tmp_path / "two", max_bytes=1 << 20, root=str(root), workers=2, progress=False
    )
    assert one.code_path.read_bytes() == two.code_path.read_bytes()
    assert one.text_path.read_bytes() == two.text_path.read_bytes()
    assert one.skipped == two.skipped


def test_collect_corpus_cap_stops_after_the_file_that_reaches_it(tmp_path):
    root = tmp_path / "lib"
    _fake_stdlib(root)
    info = collect_stdlib_corpus(tmp_path / "out", max_bytes=1, root=str(root), progress=False)
    assert info.code_docs == 1
    assert len(info.code_path.read_text().splitlines()) == 1


def test_demo_end_to_end_on_a_small_cap_and_rerun_reuses_everything(tmp_path, capsys):
    from shardstore.cli import main
    from shardstore.store.store import Store

    out = tmp_path / "demo"
    args = ["demo", "--out", str(out), "--max-mb", "0.5", "--steps", "30", "--no-progress", "--workers", "1"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())

    assert report["corpus"]["code_docs"] > 0 and report["corpus"]["text_docs"] > 0
    for name in ("code", "text"):
        store = Store.open(str(out / "stores" / name))
        store.verify()
        assert store.num_tokens == report["stores"][name]["num_tokens"] > 0
        assert store.tokenizer.fingerprint == report["tokenizer"]["fingerprint"]
    # 30 batches of 16 = 480 samples: 70/30 exactly (336/144), within one sample of weight x prefix.
    assert report["loader"]["delivered"] == {"code": 336, "text": 144}
    assert report["resume"] == {
        "interrupted_at": 18,
        "workers_before": 2,
        "workers_after": 0,
        "state_bytes": report["resume"]["state_bytes"],
        "batches_compared": 30,
        "identical": True,
    }
    state = json.loads((out / "loader_state.json").read_text())
    assert set(state) == {"format", "position", "counts", "epochs", "fingerprints"}
    assert set(report["samples"]) == {"code", "text"} and all(report["samples"].values())
    assert "stream identical to the uninterrupted one over 30 batches: yes" in printed

    # A re-run trains nothing and rewrites no store (the builds find their manifests committed).
    manifests = {n: (out / "stores" / n / "manifest.json").stat().st_mtime_ns for n in ("code", "text")}
    assert main(args) == 0
    again = json.loads((out / "report.json").read_text())
    assert again["tokenizer"]["reused"] is True
    assert {n: (out / "stores" / n / "manifest.json").stat().st_mtime_ns for n in manifests} == manifests
    assert again["loader"]["delivered"] == report["loader"]["delivered"]
    assert [again["stores"][n]["fingerprint"] for n in ("code", "text")] == [
        report["stores"][n]["fingerprint"] for n in ("code", "text")
    ]
    assert again["stores"]["code"]["already_built"] is True

    # Another cap into the same folder: a new corpus, so new stores (the old derived ones are rebuilt).
    smaller = [a if a != "0.5" else "0.25" for a in args]
    assert main(smaller) == 0
    third = json.loads((out / "report.json").read_text())
    assert third["corpus"]["code_bytes"] < report["corpus"]["code_bytes"]
    assert third["stores"]["code"]["already_built"] is False
    assert third["stores"]["code"]["num_tokens"] == Store.open(str(out / "stores" / "code")).num_tokens


def test_demo_rejects_bad_options_with_one_line(tmp_path, capsys):
    from shardstore.cli import main

    assert main(["demo", "--out", str(tmp_path), "--max-mb", "0", "--no-progress"]) == 1
    assert "max_mb must be > 0" in capsys.readouterr().err
