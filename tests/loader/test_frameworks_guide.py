"""The scripts of docs/guide.md section 10 (Lightning, HF Trainer, Accelerate, DCP, StatefulDataLoader) run.

Each ```python block of the section is executed as ``__main__`` in a fresh folder, on a small mixture instead of
the demo's; the Lightning and HF scripts run twice (the second run resumes from the first one's checkpoints).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from gpt_fixtures import ROOT, make_mix, one_torch_thread  # noqa: F401 (autouse)

pytestmark = pytest.mark.slow

SECTION = "## 10. Using shardstore with"


def guide_scripts() -> dict[str, str]:
    text = (ROOT / "docs" / "guide.md").read_text()
    section = text[text.index(SECTION) :]
    section = section[: section.find("\n## ", 1)] if "\n## " in section[1:] else section
    out = {}
    for heading, body in re.findall(r"\n### ([^\n]+)\n(.*?)(?=\n### |\Z)", section, flags=re.S):
        blocks = re.findall(r"```python\n(.*?)```", body, flags=re.S)
        if blocks:
            out[heading.split()[0].strip("`").lower()] = blocks[0]
    return out


def test_guide_has_a_script_per_framework() -> None:
    assert sorted(guide_scripts()) == ["accelerate", "hugging", "lightning", "torchdata", "torchtitan-style"]


@pytest.fixture(scope="module")
def mix(tmp_path_factory) -> Path:
    return make_mix(tmp_path_factory.mktemp("guide_data"), seq_len=16)


@pytest.mark.parametrize("name", ["lightning", "hugging", "accelerate", "torchtitan-style", "torchdata"])
def test_guide_script_runs(name, mix, tmp_path, monkeypatch) -> None:
    code = guide_scripts()[name]
    assert 'MIX = "demo-out/mix.toml"' in code and 'if __name__ == "__main__":' in code
    code = code.replace('MIX = "demo-out/mix.toml"', f"MIX = {str(mix)!r}")
    monkeypatch.chdir(tmp_path)
    runs = 2 if name in ("lightning", "hugging") else 1
    for _ in range(runs):
        exec(compile(code, f"guide.md:{name}", "exec"), {"__name__": "__main__"})
