"""`shardstore info` and `shardstore verify`: look inside a store, and check every byte of it."""

from __future__ import annotations

import json
import os
from typing import Any

import click

from shardstore.errors import FormatError, ShardStoreError
from shardstore.util.sizes import human_bytes, human_count


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
    from shardstore.store.provenance import read_provenance

    details["provenance"] = read_provenance(store, index)
    return details


def _length_summary(s: Any) -> tuple[Any, dict[str, Any]]:
    """Document lengths of a store (from its document index only) and the `info` facts made from them."""
    from shardstore.store.stats import doc_lengths, length_stats, text_byte_stats, tokens_per_file

    lengths = doc_lengths(s)
    return lengths, {
        "doc_lengths": length_stats(lengths).to_dict(),
        **text_byte_stats(s, lengths).to_dict(),
        "top_files": tokens_per_file(s, lengths),
    }


def _count(n: int) -> str:
    text = human_count(n)
    return text if text == str(n) else f"{text} ({n})"


def _echo_info(summary: dict[str, Any]) -> None:
    for key in ("root", "num_tokens", "num_docs", "num_shards"):
        value = summary[key]
        click.echo(f"{key}: {_count(value) if isinstance(value, int) else value}")
    for key in ("dtype", "fingerprint", "tokenizer_fingerprint"):
        click.echo(f"{key}: {summary[key]}")
    click.echo(f"vocab_size: {summary['vocab_size']}  eos_id: {summary['eos_id']}")
    click.echo(f"shard_bytes: {human_bytes(summary['shard_bytes'])} ({summary['shard_bytes']})")
    d = summary["doc_lengths"]
    if d is None:
        click.echo("document tokens: not shown for a remote store (they need its shards; stage it first)")
    else:
        _echo_lengths(summary, d)
    for f in summary["files"]:
        click.echo(f"file: {f['name']} ({f['size']} bytes, xxh3_64 {f['checksum']})")


def _echo_lengths(summary: dict[str, Any], d: dict[str, Any]) -> None:
    click.echo(
        f"document tokens: mean {d['mean']:.1f}  p50 {d['p50']}  p90 {d['p90']}  p99 {d['p99']}  "
        f"min {d['min']}  max {d['max']}  empty {d['empty']}"
    )
    b = summary["doc_bytes"]
    if b is None:
        click.echo(f"document bytes: not recorded ({summary['doc_bytes_missing']})")
    else:
        per_token = summary["bytes_per_token"]
        click.echo(
            f"document bytes: mean {b['mean']:.1f}  p50 {b['p50']}  p90 {b['p90']}  p99 {b['p99']}  "
            f"min {b['min']}  max {b['max']}  total {human_bytes(b['total'])}"
            + ("" if per_token is None else f"  ({per_token:.2f} bytes per token)")
        )
    if d["truncated_fraction"]:
        click.echo(
            f"warning: {d['at_max']} documents ({d['truncated_fraction']:.1%}) have exactly the maximum length "
            f"{d['max']}: they look cut at a limit before they reached shardstore"
        )
    if summary["top_files"]:
        click.echo(f"top {len(summary['top_files'])} input files by tokens:")
        total = max(summary["num_tokens"], 1)
        for row in summary["top_files"]:
            click.echo(
                f"  {human_count(row['tokens']):>10} {row['tokens'] / total:>6.1%}  {row['file']} "
                f"({row['docs']} docs)"
            )


@click.command("info")
@click.argument("store")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
@click.option(
    "--doc", "doc", type=int, default=None, help="Also show document N: token count, text, provenance."
)
@click.option(
    "--plot", "plot", default=None, metavar="FILE.png", help="Draw a histogram of document lengths."
)
@click.option("--cache-dir", default=None, help="Node-local cache for remote stores.")
def info_cmd(store: str, as_json: bool, doc: int | None, plot: str | None, cache_dir: str | None) -> None:
    """Show a store's counts, sizes, document lengths, top input files and fingerprints (--doc N: one document).

    The length statistics come from the document index alone; no token payload is read.
    """
    if plot is not None:
        from shardstore.cli.plots import require_matplotlib

        require_matplotlib()  # before any work: say how to install it at once
    s = _open(store, cache_dir, "touch")
    summary = store_summary(s)
    from shardstore.store.locator import split_url

    lengths = None
    if split_url(store)[0] in (None, "file") or plot is not None:
        lengths, extra = _length_summary(s)
        summary.update(extra)
    else:  # a remote store: its document indexes live in the shards, and `info URL` never downloads a shard
        summary.update({"doc_lengths": None, "doc_bytes": None, "bytes_per_token": None, "top_files": None})
        summary["doc_bytes_missing"] = "not shown for a remote store"
    if doc is not None:
        if not 0 <= doc < s.num_docs:
            raise click.BadParameter(
                f"document {doc} is outside 0..{s.num_docs - 1} of {s.root}", param_hint="--doc"
            )
        summary["doc"] = _doc_details(s, doc)
    if plot is not None and lengths is not None:
        from shardstore.cli.plots import plot_length_histogram

        plot_length_histogram(lengths, plot, title=f"{s.root}: {s.num_docs} documents")
        summary["plot"] = plot
    if as_json:
        click.echo(json.dumps(summary, sort_keys=True, indent=2))
        return
    _echo_info(summary)
    if plot is not None:
        click.echo(f"plot: {plot}")
    if doc is not None:
        d = summary["doc"]
        click.echo(f"doc {d['index']}: {d['num_tokens']} tokens")
        if d["provenance"] is not None:
            click.echo(f"provenance: {json.dumps(d['provenance'], sort_keys=True)}")
        if d["text"] is not None:
            click.echo("text:")
            click.echo(d["text"])


def _stats_targets(target: str, cache_dir: str | None) -> list[tuple[str | None, Any]]:
    """(source name or None, Store) for a store, or for every store of every source of a mixture file."""
    if target.lower().endswith((".toml", ".yaml", ".yml")):
        from shardstore.loader.kept import KeptStore
        from shardstore.loader.mixture import Mixture

        # the stores themselves (a masked source holds KeptStore views of them)
        return [
            (src.name, st.store if isinstance(st, KeptStore) else st)
            for src in Mixture.from_file(target).open_sources()
            for st in src.stores
        ]
    return [(None, _open(target, cache_dir, "touch"))]


def _pct(x: float | None) -> str:
    return "n/a (no tokenizer)" if x is None else f"{x:.1%}"


@click.command("stats")
@click.argument("target", metavar="STORE_OR_MIX")
@click.option(
    "--sample-tokens",
    type=click.IntRange(min=1),
    default=2_000_000,
    show_default=True,
    help="Tokens to sample per store (every k-th document).",
)
@click.option(
    "--top", type=click.IntRange(min=1), default=20, show_default=True, help="Most frequent tokens shown."
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object with a `stores` list.")
@click.option("--cache-dir", default=None, help="Node-local cache for remote stores.")
def stats_cmd(target: str, sample_tokens: int, top: int, as_json: bool, cache_dir: str | None) -> None:
    """Token statistics of a store (or of each store of a mixture file): what a bad tokenizer or field looks like.

    Prints the most frequent tokens with their text, the share of tokens that are single raw bytes, of bytes that
    are whitespace or in code-like documents, of U+FFFD characters, and of documents that look truncated.
    """
    from shardstore.store.stats import doc_lengths, length_stats, token_stats

    rows = []
    for source, s in _stats_targets(target, cache_dir):
        lengths = length_stats(doc_lengths(s))
        row = {"store": s.root, "source": source, "docs": s.num_docs, "tokens": s.num_tokens}
        row.update(token_stats(s, sample_tokens=sample_tokens, top=top).to_dict())
        row["truncated_fraction"] = lengths.truncated_fraction
        rows.append(row)
    if as_json:
        click.echo(json.dumps({"stores": rows}, indent=1))
        return
    for row in rows:
        name = f"{row['source']}: " if row["source"] else ""
        click.echo(
            f"{name}{row['store']}: {human_count(row['tokens'])} tokens in {human_count(row['docs'])} documents; "
            f"sampled {human_count(row['sample_tokens'])} tokens of {row['sample_docs']} documents"
        )
        click.echo(
            f"  single-byte tokens {_pct(row['byte_token_fraction'])}  whitespace bytes "
            f"{_pct(row['whitespace_fraction'])}  code-like bytes {_pct(row['code_fraction'])}  "
            f"U+FFFD {_pct(row['replacement_fraction'])}  truncated-looking docs {_pct(row['truncated_fraction'])}"
        )
        for t in row["top_tokens"]:
            click.echo(f"  {t['id']:>8} {t['share']:>7.2%}  {t['text']!r}")


def _verify_masks(target: str, store: Any | None = None) -> None:
    """Verify a mask file or a MASKDIR (against `store` when given); one line per mask, error if any is bad."""
    from shardstore.store.mask import verify_masks

    results = verify_masks(target)
    bad = 0
    for path, m, error in results:
        same_store = m is not None and store is not None and m.store_fingerprint == store.fingerprint
        if same_store and m is not None and store is not None and m.num_docs != store.num_docs:
            error = f"{path}: mask of {m.num_docs} documents for a store of {store.num_docs}"
            m = None
        if m is None:
            bad += 1
            click.echo(f"FAILED {error}")
        elif store is None or m.store_fingerprint == store.fingerprint:
            click.echo(f"OK {path}: mask of {m.num_excluded} documents, fingerprint {m.fingerprint}")
    if bad:
        raise FormatError(
            f"{target}: verification failed: {bad} of {len(results)} mask(s) are bad, listed above"
        )
    if not results:
        click.echo(f"{target}: no mask files")


def _is_mask_target(target: str) -> bool:
    return target.endswith(".mask") or (
        os.path.isdir(target) and not os.path.exists(os.path.join(target, "manifest.json"))
    )


@click.command("verify")
@click.argument("store")
@click.option("--cache-dir", default=None, help="Node-local cache for remote stores.")
@click.option(
    "--masks",
    "masks",
    default=None,
    metavar="MASK_OR_MASKDIR",
    help="Also verify these masks (a file or a MASKDIR folder), checking those of this store against it.",
)
def verify_cmd(store: str, cache_dir: str | None, masks: str | None) -> None:
    """Check every byte of every shard and file against the manifest; exit 0 only if all is well.

    Each problem is printed on its own line, naming the file, block and byte offset. STORE may also be a mask file
    or a MASKDIR folder: every mask in it is verified (header seal, size, checksum, ids).
    """
    from tqdm import tqdm

    from shardstore.store.verify import verify_store

    if _is_mask_target(store):
        _verify_masks(store)
        return

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
    if masks is not None:
        _verify_masks(masks, s)


def register(root: click.Group) -> None:
    """Add this area's commands to the root `shardstore` group."""
    root.add_command(info_cmd)
    root.add_command(verify_cmd)
    root.add_command(stats_cmd)
