"""The console lines of benchmarks/train_gpt.py: the steps since the previous line, summed, printed as means.

`LogWindow` sums each step's per-source token-loss sums and token counts, data wait, GPU gap and step time; `take`
turns them into one record (what ``--json`` prints) and starts an empty window, so a line covers exactly the steps
since the previous one, whatever ``--log-every`` is and whether or not it divides the run. `format_log_line` and
`format_heldout_line` are the text forms.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["LogWindow", "format_heldout_line", "format_log_line"]


@dataclass(slots=True)
class LogWindow:
    """Steps since the last console line, summed: the line shows their means, whatever ``--log-every`` is.

    Loss is per token (sum of token losses over the tokens counted), overall and grouped by each sample's source id,
    so a source that had few samples in the window weighs as little as it did in training.
    """

    first: int = 0  # first step of the window (0: empty)
    last: int = 0
    steps: int = 0
    sums: list[float] = field(default_factory=list)
    counts: list[float] = field(default_factory=list)
    wait_s: float = 0.0
    gap_s: float = 0.0
    gap_steps: int = 0
    step_s: float = 0.0

    def add(
        self,
        step: int,
        sums: list[float],
        counts: list[float],
        wait_s: float,
        gap_s: float | None,
        step_s: float,
    ) -> None:
        if not self.steps:
            self.first, self.sums, self.counts = step, [0.0] * len(sums), [0.0] * len(sums)
        self.last, self.steps = step, self.steps + 1
        self.sums = [a + b for a, b in zip(self.sums, sums, strict=True)]
        self.counts = [a + b for a, b in zip(self.counts, counts, strict=True)]
        self.wait_s += wait_s
        self.step_s += step_s
        if gap_s is not None:
            self.gap_s, self.gap_steps = self.gap_s + gap_s, self.gap_steps + 1

    def take(self, names: list[str]) -> dict[str, Any]:
        """The window's line as a record (what ``--json`` prints), and a new empty window."""
        total = sum(self.counts)
        rec = {
            "step": self.last,
            "window": [self.first, self.last],
            "loss": sum(self.sums) / total if total else None,
            "source_loss": {
                name: (s / c if c else None) for name, s, c in zip(names, self.sums, self.counts, strict=True)
            },
            "source_tokens": {name: int(c) for name, c in zip(names, self.counts, strict=True)},
            "data_wait_ms": self.wait_s / self.steps * 1e3,
            "gpu_data_gap_ms": self.gap_s / self.gap_steps * 1e3 if self.gap_steps else None,
            "step_ms": self.step_s / self.steps * 1e3,
        }
        self.first = self.last = self.steps = self.gap_steps = 0
        self.wait_s = self.gap_s = self.step_s = 0.0
        return rec


def _loss_text(v: float | None) -> str:
    return "-" if v is None else f"{v:.4f}"


def format_log_line(r: dict[str, Any]) -> str:
    """``step 20 (11-20) | loss 3.2104 | code 3.1021 text 3.4410 | data wait 0.12 ms/step | 35.1 ms/step``."""
    per_source = " ".join(f"{k} {_loss_text(v)}" for k, v in r["source_loss"].items())
    gap = r["gpu_data_gap_ms"]
    gap_txt = f", gpu gap {gap:.2f}" if gap is not None else ""
    first, last = r["window"]
    steps = f"{last}" if first == last else f"{last} ({first}-{last})"
    return (
        f"step {steps} | loss {_loss_text(r['loss'])} | {per_source} | "
        f"data wait {r['data_wait_ms']:.2f}{gap_txt} ms/step | {r['step_ms']:.1f} ms/step"
    )


def format_heldout_line(r: dict[str, Any]) -> str:
    """``step 20 held-out | loss 3.4012 | code 3.3001 text 3.6020 | 11106 tokens``."""
    per_source = " ".join(f"{k} {_loss_text(v)}" for k, v in r["heldout_source_loss"].items())
    tokens = sum(r["heldout_tokens"].values())
    return (
        f"step {r['step']} held-out | loss {_loss_text(r['heldout_loss'])} | {per_source} | {tokens} tokens"
    )
