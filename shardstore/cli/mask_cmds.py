"""`shardstore mask write|show` and `shardstore mix check-heldout`: argument parsing only.

The library does the work: `shardstore.store.mask` (build, write, read, verify), `shardstore.store.provenance_index`
(provenance records to document ids) and `shardstore.loader.heldout_check` (the proof of separation).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import click

from shardstore.errors import ConfigError, ShardStoreError


@click.group("mask")
def mask() -> None:
    """Write and inspect document masks (documents left out of training, without rewriting a shard)."""


def _lines(path: str) -> list[str]:
    try:
        if path == "-":
            return [ln.rstrip("\n") for ln in sys.stdin]
        with open(path, encoding="utf-8") as f:
            return [ln.rstrip("\n") for ln in f]
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc


def _ids_file(path: str) -> tuple[list[int], list[str | None]]:
    """Document ids, one per line, each optionally followed by a tab and its reason."""
    ids, reasons = [], []
    for n, line in enumerate(_lines(path), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        head, _, reason = line.partition("\t")
        try:
            ids.append(int(head.strip()))
        except ValueError:
            raise ConfigError(
                f"{path}:{n}: expected a document id (an integer), got {head.strip()!r}"
            ) from None
        reasons.append(reason.strip() or None)
    return ids, reasons


def _records_file(path: str) -> tuple[list[tuple[str, int]], list[str | None]]:
    """Provenance records as JSON lines: {"file": URL, "record": N, "reason": optional}."""
    records, reasons = [], []
    for n, line in enumerate(_lines(path), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            records.append((str(obj["file"]), int(obj["record"])))
        except (ValueError, KeyError, TypeError):
            raise ConfigError(
                f'{path}:{n}: expected a JSON object {{"file": ..., "record": N}}, got {line[:80]!r}'
            ) from None
        reason = obj.get("reason")
        reasons.append(str(reason) if reason is not None else None)
    return records, reasons


@mask.command("write")
@click.argument("store")
@click.option(
    "--out",
    required=True,
    type=click.Path(),
    help="The mask file to write, or a MASKDIR folder (an existing folder or a path ending in '/'): the mask is "
    'then written there as <store fingerprint>.mask, where `exclude = ["MASKDIR"]` finds it.',
)
@click.option(
    "--ids",
    "ids_path",
    default=None,
    help="File of document ids, one per line ('-': stdin); "
    "an optional tab-separated second column is that document's reason.",
)
@click.option(
    "--provenance",
    "records_path",
    default=None,
    help="JSON lines of provenance records "
    '{"file": URL, "record": N, "reason": optional}, as `info --doc` shows them.',
)
@click.option(
    "--reason", default="excluded", show_default=True, help="Reason of documents without their own."
)
def write_cmd(store: str, out: str, ids_path: str | None, records_path: str | None, reason: str) -> None:
    """Write a mask excluding documents of STORE, given by id or by provenance (file + record)."""
    from shardstore.store.mask import Mask, mask_file_name, write_mask
    from shardstore.store.store import Store

    if (ids_path is None) == (records_path is None):
        raise ConfigError("give the documents with exactly one of --ids FILE or --provenance FILE")
    s = Store.open(store)
    if ids_path is not None:
        ids, reasons = _ids_file(ids_path)
    else:
        from shardstore.store.provenance_index import docs_of_records

        records, reasons = _records_file(records_path or "")
        ids = docs_of_records(s, records).tolist()
    per_doc = [r or reason for r in reasons]
    m = Mask.build(
        store_fingerprint=s.fingerprint,
        num_docs=s.num_docs,
        ids=ids,
        reasons=reason if len(set(per_doc)) <= 1 else per_doc,
    )
    if out.endswith(("/", os.sep)) or os.path.isdir(out):
        os.makedirs(out, exist_ok=True)
        out = os.path.join(out, mask_file_name(s.fingerprint))
    write_mask(out, m)
    click.echo(
        f"wrote {out}: {m.num_excluded} of {m.num_docs} documents excluded ({m.encoding}), fingerprint {m.fingerprint}"
    )


@mask.command("show")
@click.argument("mask_path", metavar="MASK")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option(
    "--ids",
    "show_ids",
    type=click.IntRange(min=0),
    default=10,
    show_default=True,
    help="Excluded document ids listed.",
)
def show_cmd(mask_path: str, as_json: bool, show_ids: int) -> None:
    """Summarize a mask (verified first): its store, counts, encoding, size and reasons."""
    from shardstore.store.mask import read_mask

    m = read_mask(mask_path)
    summary = m.summary()
    summary["first_ids"] = m.excluded_ids()[:show_ids].tolist()
    if as_json:
        click.echo(json.dumps(summary, indent=1, sort_keys=True))
        return
    click.echo(f"mask {mask_path}  fingerprint {summary['fingerprint']}")
    click.echo(f"store {summary['store_fingerprint']} ({summary['num_docs']} documents)")
    share = summary["num_excluded"] / summary["num_docs"] if summary["num_docs"] else 0.0
    click.echo(
        f"excluded {summary['num_excluded']} documents ({share:.2%}), {summary['encoding']}, "
        f"{summary['bytes']} bytes"
    )
    for r, count in sorted(summary["reasons"].items(), key=lambda kv: (-kv[1], kv[0]))[:20]:
        click.echo(f"  {count:>10}  {r}")
    click.echo(f"first ids: {summary['first_ids']}")


@click.command("check-heldout")
@click.argument("mix_file", metavar="MIX", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def check_heldout_cmd(mix_file: str, as_json: bool) -> None:
    """Prove that no held-out document, nor an exact copy of one, is in MIX's training stream (exit 1 if one is)."""
    from shardstore.loader.heldout_check import check_heldout
    from shardstore.loader.mixture import Mixture

    result = check_heldout(Mixture.from_file(mix_file))
    d: dict[str, Any] = result.to_dict()
    if as_json:
        click.echo(json.dumps(d, indent=1, sort_keys=True))
    else:
        click.echo(f"held-out: {d['heldout_docs']} documents, {d['heldout_tokens']} tokens")
        click.echo(f"training stream scanned: {d['train_docs']} documents, {d['train_tokens']} tokens")
        click.echo(
            f"held-out content in the training stream: {d['leaked_docs']} documents, "
            f"{d['leaked_tokens']} tokens"
        )
        for ex in d["examples"]:
            click.echo(f"  leak: source {ex['source']!r} at token {ex['position']} ({ex['tokens']} tokens)")
    if not result.ok:
        raise HeldoutLeakError(
            f"{mix_file}: {d['leaked_docs']} held-out document(s) ({d['leaked_tokens']} tokens) appear in the "
            "training stream"
        )
    if not as_json:
        click.echo("OK: the training stream holds no held-out content")


class HeldoutLeakError(ShardStoreError):
    """check-heldout found held-out content in the training stream (the CLI's exit 1)."""


def register(root: click.Group) -> None:
    """Add this area's commands to the root `shardstore` group."""
    root.add_command(mask)
    from shardstore.cli.mix_cmds import mix

    mix.add_command(check_heldout_cmd)
