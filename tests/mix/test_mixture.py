"""Mixture files (TOML/YAML), store resolution, tokenizer binding and the planner, on real tiny stores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from storeutil import counting_store, write_store

from shardstore.errors import ConfigError, MismatchError
from shardstore.loader.batches import BatchReader
from shardstore.loader.mixture import Mixture

MIX = """
seq_len = 8
seed = 3

[[sources]]
name = "a"
store = ["a1", "a2"]
weight = 0.75

[[sources]]
name = "b"
store = "{b}"
weight = 0.25
"""


@pytest.fixture
def mixdir(tmp_path: Path) -> Path:
    counting_store(tmp_path / "a1", 0, 203)
    counting_store(tmp_path / "a2", 203, 100)  # a1 + a2 = tokens 0..302 in order
    counting_store(tmp_path / "b", 40000, 81)
    (tmp_path / "mix.toml").write_text(MIX.format(b=tmp_path / "b"))  # absolute path works too
    return tmp_path


def test_from_file_resolves_relative_stores_and_concatenates(mixdir: Path) -> None:
    mix = Mixture.from_file(mixdir / "mix.toml")
    sources = mix.open_sources()
    assert [s.name for s in sources] == ["a", "b"]
    assert sources[0].offsets == [0, 203, 303]
    assert sources[0].num_windows == (303 - 1) // 8
    assert sources[1].num_windows == 10
    reader = BatchReader(mix, doc_info="position_ids")
    # window 25 of source a spans tokens [200, 209): across the a1/a2 store boundary, still contiguous
    batch = reader.read_windows(np.array([0, 0]), np.array([25, 0]))
    assert batch["input_ids"][0].tolist() == list(range(200, 208))
    assert batch["labels"][0].tolist() == list(range(201, 209))
    # documents are 7 tokens (0-6, 7-13, ...); the store boundary at token 203 is a document start too
    assert batch["position_ids"][0].tolist() == [0, 1, 2, 0, 1, 2, 3, 4]
    assert batch["position_ids"][1].tolist() == [0, 1, 2, 3, 4, 5, 6, 0]


def test_plan_counts_epochs_and_warnings(mixdir: Path) -> None:
    plan = Mixture.from_file(mixdir / "mix.toml").plan(8 * 400)
    a, b = plan.sources
    assert plan.total_samples == 400
    assert (a.samples_drawn, b.samples_drawn) == (300, 100)
    assert (a.tokens_available, b.tokens_available) == (37 * 8, 80)
    assert b.epochs == 10.0
    assert a.weight == 0.75
    assert any("'b' is repeated 10.00 times" in w for w in plan.warnings)
    d = plan.to_dict()
    assert d["sources"][1]["tokens_drawn"] == 800 and d["warnings"]


def test_plan_with_schedule_in_steps(mixdir: Path) -> None:
    text = MIX.format(b="b").replace("seed = 3", "seed = 3\nglobal_batch_size = 4")
    text += '\n[[schedule]]\nstart_step = 10\nweights = { a = 0, b = 1 }\nramp = "linear"\nramp_steps = 10\n'
    (mixdir / "s.toml").write_text(text)
    mix = Mixture.from_file(mixdir / "s.toml")
    plan = mix.plan(8 * 120)  # 120 samples: 40 at 3:1, 40 ramping to 0:1, 40 all b
    assert [s.samples_drawn for s in plan.sources] == [30 + 15, 10 + 25 + 40]
    assert mix.interleave.counts_at(120) == (45, 75)


def test_tokenizer_mismatch_is_refused_unless_allowed(tmp_path: Path) -> None:
    docs = [np.arange(50, dtype=np.uint16)]
    write_store(tmp_path / "x", docs, tokenizer_fp="1" * 64)
    write_store(tmp_path / "y", docs, tokenizer_fp="2" * 64)
    d = {"seq_len": 4, "seed": 0, "sources": [{"name": "x", "store": "x"}, {"name": "y", "store": "y"}]}
    with pytest.raises(MismatchError, match="different tokenizers"):
        Mixture.from_dict(d, base_dir=str(tmp_path)).open_sources()
    ok = Mixture.from_dict({**d, "allow_tokenizer_mismatch": True}, base_dir=str(tmp_path))
    assert len(ok.open_sources()) == 2


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"seq_len": 0}, "seq_len"),
        ({"colour": 1}, "unknown mixture key 'colour'"),
        ({"sources": []}, "at least one"),
        ({"sources": [{"name": "a", "store": "a"}, {"name": "a", "store": "b"}]}, "unique"),
        ({"sources": [{"name": "a", "store": "a", "weight": -1}]}, "weight"),
        ({"schedule": [{"start_step": 5, "weights": {"a": 1}}]}, "global_batch_size"),
        ({"schedule": [{"start_tokens": 5, "weights": {"zz": 1}}]}, "unknown sources"),
        ({"schedule": [{"start_tokens": 5, "weights": {"a": 1}, "ramp": "linear"}]}, "ramp_tokens"),
        (
            {"schedule": [{"start_tokens": 5, "weights": {"a": 1}, "ramp": "cubic"}]},
            "ramp='cubic' must be one of",
        ),
    ],
)
def test_bad_configs_name_the_problem(change: dict, message: str) -> None:
    d = {"seq_len": 4, "seed": 0, "sources": [{"name": "a", "store": "a"}], **change}
    with pytest.raises(ConfigError, match=message):
        Mixture.from_dict(d)


def test_bad_file_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text("seq_len = [")
    with pytest.raises(ConfigError, match=r"bad\.toml"):
        Mixture.from_file(tmp_path / "bad.toml")
    with pytest.raises(ConfigError, match="cannot read"):
        Mixture.from_file(tmp_path / "missing.toml")
    counting_store(tmp_path / "tiny", 0, 5)
    (tmp_path / "t.toml").write_text('seq_len = 8\nseed = 0\n[[sources]]\nname = "t"\nstore = "tiny"\n')
    with pytest.raises(ConfigError, match="fewer than seq_len"):
        Mixture.from_file(tmp_path / "t.toml").open_sources()


def test_yaml_mixture(mixdir: Path) -> None:
    pytest.importorskip("yaml")
    (mixdir / "m.yaml").write_text(
        "seq_len: 8\nseed: 3\nsources:\n  - {name: a, store: [a1, a2], weight: 3}\n  - {name: b, store: b, weight: 1}\n"
    )
    toml = Mixture.from_file(mixdir / "mix.toml")
    yaml = Mixture.from_file(mixdir / "m.yaml")
    assert yaml.config.phases() == toml.config.phases()  # 3:1 == 0.75:0.25 exactly
    assert yaml.fingerprints() == toml.fingerprints()
