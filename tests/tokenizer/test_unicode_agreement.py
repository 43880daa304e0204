"""A sampled version of benchmarks/bench_unicode_agreement.py (the full one covers every code point; figures in
benchmarks/RESULTS.md, differences explained in docs/UNICODE.md).

Every 1009th code point, alone and next to a representative of each class in both orders, is split by the native
splitter, by tiktoken with our pattern and by the pre-tokenizer of our exported tokenizer.json. With the default
tables (Unicode 16.0.0, what new tokenizers get) all three agree on every string. With the 17.0.0 tables of
format-1 files they differ exactly where Unicode 17.0.0 assigned new letters and numbers.
"""

from __future__ import annotations

import importlib.util
import pathlib

import pytest
from unicode_reference import golden_classes

from tokenizer.unicode import DEFAULT_NATIVE_UNICODE_VERSION

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _bench():
    path = ROOT / "benchmarks" / "bench_unicode_agreement.py"
    spec = importlib.util.spec_from_file_location("bench_unicode_agreement", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("version", [DEFAULT_NATIVE_UNICODE_VERSION, "17.0.0"])
@pytest.mark.parametrize("engine", ["tiktoken", "hf"])
@pytest.mark.parametrize("name", ["cl100k", "gpt2"])
def test_sampled_code_points_split_like_tiktoken_and_hf(name, engine, version):
    bench = _bench()
    cps = bench.code_points(1009)
    make = bench.tiktoken_splitter if engine == "tiktoken" else bench.hf_splitter
    ours, theirs = bench.measure(bench.native_splitter(name, version), cps), bench.measure(make(name), cps)
    assert all(-1 not in r for r in ours + theirs), "pieces tile every string in every engine"
    diff = [c for c, a, b in zip(cps, ours, theirs, strict=True) if a != b]
    old, new = golden_classes("16.0.0"), golden_classes(version)
    assert diff == [c for c in cps if old[c] != new[c]]
    assert (len(diff) > 0) == (version != "16.0.0")
