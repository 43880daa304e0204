"""The planner: per-source weight, tokens available and drawn, epochs and warnings for a run, before it starts.

Pure: it takes the interleave and each source's number of windows (what the loader counted when it opened the
stores) and computes exact counts (`Interleave.counts_at`: closed form, so a plan for 100B tokens with weights such as
0.333333 / 0.666667 costs milliseconds, not the minutes of a replay); `Mixture.plan` supplies them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from shardstore.mix.interleave import Interleave

__all__ = ["REPEAT_WARNING_EPOCHS", "Plan", "SourcePlan", "plan_run"]

REPEAT_WARNING_EPOCHS = 4.0


@dataclass(frozen=True, slots=True)
class SourcePlan:
    name: str
    weight: float  # average weight over the planned run
    tokens_available: int  # training tokens in one epoch (windows x seq_len)
    samples_available: int
    samples_drawn: int
    tokens_drawn: int
    epochs: float
    kept_tokens: int = 0  # tokens of the source's training side (after masks and the held-out split)
    excluded_tokens: int = 0  # tokens left out by masks (and copies of held-out documents)
    heldout_tokens: int = 0  # tokens of the held-out side
    masks: tuple[
        dict[str, Any], ...
    ] = ()  # per mask applied: what it removes (docs, tokens), as the loader counted

    def to_dict(self) -> dict[str, Any]:
        return {
            "masks": [dict(m) for m in self.masks],
            "kept_tokens": self.kept_tokens,
            "excluded_tokens": self.excluded_tokens,
            "heldout_tokens": self.heldout_tokens,
            "name": self.name,
            "weight": self.weight,
            "tokens_available": self.tokens_available,
            "samples_available": self.samples_available,
            "samples_drawn": self.samples_drawn,
            "tokens_drawn": self.tokens_drawn,
            "epochs": self.epochs,
        }


@dataclass(frozen=True, slots=True)
class Plan:
    total_tokens: int
    total_samples: int
    seq_len: int
    sources: tuple[SourcePlan, ...]
    warnings: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {
            "total_tokens": self.total_tokens,
            "total_samples": self.total_samples,
            "seq_len": self.seq_len,
            "sources": [s.to_dict() for s in self.sources],
            "warnings": list(self.warnings),
        }


def plan_run(
    il: Interleave,
    names: Sequence[str],
    windows: Sequence[int],
    *,
    seq_len: int,
    total_tokens: int,
    token_counts: Sequence[tuple[int, int, int]] | None = None,
    mask_counts: Sequence[Sequence[dict[str, Any]]] | None = None,
) -> Plan:
    """Per-source weight, tokens available and drawn, epochs and warnings for a run of ``total_tokens``.

    `token_counts`: (kept, excluded, held-out) tokens per source, as the loader counted them; windows (hence
    tokens available, epochs) already count kept tokens only. `mask_counts`: per source, what each of its masks
    removes."""
    if token_counts is None:
        token_counts = [(w * seq_len, 0, 0) for w in windows]
    samples = -(-total_tokens // seq_len)
    drawn = list(
        il.counts_at(samples)
    )  # exact, for schedules too: random access, independent of the run length
    rows, warnings = [], []
    for s, (name, num_windows) in enumerate(zip(names, windows, strict=True)):
        epochs = drawn[s] / num_windows
        avg = float(il.schedule.cumulative(s, samples) / samples)
        rows.append(
            SourcePlan(
                name=name,
                weight=avg,
                tokens_available=num_windows * seq_len,
                samples_available=num_windows,
                samples_drawn=drawn[s],
                tokens_drawn=drawn[s] * seq_len,
                epochs=epochs,
                kept_tokens=token_counts[s][0],
                excluded_tokens=token_counts[s][1],
                heldout_tokens=token_counts[s][2],
                masks=tuple(mask_counts[s]) if mask_counts is not None else (),
            )
        )
        if epochs > REPEAT_WARNING_EPOCHS:
            warnings.append(
                f"source {name!r} is repeated {epochs:.2f} times (more than {REPEAT_WARNING_EPOCHS:g}): "
                "repeated data beyond ~4 epochs gives quickly diminishing returns; lower its weight or add data"
            )
        elif drawn[s] == 0 and avg > 0:
            warnings.append(f"source {name!r} has weight {avg:.3g} but draws no sample in this run")
    return Plan(total_tokens, samples, seq_len, tuple(rows), tuple(warnings))
