"""Every ``python`` and ``bash`` block of docs/dedup.md runs, in order, in one empty folder."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "dedup.md"


def _blocks() -> list[tuple[str, str]]:
    return re.findall(r"^```(python|bash)\n(.*?)^```$", DOC.read_text(), flags=re.S | re.M)


@pytest.mark.slow
def test_the_dedup_guide_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = _blocks()
    assert len(blocks) >= 6
    monkeypatch.chdir(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    for kind, code in blocks:
        if kind == "python":
            exec(compile(code, str(DOC), "exec"), {"__name__": "__doc_example__"})  # the guide's own code
            continue
        script = re.sub(r"^shardstore ", f"{sys.executable} -m shardstore ", code, flags=re.M)
        script = re.sub(r"^python ", f"{sys.executable} ", script, flags=re.M)
        done = subprocess.run(
            ["bash", "-e", "-c", script], env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, f"{code}\n{done.stdout}\n{done.stderr}"
    assert (tmp_path / "dedup-masks" / "dedup-report.json").exists()
    dc = json.loads((tmp_path / "dc.json").read_text())
    assert [(e["eval"], e["contaminated_items"]) for e in dc["evals"]] == [("bench", 1)]
