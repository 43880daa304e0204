"""`shardstore.build` (this module, `shardstore.preprocess.pipeline`): corpora -> a store, in parallel, resumable, byte-deterministic.

`run_build` is four steps:
1. **plan** (`plan_build`): expand the inputs into an ordered file list (`sources.expand_inputs`), cut them into
   work units (`workunits.plan_units`), load the tokenizer, and collect the options that determine the bytes.
2. **resume check** (`resume_check`, see `resume`): a resume with other options is a `BuildError`; journaled units
   are kept only if their entry is intact, their options and input bytes are unchanged and their files present
   (corrupt entries are moved aside and redone; changed inputs stop the build, or with `rebuild_changed` are
   rebuilt). A committed store whose every unit is kept is "already complete": nothing is written.
3. **run** (`_run_units`): the units not kept (this node's slice with `num_nodes > 1`) on the chosen executor,
   under this node rank's writer lock (`locks`). Each unit writes into its own attempt folder and commits itself by
   an atomic create-if-absent of its journal entry (see `units`, `journal`).
4. **finalize** (`_finish`, see `finalize`): with every unit journaled (or, with `allow_partial`, journaled or
   failed), write the provenance index, the report and, last, the manifest (the commit point). Shards are listed in
   unit order, so completion order, worker count, executor and node count cannot change the manifest.

The report (`build_report.json`) holds wall-clock figures, so it is deliberately *not* listed in the manifest and not
part of the fingerprint (it is sealed, and `verify` checks it): the manifest and every listed file are a pure
function of inputs and options, the report describes the last run that changed the store. Running out of disk
(or quota, or a read-only output) anywhere is one `BuildError` naming the output file.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shardstore.errors import BuildError, BuildInterrupted, ConfigError
from shardstore.preprocess.build_types import BuildConfig, BuildReport
from shardstore.preprocess.executors import Executor, node_units, run_local, run_ray
from shardstore.preprocess.finalize import (
    BUILDER_VERSION,
    REPORT_NAME,
    TOKENIZER_NAME,
    build_manifest,
    compress,
    input_fingerprint,
    report_is_corrupt,
    skip_totals,
    sweep_stale_temps,
    unit_name,
    write_report,
)
from shardstore.preprocess.journal import Journal, UnitResult
from shardstore.preprocess.locks import NodeLock
from shardstore.preprocess.outdir import check_output_dir, inside_output, outside_output
from shardstore.preprocess.progress import BuildProgress
from shardstore.preprocess.resume import build_digest, check_options, usable_results
from shardstore.preprocess.sources import InputFile, ReadOptions, Utf8Policy, walk_inputs
from shardstore.preprocess.tokinput import save_tokenizer_input
from shardstore.preprocess.units import UnitTask
from shardstore.preprocess.workunits import WorkUnit, plan_units
from shardstore.preprocess.yieldcheck import DEFAULT_MAX_SKIPPED_FRACTION, check_build_yield
from shardstore.store import format as fmt
from shardstore.store.manifest import MANIFEST_NAME, Manifest, write_manifest
from shardstore.util.durable import atomic_write
from shardstore.util.modes import parse_mode
from shardstore.util.outerr import describe_output_error, is_output_error

if TYPE_CHECKING:
    from tokenizer import Tokenizer

__all__ = ["REPORT_NAME", "TOKENIZER_NAME", "BuildConfig", "BuildReport", "build", "run_build"]

STREAM_PIECE_CHARS = 8 << 20  # plain-text documents longer than this are read and encoded in pieces


def build(
    inputs: Sequence[str | os.PathLike[str]] | str | os.PathLike[str],
    *,
    tokenizer: str | os.PathLike[str] | Tokenizer,
    out: str | os.PathLike[str],
    workers: int | None = None,
    text_field: str = "text",
    split_on: str | None = None,
    utf8_errors: Utf8Policy | str = Utf8Policy.REPLACE,
    eos: bool = True,
    max_shard_bytes: int = 256 << 20,
    unit_bytes: int = 256 << 20,
    allow_partial: bool = False,
    num_nodes: int = 1,
    node_rank: int = 0,
    finalize: bool = False,
    executor: Executor | str = Executor.LOCAL,
    storage_options: Mapping[str, Any] | None = None,
    progress: bool = True,
    compress: bool = False,
    rebuild_changed: bool = False,
    max_skipped_fraction: float = DEFAULT_MAX_SKIPPED_FRACTION,
    force: bool = False,
) -> BuildReport:
    """Tokenize `inputs` into a store at `out` (or resume that build); returns the `BuildReport`.

    Args:
        inputs: files, directories, globs or fsspec URLs (``.jsonl[.gz|.zst]``, ``.txt[.gz|.zst]``, ``.parquet``).
        tokenizer: the path of a tokenizer JSON file, or a `tokenizer.Tokenizer`.
        out: the store directory to create or resume.
        workers: local worker processes (default: the usable cores).
        text_field: JSON field / Parquet column holding the text.
        split_on: split ``.txt`` files into documents on this separator (default: one document per file).
        utf8_errors: invalid UTF-8 in a document: ``"replace"`` (U+FFFD), ``"skip"`` the document, ``"fail"`` the
            file (a `Utf8Policy` or its value).
        eos: append the tokenizer's EOS id after each document.
        max_shard_bytes: size limit of one shard file.
        unit_bytes: larger uncompressed JSON Lines / Parquet files are split into work units of about this size.
        allow_partial: commit the store even if some input files failed (they are named in the report).
        num_nodes, node_rank: run this node's slice of the units (any scheduler); then `finalize` once.
        finalize: only write the manifest, once every unit of every node is done.
        executor: ``"local"`` (process pool) or ``"ray"`` (an `Executor` or its value).
        storage_options: fsspec options for URL inputs (endpoint, credentials).
        progress: show a progress bar.
        compress: also write zstd copies of the shards (for object storage).
        rebuild_changed: rebuild exactly the units whose input bytes changed since they were built (without it, a
            re-run over changed inputs is refused, listing them).
        max_skipped_fraction: a work unit whose records were skipped (missing text field, malformed JSON, ...)
            beyond this share fails, naming what its first record holds instead (1.0: never).
        force: build into `out` even if it is a non-empty directory that is not a store.

    The options that change the bytes of the store (`tokenizer`, `text_field`, `split_on`, `utf8_errors`, `eos`,
    `max_shard_bytes`, `unit_bytes`) are recorded, and a resume with other values is refused; see `BuildConfig`.

    Raises:
        BuildError: some work units failed (their files are named; the others are kept and journaled; pass
            `allow_partial=True` to commit a store without them), or the store was started with other options.
        ConfigError / InputError: invalid options, inputs that do not exist.
    """
    out = os.fspath(out)
    check_output_dir(out, force=force)
    if not isinstance(tokenizer, str | os.PathLike):
        tokenizer = save_tokenizer_input(tokenizer, out)
    cfg = BuildConfig(
        inputs=(os.fspath(inputs),)
        if isinstance(inputs, str | os.PathLike)
        else tuple(os.fspath(i) for i in inputs),
        tokenizer=os.fspath(tokenizer),
        out=out,
        workers=workers,
        text_field=text_field,
        split_on=split_on,
        utf8_errors=parse_mode(Utf8Policy, utf8_errors, name="utf8_errors"),
        eos=eos,
        max_shard_bytes=max_shard_bytes,
        unit_bytes=unit_bytes,
        allow_partial=allow_partial,
        num_nodes=num_nodes,
        node_rank=node_rank,
        finalize=finalize,
        executor=parse_mode(Executor, executor, name="executor"),
        storage_options=storage_options,
        progress=progress,
        compress=compress,
        rebuild_changed=rebuild_changed,
        max_skipped_fraction=max_skipped_fraction,
        force=force,
    )
    return run_build(cfg)


def _read_or_none(path: str) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None


def _build_options(
    cfg: BuildConfig, files: Sequence[InputFile], units: Sequence[WorkUnit], tok: Any, dtype: str
) -> dict[str, Any]:
    """Everything that determines the bytes of the store (and nothing that does not)."""
    return {
        "builder_version": BUILDER_VERSION,
        "format_version": fmt.FORMAT_VERSION,
        "inputs": [[f.url, f.size, f.format.value, f.compression.value] for f in files],
        "tokenizer": tok.fingerprint,
        "dtype": dtype,
        "text_field": cfg.text_field,
        "split_on": cfg.split_on,
        "utf8_errors": cfg.utf8_errors.value,
        "eos": cfg.eos,
        "max_shard_bytes": cfg.max_shard_bytes,
        "unit_bytes": cfg.unit_bytes,
        "num_units": len(units),
    }


@dataclass(frozen=True, slots=True)
class BuildPlan:
    """Step 1 (plan): the inputs, their work units, the tokenizer and the options that determine the bytes."""

    cfg: BuildConfig
    files: list[InputFile]
    units: list[WorkUnit]
    tok: Any
    tok_bytes: bytes
    dtype: str
    options: dict[str, Any]
    ignored: list[str]  # files of the input directories that are not inputs

    @property
    def token_bytes(self) -> int:
        return 2 if self.dtype == "uint16" else 4

    @property
    def digest(self) -> str:
        return build_digest(self.options)


def plan_build(cfg: BuildConfig) -> BuildPlan:
    from tokenizer import Tokenizer

    found = walk_inputs(cfg.inputs, storage_options=cfg.storage_options)
    files = outside_output(found.files, cfg.out)
    ignored = [u for u in found.ignored if not inside_output(u, cfg.out)]
    units = plan_units(files, unit_bytes=cfg.unit_bytes, storage_options=cfg.storage_options)
    tok_bytes = _read_or_none(cfg.tokenizer)
    if tok_bytes is None:
        raise ConfigError(f"tokenizer file {cfg.tokenizer!r} does not exist")
    tok = Tokenizer.from_json_bytes(tok_bytes, source=cfg.tokenizer)
    if cfg.eos and tok.eos_id is None:
        raise ConfigError(
            f"{cfg.tokenizer}: the tokenizer has no EOS token; add one or pass eos=False / --no-eos"
        )
    dtype = fmt.dtype_for_vocab(tok.vocab_size).name
    options = _build_options(cfg, files, units, tok, dtype)
    return BuildPlan(cfg, files, units, tok, tok_bytes, dtype, options, ignored)


def resume_check(plan: BuildPlan, journal: Journal) -> dict[int, UnitResult]:
    """Step 2 (resume check): refuse other options or changed inputs; the journaled units this run keeps."""
    check_options(journal, plan.options)
    kept = usable_results(
        journal,
        plan.units,
        digest=plan.digest,
        token_bytes=plan.token_bytes,
        storage_options=plan.cfg.storage_options,
        rebuild_changed=plan.cfg.rebuild_changed,
    )
    journal.write_options(plan.options)  # (re)records them: first run, repaired or rebuilt inputs
    return kept


def run_build(cfg: BuildConfig) -> BuildReport:
    """Run (or resume, or finalize) the build described by `cfg`: plan, resume check, run, finalize.

    Out of disk space, quota, or a read-only output anywhere is one `BuildError` naming the output path."""
    t0 = time.monotonic()
    check_output_dir(cfg.out, force=cfg.force)
    plan = plan_build(cfg)
    journal = Journal(cfg.out)
    try:
        try:
            journal.create()
        except OSError as exc:
            if is_output_error(exc):
                raise
            raise BuildError(f"cannot create the store directory {cfg.out!r}: {exc}") from exc
        lock = None if cfg.finalize else NodeLock(journal.root, cfg.node_rank)
        with lock if lock is not None else contextlib.nullcontext():
            kept = resume_check(plan, journal)
            report = BuildReport(
                out=cfg.out,
                num_units=len(plan.units),
                units_done_before=len(kept),
                ignored_files=plan.ignored,
            )
            if _already_complete(plan, journal, kept, report):
                return report
            if lock is not None:
                lock.announce()  # host and pid, for a second build's "locked by" message
            journal.sweep_dead_attempts()
            store_tok = os.path.join(cfg.out, TOKENIZER_NAME)
            atomic_write(store_tok, plan.tok_bytes, skip_if_same=True)
            if not cfg.finalize:
                sizes = [u.size for u in plan.units]
                mine = node_units(sizes, cfg.num_nodes, cfg.node_rank) if cfg.num_nodes > 1 else None
                todo = [i for i in (mine if mine is not None else range(len(plan.units))) if i not in kept]
                try:
                    _run_units(plan, todo, report)
                except KeyboardInterrupt as exc:
                    raise _interrupted(plan, journal) from exc
                kept = resume_check(plan, journal)
            return _finish(plan, journal, kept, report, t0)
    except OSError as exc:
        if is_output_error(exc):
            raise BuildError(describe_output_error(exc, cfg.out)) from None
        raise


def _already_complete(
    plan: BuildPlan, journal: Journal, kept: Mapping[int, UnitResult], report: BuildReport
) -> bool:
    """A committed store whose every unit is kept: nothing to do, nothing written (a corrupt report is rewritten)."""
    cfg = plan.cfg
    manifest_path = os.path.join(cfg.out, MANIFEST_NAME)
    if cfg.finalize or len(kept) < len(plan.units) or not os.path.exists(manifest_path):
        return False
    manifest = Manifest.from_json_bytes(_read_or_none(manifest_path) or b"", source=manifest_path)
    report.num_docs, report.num_tokens = manifest.num_docs, manifest.num_tokens
    report.complete, report.nothing_to_do, report.fingerprint = True, True, manifest.fingerprint
    report.skipped = skip_totals(kept.values())
    report.inputs = [input_fingerprint(kept[i]) for i in sorted(kept)]
    journal.failed(token_bytes=plan.token_bytes)  # moves corrupt leftovers of failed attempts aside
    report.message = (
        f"{cfg.out}: the build is already complete (manifest present); nothing to do, nothing written"
    )
    if report_is_corrupt(cfg.out):
        journal.move_aside(os.path.join(cfg.out, REPORT_NAME))
        write_report(cfg.out, report)
        report.message = f"{cfg.out}: the build was already complete; rewrote its corrupt {REPORT_NAME}"
    if cfg.compress and not os.path.exists(os.path.join(cfg.out, "compression.json")):
        compress(cfg.out)
        report.message = f"{cfg.out}: the build was already complete; wrote the compressed shard copies"
    return True


def _finish(
    plan: BuildPlan, journal: Journal, results: Mapping[int, UnitResult], report: BuildReport, t0: float
) -> BuildReport:
    """Step 4 (finalize): stop on failed units, wait for other nodes, or commit the store."""
    cfg, units = plan.cfg, plan.units
    failed = {
        i: r
        for i, r in journal.failed(token_bytes=plan.token_bytes).items()
        if i not in results and i < len(units)
    }
    report.failed = {unit_name(units[i]): r.error or "failed" for i, r in sorted(failed.items())}
    report.skipped = skip_totals(list(results.values()) + list(failed.values()))
    report.num_docs = sum(r.num_docs for r in results.values())
    report.num_tokens = sum(r.num_tokens for r in results.values())
    report.inputs = [input_fingerprint(results[i]) for i in sorted(results)]
    missing = [i for i in range(len(units)) if i not in results and i not in failed]
    report.seconds = time.monotonic() - t0
    if failed and not cfg.allow_partial:
        write_report(cfg.out, report)
        names = ", ".join(unit_name(units[i]) for i in sorted(failed)[:5])
        raise BuildError(
            f"{len(failed)} of {len(units)} input units failed ({names}"
            f"{', ...' if len(failed) > 5 else ''}): {next(iter(report.failed.values()))}. The other units are "
            f"finished and kept; fix the cause (repair the files in place, or pass the option the message names) and "
            f"re-run (only the failed units run again), or pass --allow-partial to commit the store without them. Details in {os.path.join(cfg.out, REPORT_NAME)}"
        )
    if missing:
        if cfg.finalize:
            raise BuildError(_not_finalizable(plan, journal, missing))
        report.message = (
            f"node {cfg.node_rank}/{cfg.num_nodes}: my units are done; {len(missing)} units of other nodes are "
            "still missing. The last node to finish (or `shardstore build --finalize`) writes the manifest."
        )
        write_report(cfg.out, report)
        return report
    check_build_yield(results.values(), plan.cfg.text_field, plan.cfg.max_skipped_fraction)
    sweep_stale_temps(cfg.out)
    manifest = build_manifest(
        cfg.out, plan.files, units, results, failed, plan.tok, plan.dtype, plan.options, cfg.split_on
    )
    report.complete, report.fingerprint = True, manifest.fingerprint
    report.seconds = time.monotonic() - t0
    report.message = report.message or (
        f"build complete{' (partial: ' + str(len(failed)) + ' inputs failed)' if failed else ''}"
    )
    write_report(cfg.out, report)
    write_manifest(cfg.out, manifest)
    if cfg.compress:
        compress(cfg.out)
    return report


def _interrupted(plan: BuildPlan, journal: Journal) -> BuildInterrupted:
    """^C during the run: what is committed (kept by the next run) and how to resume."""
    cfg, n = plan.cfg, len(plan.units)
    done = sum(1 for i in range(n) if os.path.exists(journal.entry_path(i)))
    return BuildInterrupted(
        f"interrupted: {done} of {n} work units of {cfg.out} are committed and kept; re-run the same command "
        "to resume (only the other units run)"
    )


def _not_finalizable(plan: BuildPlan, journal: Journal, missing: Sequence[int]) -> str:
    cfg, units = plan.cfg, plan.units
    text = (
        f"{cfg.out}: cannot finalize: {len(missing)} of {len(units)} units are not finished "
        f"(e.g. {unit_name(units[missing[0]])})"
    )
    if journal.moved_aside:
        text += f"; {len(journal.moved_aside)} journal entries were corrupt and moved to .build/corrupt/"
    if cfg.num_nodes > 1:
        sizes = [u.size for u in units]
        ranks = [r for r in range(cfg.num_nodes) if set(node_units(sizes, cfg.num_nodes, r)) & set(missing)]
        return text + f"; re-run node rank(s) {', '.join(map(str, ranks))}, then finalize again"
    return text + "; run the remaining node ranks (or the build without --finalize) first"


def _run_units(plan: BuildPlan, todo: Sequence[int], report: BuildReport) -> None:
    """Step 3 (run): the units of `todo` on the chosen executor; each commits itself (see `units`)."""
    cfg, units, tok, dtype = plan.cfg, plan.units, plan.tok, plan.dtype
    if not todo:
        return
    from tokenizer.patterns import native_pattern_id

    # Huge plain-text documents are streamed in pieces only where that provably keeps the ids (built-in patterns).
    piece_chars = STREAM_PIECE_CHARS if native_pattern_id(tok.pattern) >= 0 else 1 << 62
    read = ReadOptions(
        text_field=cfg.text_field,
        split_on=cfg.split_on,
        utf8_errors=cfg.utf8_errors,
        piece_chars=piece_chars,
        storage_options=cfg.storage_options,
    )
    tokenizer_path = os.path.abspath(os.path.join(cfg.out, TOKENIZER_NAME))
    tasks = (
        UnitTask(
            index=i,
            file=units[i].file,
            span=units[i].span,
            out=os.path.abspath(cfg.out),
            tokenizer_path=tokenizer_path,
            tokenizer_fingerprint=tok.fingerprint,
            read=read,
            eos=cfg.eos,
            dtype=dtype,
            max_shard_bytes=cfg.max_shard_bytes,
            build=plan.digest,
            max_skipped_fraction=cfg.max_skipped_fraction,
        )
        for i in todo
    )
    bar = BuildProgress(total_bytes=sum(units[i].size for i in todo), units=len(todo), enabled=cfg.progress)

    def on_result(result: UnitResult) -> None:
        if result.committed_by_other:
            bar.unit_done(units[result.index].size, failed=False)
            bar.write(
                f"shardstore: unit {result.index} was committed by another writer meanwhile; kept theirs"
            )
            return
        report.units_run += 1
        report.docs_run += result.num_docs
        report.tokens_run += result.num_tokens
        report.text_bytes_run += result.text_bytes
        report.cpu_seconds_run += result.cpu_seconds
        bar.unit_done(units[result.index].size, failed=result.error is not None)
        if result.error is not None:
            bar.write(f"shardstore: unit {result.index} failed: {result.error}")

    try:
        if cfg.executor is Executor.RAY:
            run_ray(tasks, on_result=on_result, on_progress=bar.advance)
        else:
            workers = min(cfg.num_workers, len(todo))
            run_local(tasks, workers=workers, on_result=on_result, on_progress=bar.advance)
    finally:
        bar.close()
