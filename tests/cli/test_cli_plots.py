"""`info`, `stats` and `mix plan` as a user reads them: human figures, --json parsed, --plot PNGs that open."""

from __future__ import annotations

import json
import re
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from storeutil import text_store

from shardstore.cli import main
from shardstore.cli.plots import DPI, FIGSIZE

WIDTH, HEIGHT = int(FIGSIZE[0] * DPI), int(FIGSIZE[1] * DPI)


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def _opens(path: Path) -> None:
    import matplotlib.image

    pixels = matplotlib.image.imread(path)
    assert pixels.shape[:2] == (HEIGHT, WIDTH) and pixels.std() > 0  # not a blank canvas


@pytest.fixture
def stores(tmp_path: Path) -> Path:
    text_store(tmp_path / "web", [f"web page {i} " * (1 + i % 7) for i in range(60)])
    text_store(tmp_path / "code", [f"def f{i}(x): return [x] * {i};" for i in range(30)])
    (tmp_path / "mix.toml").write_text(
        "seq_len = 8\nseed = 1\nglobal_batch_size = 4\n"
        '[[sources]]\nname = "web"\nstore = "web"\nweight = 0.6\n'
        '[[sources]]\nname = "code"\nstore = "code"\nweight = 0.6\n'
        '[[schedule]]\nstart_tokens = 800\nweights = { web = 0.2, code = 0.8 }\nramp = "linear"\nramp_tokens = 400\n'
    )
    return tmp_path


def test_info_human_figures_lengths_and_plot(stores: Path, capsys: pytest.CaptureFixture[str]) -> None:
    png = stores / "lengths.png"
    assert main(["info", str(stores / "web"), "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    assert "num_docs: 60" in out and "document tokens: mean" in out and "p99" in out
    assert "KiB" in out or " B (" in out
    assert _png_size(png) == (WIDTH, HEIGHT)
    _opens(png)
    assert main(["info", str(stores / "web"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["doc_lengths"]["count"] == 60 and info["doc_lengths"]["max"] >= info["doc_lengths"]["p99"]
    assert info["top_files"] is None  # written without provenance


def test_stats_json_for_a_store_and_a_mixture(stores: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stats", str(stores / "code"), "--json", "--top", "3"]) == 0
    (row,) = json.loads(capsys.readouterr().out)["stores"]
    assert row["docs"] == 30 and len(row["top_tokens"]) == 3 and row["code_fraction"] == 1.0
    assert main(["stats", str(stores / "mix.toml"), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["stores"]
    assert [r["source"] for r in rows] == ["web", "code"]
    assert rows[0]["code_fraction"] == 0.0 and rows[0]["whitespace_fraction"] > 0.1
    assert main(["stats", str(stores / "web")]) == 0
    assert "single-byte tokens" in capsys.readouterr().out


def test_mix_plan_phases_warning_and_plot(stores: Path, capsys: pytest.CaptureFixture[str]) -> None:
    png = stores / "plan.png"
    assert main(["mix", "plan", str(stores / "mix.toml"), "--tokens", "2000", "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    assert "source weights sum to 1.2, not 1; they are normalized to: web 0.5, code 0.5" in out
    assert "phase 0: tokens 0-800" in out and "phase 1: tokens 800-2.00 K" in out and "linear ramp" in out
    _opens(png)
    assert main(["mix", "plan", str(stores / "mix.toml"), "--tokens", "2000", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    p0, p1 = plan["phases"]
    assert (p0["start_tokens"], p0["end_tokens"], p1["end_tokens"]) == (0, 800, 2000)
    assert (p0["start_step"], p0["end_step"], p1["end_step"]) == (0, 25, 62)
    assert [s["weight_start"] for s in p0["sources"]] == [0.5, 0.5]
    assert [s["weight_end"] for s in p1["sources"]] == [0.2, 0.8]
    assert p1["ramp"] == "linear" and p1["ramp_tokens"] == 400
    # what the phases draw adds up to the plan's totals (within one sample per source: the integral is floored)
    for i, src in enumerate(plan["sources"]):
        drawn = sum(p["sources"][i]["tokens_drawn"] for p in plan["phases"])
        assert abs(drawn - src["tokens_drawn"]) <= 8
    assert plan["warnings"][0].startswith("source weights sum to 1.2")
    # Pinned by hand (samples of 8 tokens; 800 tokens = sample 100, run = 250 samples). Phase 0: 100 samples at
    # 0.5/0.5 -> 50 each. Phase 1: a 50-sample ramp 0.5 -> 0.2 (mean 0.35) then 100 samples at 0.2: web draws
    # 17.5 + 20 = 37.5 -> 37 samples, code 32.5 + 80 = 112.5 -> 112 (the integral floored to whole samples).
    assert [[s["tokens_drawn"] for s in p["sources"]] for p in plan["phases"]] == [[400, 400], [296, 896]]
    avail = [s["samples_available"] for s in plan["sources"]]
    assert avail == [354, 106]  # windows of 9 tokens: 2832 // 8 and 848 // 8
    # the epoch each source has reached at each phase's end: the exact integral so far over samples available
    assert [s["epochs_end"] for s in p0["sources"]] == [50 / 354, 50 / 106]
    assert [s["epochs_end"] for s in p1["sources"]] == [87.5 / 354, 162.5 / 106]
    assert "epoch at end 1.533" in out and "drawn       896" in out


def test_info_pins_exact_percentiles_in_json_and_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # byte-level tokens plus EOS: "x" * n is n + 1 tokens, so the lengths are 2..101, one document each
    text_store(tmp_path / "st", ["x" * n for n in range(1, 101)])
    assert main(["info", str(tmp_path / "st"), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)["doc_lengths"]
    # nearest rank over 100 documents: p50 is the 50th smallest (51), p90 the 90th (91), p99 the 99th (100)
    assert (d["count"], d["total"], d["mean"]) == (100, sum(range(2, 102)), 51.5)
    assert (d["p50"], d["p90"], d["p99"], d["min"], d["max"], d["empty"]) == (51, 91, 100, 2, 101, 0)
    assert main(["info", str(tmp_path / "st")]) == 0
    out = capsys.readouterr().out
    assert "num_tokens: 5.15 K (5150)" in out
    assert "document tokens: mean 51.5  p50 51  p90 91  p99 100  min 2  max 101  empty 0" in out


def test_plot_loss_renders_series_with_gaps(tmp_path: Path) -> None:
    from shardstore.cli.plots import plot_loss

    png = tmp_path / "loss.png"
    nan = float("nan")  # a source without a sample in a step, a held-out loss only every 2nd step
    series = {"train/web": [4.0, 3.5, nan, 3.0], "heldout/web": [nan, 3.8, nan, 3.4]}
    plot_loss([1, 2, 3, 4], series, str(png), title="loss")
    assert _png_size(png) == (WIDTH, HEIGHT)
    _opens(png)


@pytest.mark.parametrize("command", [["info", "web"], ["mix", "plan", "mix.toml", "--tokens", "2000"]])
def test_plot_without_matplotlib_says_how_to_install(stores: Path, command: list[str]) -> None:
    code = (
        "import sys; sys.modules['matplotlib'] = None  # as if not installed: its import raises ImportError\n"
        "from shardstore.cli import main\n"
        f"sys.exit(main([*{command!r}, '--plot', 'x.png']))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=stores)
    assert proc.returncode == 1
    assert "pip install 'shardstore[plot]'" in proc.stderr and "Traceback" not in proc.stderr
    assert not (stores / "x.png").exists()


def test_plot_needs_a_png_name(stores: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", str(stores / "web"), "--plot", str(stores / "lengths.pdf")]) == 1
    assert "writes a PNG file" in capsys.readouterr().err


def _shown_plots() -> list[tuple[Path, str]]:
    """(page, image path from the repository root) of every PNG that README.md or a docs/*.md page shows."""
    root = Path(__file__).resolve().parents[2]
    shown = []
    for page in [root / "README.md", *sorted((root / "docs").glob("*.md"))]:
        for image in re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", page.read_text()):
            shown.append((page, (page.parent / image).resolve().relative_to(root).as_posix()))
    return shown


def test_every_committed_plot_is_shown_by_a_page() -> None:
    root = Path(__file__).resolve().parents[2]
    committed = sorted(p.relative_to(root).as_posix() for p in (root / "docs" / "img").glob("*.png"))
    shown = sorted({image for _, image in _shown_plots()})
    assert committed == shown  # an image no page shows is dead weight; a page may not show a missing one
    assert "docs/img/doc_lengths.png" in shown and "docs/img/mix_plan.png" in shown


@pytest.mark.slow
def test_shown_plots_are_made_by_the_commands_on_their_pages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each picture in README.md and docs/ comes from a command shown on its page: run that command (from the
    repository root, as the pages say), get a PNG of the same size."""
    import shlex

    root = Path(__file__).resolve().parents[2]
    shown = _shown_plots()
    assert any(page.name == "README.md" for page, _ in shown), "README.md shows no plot"
    monkeypatch.chdir(tmp_path)
    for page, image in shown:
        text = page.read_text()
        (line,) = [ln.strip() for ln in text.splitlines() if f"--plot {image}" in ln and "shardstore" in ln]
        (tmp_path / Path(image).parent).mkdir(parents=True, exist_ok=True)
        for cmd in line.split("&&"):
            argv = shlex.split(cmd)
            assert argv[0] == "shardstore"
            assert main(argv[1:]) == 0, cmd
        made, committed = tmp_path / image, root / image
        assert _png_size(made) == _png_size(committed) == (WIDTH, HEIGHT)
        _opens(made)
