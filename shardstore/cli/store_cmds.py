"""`shardstore info` and `shardstore verify`: look inside a store, and check every byte of it."""

from __future__ import annotations

import json
from typing import Any

import click

from shardstore.errors import FormatError, ShardStoreError


def _open(store: str, cache_dir: str | None, verify: str) -> Any:
    from shardstore.store.store import Store

    return Store.open(store, verify=verify, cache_dir=cache_dir)


def store_summary(store: Any) -> dict[str, Any]:
    """The facts `info --json` prints (a plain JSON-safe dict)."""
    m = store.manifest
    tok = m.tokenizer
    return {
        "root": store.root,
        "format_version": m.format_version,
        "num_tokens": store.num_tokens,
        "num_docs": store.num_docs,
        "num_shards": store.num_shards,
        "dtype": store.dtype.name,
        "fingerprint": store.fingerprint,
        "tokenizer_fingerprint": store.tokenizer_fingerprint,
        "vocab_size": tok.vocab_size if tok else None,
        "eos_id": tok.eos_id if tok else None,
        "special_ids": dict(tok.special_ids) if tok else {},
        "shard_bytes": sum(s.size for s in m.shards),
        "files": [f.to_dict() for f in m.files],
        "provenance": dict(m.provenance),
    }


def _doc_details(store: Any, index: int) -> dict[str, Any]:
    tokens = store.doc(index)
    details: dict[str, Any] = {
        "index": index,
        "num_tokens": int(tokens.size),
        "text": None,
        "provenance": None,
    }
    tok = store.tokenizer
    if tok is not None:
        details["text"] = tok.decode(tokens.tolist())
    try:
        from shardstore.store.provenance import read_provenance
    except ImportError:
        return details
    details["provenance"] = read_provenance(store, index)
    return details


@click.command("info")
@click.argument("store")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
@click.option(
    "--doc", "doc", type=int, default=None, help="Also show document N: token count, text, provenance."
)
@click.option("--cache-dir", default=None, help="Node-local cache for remote stores.")
def info_cmd(store: str, as_json: bool, doc: int | None, cache_dir: str | None) -> None:
    """Show a store's counts, dtype, fingerprints and files (and one document with --doc N)."""
    s = _open(store, cache_dir, "touch")
    summary = store_summary(s)
    if doc is not None:
        if not 0 <= doc < s.num_docs:
            raise click.BadParameter(
                f"document {doc} is outside 0..{s.num_docs - 1} of {s.root}", param_hint="--doc"
            )
        summary["doc"] = _doc_details(s, doc)
    if as_json:
        click.echo(json.dumps(summary, sort_keys=True, indent=2))
        return
    for key in (
        "root",
        "num_tokens",
        "num_docs",
        "num_shards",
        "dtype",
        "fingerprint",
        "tokenizer_fingerprint",
    ):
        click.echo(f"{key}: {summary[key]}")
    click.echo(f"vocab_size: {summary['vocab_size']}  eos_id: {summary['eos_id']}")
    click.echo(f"shard_bytes: {summary['shard_bytes']}")
    for f in summary["files"]:
        click.echo(f"file: {f['name']} ({f['size']} bytes, xxh3_64 {f['checksum']})")
    if doc is not None:
        d = summary["doc"]
        click.echo(f"doc {d['index']}: {d['num_tokens']} tokens")
        if d["provenance"] is not None:
            click.echo(f"provenance: {json.dumps(d['provenance'], sort_keys=True)}")
        if d["text"] is not None:
            click.echo("text:")
            click.echo(d["text"])


@click.command("verify")
@click.argument("store")
@click.option("--cache-dir", default=None, help="Node-local cache for remote stores.")
def verify_cmd(store: str, cache_dir: str | None) -> None:
    """Check every byte of every shard and file against the manifest; exit 0 only if all is well.

    Each problem is printed on its own line, naming the file, block and byte offset.
    """
    from tqdm import tqdm

    from shardstore.store.verify import verify_store

    try:
        s = _open(store, cache_dir, "off")
    except ShardStoreError as exc:
        click.echo(f"FAILED {exc}")
        raise FormatError(f"{store}: verification failed: the manifest cannot be used") from None
    total = s.num_shards + len(s.manifest.files)
    with tqdm(total=total, unit="file", desc="verify", disable=None, leave=False) as bar:
        report = verify_store(s, on_file=lambda _name: bar.update(1))
    for problem in report.problems:
        click.echo(f"FAILED {problem}")
    uncovered = [
        f"NOT COVERED {n}: not checked by verify, and never read by a Store" for n in report.not_covered
    ]
    if not report.ok:
        for line in uncovered:
            click.echo(line)
        # An error (not click's Exit) so the entry point turns it into exit code 1 with one summary line.
        raise FormatError(f"{s.root}: verification failed: {len(report.problems)} problem(s), listed above")
    click.echo(
        f"OK {s.root}: {report.files_checked} files, {report.bytes_checked} bytes, fingerprint {s.fingerprint}"
        + (f"; {len(report.not_covered)} file(s) not covered, listed below" if uncovered else "")
    )
    for line in uncovered:
        click.echo(line)


def register(root: click.Group) -> None:
    """Add this area's commands to the root `shardstore` group."""
    root.add_command(info_cmd)
    root.add_command(verify_cmd)
