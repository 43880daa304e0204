"""Ids and store bytes do not depend on the installed dependencies: the same tokenizer and corpus give identical
merges, ids, shard bytes and fingerprints with the newest releases (this environment) and with the oldest releases
the requirements admit (regex, numpy, pyarrow, zstandard, xxhash, orjson at their lower bounds).

The oldest releases are installed once with ``pip install --no-deps --target`` into ~/.cache/shardstore-tests (PyPI
must be reachable the first time) and put first on PYTHONPATH of a subprocess, so they shadow the newer ones
without a second virtual environment. A custom-pattern tokenizer made here (newest regex, Unicode 18.0.0) is refused
under regex 2023.10.3 (Unicode 15.1.0) with `UnicodeMismatchError`: the policy of docs/UNICODE.md, shown end to end.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tomllib

import pytest
from independence_worker import write_inputs
from test_tokenizer_encode import GOLDEN_MERGES

from tokenizer import Tokenizer
from tokenizer.unicode import regex_unicode_version

ROOT = pathlib.Path(__file__).resolve().parents[2]
WORKER = pathlib.Path(__file__).with_name("independence_worker.py")
# The lower bounds of pyproject.toml, as exact releases (test_lower_bounds_are_the_tested_releases keeps them equal).
OLDEST = {
    "regex": "2023.10.3",
    "numpy": "1.26.0",
    "pyarrow": "14.0.0",
    "zstandard": "0.22.0",
    "xxhash": "3.4.1",
    "orjson": "3.9.0",
}
CUSTOM = r"\p{L}+|\p{N}|[^\p{L}\p{N}]+"


def test_lower_bounds_are_the_tested_releases():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    bounds = dict(re.fullmatch(r"([a-z]+)>=([0-9.]+)", d).groups() for d in deps if ">=" in d)
    assert {name: bounds[name] for name in OLDEST} == OLDEST


def _oldest_site() -> pathlib.Path:
    """The folder with the oldest releases, installed once per spec (atomic rename, so a killed install is redone)."""
    spec = sorted(f"{k}=={v}" for k, v in OLDEST.items())
    key = hashlib.sha256(f"{sys.version_info[:2]}|{spec}".encode()).hexdigest()[:16]
    cache = pathlib.Path(
        os.environ.get("SHARDSTORE_TEST_CACHE", pathlib.Path.home() / ".cache" / "shardstore-tests")
    )
    target = cache / f"oldest-deps-{key}"
    if target.is_dir():
        return target
    tmp = cache / f".tmp-{key}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    cmd = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(tmp), *spec]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        pytest.fail(
            f"could not install the oldest admitted releases ({' '.join(spec)}): {done.stderr[-2000:]}"
        )
    tmp.rename(target)
    return target


def _run_worker(
    work: pathlib.Path, inputs: pathlib.Path, custom: pathlib.Path, pythonpath: list[str]
) -> dict:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([*pythonpath, str(ROOT)]))
    done = subprocess.run(
        [sys.executable, str(WORKER), str(work), str(inputs), str(custom)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_same_ids_and_store_bytes_with_oldest_and_newest_dependencies(tmp_path):
    inputs = tmp_path / "inputs"
    write_inputs(inputs)
    custom = tmp_path / "custom.json"
    Tokenizer.from_merges(GOLDEN_MERGES, pattern=CUSTOM).save(custom)
    newest = _run_worker(tmp_path / "newest", inputs, custom, [])
    oldest = _run_worker(tmp_path / "oldest", inputs, custom, [str(_oldest_site())])
    assert oldest["versions"] == OLDEST, "the subprocess really ran the oldest releases"
    assert oldest["regex_unicode"] == "15.1.0"
    same = [k for k in newest if k not in ("versions", "regex_unicode", "custom")]
    assert len(same) == 11
    assert {k: oldest[k] for k in same} == {k: newest[k] for k in same}
    # Custom patterns follow the installed regex: refused where its Unicode version differs, by name.
    assert len(newest["custom"]) == 64
    if regex_unicode_version() != "15.1.0":
        assert oldest["custom"].startswith("UnicodeMismatchError")
        assert f"Unicode {regex_unicode_version()}" in oldest["custom"]
        assert "implements Unicode 15.1.0" in oldest["custom"]
