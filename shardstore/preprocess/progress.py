"""Build progress bar (tqdm on stderr): input MB with ETA, plus live documents/s, MB/s of text and tokens/s.

The bar advances by input-file bytes when a unit finishes (exact, so the ETA is in input bytes, compressed or not);
the rates come from the workers' live deltas of documents, text bytes and tokens.
"""

from __future__ import annotations

import time
from typing import Any

__all__ = ["BuildProgress"]


class BuildProgress:
    """A thin wrapper so that the pipeline never touches tqdm directly (and runs without a terminal)."""

    def __init__(self, *, total_bytes: int, units: int, enabled: bool) -> None:
        self._bar: Any = None
        self._t0 = time.monotonic()
        self._docs = self._bytes = self._tokens = 0
        self._units_done = self._units_failed = 0
        self._units = units
        self._last = 0.0
        if enabled:
            from tqdm import tqdm

            self._bar = tqdm(
                total=max(total_bytes, 1),
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc="build",
                smoothing=0.1,
            )

    def advance(self, docs: int, text_bytes: int, tokens: int) -> None:
        self._docs += docs
        self._bytes += text_bytes
        self._tokens += tokens
        self._refresh()

    def unit_done(self, file_bytes: int, *, failed: bool) -> None:
        self._units_done += 1
        self._units_failed += int(failed)
        if self._bar is not None:
            self._bar.update(file_bytes)
        self._refresh(force=True)

    def _refresh(self, force: bool = False) -> None:
        if self._bar is None:
            return
        now = time.monotonic()
        if not force and now - self._last < 0.5:
            return
        self._last = now
        secs = max(now - self._t0, 1e-9)
        failed = f" failed={self._units_failed}" if self._units_failed else ""
        self._bar.set_postfix_str(
            f"units={self._units_done}/{self._units}{failed} docs={self._docs:,} ({self._docs / secs:,.0f}/s) "
            f"text={self._bytes / secs / 1e6:.1f}MB/s tok={self._tokens / secs:,.0f}/s",
            refresh=True,
        )

    def write(self, msg: str) -> None:
        if self._bar is not None:
            self._bar.write(msg)
        else:
            import sys

            print(msg, file=sys.stderr)

    def close(self) -> None:
        if self._bar is not None:
            self._refresh(force=True)
            self._bar.close()
