"""`unguarded_main_call`: which top-level lines of a main script are under an `if __name__ == "__main__":` guard."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PROBE = "from shardstore.util.mainguard import unguarded_main_call\n"


def _run(tmp_path: Path, body: str, *, as_module: bool = False) -> str:
    script = tmp_path / "probe_script.py"
    script.write_text(PROBE + textwrap.dedent(body))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(tmp_path)])}
    cmd = [sys.executable, "-m", "probe_script"] if as_module else [sys.executable, str(script)]
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("print(unguarded_main_call())\n", "line 2"),  # top level, no guard
        (
            "def main():\n    print(unguarded_main_call())\n\nmain()\n",
            "line 5",
        ),  # a function called unguarded
        ('if __name__ == "__main__":\n    print(unguarded_main_call())\n', "None"),
        ("if '__main__' == __name__:\n    print(unguarded_main_call())\n", "None"),  # either side
        ('def main():\n    print(unguarded_main_call())\n\nif __name__ == "__main__":\n    main()\n', "None"),
        (
            'if __name__ != "__main__":\n    pass\nelse:\n    print(unguarded_main_call())\n',
            "None",
        ),  # the else
        ("if True:\n    print(unguarded_main_call())\n", "line 3"),
    ],
)
def test_guard_detection(tmp_path, body, expected):
    out = _run(tmp_path, body)
    assert (out == "None") if expected == "None" else (out.startswith("(") and f", {expected[5:]})" in out), (
        out
    )


def test_a_module_run_with_dash_m_is_checked_too(tmp_path):
    assert _run(tmp_path, "print(unguarded_main_call())\n", as_module=True).endswith(", 2)")


def test_interactive_and_dash_c_are_never_flagged():
    done = subprocess.run(
        [sys.executable, "-c", PROBE + "print(unguarded_main_call())"],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stdout.strip() == "None", done.stderr


def test_python_dash_m_of_a_package_is_not_flagged():
    """`python -m shardstore build --workers 2` must not be refused: multiprocessing never re-imports a package's
    __main__ (its spec name ends in .__main__)."""
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import runpy; runpy.run_module('shardstore', run_name='__main__')",
            "--version",
        ],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
