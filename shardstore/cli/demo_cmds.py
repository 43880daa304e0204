"""`shardstore demo`: the whole pipeline on the Python standard library (see shardstore.demo.runner)."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("demo")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("demo-out"),
    show_default=True,
    help="Folder that receives the corpus, tokenizer, stores, mix.toml and report.json.",
)
@click.option(
    "--max-mb",
    type=float,
    default=64.0,
    show_default=True,
    help="Cap on the stdlib code corpus in MB (the default takes all of it; lower runs faster).",
)
@click.option("--vocab-size", type=int, default=4096, show_default=True)
@click.option("--steps", type=int, default=200, show_default=True, help="Batches drawn from the mixture.")
@click.option("--workers", type=int, default=None, help="Build processes (default: all CPUs).")
@click.option("--num-workers", type=int, default=2, show_default=True, help="DataLoader worker processes.")
@click.option("--no-progress", is_flag=True, help="Hide progress bars.")
def demo(
    out: Path,
    max_mb: float,
    vocab_size: int,
    steps: int,
    workers: int | None,
    num_workers: int,
    no_progress: bool,
) -> None:
    """Run the real pipeline end to end on the Python standard library: train a tokenizer, build a "code" and a
    "text" store, mix them 70/30 through make_dataloader, interrupt and resume, and report."""
    from shardstore.demo.runner import DemoConfig, format_report, run_demo

    cfg = DemoConfig(
        out=out,
        max_mb=max_mb,
        vocab_size=vocab_size,
        steps=steps,
        interrupt_at=max(1, steps * 3 // 5),
        workers=workers,
        num_workers=num_workers,
        progress=not no_progress,
    )
    report = run_demo(cfg, echo=click.echo)
    click.echo(format_report(report))


def register(root: click.Group) -> None:
    """Add this area's commands to the root `shardstore` group."""
    root.add_command(demo)
