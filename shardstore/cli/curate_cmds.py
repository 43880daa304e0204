"""`shardstore dedup` and `shardstore decontaminate`: parse arguments, call `shardstore.curate`, print the report."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from shardstore.cli.options import enum_choice
from shardstore.curate.executors import Executor
from shardstore.curate.minhash import Confirm
from shardstore.util.sizes import human_count, parse_size


def _stage_printer(enabled: bool) -> Any:
    if not enabled:
        return None

    def show(stage: str, done: int, total: int) -> None:
        sys.stderr.write(f"\r{stage}: {done}/{total} tasks")
        if done == total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return show


def _store_lines(stores: list[dict[str, Any]]) -> list[str]:
    lines = []
    for s in stores:
        lines.append(
            f"{s['store']}: removed {s['removed_docs']} of {s['docs']} documents, "
            f"{human_count(s['removed_tokens'])} of {human_count(s['tokens'])} tokens -> {s['mask']}"
        )
    return lines


@click.command("dedup")
@click.argument("stores", nargs=-1, required=True, metavar="STORE...")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="MASKDIR: one mask per store.")
@click.option("--ngram", type=click.IntRange(1, 255), default=5, show_default=True, help="Token n-gram size.")
@click.option("--bands", type=click.IntRange(min=1), default=9, show_default=True, help="LSH bands.")
@click.option("--rows", type=click.IntRange(min=1), default=13, show_default=True, help="Rows per band.")
@click.option(
    "--threshold",
    type=click.FloatRange(0, 1, min_open=True),
    default=0.8,
    show_default=True,
    help="Estimated Jaccard a candidate pair must reach.",
)
@click.option("--seed", type=int, default=42, show_default=True, help="Seed of the MinHash permutations.")
@click.option(
    "--confirm",
    type=enum_choice(Confirm),
    default=Confirm.EXACT.value,
    show_default=True,
    help="Confirm candidates by the exact Jaccard of their n-gram sets, or by the signature estimate.",
)
@click.option("--min-distinct", type=click.IntRange(min=0), default=None, help="Degenerate n-gram rule.")
@click.option(
    "--boilerplate-fraction",
    type=click.FloatRange(0, 1, min_open=True),
    default=0.001,
    show_default=True,
    help="An n-gram in more than this fraction of documents is boilerplate (1: rule off).",
)
@click.option("--boilerplate-min-docs", type=click.IntRange(min=1), default=100, show_default=True)
@click.option(
    "--workers", type=click.IntRange(min=1), default=None, help="Local worker processes [all cores]."
)
@click.option("--executor", type=enum_choice(Executor), default=Executor.LOCAL.value, show_default=True)
@click.option(
    "--memory-limit",
    default="2G",
    show_default=True,
    help="Memory one task may hold; signatures spill to disk.",
)
@click.option("--unit-docs", type=click.IntRange(min=1), default=None, help="Documents per signature task.")
@click.option(
    "--partitions",
    type=click.IntRange(min=1),
    default=None,
    help="Hash partitions of the LSH buckets [from memory].",
)
@click.option("--no-progress", is_flag=True, help="No progress lines.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
def dedup_cmd(
    stores: tuple[str, ...],
    out: str,
    ngram: int,
    bands: int,
    rows: int,
    threshold: float,
    seed: int,
    confirm: str,
    min_distinct: int | None,
    boilerplate_fraction: float,
    boilerplate_min_docs: int,
    workers: int | None,
    executor: str,
    memory_limit: str,
    unit_docs: int | None,
    partitions: int | None,
    no_progress: bool,
    as_json: bool,
) -> None:
    """Exact and near-duplicate documents across STORE...: one mask per store into --out (MASKDIR).

    The first document of each cluster in store order is kept. Resumable: re-run the same command after a crash.
    """
    from shardstore.curate.dedup import dedup
    from shardstore.curate.minhash import MinHashParams

    params = MinHashParams(
        ngram=ngram,
        bands=bands,
        rows=rows,
        seed=seed,
        threshold=threshold,
        min_distinct=min_distinct,
        confirm=Confirm(confirm),
        boilerplate_fraction=boilerplate_fraction,
        boilerplate_min_docs=boilerplate_min_docs,
    )
    report = dedup(
        stores,
        out=out,
        params=params,
        workers=workers,
        executor=Executor(executor),
        memory_limit=parse_size(memory_limit),
        unit_docs=unit_docs,
        partitions=partitions,
        on_stage=_stage_printer(not no_progress and not as_json and sys.stderr.isatty()),
    )
    d = report.to_dict()
    if as_json:
        click.echo(json.dumps(d, sort_keys=True))
        return
    lines = _store_lines(d["stores"])
    lines.append(f"clusters by size: {d['clusters']['sizes']}")
    lines.append(
        f"degenerate n-grams skipped: {d['ngrams']['degenerate']}; boilerplate n-grams left out: "
        f"{d['ngrams']['boilerplate']} ({d['ngrams']['boilerplate_distinct']} distinct); candidate pairs compared "
        f"{d['candidates']['compared']}, rejected by the threshold {d['candidates']['rejected']}"
    )
    click.echo("\n".join(lines))


@click.command("decontaminate")
@click.argument("stores", nargs=-1, required=True, metavar="STORE...")
@click.option(
    "--eval", "evals", multiple=True, required=True, help="Eval set (.jsonl / .parquet); repeatable."
)
@click.option("--out", required=True, type=click.Path(file_okay=False), help="MASKDIR: one mask per store.")
@click.option(
    "--eval-field",
    "fields",
    multiple=True,
    default=("text",),
    show_default=True,
    help="Field with item text (repeatable: --eval-field question --eval-field choices).",
)
@click.option(
    "--ngram", type=click.IntRange(1, 255), default=13, show_default=True, help="Token n-gram size."
)
@click.option(
    "--min-overlap", type=click.IntRange(min=1), default=1, show_default=True, help="Shared n-grams per item."
)
@click.option("--min-distinct", type=click.IntRange(min=0), default=None, help="Degenerate n-gram rule.")
@click.option(
    "--boilerplate-fraction",
    type=click.FloatRange(0, 1, min_open=True),
    default=0.001,
    show_default=True,
    help="An eval n-gram in more than this fraction of documents is boilerplate.",
)
@click.option("--boilerplate-min-docs", type=click.IntRange(min=1), default=10, show_default=True)
@click.option(
    "--unit-docs",
    type=click.IntRange(min=1),
    default=1 << 16,
    show_default=True,
    help="Documents per scan task.",
)
@click.option(
    "--workers", type=click.IntRange(min=1), default=None, help="Local worker processes [all cores]."
)
@click.option("--executor", type=enum_choice(Executor), default=Executor.LOCAL.value, show_default=True)
@click.option("--no-progress", is_flag=True, help="No progress lines.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
def decontaminate_cmd(
    stores: tuple[str, ...],
    evals: tuple[str, ...],
    out: str,
    fields: tuple[str, ...],
    ngram: int,
    min_overlap: int,
    min_distinct: int | None,
    boilerplate_fraction: float,
    boilerplate_min_docs: int,
    unit_docs: int,
    workers: int | None,
    executor: str,
    no_progress: bool,
    as_json: bool,
) -> None:
    """Training documents of STORE... that contain items of the --eval sets: masks, item list and report in --out."""
    from shardstore.curate.decontam import DecontamParams, decontaminate

    params = DecontamParams(
        ngram=ngram,
        min_overlap=min_overlap,
        min_distinct=min_distinct,
        boilerplate_fraction=boilerplate_fraction,
        boilerplate_min_docs=boilerplate_min_docs,
    )
    report = decontaminate(
        stores,
        evals=evals,
        out=out,
        params=params,
        fields=fields,
        workers=workers,
        executor=Executor(executor),
        unit_docs=unit_docs,
        on_stage=_stage_printer(not no_progress and not as_json and sys.stderr.isatty()),
    )
    if as_json:
        click.echo(json.dumps(report, sort_keys=True))
        return
    lines = _store_lines(report["stores"])
    for e in report["evals"]:
        skipped = ", ".join(f"{k} {v}" for k, v in e["skipped"].items()) or "none"
        lines.append(
            f"eval {e['eval']}: {e['contaminated_items']} of {e['items']} items contaminated "
            f"({100 * e['contaminated_fraction']:.2f}%); skipped: {skipped}"
        )
    lines.append(f"boilerplate n-grams dropped: {report['boilerplate']['ngrams']}")
    click.echo("\n".join(lines))


def register(root: click.Group) -> None:
    """Add this area's commands to the root `shardstore` group."""
    root.add_command(dedup_cmd)
    root.add_command(decontaminate_cmd)
