"""`shardstore mix plan` (what a run of N tokens draws from each source) and `shardstore peek` (what a rank sees).

Both only parse arguments and call the library: `Mixture.plan` and `shardstore.loader.peek.peek_rows`.
"""

from __future__ import annotations

import json
import re
from typing import Any

import click

from shardstore.errors import ConfigError

_SUFFIX = {"": 1, "K": 10**3, "M": 10**6, "B": 10**9, "G": 10**9, "T": 10**12}
_COUNT = re.compile(r"^\s*([0-9][0-9_]*(?:\.[0-9]+)?(?:[eE][0-9]+)?)\s*([KMBGT]?)\s*$", re.IGNORECASE)


def parse_count(text: str) -> int:
    """``"10B"`` -> 10_000_000_000; accepts K/M/B(=G)/T suffixes, underscores, decimals and exponents."""
    m = _COUNT.match(text)
    if not m:
        raise ConfigError(f"cannot read a token count from {text!r}; use e.g. 500M, 10B, 1.5T or 2000000")
    value = float(m.group(1).replace("_", "")) * _SUFFIX[m.group(2).upper()]
    if value < 1 or value != int(value):
        raise ConfigError(f"token count {text!r} must be a whole number >= 1")
    return int(value)


def _human(n: float) -> str:
    for unit, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f}{unit}"
    return f"{n:g}"


def _plan_table(plan: Any) -> str:
    header = f"{'source':<20} {'weight':>8} {'available':>11} {'drawn':>11} {'epochs':>8}"
    lines = [
        f"plan for {_human(plan.total_tokens)} tokens = {plan.total_samples} samples of {plan.seq_len}",
        header,
    ]
    for s in plan.sources:
        lines.append(
            f"{s.name:<20} {s.weight:>8.4f} {_human(s.tokens_available):>11} {_human(s.tokens_drawn):>11} "
            f"{s.epochs:>8.3f}"
        )
    lines += [f"warning: {w}" for w in plan.warnings]
    return "\n".join(lines)


@click.group("mix")
def mix() -> None:
    """Inspect data mixtures."""


@mix.command("plan")
@click.argument("mix_file", metavar="MIX", type=click.Path(dir_okay=False))
@click.option("--tokens", "tokens", required=True, help="Training tokens of the run, e.g. 500M, 10B, 2e9.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
def plan_cmd(mix_file: str, tokens: str, as_json: bool) -> None:
    """Per-source weight, tokens available, tokens drawn, epochs and warnings for a run of N tokens."""
    from shardstore.loader.mixture import Mixture

    plan = Mixture.from_file(mix_file).plan(parse_count(tokens))
    click.echo(json.dumps(plan.to_dict(), indent=1) if as_json else _plan_table(plan))


def peek_rows(mix_file: str, *, step: int, rank: int, world_size: int, batch_size: int | None) -> list[dict]:
    """What rank ``rank`` of ``world_size`` receives at ``step``: `shardstore.loader.peek.peek_rows` on the file."""
    from shardstore.loader.mixture import Mixture
    from shardstore.loader.peek import peek_rows as rows_of

    return rows_of(
        Mixture.from_file(mix_file), step=step, rank=rank, world_size=world_size, batch_size=batch_size
    )


@click.command("peek")
@click.argument("mix_file", metavar="MIX", type=click.Path(dir_okay=False))
@click.option("--step", type=int, required=True, help="Training step (0-based).")
@click.option("--rank", type=int, default=0, show_default=True)
@click.option("--world-size", type=int, default=1, show_default=True)
@click.option(
    "--batch-size", type=int, default=None, help="Samples per rank (default: global_batch_size / W)."
)
@click.option(
    "--chars", type=int, default=200, show_default=True, help="Characters of text shown per sample."
)
@click.option("--json", "as_json", is_flag=True, help="Print the samples as JSON (with all input ids).")
def peek_cmd(
    mix_file: str, step: int, rank: int, world_size: int, batch_size: int | None, chars: int, as_json: bool
) -> None:
    """Decode what RANK sees at STEP: each sample's source, epoch, document, provenance and text."""
    rows = peek_rows(mix_file, step=step, rank=rank, world_size=world_size, batch_size=batch_size)
    if as_json:
        click.echo(json.dumps(rows, indent=1))
        return
    for row in rows:
        prov = row["provenance"]
        where = f" from {prov.get('file')}:{prov.get('record')}" if isinstance(prov, dict) else ""
        click.echo(
            f"sample {row['global_sample']} source={row['source']} epoch={row['epoch']} window={row['window']} "
            f"doc={row['doc']}{where}"
        )
        text = row["text"] if row["text"] is not None else " ".join(map(str, row["input_ids"][:64]))
        click.echo("  " + repr(text[:chars]))


def register(root: click.Group) -> None:
    """Add this area's commands to the root `shardstore` group."""
    root.add_command(mix)
    root.add_command(peek_cmd)
