"""The `shardstore` command line. It only parses arguments into typed configs and calls library functions.

Each area registers its commands from its own module (`tokenizer_cmds`, `store_cmds`, `build_cmds`, `mix_cmds`,
`mask_cmds`, `cache_cmds`, `demo_cmds`). Any `ShardStoreError` becomes one clear line on stderr and exit code 1.
"""

from __future__ import annotations

import os
import sys

import click

from shardstore.errors import BuildInterrupted, ShardStoreError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="shardstore")
def cli() -> None:
    """Turn raw text corpora into verified, memory-mapped training shards and exact, resumable batches."""


def _register() -> None:
    from shardstore.cli import (
        build_cmds,
        cache_cmds,
        curate_cmds,
        demo_cmds,
        mask_cmds,
        mix_cmds,
        store_cmds,
        tokenizer_cmds,
    )

    for module in (
        tokenizer_cmds,
        build_cmds,
        store_cmds,
        mix_cmds,
        mask_cmds,
        cache_cmds,
        demo_cmds,
        curate_cmds,
    ):
        module.register(cli)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `shardstore` console script; returns the process exit code."""
    # No command does linear algebra, but numpy's OpenBLAS starts a thread per core at import that spins for a while:
    # ~0.1 CPU-second per process on 2 cores (measured), paid again by every build worker. Set before numpy loads;
    # an explicit setting of the user's wins.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    _register()
    try:
        rv = cli.main(args=argv, prog_name="shardstore", standalone_mode=False)
    except ShardStoreError as exc:
        click.echo(f"shardstore: error: {exc}", err=True)
        return 1
    except click.exceptions.Abort as exc:  # click turns KeyboardInterrupt into Abort, keeping it as the cause
        cause = exc.__cause__ or exc.__context__
        text = str(cause) if isinstance(cause, BuildInterrupted) else "aborted"
        click.echo(f"shardstore: {text}", err=True)
        return 130
    except BuildInterrupted as exc:
        click.echo(f"shardstore: {exc}", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    # In non-standalone mode click returns a command's `ctx.exit(code)` as the value instead of raising.
    return rv if isinstance(rv, int) else 0


if __name__ == "__main__":
    sys.exit(main())
