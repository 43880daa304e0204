import subprocess
import sys

import shardstore


def test_import_is_lazy_and_cli_help_runs() -> None:
    assert shardstore.__version__
    out = subprocess.run(
        [sys.executable, "-m", "shardstore", "--help"], capture_output=True, text=True, check=True
    )
    assert "Usage" in out.stdout


def test_build_stays_the_function_after_its_module_is_imported() -> None:
    import shardstore.preprocess.pipeline

    assert callable(shardstore.build) and shardstore.build.__name__ == "build"
    assert shardstore.BuildReport.__name__ == "BuildReport"
