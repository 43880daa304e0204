import subprocess
import sys

import shardstore


def test_import_is_lazy_and_cli_help_runs() -> None:
    assert shardstore.__version__
    out = subprocess.run([sys.executable, "-m", "shardstore", "--help"], capture_output=True, text=True, check=True)
    assert "Usage" in out.stdout
