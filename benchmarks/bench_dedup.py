"""Deduplication and decontamination on a store, against datasketch (and rensa / datatrove where installed), in one run.

Corpus (`shardstore.curate.synthetic`, a pure function of the seed): families of an original and edited copies at
the edit rates of `--rates` (token-level substitutions, insertions, deletions and a paragraph swap, each with
probability rate), mixed with as many unrelated documents; then the decontamination plants: `--planted` eval
items copied into documents, a licence footer shared by `--footers` documents (one eval item quotes it),
box-drawing tables and zero runs in 100 documents each (and in eval items). The corpus is built into a store with a
tokenizer trained on 1/8 of it (vocab `--vocab`); every contender sees the same token 5-grams of the same documents.

Accuracy, per edit rate: ground truth is "the document has a family member with exact Jaccard >= 0.8 over token
5-gram sets"; a contender predicts a document when it is in a duplicate cluster (shardstore: removed, or kept as
the first of a cluster) or in any candidate pair (datasketch MinHashLSH with the same 9 x 13 bands, queried for
every document; "+confirm": pairs whose estimated Jaccard reaches 0.8). Precision and recall over documents.

Speed: each contender runs in its own subprocess (clean peak RSS), timed in CPU-seconds of the process and its
children; MB are the UTF-8 bytes of the source texts. shardstore: the whole `dedup` (signatures + LSH buckets +
confirmation + clustering + masks + report) with 1 and 2 workers; datasketch: shingling the same token arrays,
MinHash, LSH insert and query. Decontamination: `decontaminate` vs a plain-Python word 13-gram scan of the texts.

    python benchmarks/bench_dedup.py --docs 27000 --mb 21
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
NGRAM, BANDS, ROWS, THRESHOLD = 5, 9, 13, 0.8


def cpu_seconds() -> float:
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def peak_rss_mib() -> float:  # own peak from VmHWM: ru_maxrss survives exec, so it starts at the driver's RSS
    st = Path("/proc/self/status")
    hwm = [int(x.split()[1]) for x in st.read_text().splitlines() if x[:6] == "VmHWM:"] if st.exists() else []
    own = hwm[0] if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return max(own, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024


# -- corpus ------------------------------------------------------------------------------------------------------


def make_inputs(args: argparse.Namespace, work: Path) -> dict:
    from shardstore.curate.synthetic import BOX_TABLE, LICENCE, ZEROS, make_corpus, vocabulary

    rates = tuple(float(r) for r in args.rates.split(","))
    per_doc = args.mb * 1e6 / args.docs
    words = max(8, int(per_doc / 7.2 / 4))  # 4 paragraphs of ~7.2 bytes per word
    families = args.docs // 2 // (1 + args.copies)
    corpus = make_corpus(
        families=families, copies=args.copies, rates=rates, unrelated=args.docs - families * (1 + args.copies),
        paragraphs=4, words=words, vocab_size=20000, seed=args.seed,
    )  # fmt: skip
    rng = random.Random(args.seed + 1)
    vocab = vocabulary(20000, seed=args.seed + 7)
    texts = list(corpus.texts)
    evals = [" ".join(rng.choices(vocab, k=40)) for _ in range(args.eval_items)]
    planted = sorted(rng.sample(range(len(texts)), args.planted))
    for k, d in enumerate(planted):
        texts[d] += "\n\n" + evals[k % args.eval_items]
    footer = "This page is part of an archive. " + LICENCE
    footers = rng.sample(range(len(texts)), args.footers)
    for d in footers:
        texts[d] += "\n\n" + footer
    for d in rng.sample(range(len(texts)), 100):
        texts[d] += "\n" + BOX_TABLE
    for d in rng.sample(range(len(texts)), 100):
        texts[d] += "\n" + ZEROS
    evals += [footer, BOX_TABLE + "\nTable 1", ZEROS + " end"]  # the traps, as eval items
    inp = work / "input"
    inp.mkdir(parents=True, exist_ok=True)
    with open(inp / "corpus.jsonl", "w") as f:
        f.writelines(json.dumps({"text": t}) + "\n" for t in texts)
    with open(work / "eval.jsonl", "w") as f:
        f.writelines(json.dumps({"text": t}) + "\n" for t in evals)
    meta = {
        "family": corpus.family, "rate": corpus.rate, "planted": planted, "planted_items": args.planted,
        "footers": len(footers), "mb": sum(len(t.encode()) for t in texts) / 1e6, "docs": len(texts),
    }  # fmt: skip
    (work / "meta.json").write_text(json.dumps(meta))
    import shardstore
    import tokenizer

    tok = tokenizer.train(texts[: len(texts) // 8], vocab_size=args.vocab, progress=False)
    tok.save(work / "tok.json")
    shardstore.build([str(inp)], tokenizer=work / "tok.json", out=work / "store", workers=1, progress=False)
    return meta


def dump_tokens(work: Path) -> None:
    """The store's documents as one token array + offsets, so peers in other venvs need no shardstore."""
    from shardstore.store.store import Store

    st = Store.open(work / "store")
    docs = [np.asarray(st.doc(i)) for i in range(st.num_docs)]
    np.save(work / "tokens.npy", np.concatenate(docs).astype(np.uint32))
    np.save(work / "offsets.npy", np.concatenate([[0], np.cumsum([d.size for d in docs])]).astype(np.int64))


def doc_tokens(work: Path) -> list[np.ndarray]:
    toks, offs = np.load(work / "tokens.npy"), np.load(work / "offsets.npy")
    return [toks[offs[i] : offs[i + 1]] for i in range(offs.size - 1)]


def shingles(doc: np.ndarray) -> set[bytes]:
    b = doc.astype("<u4").tobytes()
    return {b[4 * i : 4 * (i + NGRAM)] for i in range(max(0, doc.size - NGRAM + 1))}


def truth(work: Path, meta: dict) -> tuple[set[int], list[int]]:
    """Documents with a family member of exact 5-gram Jaccard >= 0.8; and each document's family."""
    docs = doc_tokens(work)
    members: dict[int, list[int]] = {}
    for i, f in enumerate(meta["family"]):
        if f >= 0:
            members.setdefault(f, []).append(i)
    dup: set[int] = set()
    for ids in members.values():
        sets = [shingles(docs[i]) for i in ids]
        for x in range(len(ids)):
            for y in range(x + 1, len(ids)):
                a, b = sets[x], sets[y]
                if a and b and len(a & b) / len(a | b) >= THRESHOLD:
                    dup.update((ids[x], ids[y]))
    return dup, meta["family"]


# -- contenders (each in its own subprocess) ---------------------------------------------------------------------


def run_ours(work: Path, workers: int, confirm: str = "exact", boilerplate: bool = True) -> dict:
    from shardstore.curate.dedup import dedup
    from shardstore.curate.minhash import MinHashParams
    from shardstore.store.mask import mask_file_name, read_mask
    from shardstore.store.store import Store

    out = work / f"masks-{workers}-{confirm}{'' if boilerplate else '-noboiler'}"
    # boilerplate_fraction 1.0: the boilerplate rule (and its document-frequency pass) off, to measure its cost
    params = MinHashParams(
        NGRAM,
        BANDS,
        ROWS,
        threshold=THRESHOLD,
        confirm=confirm,
        boilerplate_fraction=0.001 if boilerplate else 1.0,
    )
    t0, c0 = time.perf_counter(), cpu_seconds()
    dedup([work / "store"], out=out, workers=workers, params=params)
    wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    st = Store.open(work / "store")
    mask = read_mask(out / mask_file_name(st.fingerprint))
    predicted = set(mask.excluded_ids().tolist())
    for r in mask.reasons:  # the kept document of each cluster is a predicted duplicate too
        predicted.add(int(r.split()[-1]))
    return {"wall": wall, "cpu": cpu, "rss": peak_rss_mib(), "predicted": sorted(predicted)}


def run_datasketch(work: Path, confirm: bool) -> dict:
    from datasketch import MinHash, MinHashLSH

    docs = doc_tokens(work)
    t0, c0 = time.perf_counter(), cpu_seconds()
    lsh = MinHashLSH(threshold=THRESHOLD, num_perm=BANDS * ROWS, params=(BANDS, ROWS))
    hashes = []
    for i, d in enumerate(docs):
        m = MinHash(num_perm=BANDS * ROWS, seed=1)
        sh = shingles(d)
        if not sh:
            hashes.append(None)
            continue
        m.update_batch(list(sh))
        lsh.insert(i, m)
        hashes.append(m)
    predicted: set[int] = set()
    for i, m in enumerate(hashes):
        if m is None:
            continue
        for j in lsh.query(m):
            if j != i and (not confirm or m.jaccard(hashes[j]) >= THRESHOLD):
                predicted.update((i, j))
    wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    return {"wall": wall, "cpu": cpu, "rss": peak_rss_mib(), "predicted": sorted(predicted)}


def run_decontam(work: Path) -> dict:
    from shardstore.curate.decontam import decontaminate

    t0, c0 = time.perf_counter(), cpu_seconds()
    r = decontaminate([work / "store"], evals=[work / "eval.jsonl"], out=work / "decontam", workers=1)
    wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    from shardstore.curate.scan import NgramTable
    from shardstore.curate.units import doc_slice, load_npy
    from shardstore.store.store import Store

    del load_npy
    st = Store.open(work / "store")
    table = NgramTable(
        np.arange(1, 20000, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    )  # eval-sized table
    c1 = cpu_seconds()
    _, docs = st.manifest.shard_counts()
    first = 0
    for s, n in enumerate(int(x) for x in docs):
        toks, offs = doc_slice(st, s, first, first + n)
        table.scan(toks, offs, 13, 7)
        first += n
    scan_cpu = cpu_seconds() - c1
    flagged = sorted(d["doc"] for i in r["items"] for d in i["docs"])
    return {"wall": wall, "cpu": cpu, "scan_cpu": scan_cpu, "rss": peak_rss_mib(), "flagged": flagged,
            "evals": r["evals"], "boilerplate": r["boilerplate"]}  # fmt: skip


def run_plain_scan(work: Path) -> dict:
    texts = [json.loads(line)["text"] for line in (work / "input" / "corpus.jsonl").read_text().splitlines()]
    evals = [json.loads(line)["text"] for line in (work / "eval.jsonl").read_text().splitlines()]
    t0, c0 = time.perf_counter(), cpu_seconds()
    grams = set()
    for e in evals:
        w = e.split()
        grams.update(tuple(w[i : i + 13]) for i in range(len(w) - 12))
    flagged = []
    for d, t in enumerate(texts):
        w = t.split()
        if any(tuple(w[i : i + 13]) in grams for i in range(len(w) - 12)):
            flagged.append(d)
    wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    return {"wall": wall, "cpu": cpu, "rss": peak_rss_mib(), "flagged": flagged}


def run_rensa(work: Path) -> dict:
    from rensa import RMinHash, RMinHashLSH

    docs = doc_tokens(work)
    t0, c0 = time.perf_counter(), cpu_seconds()
    lsh = RMinHashLSH(threshold=THRESHOLD, num_perm=BANDS * ROWS, num_bands=BANDS)
    hashes = []
    for i, d in enumerate(docs):
        m = RMinHash(num_perm=BANDS * ROWS, seed=1)
        m.update([s.hex() for s in shingles(d)])
        lsh.insert(i, m)
        hashes.append(m)
    predicted: set[int] = set()
    for i, m in enumerate(hashes):
        for j in lsh.query(m):
            if j != i:
                predicted.update((i, j))
    wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    return {"wall": wall, "cpu": cpu, "rss": peak_rss_mib(), "predicted": sorted(predicted)}


def run_datatrove(work: Path) -> dict:
    """datatrove's four MinHash stages on the texts (its own word 5-grams), 9 x 13, one task per stage."""
    import logging

    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup.minhash import (
        MinhashConfig,
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
        MinhashDedupSignature,
    )
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers.jsonl import JsonlWriter

    logging.disable(logging.CRITICAL)
    shutil.rmtree(w := work / "datatrove", ignore_errors=True)  # else it skips tasks an earlier run logged
    from datatrove.utils.hashing import HashConfig

    hc = HashConfig(hash_fc="sha1", precision=64)  # its xxhash path fails with xxhash 3.x on str
    cfg = MinhashConfig(hash_config=hc, num_buckets=BANDS, hashes_per_bucket=ROWS, n_grams=NGRAM)
    inp = str(work / "input")
    t0, c0 = time.perf_counter(), cpu_seconds()
    stages = [
        ([JsonlReader(inp), MinhashDedupSignature(output_folder=str(w / "sigs"), config=cfg)], 1),
        ([MinhashDedupBuckets(input_folder=str(w / "sigs"), output_folder=str(w / "buckets"), config=cfg)], BANDS),
        ([MinhashDedupCluster(input_folder=str(w / "buckets"), output_folder=str(w / "ids"), config=cfg)], 1),
        ([JsonlReader(inp), MinhashDedupFilter(input_folder=str(w / "ids"),
                                               exclusion_writer=JsonlWriter(str(w / "removed")))], 1),
    ]  # fmt: skip
    for i, (pipeline, tasks) in enumerate(stages):
        LocalPipelineExecutor(
            pipeline=pipeline, tasks=tasks, workers=1, logging_dir=str(w / f"logs{i}")
        ).run()
    wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    import gzip

    removed = 0
    for path in (w / "removed").rglob("*.gz"):
        with gzip.open(path) as f:
            removed += sum(1 for _ in f)
    return {"wall": wall, "cpu": cpu, "rss": peak_rss_mib(), "predicted": [], "removed": removed}


def run_union_find(work: Path, limit: int | None) -> dict:
    """The driver's union-find over the edge files of `--union-find`: all edges loaded (limit None) or chunked."""
    from shardstore.curate.clusters import cluster, cluster_files

    paths = sorted(str(p) for p in (work / "uf").glob("*.edges.npy"))
    t0, c0 = time.perf_counter(), cpu_seconds()
    if limit is None:
        got = cluster(np.concatenate([np.load(p) for p in paths]))
    else:
        got = cluster_files(paths, memory_limit=limit, spill_dir=str(work / "uf"))
    wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    digest = hashlib.sha256(got.removed.tobytes() + got.kept_of.tobytes() + got.exact.tobytes()).hexdigest()
    return {
        "wall": wall,
        "cpu": cpu,
        "rss": peak_rss_mib(),
        "removed": int(got.removed.size),
        "digest": digest,
    }


def union_find_bench(work: Path, edges: int) -> None:
    """`--union-find E`: E random edges among E/8 documents (clusters of ~16 edges per document, like the bands'
    candidates) in 16 files; peak RSS of each way to cluster them."""
    (work / "uf").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(16):
        k = edges // 16
        docs = max(2, edges // 8)
        e = np.stack([rng.integers(0, docs, k), rng.integers(0, docs, k), rng.integers(0, 2, k)], 1)
        np.save(work / "uf" / f"{i:02d}.edges.npy", e.astype(np.uint64))
    print(f"union-find: {edges} edges ({edges * 24 / 2**20:.0f} MiB on disk) among {edges // 8} documents")
    for name in ("uf-in-memory", "uf-limit-2G", "uf-limit-256M", "uf-limit-64M"):
        r = spawn(name, work)
        if r:
            print(f"  {name:<14} {r['wall']:6.2f}s wall {r['cpu']:6.2f} CPU-s  peak {r['rss']:6.0f} MiB  "
                  f"removed {r['removed']} (sha256 {r['digest'][:12]})")  # fmt: skip


CONTENDERS: dict = {
    "uf-in-memory": lambda w: run_union_find(w, None),
    **{f"uf-limit-{m}M": functools.partial(run_union_find, limit=m << 20) for m in (64, 256)},
    "uf-limit-2G": lambda w: run_union_find(w, 2 << 30),
    "shardstore-1": lambda w: run_ours(w, 1),
    "shardstore-1-estimate": lambda w: run_ours(w, 1, "estimate"),
    "shardstore-1-noboiler": lambda w: run_ours(w, 1, boilerplate=False),
    "shardstore-2": lambda w: run_ours(w, 2),
    "datasketch": lambda w: run_datasketch(w, False),
    "datasketch+confirm": lambda w: run_datasketch(w, True),
    "rensa": run_rensa,
    "datatrove": run_datatrove,
    "decontaminate": run_decontam,
    "plain-13gram-scan": run_plain_scan,
    **{f"shardstore-{n}": functools.partial(run_ours, workers=n) for n in (4, 8, 16)},
}


def spawn(name: str, work: Path, python: str = sys.executable) -> dict | None:
    env = {**os.environ, "PYTHONPATH": str(HERE.parent) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = [python, str(Path(__file__).resolve()), "--work", str(work), "--run", name]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        print(f"{name}: failed ({p.stderr.strip().splitlines()[-1] if p.stderr.strip() else p.returncode})")
        return None
    return json.loads(p.stdout.strip().splitlines()[-1])


def scores(pred: set[int], dup: set[int], family: list[int], rate: list[float]) -> dict:
    out = {}
    for r in sorted(set(rate)):
        docs = {i for i, f in enumerate(family) if f >= 0 and rate[f] == r}
        p, t = pred & docs, dup & docs
        out[r] = (len(p & t) / len(t) if t else float("nan"), len(p & t) / len(p) if p else float("nan"))
    unrelated = {i for i, f in enumerate(family) if f < 0}
    tp = len(pred & dup)
    out["all"] = (tp / len(dup) if dup else float("nan"), tp / len(pred) if pred else float("nan"))
    out["unrelated_flagged"] = len(pred & unrelated)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--docs", type=int, default=27000)
    ap.add_argument("--mb", type=float, default=21.0)
    ap.add_argument("--copies", type=int, default=2)
    ap.add_argument("--rates", default="0,0.01,0.02,0.05,0.1,0.2")
    ap.add_argument("--vocab", type=int, default=4096)
    ap.add_argument("--eval-items", type=int, default=500)
    ap.add_argument("--planted", type=int, default=48)
    ap.add_argument("--footers", type=int, default=525)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", default="/tmp/bench-dedup")
    ap.add_argument(
        "--peer-python", default=None, help="python of a venv with rensa (e.g. /work/venvs/dedup)"
    )
    ap.add_argument(
        "--scaling-only", action="store_true", help="only shardstore with 1 and 2 workers (big corpora)"
    )
    ap.add_argument("--workers", default="1,2", help="worker counts of --scaling-only")
    ap.add_argument(
        "--union-find", type=int, default=0, help="only the driver union-find over E random edges"
    )
    ap.add_argument("--run", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    work = Path(args.work)
    if args.run:
        print(json.dumps(CONTENDERS[args.run](work)))
        return
    if args.union_find:
        union_find_bench(work, args.union_find)
        return
    if not (work / "meta.json").exists():
        t = time.perf_counter()
        make_inputs(args, work)
        print(f"corpus and store built in {time.perf_counter() - t:.0f}s")
    meta = json.loads((work / "meta.json").read_text())
    mb = meta["mb"]
    if args.scaling_only:
        counts = [int(w) for w in args.workers.split(",")]
        walls = {w: spawn(f"shardstore-{w}", work) for w in counts}
        one = walls[counts[0]]
        for w, r in walls.items():
            if one and r:
                cpu = f" ({mb / r['cpu']:.1f} MB/CPU-s)" if w == 1 else ""
                print(f"{meta['docs']} documents, {mb:.1f} MB, {w} workers: {r['wall']:.2f}s wall{cpu}, "
                      f"{one['wall'] / r['wall']:.2f}x the first")  # fmt: skip
        return
    print(
        f"corpus: {meta['docs']} documents, {mb:.1f} MB of text; token {NGRAM}-grams, {BANDS} x {ROWS} bands"
    )
    if not (work / "tokens.npy").exists():
        dump_tokens(work)
    dup, family = truth(work, meta)
    rows = {}
    for name in ("shardstore-1", "shardstore-1-noboiler", "shardstore-1-estimate", "shardstore-2", "datasketch",
                 "datasketch+confirm"):  # fmt: skip
        rows[name] = spawn(name, work)
    if args.peer_python:
        rows["rensa"] = spawn("rensa", work, args.peer_python)
        rows["datatrove"] = spawn("datatrove", work, args.peer_python)
    rates = sorted(set(meta["rate"]))
    print(f"\ndedup, documents with a true duplicate (J >= {THRESHOLD}): {len(dup)}")
    print(
        "contender            MB/CPU-s  CPU-s   wall-s  peak MiB  "
        + "  ".join(f"r={r:<5} R/P  " for r in rates)
    )
    for name, r in rows.items():
        if r is None:
            continue
        if name == "datatrove":  # word 5-grams of its own tokenizer, removed ids only: speed only
            print(
                f"{name:<21} {mb / r['cpu']:8.2f} {r['cpu']:6.2f} {r['wall']:7.2f} {r['rss']:9.0f}  (speed only: its own word 5-grams; "
                f"removed {r.get('removed', '?')} documents)"
            )
            continue
        sc = scores(set(r["predicted"]), dup, family, meta["rate"])
        cells = "  ".join(f"{sc[x][0]:.3f}/{sc[x][1]:.3f}" for x in rates)
        # pool workers are children of the forkserver, not of the measured process: no CPU-s for 2 workers
        speed = "     n/a    n/a" if name == "shardstore-2" else f"{mb / r['cpu']:8.2f} {r['cpu']:6.2f}"
        print(f"{name:<21} {speed} {r['wall']:7.2f} {r['rss']:9.0f}  {cells}")
        print(f"{'':<20} all: recall {sc['all'][0]:.3f} precision {sc['all'][1]:.3f}; "
              f"unrelated documents flagged {sc['unrelated_flagged']}")  # fmt: skip
    one, two = rows.get("shardstore-1"), rows.get("shardstore-2")
    if one and two:
        print(
            f"scaling 1 -> 2 workers: wall {one['wall']:.2f}s -> {two['wall']:.2f}s ({one['wall'] / two['wall']:.2f}x)"
        )
    ds = rows.get("datasketch")
    if one and ds:
        print(f"shardstore-1 vs datasketch: {ds['cpu'] / one['cpu']:.1f}x the MB/CPU-s, peak RSS {one['rss']:.0f} vs "
              f"{ds['rss']:.0f} MiB")  # fmt: skip
    dc, plain = spawn("decontaminate", work), spawn("plain-13gram-scan", work)
    if dc and plain:
        planted = set(meta["planted"])
        print("\ndecontamination (13-grams):")
        print(f"  shardstore decontaminate: {mb / dc['cpu']:.1f} MB/CPU-s end to end (tokenizing the eval set, "
              f"scan, report); scan alone {mb / dc['scan_cpu']:.1f} MB/CPU-s; peak {dc['rss']:.0f} MiB")  # fmt: skip
        print(
            f"  plain-Python word 13-gram scan: {mb / plain['cpu']:.1f} MB/CPU-s; peak {plain['rss']:.0f} MiB"
        )
        for name, flagged in (("shardstore", set(dc["flagged"])), ("plain scan", set(plain["flagged"]))):
            print(f"  {name}: flagged {len(flagged)} documents, {len(flagged & planted)} of {len(planted)} planted, "
                  f"{len(flagged - planted)} others")  # fmt: skip
        print(f"  boilerplate n-grams dropped: {dc['boilerplate']['ngrams']}; per eval: "
              + "; ".join(f"{e['eval']} {e['contaminated_items']}/{e['items']} items, degenerate n-grams "
                          f"{e['degenerate_ngrams']}" for e in dc["evals"]))  # fmt: skip


if __name__ == "__main__":
    main()
