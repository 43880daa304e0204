"""Every code block of README.md and docs/*.md that is meant to run, run: a snippet that breaks fails the suite.

What runs (the rules and markers are documented in docs/doctests.md):
- every ```python block, saved as a script and run with this interpreter (so it must work as a script: the
  `if __name__ == "__main__":` guard where it starts worker processes);
- every ```bash / ```sh block that has a command starting with `shardstore` or `python`, run whole by bash (a
  script: heredocs, `cat`, `head` included);
- in every ```console / ```shell block and every indented (4-space) block, each command line that starts with
  `shardstore` or `python` (`$ ` prompts stripped, `\\` continuations joined), run by bash; other lines
  (`pip install`, `torchrun`, comments, file trees, output) are shown, not run;
- `<!-- file: NAME -->` right before a block writes the block to NAME instead (a mixture file the next commands
  read); `<!-- no-run: reason -->` right before a block skips it, and the reason must be given.

Each document runs top to bottom in its own folder, so later blocks see what earlier ones made (a tokenizer, then
stores, then a mixture). The folder starts with a small corpus (`data/web/`, `data/code/`, `data/*.jsonl`) and a
small demo (`demo-out/`, what `shardstore demo --out demo-out` makes, on a 1 MB cap), and `benchmarks/` linked in.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL_LANGS = {"bash", "sh", "console", "shell"}
SCRIPT_LANGS = {"bash", "sh"}  # fenced shell scripts with a shardstore/python command run whole
RUNNABLE = re.compile(r"^(shardstore|python)(\s|$)")
MARKER = re.compile(r"^<!--\s*(no-run|file):\s*(.*?)\s*-->$")
BLOCK_TIMEOUT = 300


@dataclass(frozen=True, slots=True)
class Block:
    """One code block of a document: where it starts, its language ("" for indented blocks), its text, marker."""

    doc: Path
    line: int
    lang: str
    text: str
    marker: tuple[str, str] | None = None  # ("no-run", reason) or ("file", name)
    marker_line: int = 0  # 1-based line of the marker

    @property
    def where(self) -> str:
        doc = self.doc.relative_to(ROOT) if self.doc.is_relative_to(ROOT) else self.doc.name
        return f"{doc}:{self.line}"

    def commands(self) -> list[str]:
        """The shell commands this block runs (see the module docstring)."""
        joined: list[str] = []
        pending = ""
        for raw in self.text.splitlines():
            line = raw.strip()
            if line.startswith("$ "):
                line = line[2:]
            if pending:
                line = pending + " " + line
                pending = ""
            if line.endswith("\\"):
                pending = line[:-1].rstrip()
                continue
            joined.append(line)
        return [c for c in joined if RUNNABLE.match(c)]

    @property
    def runs(self) -> bool:
        if self.marker is not None:
            return self.marker[0] == "file"
        if self.lang == "python":
            return True
        return (self.lang in SHELL_LANGS or self.lang == "") and bool(self.commands())


def parse_blocks(doc: Path) -> list[Block]:
    """The fenced and indented code blocks of a markdown file, with the marker line right before each."""
    lines = doc.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0

    def marker_before(start: int) -> dict:
        j = start - 1
        while j >= 0 and not lines[j].strip():
            j -= 1
        m = MARKER.match(lines[j].strip()) if j >= 0 else None
        return {"marker": (m.group(1), m.group(2)), "marker_line": j + 1} if m else {}

    in_list = False
    while i < len(lines):
        line = lines[i]
        fence = re.match(r"^(\s*)(```+|~~~+)\s*([\w+-]*)", line)
        if fence:
            indent, ticks, lang = fence.groups()
            body = []
            j = i + 1
            while j < len(lines) and not lines[j].strip().startswith(ticks):
                body.append(lines[j][len(indent) :] if lines[j].startswith(indent) else lines[j])
                j += 1
            blocks.append(Block(doc, i + 1, lang.lower(), "\n".join(body) + "\n", **marker_before(i)))
            i = j + 1
            continue
        if re.match(r"^\s*([-*+]|\d+\.)\s", line):
            in_list = True
        elif not line.strip():
            pass
        elif not line.startswith(" "):
            in_list = False
        if line.startswith("    ") and not in_list and (i == 0 or not lines[i - 1].strip()):
            body = []
            j = i
            while j < len(lines) and (lines[j].startswith("    ") or not lines[j].strip()):
                body.append(lines[j][4:])
                j += 1
            while body and not body[-1].strip():
                body.pop()
            blocks.append(Block(doc, i + 1, "", "\n".join(body) + "\n", **marker_before(i)))
            i = j
            continue
        i += 1
    return blocks


# -- the folder a document runs in -------------------------------------------------------------------------------


def _write_corpus(root: Path) -> None:
    import json
    import random

    rng = random.Random(17)
    words = [
        "the",
        "quick",
        "brown",
        "fox",
        "jumps",
        "over",
        "a",
        "lazy",
        "dog",
        "while",
        "data",
        "flows",
        "into",
        "shards",
        "and",
        "tokens",
    ]
    code = "def f(x):\n    return x + 1\n\nclass A:\n    pass\n".splitlines()
    for sub, make in (
        ("web", lambda: " ".join(rng.choice(words) for _ in range(rng.randint(20, 80))).capitalize() + "."),
        ("code", lambda: "\n".join(rng.choice(code) for _ in range(rng.randint(5, 30)))),
    ):
        (root / "data" / sub).mkdir(parents=True, exist_ok=True)
        for part in range(2):
            docs = [{"text": make(), "id": f"{sub}-{part}-{k}"} for k in range(60)]
            lines = "".join(json.dumps(d) + "\n" for d in docs)
            (root / "data" / sub / f"part-{part}.jsonl").write_text(lines)
    (root / "data" / "extra.jsonl").write_text(
        "".join(
            json.dumps({"text": " ".join(rng.choice(words) for _ in range(30))}) + "\n" for _ in range(40)
        )
    )


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.setdefault("MPLBACKEND", "Agg")
    env.setdefault(
        "OMP_NUM_THREADS", "1"
    )  # torch's CPU threads fight the other tests' processes for the cores
    return env


@pytest.fixture(scope="module")
def demo_out(tmp_path_factory) -> Path:
    """A small `shardstore demo` (1 MB of code, a few steps): the demo-out/ that guide and README commands read."""
    out = tmp_path_factory.mktemp("demo") / "demo-out"
    cmd = [sys.executable, "-m", "shardstore", "demo", "--out", str(out), "--max-mb", "1", "--steps", "8",
           "--vocab-size", "1024", "--workers", "2", "--num-workers", "0", "--no-progress"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return out


def _workdir(tmp_path: Path, demo_out: Path) -> Path:
    import shutil

    work = tmp_path / "work"
    work.mkdir()
    _write_corpus(work)
    shutil.copytree(demo_out, work / "demo-out", symlinks=True)
    (work / "benchmarks").symlink_to(ROOT / "benchmarks")
    (work / "docs" / "img").mkdir(parents=True)
    return work


def run_block(block: Block, work: Path) -> None:
    if block.marker is not None and block.marker[0] == "file":
        target = work / block.marker[1]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(block.text)
        return
    if block.lang == "python":
        script = work / f"doc_block_{block.line}.py"
        script.write_text(block.text)
        cmds = [[sys.executable, str(script)]]
        shown = [block.text]
    elif block.lang in SCRIPT_LANGS:
        shown = [block.text]
        cmds = [["bash", "-euo", "pipefail", "-c", block.text]]
    else:
        shown = block.commands()
        cmds = [["bash", "-euo", "pipefail", "-c", c] for c in shown]
    for cmd, text in zip(cmds, shown, strict=True):
        done = subprocess.run(
            cmd, cwd=work, capture_output=True, text=True, env=_env(), timeout=BLOCK_TIMEOUT
        )
        if done.returncode != 0:
            pytest.fail(
                f"{block.where}: exit {done.returncode} running\n{text}\n--- stdout\n{done.stdout[-3000:]}\n"
                f"--- stderr\n{done.stderr[-3000:]}",
                pytrace=False,
            )


# -- the tests ----------------------------------------------------------------------------------------------------


def marker_lines(doc: Path) -> dict[int, str]:
    """Lines (1-based) outside fenced blocks that are, or try to be, a marker."""
    found, fence = {}, None
    for n, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), start=1):
        stripped = line.strip()
        if fence is None and re.match(r"^(```+|~~~+)", stripped):
            fence = stripped[:3]
        elif fence is not None and stripped.startswith(fence):
            fence = None
        elif fence is None and re.match(r"^<!--\s*(no-run|file)\b", stripped):
            found[n] = stripped
    return found


@pytest.mark.parametrize("doc", DOCS, ids=[d.name for d in DOCS])
def test_markers_are_well_formed(doc: Path) -> None:
    """A skip always says why; a marker sits right before a block (not lost in prose)."""
    found = marker_lines(doc)
    for n, text in found.items():
        m = MARKER.match(text)
        assert m and m.group(2).strip(), f"{doc.name}:{n}: a marker needs a reason or a file name: {text!r}"
    attached = {b.marker_line for b in parse_blocks(doc) if b.marker is not None}
    assert set(found) == attached, (
        f"{doc.name}: markers not right before a block: {sorted(set(found) - attached)}"
    )


def test_the_parser_finds_what_runs(tmp_path) -> None:
    doc = tmp_path / "x.md"
    doc.write_text(
        "intro\n\n    shardstore info st   # comment\n    pip install x\n\n"
        "```python\nprint(1)\n```\n\n<!-- no-run: needs a bucket -->\n```bash\nshardstore stage s3://b --cache c\n```\n\n"
        "<!-- file: mix.toml -->\n```toml\nseed = 1\n```\n\n```console\n$ python -c 'print(2)' \\\n    --flag\n```\n"
        "- a list item\n\n    continued item text\n"
    )
    blocks = parse_blocks(doc)
    assert [(b.lang, b.runs) for b in blocks] == [("", True), ("python", True), ("bash", False), ("toml", True), ("console", True)]  # fmt: skip
    assert blocks[0].commands() == ["shardstore info st   # comment"]
    assert blocks[2].marker == ("no-run", "needs a bucket") and blocks[3].marker == ("file", "mix.toml")
    assert blocks[4].commands() == ["python -c 'print(2)' --flag"]


def test_a_broken_block_fails_naming_its_line(tmp_path) -> None:
    doc = tmp_path / "x.md"
    doc.write_text("```bash\nshardstore info no-such-store\n```\n")
    (block,) = parse_blocks(doc)
    with pytest.raises(pytest.fail.Exception, match=r"x.md:1: exit 1 running\nshardstore info no-such-store"):
        run_block(block, tmp_path)


def test_a_bash_block_runs_whole(tmp_path) -> None:
    doc = tmp_path / "x.md"
    doc.write_text(
        "```bash\ncat > made.txt <<'EOF'\nhello\nEOF\npython -c 'print(open(\"made.txt\").read())'\n```\n"
    )
    (block,) = parse_blocks(doc)
    assert block.runs
    run_block(block, tmp_path)
    assert (tmp_path / "made.txt").read_text() == "hello\n"


def _runnable_docs() -> list[Path]:
    return [d for d in DOCS if any(b.runs for b in parse_blocks(d))]


def test_the_runnable_pages_are_found() -> None:
    names = [d.name for d in _runnable_docs()]
    assert {"README.md", "guide.md", "UNICODE.md"} <= set(names), names


@pytest.mark.slow
@pytest.mark.parametrize("doc", _runnable_docs(), ids=lambda d: d.name)
def test_doc_blocks_run(doc: Path, tmp_path: Path, demo_out: Path) -> None:
    work = _workdir(tmp_path, demo_out)
    for block in parse_blocks(doc):
        if block.runs:
            run_block(block, work)
