"""`shardstore.build` spells out its options: keyword-only, the same names and defaults as `BuildConfig`, and an
unknown name is a TypeError before any work."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

import shardstore
from shardstore.preprocess.build_types import BuildConfig


def test_build_parameters_are_the_config_fields_with_the_same_defaults() -> None:
    params = inspect.signature(shardstore.build).parameters
    fields = {f.name: f for f in dataclasses.fields(BuildConfig)}
    assert list(params) == list(fields)  # same names, same order
    assert params["inputs"].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    for name, p in list(params.items())[1:]:
        assert p.kind is inspect.Parameter.KEYWORD_ONLY, name
        default = fields[name].default
        expected = inspect.Parameter.empty if default is dataclasses.MISSING else default
        assert p.default == expected, name
    assert "utf8_errors" in (shardstore.build.__doc__ or "")


def test_unknown_option_is_a_type_error(tmp_path) -> None:
    with pytest.raises(TypeError, match="unexpected keyword argument 'text_feild'"):
        shardstore.build("x.jsonl", tokenizer="tok.json", out=str(tmp_path / "s"), text_feild="body")  # type: ignore[call-arg]
    assert not (tmp_path / "s").exists()


def test_string_modes_still_accepted(tmp_path) -> None:
    with pytest.raises(
        shardstore.ShardStoreError, match=r"executor='slurm' must be one of \['local', 'ray'\]"
    ):
        shardstore.build("x.jsonl", tokenizer="tok.json", out=str(tmp_path / "s"), executor="slurm")
