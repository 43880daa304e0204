"""Mixture source keys of issue 20 (exclude, heldout, heldout_tokens): validated, typed, typo-checked."""

from __future__ import annotations

import pytest

from shardstore.errors import ConfigError
from shardstore.mix.config import MixtureConfig


def _cfg(**source) -> MixtureConfig:
    return MixtureConfig.from_dict(
        {"seq_len": 8, "seed": 1, "sources": [{"name": "a", "store": "a", **source}]}
    )


def test_keys_are_read():
    s = _cfg(exclude=["m/", "x.mask"], heldout=0.01).sources[0]
    assert s.exclude == ("m/", "x.mask") and s.heldout == 0.01 and s.has_heldout
    s = _cfg(exclude="one.mask", heldout_tokens=5e6).sources[0]
    assert s.exclude == ("one.mask",) and s.heldout_tokens == 5_000_000 and isinstance(s.heldout_tokens, int)
    assert not _cfg().sources[0].has_heldout and not _cfg(heldout=0).sources[0].has_heldout


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ({"heldout": 0.1, "heldout_tokens": 10}, "not both"),
        ({"heldout": 1.0}, r"fraction in \[0, 1\)"),
        ({"heldout": -0.1}, "heldout"),
        ({"heldout": "0.1"}, "heldout must be a finite number"),
        ({"heldout_tokens": 1.5}, "whole number"),
        ({"heldout_tokens": 0}, "whole number"),
        ({"exclude": [3]}, "exclude"),
        ({"exclude": [""]}, "exclude"),
        ({"heldot": 0.1}, "did you mean 'heldout'"),
        ({"exlude": ["m"]}, "did you mean 'exclude'"),
    ],
)
def test_bad_values_name_the_key(source, message):
    with pytest.raises(ConfigError, match=message):
        _cfg(**source)
