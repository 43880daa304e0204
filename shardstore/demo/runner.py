"""`shardstore demo`: the whole pipeline, end to end, on data every Python installation has.

Steps (each one the public API a user would call; nothing here is demo-only machinery):
1. corpus: the stdlib's `*.py` files as a "code" source, their docstrings and comments as a "text" source
   (`demo_corpus`), capped at `max_mb` of code so that the demo stays under 3 minutes on 2 cores;
2. `tokenizer.train` on both, saved as `tokenizer.json` (skipped when the same corpus was already trained on);
3. `shardstore.build` of one store per source (a finished build re-run writes nothing);
4. a 70/30 mixture in `mix.toml`, `Mixture.plan` for the tokens the demo will draw;
5. `make_dataloader`: an uninterrupted run of `steps` batches (the reference: hashes, source counts, tokens/s),
   then the same stream interrupted at `interrupt_at`, its `state_dict()` saved as JSON, a fresh loader restored
   from it, and the rest compared batch by batch with the reference;
6. a report (printed and `report.json`): corpus, tokenizer, stores, plan, delivered proportions against the
   weights, throughput, the resume check, and one decoded sample per source.

The resume check is a real check: a mismatch makes the demo fail (exit code 1) rather than print a success.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from shardstore.errors import ConfigError, StateError
from shardstore.util.durable import atomic_write

__all__ = ["DemoConfig", "DemoReport", "run_demo"]

_SOURCES = (("code", 0.7), ("text", 0.3))


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoConfig:
    """Options of `shardstore demo`; the defaults fit in under 3 minutes on 2 cores."""

    out: Path = Path("demo-out")
    max_mb: float = 64.0  # more than the whole stdlib of CPython 3.11 (31 MB of .py files)
    vocab_size: int = 4096
    seq_len: int = 256
    batch_size: int = 16
    steps: int = 200
    interrupt_at: int = 120
    num_workers: int = 2
    workers: int | None = None
    seed: int = 1234
    progress: bool = True

    def validate(self) -> None:
        if self.max_mb <= 0:
            raise ConfigError(f"max_mb must be > 0, got {self.max_mb=}")
        if self.vocab_size < 256 + 1:
            raise ConfigError(f"vocab_size must exceed the 256 byte tokens plus EOS, got {self.vocab_size=}")
        if not 0 < self.interrupt_at < self.steps:
            raise ConfigError(f"need 0 < interrupt_at < steps, got {self.interrupt_at=} {self.steps=}")
        if self.seq_len < 1 or self.batch_size < 1 or self.num_workers < 0:
            raise ConfigError(f"bad loader options: {self.seq_len=} {self.batch_size=} {self.num_workers=}")


@dataclass(slots=True)
class DemoReport:
    out: str
    corpus: dict[str, Any] = field(default_factory=dict)
    tokenizer: dict[str, Any] = field(default_factory=dict)
    stores: dict[str, dict[str, Any]] = field(default_factory=dict)
    plan: dict[str, Any] = field(default_factory=dict)
    loader: dict[str, Any] = field(default_factory=dict)
    resume: dict[str, Any] = field(default_factory=dict)
    samples: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, default=str)


def run_demo(cfg: DemoConfig, *, echo: Any = print) -> DemoReport:
    """Run every step, write everything under `cfg.out`, return the report (also written as report.json)."""
    cfg.validate()
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    report = DemoReport(out=str(out))
    t = time.perf_counter()

    echo(
        f"[1/5] corpus: Python stdlib sources (code) and their docstrings + comments (text), <= {cfg.max_mb} MB"
    )
    corpus = _step_corpus(cfg, out, report)
    report.seconds["corpus"] = time.perf_counter() - t

    t = time.perf_counter()
    echo(f"[2/5] tokenizer: byte-level BPE, vocab {cfg.vocab_size}")
    tok_path = _step_tokenizer(cfg, out, corpus, report)
    report.seconds["tokenizer"] = time.perf_counter() - t

    t = time.perf_counter()
    echo("[3/5] build: one verified store per source")
    _step_build(cfg, out, corpus, tok_path, report)
    report.seconds["build"] = time.perf_counter() - t

    t = time.perf_counter()
    echo("[4/5] mixture: 70% code / 30% text, planned")
    mix_path = _step_mixture(cfg, out, report)
    report.seconds["plan"] = time.perf_counter() - t

    t = time.perf_counter()
    echo(f"[5/5] loader: {cfg.steps} batches, interrupted at {cfg.interrupt_at} and resumed")
    _step_loader(cfg, out, mix_path, report)
    report.seconds["loader"] = time.perf_counter() - t

    _write_text(out / "report.json", report.to_json())
    return report


def _step_corpus(cfg: DemoConfig, out: Path, report: DemoReport) -> dict[str, Path]:
    from shardstore.demo.corpus import collect_stdlib_corpus

    info = collect_stdlib_corpus(
        out / "corpus", max_bytes=int(cfg.max_mb * (1 << 20)), workers=cfg.workers, progress=cfg.progress
    )
    report.corpus = {
        "stdlib": info.root,
        "files": info.files_seen,
        "code_docs": info.code_docs,
        "code_bytes": info.code_bytes,
        "text_docs": info.text_docs,
        "text_bytes": info.text_bytes,
        "skipped": dict(info.skipped),
    }
    return {"code": info.code_path, "text": info.text_path}


def _digest(paths: list[Path], extra: str) -> str:
    h = hashlib.blake2b(extra.encode(), digest_size=16)
    for p in paths:
        with open(p, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
    return h.hexdigest()


def _step_tokenizer(cfg: DemoConfig, out: Path, corpus: dict[str, Path], report: DemoReport) -> Path:
    from tokenizer import Tokenizer, train

    tok_path, stamp_path = out / "tokenizer.json", out / ".tokenizer.stamp"
    stamp = _digest([corpus["code"], corpus["text"]], f"vocab={cfg.vocab_size}")
    reused = tok_path.exists() and stamp_path.exists() and stamp_path.read_text() == stamp
    t = time.perf_counter()
    if reused:
        tok = Tokenizer.load(tok_path)
    else:
        tok = train([corpus["code"], corpus["text"]], vocab_size=cfg.vocab_size, progress=cfg.progress)
        tok.save(tok_path)
        _write_text(stamp_path, stamp)
    report.tokenizer = {
        "path": str(tok_path),
        "vocab_size": tok.vocab_size,
        "eos_id": tok.eos_id,
        "fingerprint": tok.fingerprint,
        "reused": reused,
        "train_seconds": None if reused else time.perf_counter() - t,
    }
    return tok_path


def _step_build(
    cfg: DemoConfig, out: Path, corpus: dict[str, Path], tok_path: Path, report: DemoReport
) -> None:
    from shardstore import build  # the public entry point (shardstore.preprocess.pipeline.build)
    from shardstore.store.store import Store

    tok_fp = report.tokenizer["fingerprint"]
    for name, _ in _SOURCES:
        store_dir, stamp_path = out / "stores" / name, out / "stores" / f".{name}.stamp"
        stamp = _digest([corpus[name]], f"tokenizer={tok_fp}")
        if stamp_path.exists() and stamp_path.read_text() != stamp and store_dir.exists():
            # Built by an earlier demo run from another corpus cap or tokenizer: a build resumes only with its
            # original inputs, so this derived store (ours, under --out) is rebuilt from scratch.
            shutil.rmtree(store_dir)
        t = time.perf_counter()
        result = build(
            [str(corpus[name])],
            tokenizer=str(tok_path),
            out=str(out / "stores" / name),
            workers=cfg.workers,
            progress=cfg.progress,
        )
        seconds = time.perf_counter() - t
        _write_text(stamp_path, stamp)
        store = Store.open(str(out / "stores" / name))
        report.stores[name] = {
            "path": str(out / "stores" / name),
            "num_tokens": store.num_tokens,
            "num_docs": store.num_docs,
            "fingerprint": store.fingerprint,
            "build_seconds": seconds,
            "already_built": bool(getattr(result, "nothing_to_do", False)),
            "input_bytes": corpus[name].stat().st_size,
        }


def _step_mixture(cfg: DemoConfig, out: Path, report: DemoReport) -> Path:
    from shardstore.loader.mixture import Mixture

    lines = [f"seq_len = {cfg.seq_len}", f"seed = {cfg.seed}", ""]
    for name, weight in _SOURCES:
        lines += ["[[sources]]", f'name = "{name}"', f'store = "stores/{name}"', f"weight = {weight}", ""]
    mix_path = out / "mix.toml"
    _write_text(mix_path, "\n".join(lines))
    mixture = Mixture.from_file(mix_path)
    plan = mixture.plan(cfg.steps * cfg.batch_size * cfg.seq_len)
    report.plan = _plan_dict(plan)
    return mix_path


def _plan_dict(plan: Any) -> dict[str, Any]:
    for attr in ("to_dict", "as_dict"):
        if hasattr(plan, attr):
            return dict(getattr(plan, attr)())
    return {"plan": str(plan)}


def _batch_hash(batch: dict[str, Any]) -> str:
    h = hashlib.blake2b(digest_size=8)
    for key in ("input_ids", "labels", "source_ids"):
        h.update(batch[key].numpy().tobytes())
    return h.hexdigest()


def _step_loader(cfg: DemoConfig, out: Path, mix_path: Path, report: DemoReport) -> None:
    import numpy as np
    from tqdm.auto import tqdm

    from shardstore.loader.mixture import Mixture
    from shardstore.loader.torch import make_dataloader

    mixture = Mixture.from_file(mix_path)
    names = [name for name, _ in _SOURCES]

    def loader(num_workers: int = cfg.num_workers) -> Any:
        return make_dataloader(mixture, batch_size=cfg.batch_size, num_workers=num_workers)

    # Reference: the uninterrupted stream.
    reference: list[str] = []
    counts = np.zeros(len(names), dtype=np.int64)
    first_sample: dict[int, Any] = {}
    bar = tqdm(total=cfg.steps, desc="batches", unit="batch", disable=not cfg.progress, leave=False)
    it = iter(loader())
    next_batch = next(it)  # worker start-up stays out of the throughput
    t0 = time.perf_counter()
    for step in range(cfg.steps):
        batch = next_batch if step == 0 else next(it)
        reference.append(_batch_hash(batch))
        src = batch["source_ids"].numpy()
        counts += np.bincount(src, minlength=len(names))[: len(names)]
        for row, s in enumerate(src.tolist()):
            first_sample.setdefault(s, batch["input_ids"][row])
        bar.update(1)
    elapsed = time.perf_counter() - t0
    bar.close()
    del it
    total = int(counts.sum())
    report.loader = {
        "steps": cfg.steps,
        "batch_size": cfg.batch_size,
        "seq_len": cfg.seq_len,
        "num_workers": cfg.num_workers,
        "tokens": total * cfg.seq_len,
        # the first batch was taken before the clock started (worker start-up)
        "tokens_per_s": (cfg.steps - 1) * cfg.batch_size * cfg.seq_len / elapsed if elapsed > 0 else None,
        "delivered": {n: int(c) for n, c in zip(names, counts.tolist(), strict=True)},
        "delivered_fraction": {n: c / total for n, c in zip(names, counts.tolist(), strict=True)},
        "target_fraction": dict(_SOURCES),
    }

    # Interrupted: run to `interrupt_at`, save the state as JSON, drop the loader; then a fresh one resumes.
    it = iter(interrupted := loader())
    before = [_batch_hash(next(it)) for _ in range(cfg.interrupt_at)]
    state = interrupted.state_dict()
    del it, interrupted
    state_path = out / "loader_state.json"
    _write_text(state_path, json.dumps(state, indent=1))
    # The resumed loader reads in another number of processes: the stream must not depend on it.
    resumed_workers = 0 if cfg.num_workers else 2
    resumed = loader(resumed_workers)
    resumed.load_state_dict(json.loads(state_path.read_text()))
    it = iter(resumed)
    after = [_batch_hash(next(it)) for _ in range(cfg.steps - cfg.interrupt_at)]
    del it, resumed
    identical = before + after == reference
    report.resume = {
        "interrupted_at": cfg.interrupt_at,
        "workers_before": cfg.num_workers,
        "workers_after": resumed_workers,
        "state_bytes": state_path.stat().st_size,
        "batches_compared": cfg.steps,
        "identical": identical,
    }
    if not identical:
        first_bad = next(i for i, (a, b) in enumerate(zip(before + after, reference, strict=True)) if a != b)
        raise StateError(
            f"resumed stream differs from the uninterrupted one at batch {first_bad} (interrupted at "
            f"{cfg.interrupt_at}); state saved in {state_path}. This is a bug: please report it."
        )

    from shardstore.store.store import Store

    tok = Store.open(str(out / "stores" / "code")).tokenizer
    for s, ids in sorted(first_sample.items()):
        report.samples[names[s]] = tok.decode(ids[:120].tolist())


def format_report(report: DemoReport) -> str:
    """The short human-readable summary `shardstore demo` prints."""
    c, tk, ld, rs = report.corpus, report.tokenizer, report.loader, report.resume
    lines = [
        "",
        f"corpus    {c['files']} stdlib files: code {c['code_bytes'] / 1e6:.1f} MB ({c['code_docs']} docs), "
        f"text {c['text_bytes'] / 1e6:.1f} MB ({c['text_docs']} docs); skipped {c['skipped'] or 'none'}",
        f"tokenizer vocab {tk['vocab_size']}, fingerprint {tk['fingerprint'][:16]}, "
        + ("reused" if tk["reused"] else f"trained in {tk['train_seconds']:.1f} s"),
    ]
    for name, s in report.stores.items():
        rate = s["input_bytes"] / s["build_seconds"] / 1e6 if s["build_seconds"] > 0 else float("nan")
        how = (
            "already built"
            if s["already_built"]
            else f"built in {s['build_seconds']:.1f} s ({rate:.1f} MB/s)"
        )
        lines.append(
            f"store     {name}: {s['num_tokens']:,} tokens, {s['num_docs']:,} docs, {how}, "
            f"fingerprint {s['fingerprint'][:16]}"
        )
    frac = ", ".join(
        f"{n} {ld['delivered_fraction'][n]:.4f} (target {ld['target_fraction'][n]:.2f}, {ld['delivered'][n]} samples)"
        for n in ld["delivered"]
    )
    for row in report.plan.get("sources", []):
        lines.append(
            f"plan      {row['name']}: weight {row['weight']:.2f}, draws {row['tokens_drawn']:,} of "
            f"{row['tokens_available']:,} tokens ({row['epochs']:.2f} epochs)"
        )
    lines += [f"plan      warning: {w}" for w in report.plan.get("warnings", [])]
    lines += [
        f"loader    {ld['tokens']:,} tokens in {ld['steps']} batches of {ld['batch_size']}x{ld['seq_len']}, "
        f"{ld['tokens_per_s'] / 1e6:.2f} M tokens/s with {ld['num_workers']} workers",
        f"mix       delivered {frac}",
        f"resume    interrupted at batch {rs['interrupted_at']} ({rs['workers_before']} workers), state "
        f"{rs['state_bytes']} bytes of JSON, resumed with {rs['workers_after']} workers; stream identical to "
        f"the uninterrupted one over {rs['batches_compared']} batches: "
        f"{'yes' if rs['identical'] else 'NO'}",
    ]
    for name, text in report.samples.items():
        lines.append(f"sample    [{name}] {text[:240]!r}")
    total = sum(report.seconds.values())
    lines.append(f"time      {total:.1f} s ({', '.join(f'{k} {v:.1f}' for k, v in report.seconds.items())})")
    lines.append(f"output    {report.out}/ (report.json, mix.toml, tokenizer.json, stores/, corpus/)")
    return "\n".join(lines)


def _write_text(path: Path, text: str) -> None:
    atomic_write(path, text.encode())
