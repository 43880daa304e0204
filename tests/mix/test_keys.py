"""Unknown mixture keys are named with the closest known key (issue 17.9)."""

from __future__ import annotations

import pytest

from shardstore.errors import ConfigError
from shardstore.mix.config import MixtureConfig
from shardstore.mix.keys import check_keys, unknown_keys_message

BASE = {"seq_len": 8, "seed": 1, "sources": [{"name": "web", "store": "web", "weight": 1}]}


def test_message_names_each_unknown_key_and_its_closest_match():
    msg = unknown_keys_message(["wieght", "nmae", "colour"], {"name", "store", "weight"}, where="sources[0]")
    assert msg == (
        "unknown sources[0] keys 'colour', 'nmae' (did you mean 'name'?), 'wieght' (did you mean 'weight'?); "
        "known keys are name, store, weight"
    )
    assert unknown_keys_message(["name"], {"name"}, where="x") is None
    check_keys("not a table", {"name"}, where="x")  # left to the caller's type check


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"sources": [{"name": "web", "store": "web", "wieght": 1}]}, "unknown sources[0] key 'wieght' (did you mean 'weight'?)"),
        ({"sources": [{"name": "web", "stores": "web"}]}, "unknown sources[0] key 'stores' (did you mean 'store'?)"),
        ({"seq_lne": 8}, "unknown mixture key 'seq_lne' (did you mean 'seq_len'?)"),
        ({"schedule": [{"start_token": 5, "weights": {"web": 1}}]}, "unknown schedule[0] key 'start_token' (did you mean 'start_tokens'?)"),
    ],
)  # fmt: skip
def test_every_level_of_a_mixture_names_its_unknown_keys(change, expected):
    with pytest.raises(ConfigError) as info:
        MixtureConfig.from_dict({**BASE, **change})
    assert expected in str(info.value)
