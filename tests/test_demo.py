"""The demo: its built-in corpus (stdlib code + its prose) and `shardstore demo` end to end on a small cap."""

from __future__ import annotations

import json
from pathlib import Path

from shardstore.demo_corpus import collect_stdlib_corpus, prose_of, stdlib_files

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


def test_collect_corpus_cap_stops_after_the_file_that_reaches_it(tmp_path):
    root = tmp_path / "lib"
    _fake_stdlib(root)
    info = collect_stdlib_corpus(tmp_path / "out", max_bytes=1, root=str(root), progress=False)
    assert info.code_docs == 1
    assert len(info.code_path.read_text().splitlines()) == 1
