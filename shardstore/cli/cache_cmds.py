"""CLI commands of the remote-cache area: `shardstore stage` and `shardstore compress`."""

from __future__ import annotations

import click

from shardstore.cli.options import parse_storage_options


@click.command("stage")
@click.argument("url")
@click.option(
    "--cache",
    "--cache-dir",
    "cache_dir",
    default=None,
    help="Cache root (default: $SHARDSTORE_CACHE or ~/.cache/shardstore).",
)
@click.option(
    "--workers", default=8, show_default=True, type=click.IntRange(min=1), help="Downloads in flight."
)
@click.option("--cache-limit", default=None, help="Byte limit of the cache root, e.g. 500G (default: none).")
@click.option("--storage-options", default=None, help="fsspec options as JSON, e.g. '{\"anon\": true}'.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def stage_cmd(
    url: str,
    cache_dir: str | None,
    workers: int,
    cache_limit: str | None,
    storage_options: str | None,
    quiet: bool,
) -> None:
    """Download every file of the remote store URL into the node-local cache (verified, atomic, once per node)."""
    from shardstore.remote.cache import RemoteOptions, parse_size
    from shardstore.remote.stage import stage

    remote = RemoteOptions(
        cache_dir, parse_storage_options(storage_options), parse_size(cache_limit) if cache_limit else None
    )
    report = stage(url, remote, workers=workers, progress=not quiet)
    click.echo(
        f"staged {report.files} files ({report.bytes_total / 1e6:.1f} MB) of {report.url} into {report.directory}: "
        f"downloaded {report.downloaded} ({report.bytes_downloaded / 1e6:.1f} MB) in {report.seconds:.2f}s, "
        f"{report.mb_per_s:.1f} MB/s"
    )


@click.command("compress")
@click.argument("store", type=click.Path(exists=True, file_okay=False))
@click.option("--level", default=3, show_default=True, type=click.IntRange(1, 22), help="zstd level.")
@click.option(
    "--remove-originals", is_flag=True, help="Delete the plain shards afterwards (upload-only copies)."
)
def compress_cmd(store: str, level: int, remove_originals: bool) -> None:
    """Write zstd copies of STORE's shards (<shard>.zst + compression.json) for object storage."""
    from shardstore.store.compress import compress_store
    from shardstore.store.manifest import read_manifest

    result = compress_store(store, level=level, keep_originals=not remove_originals)
    plain = sum(s.size for s in read_manifest(store).shards)
    packed = sum(c.size for c in result.values())
    ratio = packed / plain if plain else 1.0
    click.echo(
        f"compressed {len(result)} shards: {plain / 1e6:.1f} MB -> {packed / 1e6:.1f} MB ({ratio:.1%})"
    )


def register(root: click.Group) -> None:
    """Add this area's commands to the root `shardstore` group."""
    root.add_command(stage_cmd)
    root.add_command(compress_cmd)
