"""Mixture config values are strictly typed (issue 16.6): booleans are booleans, numbers are numbers."""

from __future__ import annotations

from pathlib import Path

import pytest

from shardstore.errors import ConfigError
from shardstore.loader.mixture import Mixture
from shardstore.mix.config import MixtureConfig, SourceConfig

BASE = {
    "seq_len": 16,
    "seed": 1,
    "sources": [{"name": "a", "store": "a", "weight": 0.5}, {"name": "b", "store": "b", "weight": 0.5}],
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"allow_tokenizer_mismatch": "false"},
            r"allow_tokenizer_mismatch must be true or false .*'false' \(str\)",
        ),
        ({"allow_tokenizer_mismatch": 0}, r"allow_tokenizer_mismatch must be true or false .*0 \(int\)"),
        ({"allow_tokenizer_mismatch": 1}, "allow_tokenizer_mismatch must be true or false"),
        ({"seq_len": "2048"}, r"seq_len must be an integer, got '2048' \(str\)"),
        ({"seq_len": True}, r"seq_len must be an integer, got True \(bool\)"),
        ({"seq_len": 2048.0}, r"seq_len must be an integer, got 2048.0 \(float\)"),
        ({"seed": "1"}, "seed must be an integer"),
        ({"global_batch_size": "64"}, "global_batch_size must be an integer"),
        ({"verify": True}, "verify must be a string"),
        ({"cache_dir": 5}, "cache_dir must be a string"),
        ({"cache_limit": 2.5}, "cache_limit must be bytes"),
        ({"storage_options": "endpoint"}, "storage_options must be a table"),
        ({"schedule": {"weights": {}}}, "schedule must be a list"),
    ],
)
def test_wrongly_typed_top_level_values_are_refused(change: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Mixture.from_dict({**BASE, **change})


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ({"name": "a", "store": "a", "weight": "0.5"}, r"sources\[0\].weight must be a finite number"),
        ({"name": "a", "store": "a", "weight": True}, r"sources\[0\].weight must be a finite number"),
        ({"name": 7, "store": "a", "weight": 1}, r"sources\[0\].name must be a string"),
        ({"name": "a", "store": ["a", 3], "weight": 1}, r"sources\[0\].store must be a path/URL string"),
    ],
)
def test_wrongly_typed_sources_are_refused(source: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Mixture.from_dict({**BASE, "sources": [source, BASE["sources"][1]]})


@pytest.mark.parametrize(
    ("phase", "message"),
    [
        ({"start_step": "10", "weights": {"a": 1}}, r"schedule\[0\].start_step must be an integer"),
        ({"start_tokens": 10, "weights": {"a": "1"}}, r"schedule\[0\].weights.a must be a finite number"),
        ({"start_tokens": 10, "weights": {"a": 1}, "ramp": 1}, r"schedule\[0\].ramp must be a string"),
        ({"start_tokens": 10, "weights": [1, 2]}, r"schedule\[0\].weights must be a table"),
    ],
)
def test_wrongly_typed_schedule_phases_are_refused(phase: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Mixture.from_dict({**BASE, "global_batch_size": 4, "schedule": [phase]})


def test_a_quoted_boolean_in_a_mixture_file_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "mix.toml"
    path.write_text(
        'allow_tokenizer_mismatch = "false"\nseq_len = 16\nseed = 1\n'
        '[[sources]]\nname = "a"\nstore = "a"\nweight = 1\n'
    )
    with pytest.raises(ConfigError, match=rf"{path}: allow_tokenizer_mismatch must be true or false"):
        Mixture.from_file(path)


def test_typed_dataclasses_refuse_the_same_values_from_python() -> None:
    src = (SourceConfig("a", ("a",), 1),)
    with pytest.raises(ConfigError, match="allow_tokenizer_mismatch must be true or false"):
        MixtureConfig(seq_len=16, seed=1, sources=src, allow_tokenizer_mismatch="false")  # type: ignore[arg-type]
    ok = MixtureConfig(seq_len=16, seed=1, sources=src, allow_tokenizer_mismatch=True)
    assert ok.allow_tokenizer_mismatch is True
    assert (
        Mixture.from_dict({**BASE, "allow_tokenizer_mismatch": False}).config.allow_tokenizer_mismatch
        is False
    )
