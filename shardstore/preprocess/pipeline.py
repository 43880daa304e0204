"""`shardstore.build` (this module, `shardstore.preprocess.pipeline`): corpora -> a store, in parallel, resumable, byte-deterministic.

Pipeline:
1. Expand the inputs into an ordered file list (`sources.expand_inputs`); file i is work unit i.
2. Record the options that determine the output bytes in `.build/options.json` (a resume with other options is a
   `BuildError`), copy the tokenizer into the store as `tokenizer.json` (workers load that copy).
3. Run the units that are not journaled yet (this node's slice of them with `num_nodes > 1`) on the chosen executor.
   Each unit writes `u{unit}-{i}.shard` files, a provenance Parquet file and then its journal entry (see `units`).
4. When every unit is journaled (or, with `allow_partial`, every unit is journaled or failed), write the provenance
   index, the report and, last, the manifest (the commit point). Shards are listed in unit order, so completion order,
   worker count, executor and node count cannot change the manifest.

Re-running a finished build finds the manifest and every unit journaled, writes nothing and says so.

The report (`build_report.json`) holds wall-clock figures, so it is deliberately *not* listed in the manifest and not
part of the fingerprint: the manifest and every listed file are a pure function of inputs and options, the report
describes the last run that changed the store.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from shardstore.errors import BuildError, ConfigError
from shardstore.preprocess.build_types import BuildConfig, BuildReport
from shardstore.preprocess.executors import Executor, node_units, run_local, run_ray
from shardstore.preprocess.journal import Journal, UnitResult, canonical_json
from shardstore.preprocess.progress import BuildProgress
from shardstore.preprocess.sources import (
    InputFile,
    InputFormat,
    ReadOptions,
    SkipCounts,
    Utf8Policy,
    expand_inputs,
)
from shardstore.preprocess.units import UnitTask
from shardstore.preprocess.workunits import WorkUnit, plan_units
from shardstore.store import format as fmt
from shardstore.store.manifest import (
    MANIFEST_NAME,
    FileInfo,
    Manifest,
    ShardInfo,
    TokenizerInfo,
    file_info,
    write_manifest,
)
from shardstore.store.provenance import UNITS_FILE
from shardstore.util.durable import atomic_write
from shardstore.util.modes import parse_mode

if TYPE_CHECKING:
    from tokenizer import Tokenizer

__all__ = ["REPORT_NAME", "TOKENIZER_NAME", "BuildConfig", "BuildReport", "build", "run_build"]

TOKENIZER_NAME = "tokenizer.json"
REPORT_NAME = "build_report.json"
BUILDER_VERSION = 1
STREAM_PIECE_CHARS = 8 << 20  # plain-text documents longer than this are read and encoded in pieces


def _unit_name(unit: WorkUnit) -> str:
    """The input file of a unit, with its range when it is a part of the file."""
    if unit.span is None:
        return unit.file.url
    what = "row groups" if unit.file.format is InputFormat.PARQUET else "bytes"
    return f"{unit.file.url} ({what} {unit.span[0]}..{unit.span[1]})"


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

    The options that change the bytes of the store (`tokenizer`, `text_field`, `split_on`, `utf8_errors`, `eos`,
    `max_shard_bytes`, `unit_bytes`) are recorded, and a resume with other values is refused; see `BuildConfig`.

    Raises:
        BuildError: some work units failed (their files are named; the others are kept and journaled; pass
            `allow_partial=True` to commit a store without them), or the store was started with other options.
        ConfigError / InputError: invalid options, inputs that do not exist.
    """
    out = os.fspath(out)
    if not isinstance(tokenizer, str | os.PathLike):
        tokenizer = _save_tokenizer_object(tokenizer, out)
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
    )
    return run_build(cfg)


def _save_tokenizer_object(tok: Any, out: str) -> str:
    if not hasattr(tok, "save"):
        raise ConfigError(f"tokenizer must be a path or a tokenizer.Tokenizer, got {type(tok).__name__}")
    journal = Journal(out)
    journal.create()
    path = os.path.join(journal.root, "tokenizer-input.json")
    tmp = f"{path}.new-{os.getpid()}"  # the tokenizer writes its file itself; its bytes are committed below
    try:
        tok.save(tmp)
        with open(tmp, "rb") as f:
            new = f.read()
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    atomic_write(path, new, skip_if_same=True)
    return path


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


def _outside(files: list[InputFile], out: str) -> list[InputFile]:
    """Drop inputs inside the store directory itself (`build data/ --out data/store` must not read its own
    provenance files back as inputs when it resumes)."""
    root = os.path.realpath(out) + os.sep
    kept = [f for f in files if "://" in f.url or not os.path.realpath(f.url).startswith(root)]
    if not kept:
        raise ConfigError(f"every input is inside the output directory {out!r}; nothing to build")
    return kept


def _repairs_only(
    old: Mapping[str, Any], new: Mapping[str, Any], units: Sequence[WorkUnit], finished: set[int]
) -> bool:
    """True if the options differ only in the size of input files none of whose units is finished: files repaired
    in place after their units failed (or before they ran). Those units run from scratch, every other unit is
    unchanged, so the result is the store a clean build of the repaired inputs would give."""
    if set(old) != set(new) or any(old[k] != new[k] for k in new if k != "inputs"):
        return False
    before, after = old.get("inputs"), new.get("inputs")
    if not isinstance(before, list) or not isinstance(after, list) or len(before) != len(after):
        return False
    changed = set()
    for a, b in zip(before, after, strict=True):
        if a != b:
            if not isinstance(a, list) or len(a) != 4 or [a[0], a[2], a[3]] != [b[0], b[2], b[3]]:
                return False
            changed.add(b[0])
    return not any(u.file.url in changed and i in finished for i, u in enumerate(units))


def run_build(cfg: BuildConfig) -> BuildReport:
    """Run (or resume, or finalize) the build described by `cfg`."""
    from tokenizer import Tokenizer

    t0 = time.monotonic()
    files = _outside(expand_inputs(cfg.inputs, storage_options=cfg.storage_options), cfg.out)
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
    token_bytes = 2 if dtype == "uint16" else 4
    options = _build_options(cfg, files, units, tok, dtype)
    journal = Journal(cfg.out)
    try:
        journal.create()
    except OSError as exc:
        raise BuildError(f"cannot create the store directory {cfg.out!r}: {exc}") from exc
    journal.check_options(
        options, acceptable=lambda old, new: _repairs_only(old, new, units, journal.finished_indices())
    )
    store_tok = os.path.join(cfg.out, TOKENIZER_NAME)
    if _read_or_none(store_tok) != tok_bytes:
        atomic_write(store_tok, tok_bytes)

    report = BuildReport(out=cfg.out, num_units=len(units))
    done = journal.finished_indices()
    report.units_done_before = len(done & set(range(len(units))))
    manifest_path = os.path.join(cfg.out, MANIFEST_NAME)
    if os.path.exists(manifest_path) and len(done) >= len(units) and not cfg.finalize:
        manifest = Manifest.from_json_bytes(_read_or_none(manifest_path) or b"", source=manifest_path)
        report.num_docs, report.num_tokens = manifest.num_docs, manifest.num_tokens
        report.complete, report.nothing_to_do, report.fingerprint = True, True, manifest.fingerprint
        report.skipped = _skip_totals(journal.finished(token_bytes=token_bytes).values())
        report.message = (
            f"{cfg.out}: the build is already complete (manifest present); nothing to do, nothing written"
        )
        if cfg.compress and not os.path.exists(os.path.join(cfg.out, "compression.json")):
            _compress(cfg.out)
            report.message = f"{cfg.out}: the build was already complete; wrote the compressed shard copies"
        return report

    if not cfg.finalize:
        mine = (
            node_units([u.size for u in units], cfg.num_nodes, cfg.node_rank) if cfg.num_nodes > 1 else None
        )
        todo = [i for i in (mine if mine is not None else range(len(units))) if i not in done]
        _run_units(cfg, units, todo, tok, dtype, report)

    results = journal.finished(token_bytes=token_bytes)
    failed = {i: r for i, r in journal.failed(token_bytes=token_bytes).items() if i not in results}
    report.failed = {
        _unit_name(units[i]): r.error or "failed" for i, r in sorted(failed.items()) if i < len(units)
    }
    report.skipped = _skip_totals(list(results.values()) + list(failed.values()))
    report.num_docs = sum(r.num_docs for r in results.values())
    report.num_tokens = sum(r.num_tokens for r in results.values())
    missing = [i for i in range(len(units)) if i not in results and i not in failed]
    report.seconds = time.monotonic() - t0

    if failed and not cfg.allow_partial:
        _write_report(cfg.out, report)
        names = ", ".join(_unit_name(units[i]) for i in sorted(failed)[:5])
        raise BuildError(
            f"{len(failed)} of {len(units)} input units failed ({names}"
            f"{', ...' if len(failed) > 5 else ''}): {next(iter(report.failed.values()))}. The other units are "
            f"finished and kept; repair the bad files in place and re-run the same command (only their units run "
            f"again), or pass --allow-partial to commit the store without them. Details in {os.path.join(cfg.out, REPORT_NAME)}"
        )
    if missing:
        if cfg.finalize:
            raise BuildError(
                f"{cfg.out}: cannot finalize: {len(missing)} of {len(units)} units are not finished "
                f"(e.g. {_unit_name(units[missing[0]])}); run the remaining node ranks first"
            )
        report.message = (
            f"node {cfg.node_rank}/{cfg.num_nodes}: my units are done; {len(missing)} units of other nodes are "
            "still missing. The last node to finish (or `shardstore build --finalize`) writes the manifest."
        )
        _write_report(cfg.out, report)
        return report
    _sweep_stale_temps(cfg.out)
    manifest = _finalize(cfg, files, units, results, failed, tok, dtype, options)
    report.complete, report.fingerprint = True, manifest.fingerprint
    report.seconds = time.monotonic() - t0
    report.message = report.message or (
        f"build complete{' (partial: ' + str(len(failed)) + ' inputs failed)' if failed else ''}"
    )
    _write_report(cfg.out, report)
    write_manifest(cfg.out, manifest)
    if cfg.compress:
        _compress(cfg.out)
    return report


def _skip_totals(results: Any) -> dict[str, int]:
    total = SkipCounts()
    for r in results:
        total.merge(r.skipped)
    return dict(sorted(total.items()))


def _run_units(
    cfg: BuildConfig,
    units: Sequence[WorkUnit],
    todo: Sequence[int],
    tok: Any,
    dtype: str,
    report: BuildReport,
) -> None:
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
        )
        for i in todo
    )
    bar = BuildProgress(total_bytes=sum(units[i].size for i in todo), units=len(todo), enabled=cfg.progress)

    def on_result(result: UnitResult) -> None:
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


def _finalize(
    cfg: BuildConfig,
    files: Sequence[InputFile],
    units: Sequence[WorkUnit],
    results: Mapping[int, UnitResult],
    failed: Mapping[int, UnitResult],
    tok: Any,
    dtype: str,
    options: Mapping[str, Any],
) -> Manifest:
    """Write the provenance index and return the manifest (not yet written: it is the commit point)."""
    shards: list[ShardInfo] = []
    prov_files: list[FileInfo] = []
    entries: list[dict[str, Any]] = []
    first_doc = 0
    for i in sorted(results):
        r = results[i]
        for s in r.shards:
            path = os.path.join(cfg.out, s.name)
            if not os.path.isfile(path) or os.path.getsize(path) != s.size:
                raise BuildError(
                    f"{path}: journaled as finished but missing or resized; delete "
                    f"{os.path.join(cfg.out, '.build', 'units', f'unit-{i:06d}.json')} and re-run to redo that unit"
                )
        shards.extend(r.shards)
        if r.provenance is not None:
            prov_files.append(r.provenance)
        unit = units[i]
        entries.append(
            {
                "unit": i,
                "url": unit.file.url,
                "span": None if unit.span is None else list(unit.span),
                "record_kind": unit.record_kind(cfg.split_on),
                "first_doc": first_doc,
                "num_docs": r.num_docs,
                "num_tokens": r.num_tokens,
                "file": r.provenance.name if r.provenance else None,
                "skipped": dict(sorted(r.skipped.items())),
            }
        )
        first_doc += r.num_docs
    units_path = os.path.join(cfg.out, UNITS_FILE)
    os.makedirs(os.path.dirname(units_path), exist_ok=True)
    units_bytes = canonical_json({"units": entries})
    if _read_or_none(units_path) != units_bytes:
        atomic_write(units_path, units_bytes)
    aux = [
        file_info(os.path.join(cfg.out, TOKENIZER_NAME), name=TOKENIZER_NAME),
        file_info(units_path, name=UNITS_FILE),
    ]
    provenance = {
        "builder": f"shardstore.build v{BUILDER_VERSION}",
        "options": {k: v for k, v in options.items() if k != "inputs"},
        "num_inputs": len(files),
        "input_bytes": sum(f.size for f in files),
        "failed_inputs": [_unit_name(units[i]) for i in sorted(failed)],
        "skipped": _skip_totals(results.values()),
    }
    return Manifest(
        dtype=dtype,
        shards=tuple(shards),
        files=tuple(aux + prov_files),
        tokenizer=TokenizerInfo.from_tokenizer(tok),
        provenance=provenance,
    )


def _sweep_stale_temps(out: str, *, min_age_s: float = 60.0) -> None:
    """Delete temp files that a killed finalize left beside the store's top-level files. Only old ones: a temp
    file that young may belong to another node finalizing at this very moment."""
    now = time.time()
    for folder in (out, os.path.join(out, "provenance")):
        try:
            names = os.listdir(folder)
        except FileNotFoundError:
            continue
        for name in names:
            if any(name.startswith(f"{base}.tmp") for base in _TOP_LEVEL):
                path = os.path.join(folder, name)
                try:
                    if now - os.path.getmtime(path) > min_age_s:
                        os.unlink(path)
                except FileNotFoundError:
                    pass


_TOP_LEVEL = (MANIFEST_NAME, TOKENIZER_NAME, REPORT_NAME, os.path.basename(UNITS_FILE))


def _write_report(out: str, report: BuildReport) -> None:
    atomic_write(os.path.join(out, REPORT_NAME), canonical_json(report.to_dict()))


def _compress(out: str) -> None:
    from shardstore.store.compress import compress_store

    compress_store(out)
