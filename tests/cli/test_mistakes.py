"""Issue 17: the common mistakes of a new user get a clear answer, not an empty or stale result.

One test (at least) per case of the issue, each through the real CLI (`shardstore.cli.main`, or a subprocess
where the case is about processes), on tiny corpora in `tmp_path`: the mistake, the exit code, the key words of
the one-line message. docs/guide.md section 9 lists the same messages side by side.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_build_support import train_tokenizer

import tokenizer
from shardstore.cli import main
from shardstore.errors import ConfigError, InputError
from shardstore.store.store import Store

pytestmark = pytest.mark.filterwarnings(
    "ignore:training stopped after:UserWarning"
)  # tiny corpora stop early

ROOT = Path(__file__).resolve().parents[2]
DOCS = [f"document number {i} says hello to the quick brown fox" for i in range(40)]


@pytest.fixture(scope="module")
def tok(tmp_path_factory) -> Path:
    return train_tokenizer(tmp_path_factory.mktemp("tok") / "tok.json")


def run(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def write_jsonl(path: Path, docs=DOCS, field: str = "text") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"id": i, field: d}) + "\n" for i, d in enumerate(docs)))
    return path


def build_args(inputs, tok, out, *more) -> list:
    return ["build", *([inputs] if not isinstance(inputs, list) else inputs), "--tokenizer", tok, "--out", out,
            "--workers", "1", "--no-progress", *more]  # fmt: skip


def one_line(err: str) -> str:
    """The final line of stderr: `shardstore: ...` (a failed build prints each failed unit's line before it)."""
    lines = err.splitlines()
    assert lines and lines[-1].startswith("shardstore: "), err
    assert all(line.startswith("shardstore: unit ") for line in lines[:-1]), err
    return lines[-1]


# -- 1. a wrong --text-field on JSON Lines -----------------------------------------------------------------------


def test_1_wrong_text_field_fails_naming_the_fields_found(tmp_path, tok, capsys):
    data = write_jsonl(tmp_path / "in" / "a.jsonl")
    code, out, err = run(capsys, *build_args(data, tok, tmp_path / "st", "--text-field", "content"))
    assert code == 1 and "build complete" not in out
    line = one_line(err)
    assert "only 0 of 40 records became documents (missing_text_field=40)" in line
    assert "the text field 'content'" in line and "['id', 'text']" in line
    assert "--text-field" in line and "--max-skipped-fraction" in line
    assert not (tmp_path / "st" / "manifest.json").exists()
    # fixing the field in the same --out works: nothing was committed under the wrong one
    code, out, err = run(capsys, *build_args(data, tok, tmp_path / "st", "--text-field", "text"))
    assert code == 0, err
    assert "40 documents" in out


def test_1_threshold_flag_keeps_counted_not_fatal(tmp_path, tok, capsys):
    lines = [json.dumps({"text": d}) for d in DOCS[:2]] + ["not json"] * 8  # 80% bad: under the default 0.9
    (tmp_path / "a.jsonl").write_text("\n".join(lines) + "\n")
    code, out, err = run(capsys, *build_args(tmp_path / "a.jsonl", tok, tmp_path / "st", "--json"))
    assert code == 0, err
    assert json.loads(out)["skipped"] == {"malformed_json": 8}
    code, _, err = run(
        capsys, *build_args(tmp_path / "a.jsonl", tok, tmp_path / "st2", "--max-skipped-fraction", "0.5")
    )
    assert code == 1 and "only 2 of 10 records became documents (malformed_json=8)" in one_line(err)
    write_jsonl(tmp_path / "b.jsonl", field="body")
    code, out, err = run(capsys, *build_args(tmp_path / "b.jsonl", tok, tmp_path / "st3", "--max-skipped-fraction", "1", "--json"))  # fmt: skip
    assert code == 0 and json.loads(out)["num_docs"] == 0, err


def test_1_a_folder_of_unreadable_txt_files_fails_as_a_whole(tmp_path, tok, capsys):
    d = tmp_path / "in"
    d.mkdir()
    for i in range(3):
        (d / f"{i}.txt").write_bytes(b"\x00\x01binary\x00" * 10)  # one record each: judged over the build
    (d / "empty.txt").write_text("")
    code, _, err = run(capsys, *build_args(d, tok, tmp_path / "st"))
    assert code == 1
    assert "the build: only 0 of 4 records became documents (binary_content=3, empty_document=1)" in one_line(
        err
    )
    (d / "good.txt").write_text(
        "one good document"
    )  # one binary file among texts is messy data, not a mistake
    for i in range(1, 3):
        (d / f"{i}.txt").write_text(f"text file {i}")
    code, out, err = run(capsys, *build_args(d, tok, tmp_path / "st2"))
    assert code == 0 and "binary_content=1" in out, err


# -- 2. the same mistake in `tokenizer train` ----------------------------------------------------------------------


def test_2_tokenizer_train_wrong_field_is_an_error_not_a_257_token_tokenizer(tmp_path, capsys):
    data = write_jsonl(tmp_path / "a.jsonl")
    out = tmp_path / "tok.json"
    code, _, err = run(capsys, "tokenizer", "train", data, "--vocab-size", 300, "--out", out, "--text-field", "content", "--no-progress")  # fmt: skip
    assert code == 1 and not out.exists()
    line = one_line(err)
    assert "missing_text_field=40" in line and "['id', 'text']" in line and "--text-field" in line
    assert "min_frequency" not in line and "UserWarning" not in err
    few = write_jsonl(
        tmp_path / "few.jsonl", DOCS[:2]
    )  # a real early stop is one warning line, not a traceback
    code, _, err = run(capsys, "tokenizer", "train", few, "--vocab-size", 2000, "--out", out, "--no-progress")
    assert (
        code == 0
        and err.startswith("shardstore: warning: training stopped after")
        and "UserWarning" not in err
    )
    with pytest.raises(InputError, match=r"the text field 'content'"):
        tokenizer.train(files=[data], vocab_size=300, text_field="content", progress=False)


# -- 3. a misspelled --pattern name ---------------------------------------------------------------------------------


def test_3_misspelled_pattern_name_lists_the_known_names(tmp_path, capsys):
    data = write_jsonl(tmp_path / "a.jsonl")
    out = tmp_path / "tok.json"
    common = ["tokenizer", "train", data, "--vocab-size", 300, "--out", out, "--no-progress"]
    code, _, err = run(capsys, *common, "--pattern", "cl100")
    assert code == 1 and not out.exists()
    line = one_line(err)
    assert "unknown pattern name 'cl100' (did you mean 'cl100k'?); the built-in names are cl100k, " in line
    assert "gpt2" in line
    assert "'regex:cl100'" in line
    # forced as a regex, it matches (almost) nothing: also an error, with the known names
    code, _, err = run(capsys, *common, "--pattern", "regex:cl100")
    assert code == 1 and "matches only 0 of the" in one_line(err) and "(cl100k, " in err and "gpt2" in err
    code, _, err = run(capsys, *common, "--pattern", r"\s+|\S+")  # a real regex still trains
    assert code == 0, err
    code, ids, _ = run(capsys, "tokenizer", "encode", out, "hello fox")
    assert code == 0 and ids.split()


# -- 4. an input edited in place without changing its size ---------------------------------------------------------


def test_4_same_size_edit_is_refused_as_an_input_change(tmp_path, tok, capsys):
    data = write_jsonl(tmp_path / "in" / "a.jsonl")
    write_jsonl(tmp_path / "in" / "b.jsonl", DOCS[:5])
    args = build_args(tmp_path / "in", tok, tmp_path / "st")
    assert run(capsys, *args)[0] == 0
    size = data.stat().st_size
    data.write_text(data.read_text().replace("fox", "FOX"))  # `sed -i s/fox/FOX/g`: same size, new bytes
    assert data.stat().st_size == size
    code, out, err = run(capsys, *args)
    assert code == 1 and "already complete" not in out
    line = one_line(err)
    assert "1 input file(s) changed" in line and str(data) in line and "--rebuild-changed" in line
    assert "different build options" not in line
    code, out, err = run(capsys, *args, "--rebuild-changed")
    assert code == 0 and "(1 of 2 units run now" in out, err
    with open(data, "a") as f:  # a size change is named the same way
        f.write(json.dumps({"text": "one more"}) + "\n")
    code, _, err = run(capsys, *args)
    assert code == 1 and "input file(s) changed" in one_line(err) and "different build options" not in err
    assert run(capsys, *args, "--rebuild-changed")[0] == 0
    write_jsonl(
        tmp_path / "in" / "c.jsonl", DOCS[:3]
    )  # a file added to the input folder: named as an input change
    code, _, err = run(capsys, *args)
    line = one_line(err)
    assert code == 1 and "the input files changed since this store was started (added: " in line
    assert str(tmp_path / "in" / "c.jsonl") in line and "different build options" not in line


# -- 5. directories skip files they do not read --------------------------------------------------------------------


def test_5_directory_lists_ignored_files_and_reads_json_lines_named_json(tmp_path, tok, capsys):
    d = tmp_path / "in"
    write_jsonl(d / "a.jsonl", DOCS[:3])
    write_jsonl(d / "hf.json", DOCS[3:7])  # HF datasets' to_json: JSON Lines under a .json name
    (d / "array.json").write_text(json.dumps([{"text": "a JSON array, not lines"}], indent=1))
    (d / "README.md").write_text("# my corpus\n")
    code, out, err = run(capsys, *build_args(d, tok, tmp_path / "st", "--json"))
    assert code == 0, err
    report = json.loads(out)
    assert report["num_docs"] == 7
    assert report["ignored_files"] == {"count": 2, "files": [str(d / "README.md"), str(d / "array.json")]}
    stored = json.loads((tmp_path / "st" / "build_report.json").read_text())
    assert stored["ignored_files"]["count"] == 2
    code, out, _ = run(capsys, *build_args(d, tok, tmp_path / "st2"))
    assert code == 0 and "ignored 2 file(s)" in out and "README.md" in out
    code, _, err = run(capsys, *build_args(d / "array.json", tok, tmp_path / "st3"))
    assert code == 1 and "does not hold JSON Lines" in one_line(err)
    code, _, err = run(capsys, "tokenizer", "train", d, "--vocab-size", 270, "--out", tmp_path / "t.json", "--no-progress")  # fmt: skip
    assert code == 0 and "ignored 2 file(s)" in err and "README.md" in err


# -- 6. building into an unrelated, non-empty directory ------------------------------------------------------------


def test_6_non_empty_foreign_output_dir_needs_force(tmp_path, tok, capsys):
    data = write_jsonl(tmp_path / "a.jsonl")
    home = tmp_path / "home"
    home.mkdir()
    (home / "thesis.tex").write_text("my own file")
    code, _, err = run(capsys, *build_args(data, tok, home))
    assert code == 1 and "is not empty and is not a shardstore store" in one_line(err)
    assert "thesis.tex" in err and "--force" in err
    assert sorted(os.listdir(home)) == ["thesis.tex"]
    code, _, err = run(capsys, *build_args(data, tok, home, "--force"))
    assert code == 0, err
    assert (home / "thesis.tex").read_text() == "my own file" and (home / "manifest.json").exists()
    code, out, _ = run(capsys, *build_args(data, tok, home))  # now a store of this build: a resume
    assert code == 0 and "nothing to do" in out
    code, out, _ = run(capsys, *build_args(data, tok, tmp_path / "empty"))
    assert code == 0


# -- 7. tokenizer.train with a list of directory names ---------------------------------------------------------------


def test_7_train_takes_files_and_texts_through_unambiguous_parameters(tmp_path, capsys):
    prose = write_jsonl(tmp_path / "data" / "prose" / "a.jsonl", DOCS[:20])
    write_jsonl(tmp_path / "data" / "code" / "b.jsonl", DOCS[20:])
    dirs = [f"{tmp_path}/data/prose/", f"{tmp_path}/data/code/"]
    with pytest.raises(ConfigError, match=r"all name existing files or directories.*files=\[\.\.\.\]"):
        tokenizer.train(dirs, vocab_size=300, progress=False)
    by_files = tokenizer.train(files=dirs, vocab_size=300, progress=False)
    by_texts = tokenizer.train(texts=DOCS, vocab_size=300, progress=False)
    assert by_files.fingerprint == by_texts.fingerprint and by_files.vocab_size > 260
    assert tokenizer.train(prose, vocab_size=300, progress=False).vocab_size > 260  # one path: still a path
    assert tokenizer.train(DOCS, vocab_size=300, progress=False).fingerprint == by_texts.fingerprint
    with pytest.raises(ConfigError, match="pass the corpus once"):
        tokenizer.train(texts=DOCS, files=dirs, vocab_size=300, progress=False)
    with pytest.raises(ConfigError, match="wrap one text in a list"):
        tokenizer.train(texts="one text", vocab_size=300, progress=False)


# -- 8. an unguarded script with worker processes --------------------------------------------------------------------


def _script(tmp_path: Path, tok: Path, body: str) -> subprocess.CompletedProcess:
    write_jsonl(tmp_path / "data" / "a.jsonl", DOCS[:20])
    write_jsonl(tmp_path / "data" / "b.jsonl", DOCS[20:])
    script = tmp_path / "make_store.py"
    script.write_text(textwrap.dedent(body).format(tok=tok))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)  # fmt: skip


def test_8_unguarded_script_is_told_to_add_the_main_guard(tmp_path, tok):
    done = _script(tmp_path, tok, """\
        import shardstore

        report = shardstore.build(["data/"], tokenizer="{tok}", out="stores/web", workers=2, progress=False)
        print(report.num_docs)
    """)  # fmt: skip
    assert done.returncode == 1
    assert (
        'without an `if __name__ == "__main__":` guard' in done.stderr
        and "make_store.py, line 3" in done.stderr
    )
    assert "died" not in done.stderr and "out of memory" not in done.stderr
    guarded = _script(tmp_path, tok, """\
        import shardstore

        if __name__ == "__main__":
            report = shardstore.build(["data/"], tokenizer="{tok}", out="stores/web", workers=2, progress=False)
            print(report.num_docs)
    """)  # fmt: skip
    assert guarded.returncode == 0 and guarded.stdout.strip() == "40", guarded.stderr


def test_8_the_guide_section_3_snippet_runs_as_a_script(tmp_path, tok):
    guide = (ROOT / "docs" / "guide.md").read_text()
    section = guide[guide.index("## 3. Build a store") : guide.index("## 4. ")]
    snippet = section[section.index("```python\n") + 10 :].split("```", 1)[0]
    assert 'if __name__ == "__main__":' in snippet and "workers=16" in snippet
    for i, part in enumerate((DOCS, DOCS)):
        write_jsonl(tmp_path / "data" / f"part-{i}.jsonl", part)  # 80 documents: the snippet reads doc 42
    (tmp_path / "tok.json").write_bytes(tok.read_bytes())
    (tmp_path / "section3.py").write_text(snippet)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "section3.py"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "document number 2 says hello" in done.stdout  # doc 42 = the third document of the second file


# -- 9. a misspelled key inside [[sources]] ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "table", "expected"),
    [
        ("", 'wieght = 0.5', "unknown sources[0] key 'wieght' (did you mean 'weight'?)"),
        ("sede = 3\n", "weight = 1", "unknown mixture key 'sede' (did you mean 'seed'?)"),
        ("[[schedule]]\nstart_tokens = 10\nwieghts = { web = 1 }\n", "weight = 1",
         "unknown schedule[0] key 'wieghts' (did you mean 'weights'?)"),
    ],
)  # fmt: skip
def test_9_unknown_mixture_keys_are_named_with_the_closest_known_key(
    tmp_path, tok, capsys, extra, table, expected
):
    data = write_jsonl(tmp_path / "a.jsonl")
    assert run(capsys, *build_args(data, tok, tmp_path / "web"))[0] == 0
    top, _, rest = extra.partition("[[schedule]]")
    mix = tmp_path / "mix.toml"
    mix.write_text(f'seq_len = 8\nseed = 1\n{top}[[sources]]\nname = "web"\nstore = "web"\n{table}\n'
                   + (f"[[schedule]]{rest}" if rest else ""))  # fmt: skip
    code, _, err = run(capsys, "mix", "plan", mix, "--tokens", 100)
    assert code == 1 and expected in one_line(err)


# -- 10. invalid UTF-8 in a Parquet string column ----------------------------------------------------------------------


def _bad_parquet(path: Path) -> Path:
    values = [f"row {i} of the parquet file".encode() for i in range(1000)]
    values[700] = b"row 700 has a bad byte \xff here"
    binary = pa.array(values, type=pa.binary())
    unchecked = pa.Array.from_buffers(pa.string(), len(binary), binary.buffers())  # Arrow does not validate
    pq.write_table(pa.table({"text": unchecked}), path)
    return path


@pytest.mark.parametrize(
    ("policy", "docs", "counted"),
    [("replace", 1000, {"invalid_utf8_replaced": 1}), ("skip", 999, {"invalid_utf8": 1})],
)
def test_10_parquet_applies_the_utf8_policy_per_row(tmp_path, tok, capsys, policy, docs, counted):
    data = _bad_parquet(tmp_path / "a.parquet")
    code, out, err = run(capsys, *build_args(data, tok, tmp_path / "st", "--utf8-errors", policy, "--json"))
    assert code == 0, err
    report = json.loads(out)
    assert report["num_docs"] == docs and report["skipped"] == counted
    store = Store.open(tmp_path / "st")
    text = store.tokenizer.decode(store.doc(700).tolist())
    expected = "row 700 has a bad byte \ufffd here" if policy == "replace" else "row 701 of the parquet file"
    assert text == expected + "<|endoftext|>"


def test_10_parquet_nulls_empties_and_bad_bytes_in_one_batch_are_each_counted(tmp_path, tok, capsys):
    values = [f"row {i}".encode() for i in range(20)]
    values[3], values[5], values[7] = None, b"", b"bad \xfe"
    binary = pa.array(values, type=pa.binary())
    unchecked = pa.Array.from_buffers(pa.string(), len(binary), binary.buffers(), null_count=1)
    pq.write_table(pa.table({"text": unchecked}), tmp_path / "a.parquet")
    code, out, err = run(capsys, *build_args(tmp_path / "a.parquet", tok, tmp_path / "st", "--json"))
    assert code == 0, err
    report = json.loads(out)
    assert report["num_docs"] == 18
    assert report["skipped"] == {"empty_document": 1, "invalid_utf8_replaced": 1, "missing_text_field": 1}
    # tokenizer training reads the same file by the same policy (it used to stop on a UnicodeDecodeError)
    code, _, err = run(capsys, "tokenizer", "train", tmp_path / "a.parquet", "--vocab-size", 270, "--out", tmp_path / "t.json", "--no-progress")  # fmt: skip
    assert code == 0, err


def test_10_parquet_utf8_fail_names_the_right_row(tmp_path, tok, capsys):
    data = _bad_parquet(tmp_path / "a.parquet")
    code, _, err = run(capsys, *build_args(data, tok, tmp_path / "st", "--utf8-errors", "fail"))
    assert code == 1 and "invalid UTF-8 in record 700 at byte 23" in one_line(err)


# -- 11. ^C ------------------------------------------------------------------------------------------------------------


def test_11_interrupt_says_what_is_committed_and_how_to_resume(tmp_path, tok, capsys, monkeypatch):
    import shardstore.preprocess.executors as executors

    for i in range(5):
        write_jsonl(tmp_path / "in" / f"part-{i}.jsonl", DOCS[i * 8 : (i + 1) * 8])
    real = executors.run_task
    calls = []

    def interrupted_at_the_third(task, progress=None):
        calls.append(task.index)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(task, progress)

    monkeypatch.setattr(executors, "run_task", interrupted_at_the_third)
    args = build_args(tmp_path / "in", tok, tmp_path / "st")
    code, _, err = run(capsys, *args)
    assert code == 130
    assert "shardstore: interrupted: 2 of 5 work units" in err and "re-run the same command to resume" in err
    monkeypatch.setattr(executors, "run_task", real)
    code, out, err = run(capsys, *args)
    assert code == 0 and "(3 of 5 units run now, 2 were done before)" in out, err


def test_11_real_sigint_to_the_process_group_of_a_pooled_build(tmp_path, tok):
    """A terminal's ^C reaches the whole foreground process group: the build and its worker processes."""
    import signal
    import time

    for i in range(300):
        write_jsonl(tmp_path / "in" / f"part-{i:03d}.jsonl", DOCS)
    out = tmp_path / "st"
    args = [str(a) for a in build_args(tmp_path / "in", tok, out)]
    args[args.index("--workers") + 1] = "2"
    cmd = [sys.executable, "-m", "shardstore", *args]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)  # fmt: skip
    units = out / ".build" / "units"

    def entries() -> int:  # committed journal entries (not the temp files of a claim in progress)
        return len(list(units.glob("unit-*.json"))) if units.is_dir() else 0

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and entries() < 2:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGINT)
    try:
        _, err = proc.communicate(
            timeout=60
        )  # it once hung here: workers blocked on an undrained progress queue
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # never leave the build, its forkserver or workers behind
    assert proc.returncode == 130, err
    line = one_line(err.strip())
    committed = entries()  # after the exit: the workers are gone too, nothing commits any more
    assert f"interrupted: {committed} of 300 work units of {out} are committed and kept" in line
    assert "re-run the same command to resume" in line and 2 <= committed < 300
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0 and f"{committed} were done before" in done.stdout, done.stderr
