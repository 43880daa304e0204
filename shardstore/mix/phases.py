"""A scheduled mixture, phase by phase: where each phase starts and ends, its weights at both ends, what each source
draws in it and the epoch it reaches; and the curves behind `mix plan --plot`.

Pure: it takes the exact `WeightSchedule`, the phases in sample positions (`MixtureConfig.phases()`) and each
source's number of windows. Tokens drawn are the exact integral of the weights (the loader's real counts are
within one sample of it, see `shardstore.mix.interleave`), floored to whole samples.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from shardstore.mix.interleave import Phase, WeightSchedule

__all__ = ["PhaseRow", "phase_rows", "raw_weight_warning", "weight_curves"]


@dataclass(frozen=True, slots=True)
class PhaseRow:
    """One phase of a run: samples [start, end), reached or cut short by the run's end."""

    index: int
    start: int  # global samples
    end: int
    ramp: int  # samples over which the weights move linearly from the previous phase's (0: at once)
    weights_start: tuple[float, ...]
    weights_end: tuple[float, ...]
    drawn: tuple[int, ...]  # samples each source gives in this phase
    epochs_end: tuple[float, ...]  # epoch each source has reached at the phase's end

    def to_dict(self, names: Sequence[str], *, seq_len: int, global_batch_size: int | None) -> dict[str, Any]:
        def steps(samples: int) -> int | None:
            return None if not global_batch_size else samples // global_batch_size

        return {
            "phase": self.index,
            "start_tokens": self.start * seq_len,
            "end_tokens": self.end * seq_len,
            "start_step": steps(self.start),
            "end_step": steps(self.end),
            "ramp_tokens": self.ramp * seq_len,
            "ramp": "linear" if self.ramp else "constant",
            "sources": [
                {
                    "name": name,
                    "weight_start": self.weights_start[s],
                    "weight_end": self.weights_end[s],
                    "tokens_drawn": self.drawn[s] * seq_len,
                    "epochs_end": self.epochs_end[s],
                }
                for s, name in enumerate(names)
            ],
        }


def _weights(schedule: WeightSchedule, n: int) -> tuple[float, ...]:
    return tuple(float(w) for w in schedule.weights_at(n))


def phase_rows(
    schedule: WeightSchedule, phases: Sequence[Phase], windows: Sequence[int], *, total_samples: int
) -> list[PhaseRow]:
    """The phases that a run of `total_samples` reaches, each cut at the run's end."""
    if total_samples < 1:
        raise ValueError("total_samples must be >= 1")
    rows = []
    for i, phase in enumerate(phases):
        if phase.start >= total_samples:
            break
        end = phases[i + 1].start if i + 1 < len(phases) else total_samples
        end = min(end, total_samples)
        before = [schedule.cumulative(s, phase.start) for s in range(schedule.num_sources)]
        after = [schedule.cumulative(s, end) for s in range(schedule.num_sources)]
        rows.append(
            PhaseRow(
                index=i,
                start=phase.start,
                end=end,
                ramp=min(phase.ramp, end - phase.start),
                weights_start=_weights(schedule, phase.start),
                weights_end=_weights(schedule, end - 1),
                drawn=tuple(int(a) - int(b) for a, b in zip(after, before, strict=True)),
                epochs_end=tuple(float(a / w) for a, w in zip(after, windows, strict=True)),
            )
        )
    return rows


def weight_curves(
    schedule: WeightSchedule, windows: Sequence[int], *, total_samples: int, points: int = 200
) -> tuple[list[int], list[list[float]], list[list[float]]]:
    """Samples at `points` (+ the phase boundaries) positions, each source's weight and cumulative epochs there."""
    marks = {0, total_samples - 1}
    marks.update(round(i * (total_samples - 1) / max(points - 1, 1)) for i in range(points))
    for start, length, _ in schedule.stretches():
        for m in (start, start + length) if length < total_samples else (start,):
            if 0 <= m < total_samples:
                marks.add(m)
    xs = sorted(marks)
    weights = [[float(schedule.weights_at(x)[s]) for x in xs] for s in range(schedule.num_sources)]
    epochs = [
        [float(schedule.cumulative(s, x + 1) / windows[s]) for x in xs] for s in range(schedule.num_sources)
    ]
    return xs, weights, epochs


def raw_weight_warning(what: str, raw: Mapping[str, Any]) -> str | None:
    """A warning when weights as written do not sum to 1, showing the normalized values the mixture uses."""
    values = {name: Fraction(str(w)) for name, w in raw.items()}
    total = sum(values.values(), Fraction(0))
    if total == 1 or total <= 0:
        return None
    shown = ", ".join(f"{name} {float(v / total):.4g}" for name, v in values.items())
    return f"{what} sum to {float(total):.6g}, not 1; they are normalized to: {shown}"
