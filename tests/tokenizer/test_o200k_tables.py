"""o200k's case-aware letter classes (issue 23): the header is generated from the golden files, and each golden file
refines its base file exactly (Lu/Lt, Ll, Lm/Lo on its letters, marks only among its "other")."""

from __future__ import annotations

from pathlib import Path

import pytest

from tokenizer._native import gen_o200k_tables as o200k
from tokenizer._native import gen_unicode_tables as gen


def test_header_is_rendered_from_the_golden_files():
    header = Path(o200k.HERE, "o200k_tables.h").read_text(encoding="ascii")
    assert header == o200k.render_header(), "run python tokenizer/_native/gen_o200k_tables.py"


@pytest.mark.parametrize("version", gen.UNICODE_VERSIONS)
def test_refinement_agrees_with_the_base_classes(version):
    o200k.check(version, o200k.refined_classes(version))
    refined = o200k.refined_classes(version)
    assert refined[ord("A")] == 1 and refined[ord("a")] == 2 and refined[0x4E00] == 3 and refined[0x0301] == 4
    assert refined[0x01C5] == 1  # Lt (title case) counts as upper


def test_the_check_catches_a_wrong_refinement():
    refined = bytearray(o200k.refined_classes(gen.DEFAULT_VERSION))
    refined[ord("!")] = 4  # a mark where the base says OTHER is fine...
    o200k.check(gen.DEFAULT_VERSION, bytes(refined))
    refined[ord("1")] = 2  # ...a lower-case letter where the base says NUMBER is not
    with pytest.raises(ValueError, match="U\\+0031 is LOWER but NUMBER"):
        o200k.check(gen.DEFAULT_VERSION, bytes(refined))
