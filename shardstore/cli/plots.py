"""The pictures behind `--plot FILE.png`: document lengths, a mixture's weights and epochs, loss per source.

Plotting is an optional extra (``pip install 'shardstore[plot]'``, matplotlib). Every function takes plain numbers
(what the text and ``--json`` outputs print), draws with the Agg backend (no display needed) and writes one PNG of
`FIGSIZE` inches at `DPI`. Without matplotlib, `require_matplotlib` raises one clear ConfigError saying how to
install it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from shardstore.errors import ConfigError

__all__ = [
    "DPI",
    "FIGSIZE",
    "check_plot_target",
    "plot_length_histogram",
    "plot_loss",
    "plot_mixture",
    "require_matplotlib",
]

FIGSIZE = (8.0, 4.5)
DPI = 100  # -> 800 x 450 pixels

INSTALL_HINT = "--plot needs matplotlib: pip install 'shardstore[plot]' (or pip install matplotlib)"


def require_matplotlib() -> Any:
    """matplotlib.pyplot on the Agg backend, or ConfigError naming the install command."""
    try:
        import matplotlib
    except ImportError:
        raise ConfigError(INSTALL_HINT) from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _check_png(path: str) -> None:
    if not str(path).lower().endswith(".png"):
        raise ConfigError(f"--plot writes a PNG file; got {path!r} (name it e.g. lengths.png)")


def check_plot_target(path: str) -> None:
    """Before any work: the name is a PNG and matplotlib is installed, or one ConfigError saying what to change."""
    _check_png(path)
    require_matplotlib()


def _save(fig: Any, plt: Any, path: str) -> None:
    try:
        fig.savefig(path, dpi=DPI, format="png")
    except OSError as exc:
        raise ConfigError(f"cannot write the plot to {path}: {exc.strerror or exc}") from None
    finally:
        plt.close(fig)


def plot_length_histogram(lengths: np.ndarray, path: str, *, title: str) -> None:
    """Histogram of document lengths in tokens on log-spaced bins and a log x axis (empty documents left out)."""
    _check_png(path)
    plt = require_matplotlib()
    fig, ax = plt.subplots(figsize=FIGSIZE)
    nonempty = lengths[lengths > 0]
    if nonempty.size:
        lo, hi = float(nonempty.min()), max(float(nonempty.max()), float(nonempty.min()) + 1)
        bins = np.unique(np.geomspace(lo, hi * 1.0001, num=60).astype(np.int64))
        ax.hist(nonempty, bins=bins, color="#3b75af")
        ax.set_xscale("log")
    ax.set_xlabel("document length (tokens, log scale)")
    ax.set_ylabel("documents")
    ax.set_title(title)
    fig.tight_layout()
    _save(fig, plt, path)


def plot_mixture(
    tokens: Sequence[float],
    weights: Mapping[str, Sequence[float]],
    epochs: Mapping[str, Sequence[float]],
    path: str,
    *,
    title: str,
) -> None:
    """Two panels over training tokens: each source's weight (stacked area), and its cumulative epochs.

    A dotted line marks where each source starts repeating (epoch 1).
    """
    _check_png(path)
    plt = require_matplotlib()
    fig, (top, bottom) = plt.subplots(2, 1, figsize=FIGSIZE, sharex=True)
    x = np.asarray(tokens, dtype=np.float64)
    names = list(weights)
    top.stackplot(x, *[np.asarray(weights[n]) for n in names], labels=names)
    top.set_ylabel("weight")
    top.set_ylim(0, 1)
    top.legend(loc="upper left", fontsize="small", ncol=min(len(names), 4))
    top.set_title(title)
    for n in names:
        ep = np.asarray(epochs[n], dtype=np.float64)
        (line,) = bottom.plot(x, ep, label=n)
        crossing = np.flatnonzero(ep >= 1.0)
        if crossing.size:
            bottom.axvline(x[crossing[0]], color=line.get_color(), linestyle=":", linewidth=1)
    bottom.axhline(1.0, color="grey", linewidth=0.5)
    bottom.set_ylabel("epochs")
    bottom.set_xlabel("training tokens")
    fig.tight_layout()
    _save(fig, plt, path)


def plot_loss(steps: Sequence[int], losses: Mapping[str, Sequence[float]], path: str, *, title: str) -> None:
    """Loss of each source (and any other named series, e.g. ``heldout/web``) over training steps.

    A series may hold NaN where a source had no sample in a step; those points are skipped. Names of the form
    ``kind/source`` share one colour per source, solid for the first kind met and dashed for the others (so
    ``train/web`` and ``heldout/web`` read as a pair).
    """
    _check_png(path)
    plt = require_matplotlib()
    fig, ax = plt.subplots(figsize=FIGSIZE)
    x = np.asarray(steps, dtype=np.float64)
    colours: dict[str, str] = {}
    first_kind = next((n.split("/", 1)[0] for n in losses if "/" in n), None)
    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for name, series in losses.items():
        y = np.asarray(series, dtype=np.float64)
        ok = np.isfinite(y)
        kind, _, source = name.rpartition("/")
        colour = colours.setdefault(source, palette[len(colours) % len(palette)])
        style = "-" if kind in ("", first_kind) else "--"
        ax.plot(
            x[ok], y[ok], label=name, color=colour, linestyle=style, marker="." if ok.sum() < 30 else None
        )
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    if losses:
        ax.legend(fontsize="small")
    fig.tight_layout()
    _save(fig, plt, path)
