"""`decontaminate`: find training documents that contain evaluation items, by token n-gram overlap.

1. Each eval set is read and tokenized with the stores' tokenizer (`evals.py`); its items' non-degenerate
   n-grams (default n = 13) are gathered into one table of unique hashes.
2. Every document of every store is scanned (`scan.py`, one task per shard slice, local pool or Ray).
3. Boilerplate rule: an eval n-gram found in more than ``max(boilerplate_min_docs, boilerplate_fraction x
   documents)`` documents is shared page furniture (a licence header, a footer, a table rule), not a leak: it is
   dropped and counted. Degenerate n-grams never enter the table: fewer than ``ceil(n/2)`` distinct tokens
   (``0 0 0 ...``, runs of one token), or fewer than n letters and digits in their text (box-drawing tables,
   rules, runs of spaces or punctuation).
4. A document contains an item when it holds at least `min_overlap` distinct n-grams of that item.

Outputs in MASKDIR: one mask per store (``<fingerprint>.mask``, reason ``contains 13-grams of eval E item I``,
the first such item), ``contaminated-items.jsonl`` (one line per contaminated eval item, with the documents
and their provenance: the list for a "clean" benchmark subset), and ``decontaminate-report.json``.

Resume: the scan runs in ``MASKDIR/.decontaminate-work``; each unit's hits file is written atomically and marks
it done, so after ``kill -9`` the same command scans only the units left and writes the same bytes (a run with
other stores, evals or options starts over). The work folder is removed on success.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from shardstore.curate.evals import AlnumCounter, EvalSet, read_eval
from shardstore.curate.executors import Executor, run_tasks
from shardstore.curate.maskdir import check_out_dir, prune_stale_masks
from shardstore.curate.minhash import default_min_distinct
from shardstore.curate.origins import describe_doc, per_source
from shardstore.curate.scan import ScanTask, hits_path, run_scan_task
from shardstore.curate.stores import StoreSet
from shardstore.curate.units import load_npy, plan_units, save_npy
from shardstore.errors import ConfigError
from shardstore.store.mask import Mask, mask_file_name, write_mask
from shardstore.util.cores import usable_cores
from shardstore.util.durable import atomic_write

__all__ = ["DecontamParams", "decontaminate"]

REPORT_NAME = "decontaminate-report.json"
ITEMS_NAME = "contaminated-items.jsonl"
WORK_NAME = ".decontaminate-work"
MAX_DOCS_PER_ITEM = 20  # listed per item in the report (all of them are in the mask and counted)


@dataclass(frozen=True, slots=True)
class DecontamParams:
    ngram: int = 13
    min_overlap: int = 1
    min_distinct: int | None = None  # None: ceil(n / 2), at least 2
    min_alnum: int | None = None  # letters and digits an eval n-gram's text needs; None: n
    boilerplate_fraction: float = 0.001
    boilerplate_min_docs: int = 10

    def __post_init__(self) -> None:
        if isinstance(self.ngram, bool) or not isinstance(self.ngram, int) or not 1 <= self.ngram <= 255:
            raise ConfigError(f"ngram={self.ngram!r} must be an integer in 1..255")
        if (
            isinstance(self.min_overlap, bool)
            or not isinstance(self.min_overlap, int)
            or self.min_overlap < 1
        ):
            raise ConfigError(f"min_overlap={self.min_overlap!r} must be an integer >= 1")
        if not 0.0 < self.boilerplate_fraction <= 1.0:
            raise ConfigError(f"boilerplate_fraction={self.boilerplate_fraction!r} must be in (0, 1]")
        if self.boilerplate_min_docs < 1:
            raise ConfigError(f"boilerplate_min_docs={self.boilerplate_min_docs!r} must be >= 1")
        md = self.min_distinct
        if md is not None and not 0 <= md <= self.ngram:
            raise ConfigError(f"min_distinct={md!r} must be in 0..ngram ({self.ngram})")
        if self.min_alnum is not None and self.min_alnum < 0:
            raise ConfigError(f"min_alnum={self.min_alnum!r} must be >= 0")

    @property
    def distinct(self) -> int:
        return default_min_distinct(self.ngram) if self.min_distinct is None else self.min_distinct

    @property
    def alnum(self) -> int:
        return self.ngram if self.min_alnum is None else self.min_alnum

    def to_dict(self) -> dict[str, Any]:
        return {
            "ngram": self.ngram,
            "min_overlap": self.min_overlap,
            "min_distinct": self.distinct,
            "min_alnum": self.alnum,
            "boilerplate_fraction": self.boilerplate_fraction,
            "boilerplate_min_docs": self.boilerplate_min_docs,
        }


def _names(paths: Sequence[str]) -> list[str]:
    names: list[str] = []
    for p in paths:
        base = os.path.basename(p).rsplit(".", 1)[0] or p
        name, k = base, 1
        while name in names:
            k += 1
            name = f"{base}#{k}"
        names.append(name)
    return names


def decontaminate(
    stores: Sequence[str | os.PathLike[str]],
    *,
    evals: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    params: DecontamParams | None = None,
    fields: Sequence[str] = ("text",),
    workers: int | None = None,
    executor: Executor | str = Executor.LOCAL,
    unit_docs: int = 1 << 16,
    on_stage: Callable[[str, int, int], None] | None = None,
) -> dict[str, Any]:
    """Scan `stores` for the items of `evals`; write masks, the contaminated item list and the report into `out`.

    Returns the report (the ``--json`` object): ``stores``, ``evals``, ``items``, ``boilerplate``, ``params``.
    """
    params = params or DecontamParams()
    if not evals:
        raise ConfigError("no eval set given: pass --eval FILE (.jsonl or .parquet)")
    sset = StoreSet.open(stores)
    tok = sset.stores[0].tokenizer
    if tok is None:
        raise ConfigError(f"{sset.paths[0]}: the store has no tokenizer.json; eval items cannot be tokenized")
    out = os.fspath(out)
    os.makedirs(out, exist_ok=True)
    check_out_dir(out, "dedup-report.json", "dedup")
    epaths = [os.fspath(e) for e in evals]
    alnum = AlnumCounter(tok)
    esets = [
        read_eval(
            p,
            name=nm,
            fields=fields,
            tokenizer=tok,
            n=params.ngram,
            min_distinct=params.distinct,
            min_alnum=params.alnum,
            alnum=alnum,
        )
        for p, nm in zip(epaths, _names(epaths), strict=True)
    ]
    # n-gram id -> (eval, item) pairs, in CSR form over the sorted unique hashes
    owned = [(hs, e, i) for e, ev in enumerate(esets) for i, hs in ev.ngrams]
    all_h = np.concatenate([h for h, _, _ in owned]) if owned else np.empty(0, np.uint64)
    owner_e = np.concatenate([np.full(h.size, e) for h, e, _ in owned]) if owned else np.empty(0, np.int64)
    owner_i = np.concatenate([np.full(h.size, i) for h, _, i in owned]) if owned else np.empty(0, np.int64)
    uniq, inverse = np.unique(all_h, return_inverse=True)
    work = os.path.join(out, WORK_NAME)
    tasks: list[ScanTask] = []
    for si, store in enumerate(sset.stores):
        for shard, lo, hi in plan_units(store, unit_docs=unit_docs):
            base = int(sset.bases[si])
            tasks.append(
                ScanTask(len(tasks), work, sset.paths[si], shard, lo, hi, base, params.ngram, params.distinct)
            )
    _prepare_work(work, sset, params, fields, uniq, tasks)
    done = [0]

    def tick(_i: int, _r: Any) -> None:
        done[0] += 1
        if on_stage is not None:
            on_stage("scan", done[0], len(tasks))

    run_tasks(run_scan_task, tasks, workers=workers or usable_cores(), executor=executor, on_result=tick)
    parts = [load_npy(hits_path(work, t.index)) for t in tasks]
    hits = np.concatenate(parts) if parts else np.empty((0, 2), np.uint64)
    stale = prune_stale_masks(out, REPORT_NAME, {mask_file_name(s.fingerprint) for s in sset.stores})
    report = _report(sset, esets, params, uniq, inverse, owner_e, owner_i, hits, out, stale)
    shutil.rmtree(work, ignore_errors=True)
    return report


def _prepare_work(
    work: str,
    sset: StoreSet,
    params: DecontamParams,
    fields: Sequence[str],
    uniq: np.ndarray,
    tasks: list[ScanTask],
) -> None:
    """Reuse the scan units of an interrupted run with the same plan (resume after ``kill -9``), else start over.

    The plan (stores, parameters, fields, units and a digest of the eval n-gram table) is written last, after
    ``hashes.npy``; a unit's ``s<unit>.hits.npy`` (written atomically) marks it done. A work folder whose plan
    differs (other evals, stores or options) or is missing is removed, so no hit of another plan is ever reused.
    """
    plan = {
        "params": params.to_dict(),
        "fields": list(fields),
        "stores": [s.fingerprint for s in sset.stores],
        "units": [(t.store_path, t.shard, t.doc_lo, t.doc_hi) for t in tasks],
        "hashes": hashlib.sha256(np.ascontiguousarray(uniq, dtype="<u8").tobytes()).hexdigest(),
    }
    data = json.dumps(plan, sort_keys=True).encode()
    path = os.path.join(work, "plan.json")
    try:
        with open(path, "rb") as f:
            if f.read() == data:
                return
    except FileNotFoundError:
        pass
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    save_npy(os.path.join(work, "hashes.npy"), uniq)
    atomic_write(path, data)


def _report(
    sset: StoreSet,
    esets: list[EvalSet],
    params: DecontamParams,
    uniq: np.ndarray,
    inverse: np.ndarray,
    owner_e: np.ndarray,
    owner_i: np.ndarray,
    hits: np.ndarray,
    out: str,
    stale: list[str],
) -> dict[str, Any]:
    total_docs = sset.total_docs
    limit = max(params.boilerplate_min_docs, params.boilerplate_fraction * total_docs)
    df = (
        np.bincount(hits[:, 1].astype(np.int64), minlength=uniq.size)
        if hits.size
        else np.zeros(uniq.size, int)
    )
    boiler = df > limit
    hits = hits[~boiler[hits[:, 1].astype(np.int64)]] if hits.size else hits
    # expand each (doc, n-gram) hit to every (doc, eval, item) owning that n-gram
    order = np.argsort(inverse, kind="stable")
    starts = np.searchsorted(inverse[order], np.arange(uniq.size + 1))
    hid = hits[:, 1].astype(np.int64)
    reps = starts[hid + 1] - starts[hid]
    rows = np.repeat(np.arange(hid.size), reps)
    pos = (
        order[np.concatenate([np.arange(starts[h], starts[h + 1]) for h in hid.tolist()])]
        if hid.size
        else rows
    )
    trip = (
        np.stack([hits[rows, 0].astype(np.int64), owner_e[pos], owner_i[pos]], 1)
        if rows.size
        else np.empty((0, 3), np.int64)
    )
    keys, overlap = (
        np.unique(trip, axis=0, return_counts=True) if trip.size else (trip, np.empty(0, np.int64))
    )
    keys = keys[overlap >= params.min_overlap]
    overlap = overlap[overlap >= params.min_overlap]
    items: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for (g, e, i), ov in zip(keys.tolist(), overlap.tolist(), strict=True):
        items.setdefault((e, i), []).append((g, ov))
    first_item: dict[int, tuple[int, int]] = {}
    for (e, i), docs in sorted(items.items()):
        for g, _ in docs:
            first_item.setdefault(g, (e, i))
    store_rows = _store_masks(sset, esets, params, first_item, out)
    item_rows = []
    for (e, i), docs in sorted(items.items()):
        listed = []
        for g, ov in sorted(docs)[:MAX_DOCS_PER_ITEM]:
            si = int(np.searchsorted(sset.bases, g, "right")) - 1
            where = describe_doc(sset.stores[si], sset.names[si], g - int(sset.bases[si]))
            where["overlap"] = ov
            listed.append(where)
        item_rows.append({"eval": esets[e].name, "item": i, "num_docs": len(docs), "docs": listed})
    lines = b"".join(json.dumps(r, sort_keys=True).encode() + b"\n" for r in item_rows)
    atomic_write(os.path.join(out, ITEMS_NAME), lines)
    eval_rows = []
    boiler_of_eval = (
        np.bincount(owner_e[boiler[inverse]], minlength=len(esets))
        if uniq.size
        else np.zeros(len(esets), int)
    )
    for e, ev in enumerate(esets):
        bad = sum(ev.problems.values())
        hit = sum(1 for (ee, _i) in items if ee == e)
        eval_rows.append(
            {
                "eval": ev.name,
                "path": ev.path,
                "items": ev.items,
                "usable_items": ev.items - bad,
                "contaminated_items": hit,
                "contaminated_fraction": round(hit / ev.items, 6) if ev.items else 0.0,
                "skipped": dict(sorted(ev.problems.items())),
                "degenerate_ngrams": ev.degenerate,
                "boilerplate_ngrams": int(boiler_of_eval[e]),
            }
        )
    report = {
        "params": params.to_dict(),
        "stores": store_rows,
        "evals": eval_rows,
        "items": item_rows,
        "boilerplate": {
            "ngrams": int(boiler.sum()),
            "doc_limit": limit,
            "hits_dropped": int(df[boiler].sum()),
        },
    }
    atomic_write(os.path.join(out, REPORT_NAME), json.dumps(report, indent=1, sort_keys=True).encode())
    return report


def _store_masks(
    sset: StoreSet,
    esets: list[EvalSet],
    params: DecontamParams,
    first_item: dict[int, tuple[int, int]],
    out: str,
) -> list[dict[str, Any]]:
    gids = np.asarray(sorted(first_item), dtype=np.int64)
    rows = []
    for si, store in enumerate(sset.stores):
        lo = int(sset.bases[si])
        sel = gids[(gids >= lo) & (gids < lo + store.num_docs)]
        local = sel - lo
        reasons = [
            f"contains {params.ngram}-grams of eval {esets[first_item[g][0]].name} item {first_item[g][1]}"
            for g in sel.tolist()
        ]
        mask = Mask.build(
            store_fingerprint=store.fingerprint, num_docs=store.num_docs, ids=local, reasons=reasons
        )
        name = mask_file_name(store.fingerprint)
        write_mask(os.path.join(out, name), mask)
        lengths = np.asarray([store.doc(int(d)).size for d in local.tolist()], dtype=np.int64)
        rows.append(
            {
                "store": sset.names[si],
                "path": sset.paths[si],
                "fingerprint": store.fingerprint,
                "mask": name,
                "docs": store.num_docs,
                "tokens": store.num_tokens,
                "removed_docs": int(local.size),
                "removed_tokens": int(lengths.sum()),
                "sources": per_source(store, local, lengths),
            }
        )
    return rows
