""".ci/run installs into a fresh virtual environment and runs the README's test command verbatim inside it."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _readme_test_command() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"Install what the tests need and run the whole test suite:\n\n    (.+)\n", text)
    if match is None:
        raise AssertionError("README.md lost its test command paragraph")
    return match.group(1)


def _ci_lines() -> list[str]:
    lines = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    return [ln for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]


def test_ci_runs_the_readme_test_command_verbatim_last():
    command = _readme_test_command()
    assert command.startswith("pip install torch==2.13.0 && "), (
        "torch is installed first, at the tested version"
    )
    assert _ci_lines()[-1] == command


def test_ci_deletes_and_recreates_its_venv_before_installing():
    lines = _ci_lines()
    rm = lines.index('rm -rf "$VENV"')
    create = lines.index('python3 -m venv "$VENV"')
    activate = lines.index('source "$VENV/bin/activate"')
    assert rm < create < activate < len(lines) - 1
    assert "--system-site-packages" not in "\n".join(lines), "the venv must not see the machine's packages"
    assert "set -euo pipefail" in lines, "a failed install must fail the run"
