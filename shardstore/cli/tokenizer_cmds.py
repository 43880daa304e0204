"""`shardstore tokenizer train|export|encode`: parse arguments, call `tokenizer` library functions, print results."""

from __future__ import annotations

import json
import sys
import warnings
from enum import StrEnum
from typing import Any

import click

from shardstore.cli.options import enum_choice, parse_storage_options
from shardstore.errors import InputError
from shardstore.preprocess.modes import DEFAULT_MAX_SKIPPED_FRACTION


class ExportFormat(StrEnum):
    TIKTOKEN = "tiktoken"
    HF = "hf"


@click.group("tokenizer")
def tokenizer_group() -> None:
    """Train, export and use byte-level BPE tokenizers."""


@tokenizer_group.command("train")
@click.argument("inputs", nargs=-1, required=True, metavar="INPUT...")
@click.option("--vocab-size", required=True, type=int, help="256 byte tokens + merges + special tokens.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Tokenizer JSON file to write.")
@click.option(
    "--pattern",
    default="cl100k",
    show_default=True,
    help="Split pattern: cl100k, gpt2, or a regex (a name-like regex needs the prefix 'regex:').",
)
@click.option(
    "--workers", type=int, default=None, help="Counting threads [all cores]; never changes the result."
)
@click.option(
    "--text-field", default="text", show_default=True, help="JSON field / Parquet column with the text."
)
@click.option(
    "--split-on",
    default=None,
    help="Split .txt files into documents on this separator (e.g. '\\n\\n'); a huge single-document .txt is "
    "otherwise held in memory whole.",
)
@click.option(
    "--min-frequency",
    type=int,
    default=2,
    show_default=True,
    help="Stop when the best pair is rarer than this.",
)
@click.option(
    "--special-token",
    "special_tokens",
    multiple=True,
    help="Special token, appended after the merges (repeatable) [<|endoftext|>].",
)
@click.option(
    "--max-skipped-fraction",
    type=click.FloatRange(0.0, 1.0),
    default=DEFAULT_MAX_SKIPPED_FRACTION,
    show_default=True,
    help="Fail on an input whose records are skipped (missing text field, malformed JSON, ...) beyond this share.",
)
@click.option("--storage-options", default=None, help="JSON object of fsspec storage options for URL inputs.")
@click.option("--no-progress", is_flag=True, help="No progress bars.")
def train_cmd(
    inputs: tuple[str, ...],
    vocab_size: int,
    out: str,
    pattern: str,
    workers: int | None,
    text_field: str,
    split_on: str | None,
    min_frequency: int,
    special_tokens: tuple[str, ...],
    max_skipped_fraction: float,
    storage_options: str | None,
    no_progress: bool,
) -> None:
    """Train a tokenizer on INPUT... (files, directories, globs, fsspec URLs: .txt, .jsonl[.gz|.zst], .parquet)."""
    import tokenizer
    from shardstore.cli.options import unescape as unescape_separator  # same --split-on syntax as `build`
    from shardstore.preprocess.sources import iter_texts

    # iter_texts is lazy: options are validated by `train` before any input is opened.
    texts = iter_texts(
        list(inputs),
        text_field=text_field,
        split_on=unescape_separator(split_on) if split_on else None,
        storage_options=parse_storage_options(storage_options),
        max_skipped_fraction=max_skipped_fraction,
        on_ignored=_say_ignored,
    )
    with warnings.catch_warnings(record=True) as caught:  # shown as one `shardstore: warning:` line each
        warnings.simplefilter("always")
        tok = _train(
            tokenizer, texts, vocab_size, pattern, special_tokens, min_frequency, workers, no_progress
        )
    for w in caught:
        click.echo(f"shardstore: warning: {w.message}", err=True)
    tok.save(out)
    click.echo(
        f"wrote {out}: vocab_size={tok.vocab_size} merges={len(tok.merges)} eos_id={tok.eos_id} "
        f"fingerprint={tok.fingerprint}"
    )


def _train(
    tokenizer: Any,
    texts: Any,
    vocab_size: int,
    pattern: str,
    special_tokens: tuple[str, ...],
    min_frequency: int,
    workers: int | None,
    no_progress: bool,
) -> Any:
    return tokenizer.train(
        texts=texts,
        vocab_size=vocab_size,
        pattern=pattern,
        special_tokens=special_tokens or ("<|endoftext|>",),
        min_frequency=min_frequency,
        num_threads=workers,
        progress=not no_progress,
    )


def _say_ignored(files: list[str]) -> None:
    shown = ", ".join(files[:5]) + (", ..." if len(files) > 5 else "")
    click.echo(
        f"shardstore: ignored {len(files)} file(s) of the input directories that are not inputs: {shown}",
        err=True,
    )


@tokenizer_group.command("export")
@click.argument("tokenizer_path", metavar="TOKENIZER")
@click.option(
    "--format",
    "fmt",
    required=True,
    type=enum_choice(ExportFormat),
    help="tiktoken: a .tiktoken ranks file (pattern and special tokens are printed as JSON); hf: tokenizer.json.",
)
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="File to write.")
def export_cmd(tokenizer_path: str, fmt: str, out: str) -> None:
    """Export TOKENIZER (any format `tokenizer encode` reads) for tiktoken or Hugging Face `tokenizers`."""
    from tokenizer import Tokenizer
    from tokenizer.tiktoken_file import tiktoken_metadata, write_tiktoken_bpe

    tok = Tokenizer.open(tokenizer_path)
    if ExportFormat(fmt) is ExportFormat.TIKTOKEN:
        write_tiktoken_bpe(tok, out)
        click.echo(json.dumps({"mergeable_ranks": out, **tiktoken_metadata(tok)}, ensure_ascii=False))
    else:
        tok.save_hf(out)
        click.echo(f"wrote {out}")


@tokenizer_group.command("encode")
@click.argument("tokenizer_path", metavar="TOKENIZER")
@click.argument("text", required=False, default="-")
@click.option(
    "--allow-special", is_flag=True, help="Recognize special-token strings (plain text by default)."
)
def encode_cmd(tokenizer_path: str, text: str, allow_special: bool) -> None:
    """Print the token ids of TEXT (or of stdin when TEXT is '-' or absent), space-separated.

    TOKENIZER: our JSON, an HF tokenizer.json, a .tiktoken file, a GPT-2 folder (encoder.json + vocab.bpe) or an
    encoding name (cl100k_base, o200k_base, gpt2) shipped by an installed package; detected, or forced with a
    prefix (shardstore: tiktoken: hf: gpt2:).
    """
    from tokenizer import Tokenizer

    tok = Tokenizer.open(tokenizer_path)
    if text == "-":
        text = _read_stdin()
    ids = tok.encode(text, allowed_special="all" if allow_special else ())
    click.echo(" ".join(map(str, ids)))


def _read_stdin() -> str:
    data = sys.stdin.buffer.read()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"stdin is not valid UTF-8: {exc.reason} at byte offset {exc.start}; pass UTF-8 text"
        ) from None


def register(root: click.Group) -> None:
    """Add the `tokenizer` command group to the root `shardstore` group."""
    root.add_command(tokenizer_group)
