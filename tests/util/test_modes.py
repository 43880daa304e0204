"""Mode options: every one accepts the enum member or its string value, rejects anything else with one ConfigError
that lists the choices, and the CLI's choices are exactly the enum's values."""

from __future__ import annotations

from enum import StrEnum

import click
import pytest

from shardstore.cli.build_cmds import build_cmd
from shardstore.cli.options import enum_choice
from shardstore.cli.tokenizer_cmds import ExportFormat, export_cmd
from shardstore.errors import ConfigError
from shardstore.loader.batches import DocInfo
from shardstore.mix.config import MixtureConfig, PhaseConfig, Ramp, SourceConfig
from shardstore.preprocess.build_types import BuildConfig
from shardstore.preprocess.executors import Executor
from shardstore.preprocess.inputs import ReadOptions, Utf8Policy
from shardstore.store.store import VerifyMode as StoreVerifyMode
from shardstore.util.modes import VerifyMode, mode_values, parse_mode


def test_parse_mode_accepts_member_or_value_and_lists_choices() -> None:
    assert parse_mode(VerifyMode, "full", name="verify") is VerifyMode.FULL
    assert parse_mode(VerifyMode, VerifyMode.OFF, name="verify") is VerifyMode.OFF
    for bad in ("FULL", "ful", 1, None, Executor.LOCAL):
        with pytest.raises(ConfigError) as info:
            parse_mode(VerifyMode, bad, name="verify")
        assert str(info.value) == f"verify={bad!r} must be one of ['touch', 'full', 'off']"


def test_store_verify_mode_is_the_one_enum() -> None:
    assert StoreVerifyMode is VerifyMode


@pytest.mark.parametrize(
    ("make", "good", "member"),
    [
        (lambda v: ReadOptions(utf8_errors=v), "skip", Utf8Policy.SKIP),
        (
            lambda v: BuildConfig(inputs=("a",), tokenizer="t", out="o", utf8_errors=v),
            "fail",
            Utf8Policy.FAIL,
        ),
        (lambda v: BuildConfig(inputs=("a",), tokenizer="t", out="o", executor=v), "ray", Executor.RAY),
        (lambda v: PhaseConfig(weights={"a": 1}, start_tokens=0, ramp=v), "constant", Ramp.CONSTANT),
        (
            lambda v: MixtureConfig(seq_len=4, seed=0, sources=(SourceConfig("a", ("s",), 1),), verify=v),
            "off",
            VerifyMode.OFF,
        ),
    ],
)
def test_every_mode_option_parses_strings_and_rejects_others(make, good, member) -> None:
    field = {Utf8Policy: "utf8_errors", Executor: "executor", Ramp: "ramp", VerifyMode: "verify"}[
        type(member)
    ]
    assert getattr(make(good), field) is member
    assert getattr(make(member), field) is member
    with pytest.raises(ConfigError, match=r"must be one of \[") as info:
        make("nope")
    for value in mode_values(type(member)):
        assert repr(value) in str(info.value)


def _choices(cmd: click.Command, name: str) -> list[str]:
    (param,) = [p for p in cmd.params if p.name == name]
    assert isinstance(param.type, click.Choice)
    return list(param.type.choices)


@pytest.mark.parametrize(
    ("cmd", "name", "enum"),
    [
        (build_cmd, "executor", Executor),
        (build_cmd, "utf8_errors", Utf8Policy),
        (export_cmd, "fmt", ExportFormat),
    ],
)
def test_cli_choices_are_the_enum_values(cmd: click.Command, name: str, enum: type[StrEnum]) -> None:
    assert _choices(cmd, name) == mode_values(enum)


def test_enum_choice_and_docinfo_values() -> None:
    assert list(enum_choice(DocInfo).choices) == [d.value for d in DocInfo]
