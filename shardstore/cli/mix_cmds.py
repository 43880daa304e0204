"""`shardstore mix plan` (what a run of N tokens draws from each source) and `shardstore peek` (what a rank sees).

Both only parse arguments and call the library: `Mixture.plan` and `shardstore.loader.peek.peek_rows`.
"""

from __future__ import annotations

import json
import re
from typing import Any

import click

from shardstore.errors import ConfigError
from shardstore.util.sizes import human_count

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


def _plan_table(plan: Any) -> str:
    header = f"{'source':<20} {'weight':>8} {'available':>11} {'drawn':>11} {'epochs':>8}"
    lines = [
        f"plan for {human_count(plan.total_tokens)} tokens = {plan.total_samples} samples of {plan.seq_len}",
        header,
    ]
    for s in plan.sources:
        lines.append(
            f"{s.name:<20} {s.weight:>8.4f} {human_count(s.tokens_available):>11} {human_count(s.tokens_drawn):>11} "
            f"{s.epochs:>8.3f}"
        )
        if (
            s.excluded_tokens or s.heldout_tokens
        ):  # masks or a held-out split: what training keeps of the source
            lines.append(
                f"{'':<20} kept {human_count(s.kept_tokens)}, excluded by masks {human_count(s.excluded_tokens)}, "
                f"held out {human_count(s.heldout_tokens)} tokens"
            )
        for m in s.masks:
            lines.append(
                f"{'':<20} mask {m['mask']}: {m['docs']} documents, {human_count(m['tokens'])} tokens"
            )
    lines += [f"warning: {w}" for w in plan.warnings]
    return "\n".join(lines)


@click.group("mix")
def mix() -> None:
    """Inspect data mixtures."""


def _phase_section(mixture: Any, plan: Any) -> tuple[list[dict[str, Any]], list[str]]:
    """The plan's phases (as JSON-safe dicts) and the warnings about weights that do not sum to 1."""
    from shardstore.mix.phases import phase_rows, raw_weight_warning

    cfg = mixture.config
    names = [s.name for s in plan.sources]
    windows = [s.samples_available for s in plan.sources]
    rows = phase_rows(mixture.interleave.schedule, cfg.phases(), windows, total_samples=plan.total_samples)
    phases = [r.to_dict(names, seq_len=cfg.seq_len, global_batch_size=cfg.global_batch_size) for r in rows]
    warnings = [raw_weight_warning("source weights", {s.name: s.weight for s in cfg.sources})]
    warnings += [
        raw_weight_warning(f"schedule phase {i} weights", pc.weights) for i, pc in enumerate(cfg.schedule)
    ]
    return phases, [w for w in warnings if w]


def _phase_table(phases: list[dict[str, Any]]) -> str:
    lines = ["phases:"]
    for p in phases:
        steps = "" if p["start_step"] is None else f" (steps {p['start_step']}-{p['end_step']})"
        ramp = f", linear ramp over {human_count(p['ramp_tokens'])} tokens" if p["ramp"] == "linear" else ""
        lines.append(
            f"  phase {p['phase']}: tokens {human_count(p['start_tokens'])}-{human_count(p['end_tokens'])}{steps}{ramp}"
        )
        for s in p["sources"]:
            lines.append(
                f"    {s['name']:<18} weight {s['weight_start']:.4f} -> {s['weight_end']:.4f}  "
                f"drawn {human_count(s['tokens_drawn']):>9}  epoch at end {s['epochs_end']:.3f}"
            )
    return "\n".join(lines)


def _plot_plan(mixture: Any, plan: Any, path: str) -> None:
    from shardstore.cli.plots import plot_mixture
    from shardstore.mix.phases import weight_curves

    names = [s.name for s in plan.sources]
    windows = [s.samples_available for s in plan.sources]
    xs, weights, epochs = weight_curves(
        mixture.interleave.schedule, windows, total_samples=plan.total_samples
    )
    tokens = [x * plan.seq_len for x in xs]
    plot_mixture(
        tokens,
        dict(zip(names, weights, strict=True)),
        dict(zip(names, epochs, strict=True)),
        path,
        title=f"mixture over {human_count(plan.total_tokens)} tokens",
    )


@mix.command("plan")
@click.argument("mix_file", metavar="MIX", type=click.Path(dir_okay=False))
@click.option("--tokens", "tokens", required=True, help="Training tokens of the run, e.g. 500M, 10B, 2e9.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@click.option(
    "--plot",
    "plot",
    default=None,
    metavar="FILE.png",
    help="Draw each source's weight and epochs over tokens.",
)
def plan_cmd(mix_file: str, tokens: str, as_json: bool, plot: str | None) -> None:
    """Per-source weight, tokens available, tokens drawn, epochs and warnings for a run of N tokens.

    A scheduled mixture also gets one row per phase: start and end in tokens (and steps), the weights at both
    ends, and what each source draws in it.
    """
    from shardstore.loader.mixture import Mixture

    if plot is not None:
        from shardstore.cli.plots import require_matplotlib

        require_matplotlib()
    mixture = Mixture.from_file(mix_file)
    plan = mixture.plan(parse_count(tokens))
    phases, weight_warnings = _phase_section(mixture, plan)
    if plot is not None:
        _plot_plan(mixture, plan, plot)
    if as_json:
        out = plan.to_dict()
        out["phases"] = phases
        out["warnings"] = weight_warnings + out["warnings"]
        if plot is not None:
            out["plot"] = plot
        click.echo(json.dumps(out, indent=1))
        return
    click.echo(_plan_table(plan))
    for w in weight_warnings:
        click.echo(f"warning: {w}")
    if len(phases) > 1:
        click.echo(_phase_table(phases))
    if plot is not None:
        click.echo(f"plot: {plot}")


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
