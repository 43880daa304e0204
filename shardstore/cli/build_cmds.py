"""`shardstore build`: parse arguments into a `BuildConfig` and run it; print the report."""

from __future__ import annotations

import json

import click

from shardstore.cli.options import enum_choice, parse_storage_options, unescape
from shardstore.preprocess.modes import DEFAULT_MAX_SKIPPED_FRACTION, Executor, Utf8Policy


def tokenizer_input(spec: str, out: str) -> str:
    """The tokenizer file a build reads: `spec` itself when it is our JSON file, else the imported tokenizer saved
    into the build's journal (and from there into the store as tokenizer.json, with its fingerprint)."""
    from shardstore.preprocess.tokinput import save_tokenizer_input
    from tokenizer import Tokenizer
    from tokenizer.detect import detect_kind

    kind, path = detect_kind(spec)
    if kind == "shardstore":
        return path
    return save_tokenizer_input(Tokenizer.open(spec), out)


@click.command("build")
@click.argument("inputs", nargs=-1, required=True, metavar="INPUT...")
@click.option(
    "--tokenizer",
    "tokenizer_path",
    required=True,
    help="Tokenizer: our JSON, tokenizer.json (HF), a .tiktoken file, a GPT-2 folder, or a name such as "
    "cl100k_base / o200k_base / gpt2 (from installed packages); prefixes shardstore: tiktoken: hf: gpt2: force one.",
)
@click.option(
    "--out", required=True, type=click.Path(file_okay=False), help="Store directory to create or resume."
)
@click.option(
    "--workers", type=click.IntRange(min=1), default=None, help="Local worker processes [all cores]."
)
@click.option("--allow-partial", is_flag=True, help="Commit the store even if some input files failed.")
@click.option(
    "--rebuild-changed", is_flag=True, help="Rebuild the units whose input files changed (else refused)."
)
@click.option(
    "--text-field", default="text", show_default=True, help="JSON field / Parquet column with the text."
)
@click.option(
    "--split-on", default=None, help="Split .txt files into documents on this separator (e.g. '\\n\\n')."
)
@click.option(
    "--num-nodes", type=click.IntRange(min=1), default=1, show_default=True, help="Nodes sharing the work."
)
@click.option(
    "--node-rank", type=click.IntRange(min=0), default=0, show_default=True, help="This node's rank."
)
@click.option(
    "--finalize", is_flag=True, help="Only write the manifest, once every unit of every node is done."
)
@click.option("--executor", type=enum_choice(Executor), default=Executor.LOCAL.value, show_default=True)
@click.option("--no-eos", is_flag=True, help="Do not append the EOS token after each document.")
@click.option(
    "--utf8-errors",
    type=enum_choice(Utf8Policy),
    default=Utf8Policy.REPLACE.value,
    show_default=True,
    help="Invalid UTF-8 in a document: replace bad bytes with U+FFFD, skip the document, or fail the file.",
)
@click.option(
    "--max-shard-mb", type=click.IntRange(min=1), default=256, show_default=True, help="Shard size limit."
)
@click.option(
    "--unit-mb",
    type=click.IntRange(min=1),
    default=256,
    show_default=True,
    help="Split larger uncompressed JSON Lines / Parquet files into work units of about this size.",
)
@click.option(
    "--max-skipped-fraction",
    type=click.FloatRange(0.0, 1.0),
    default=DEFAULT_MAX_SKIPPED_FRACTION,
    show_default=True,
    help="Fail an input whose records are skipped (missing text field, malformed JSON, ...) beyond this share.",
)
@click.option("--force", is_flag=True, help="Build into a non-empty directory that is not a store.")
@click.option("--compress", is_flag=True, help="Also write zstd copies of the shards (for object storage).")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option(
    "--storage-options",
    default=None,
    help="JSON object of fsspec storage options for URL inputs (e.g. s3 endpoint).",
)
def build_cmd(
    inputs: tuple[str, ...],
    tokenizer_path: str,
    out: str,
    workers: int | None,
    allow_partial: bool,
    rebuild_changed: bool,
    text_field: str,
    split_on: str | None,
    num_nodes: int,
    node_rank: int,
    finalize: bool,
    executor: str,
    no_eos: bool,
    utf8_errors: str,
    max_shard_mb: int,
    unit_mb: int,
    max_skipped_fraction: float,
    force: bool,
    compress: bool,
    no_progress: bool,
    as_json: bool,
    storage_options: str | None,
) -> None:
    """Tokenize INPUT... (files, directories, globs, fsspec URLs) into a store at --out.

    Resumable: re-run the same command after a crash; a finished build re-run writes nothing.
    """
    from shardstore.preprocess.pipeline import BuildConfig, run_build

    opts = parse_storage_options(storage_options)
    tokenizer_path = tokenizer_input(tokenizer_path, out)
    cfg = BuildConfig(
        inputs=inputs,
        tokenizer=tokenizer_path,
        out=out,
        workers=workers,
        text_field=text_field,
        split_on=unescape(split_on) if split_on else None,
        utf8_errors=Utf8Policy(utf8_errors),
        eos=not no_eos,
        max_shard_bytes=max_shard_mb << 20,
        unit_bytes=unit_mb << 20,
        allow_partial=allow_partial,
        rebuild_changed=rebuild_changed,
        num_nodes=num_nodes,
        node_rank=node_rank,
        finalize=finalize,
        executor=Executor(executor),
        storage_options=opts,
        progress=not no_progress,
        compress=compress,
        max_skipped_fraction=max_skipped_fraction,
        force=force,
    )
    report = run_build(cfg)
    click.echo(json.dumps(report.to_dict(), indent=1, sort_keys=True) if as_json else report.summary())


def register(root: click.Group) -> None:
    """Add this area's commands to the root `shardstore` group."""
    root.add_command(build_cmd)
