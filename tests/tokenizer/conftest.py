"""Prints the Unicode drift report (installed ``regex`` vs the pinned tables) at the end of the run: a report, not a
failure, because the built-in patterns never use the installed ``regex``'s tables."""

from __future__ import annotations

import pytest
from unicode_reference import DRIFT_KEY


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    lines = config.stash.get(DRIFT_KEY, [])
    if lines:
        terminalreporter.section("Unicode drift report")
        for line in lines:
            terminalreporter.write_line(line)
