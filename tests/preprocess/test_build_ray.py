"""`executor="ray"`: the units run as Ray tasks on a local Ray instance and the store is byte-identical."""

from __future__ import annotations

import pytest
from test_build_support import snapshot, train_tokenizer, write_corpus

import shardstore


@pytest.mark.slow
def test_ray_executor_is_byte_identical_to_local(tmp_path):
    ray = pytest.importorskip("ray", reason="install the ray extra: pip install 'shardstore[ray]'")
    tok = train_tokenizer(tmp_path / "tok.json")
    root = tmp_path / "corpus"
    write_corpus(root, n_files=6, docs_per_file=30)
    shardstore.build([str(root)], tokenizer=tok, out=tmp_path / "local", workers=2, progress=False)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        report = shardstore.build(
            [str(root)], tokenizer=tok, out=tmp_path / "ray", executor="ray", progress=False
        )
    finally:
        ray.shutdown()
    assert report.complete and report.units_run == 6
    assert snapshot(tmp_path / "ray") == snapshot(tmp_path / "local")
