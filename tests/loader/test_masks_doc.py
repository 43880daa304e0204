"""The self-contained example of docs/masks.md runs and its assertions hold (masks, held-out split, eval loader).

tests/test_docs.py runs every block of the page too, but is marked slow; this one is not."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_masks_doc_example_runs(capsys) -> None:
    text = (ROOT / "docs" / "masks.md").read_text()
    m = re.search(r"## A runnable example\n\n```python\n(.*?)```", text, re.S)
    assert m, "docs/masks.md lost its runnable example"
    exec(compile(m.group(1), "docs/masks.md:masks-example", "exec"), {"__name__": "__main__"})
    out = capsys.readouterr().out
    assert "check-heldout ok" in out and "held out" in out
