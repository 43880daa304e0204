"""The layers of shardstore, enforced: an AST import check over every module of `shardstore/` and `tokenizer/`.

The same table is in docs/ARCHITECTURE.md. Each module belongs to the layer of its longest matching prefix in
`LAYERS`; it may import modules of its own layer and of the layers listed for it, nothing else of the two packages.
Every import counts: module level, inside functions (lazy) and under ``if TYPE_CHECKING:``. Besides the table:

- `mix/` (pure index math) imports no I/O, no torch, no store: nothing from `PURE_FORBIDDEN`.
- No module imports another module's private names (``from m import _x`` or ``m._x``); private *modules* such as
  the native extensions (``_native._jsonl``) are fine inside their own top-level package.
- No import circles between modules.

`UPWARD` lists the only imports against the direction of the table, each a lazy import inside one function that
serves a public convenience entry point, so importing the lower module never loads the upper one.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# layer -> the layers it may import (besides itself)
LAYERS: dict[str, tuple[str, ...]] = {
    "shardstore.errors": (),
    "shardstore.util": ("shardstore.errors",),
    "shardstore._native": (),
    # tokenizer/ is a package of its own below shardstore: only the error hierarchy (see UPWARD for train(paths))
    "tokenizer": ("shardstore.errors",),
    "shardstore.mix": (
        "shardstore.errors",
        "shardstore.util.sizes",
        "shardstore.util.modes",
        "shardstore._native",
    ),  # pure helpers only, and the native EDF merge
    # the store may use shardstore's native copies (_pieces: rows of kept documents)
    "shardstore.store": ("shardstore.errors", "shardstore.util", "shardstore._native", "tokenizer"),
    "shardstore.remote": ("shardstore.errors", "shardstore.util", "shardstore.store"),
    "shardstore.preprocess": (
        "shardstore.errors",
        "shardstore.util",
        "shardstore._native",
        "shardstore.store",
        "tokenizer",
    ),
    "shardstore.loader": ("shardstore.errors", "shardstore.util", "shardstore.store", "shardstore.mix"),
    # dedup and decontamination: read stores, write masks; never the loader or the CLI
    "shardstore.curate": (
        "shardstore.errors",
        "shardstore.util",
        "shardstore._native",
        "shardstore.store",
        "tokenizer",
    ),
    "shardstore.demo": (
        "shardstore",  # the public, lazy entry points (shardstore.build)
        "shardstore.errors",
        "shardstore.util",
        "tokenizer",
        "shardstore.store",
        "shardstore.preprocess",
        "shardstore.mix",
        "shardstore.loader",
    ),
    "shardstore.cli": (
        "shardstore.errors",
        "shardstore.util",
        "tokenizer",
        "shardstore.store",
        "shardstore.remote",
        "shardstore.preprocess",
        "shardstore.mix",
        "shardstore.loader",
        "shardstore.demo",
        "shardstore.curate",
    ),
    # the public facade: shardstore/__init__.py (lazy names), __main__, shardstore.torch (re-exports)
    "shardstore": ("shardstore.errors", "shardstore.cli", "shardstore.store", "shardstore.preprocess"),
    "shardstore.torch": ("shardstore.loader",),
}
EXTRA_FACADE = {"shardstore": ("shardstore.loader",)}

# (importing module, imported module): why it may go against the table. Each must be a function-local import.
UPWARD: dict[tuple[str, str], str] = {
    ("tokenizer.train", "shardstore.preprocess.sources"): (
        "tokenizer.train(paths) reads files with the build's readers (public contract: inputs may be paths/URLs)"
    ),
    ("shardstore.store.store", "shardstore.remote.cache"): (
        "Store.open(url) stages a remote store through the node-local cache (public contract)"
    ),
}

PURE_LAYERS = ("shardstore.mix",)
PURE_FORBIDDEN = frozenset(
    {
        "os",
        "io",
        "mmap",
        "pathlib",
        "shutil",
        "tempfile",
        "glob",
        "socket",
        "subprocess",
        "threading",
        "multiprocessing",
        "tomllib",
        "yaml",
        "fsspec",
        "pyarrow",
        "zstandard",
        "torch",
        "shardstore.store",
        "shardstore.remote",
        "shardstore.loader",
        "shardstore.preprocess",
    }
)
PACKAGES = ("shardstore", "tokenizer")


@dataclass(frozen=True, slots=True)
class Import:
    module: str  # the importing module
    target: str  # the imported module (resolved: `from pkg import mod` -> pkg.mod)
    line: int
    lazy: bool  # inside a function body
    private_name: str | None  # `from m import _x` / `m._x`: the private name, else None


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def discover(root: Path) -> dict[str, Path]:
    """Every module of the packages under `root` (name -> file), with the native extensions' stubs."""
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py*")):
            if path.suffix in (".py", ".pyi") and "__pycache__" not in path.parts:
                found.setdefault(module_name(root, path), path)
    return found


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> Iterator[Import]:
    tree = ast.parse(path.read_text(), filename=str(path))
    is_pkg = path.stem == "__init__"
    aliases: dict[str, str] = {}  # local name -> module it is bound to

    def visit(node: ast.AST, lazy: bool) -> Iterator[Import]:
        for child in ast.iter_child_nodes(node):
            inner = lazy or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            if isinstance(child, ast.Import):
                for a in child.names:
                    aliases[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
                    yield Import(name, a.name, child.lineno, lazy, None)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = name.split(".") if is_pkg else name.split(".")[:-1]
                    base = base[: len(base) - (child.level - 1)]
                    src = ".".join([*base, child.module] if child.module else base)
                else:
                    src = child.module or ""
                for a in child.names:
                    sub = f"{src}.{a.name}"
                    if sub in modules:  # a submodule
                        aliases[a.asname or a.name] = sub
                        yield Import(name, sub, child.lineno, lazy, None)
                    else:
                        private = a.name if _is_private(a.name) else None
                        yield Import(name, src, child.lineno, lazy, private)
            elif (
                isinstance(child, ast.Attribute)
                and isinstance(child.value, ast.Name)
                and child.value.id in aliases
                and _is_private(child.attr)
                and f"{aliases[child.value.id]}.{child.attr}" not in modules
            ):
                yield Import(name, aliases[child.value.id], child.lineno, lazy, child.attr)
            yield from visit(child, inner)

    yield from visit(tree, False)


def layer_of(module: str) -> str | None:
    best = None
    for layer in LAYERS:
        if (module == layer or module.startswith(layer + ".")) and (best is None or len(layer) > len(best)):
            best = layer
    return best


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def check_tree(root: Path) -> list[str]:
    """Every layer violation, private reach-in and import circle of the packages under `root`, as messages."""
    modules = discover(root)
    problems: list[str] = []
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        if path.suffix != ".py":
            continue
        own = layer_of(name)
        for imp in imports_of(name, path, modules):
            where = f"{path.relative_to(root)}:{imp.line}"
            top = imp.target.split(".")[0]
            if own in PURE_LAYERS and any(_within(imp.target, f) for f in PURE_FORBIDDEN):
                problems.append(f"{where}: {name} is pure index math but imports {imp.target}")
            if top not in PACKAGES:
                continue
            if imp.target in modules and imp.target != name:
                graph[name].add(imp.target)
            if imp.private_name and imp.target != name:
                problems.append(f"{where}: {name} uses the private name {imp.target}.{imp.private_name}")
            target_layer = layer_of(imp.target)
            allowed = (*LAYERS.get(own or "", ()), *EXTRA_FACADE.get(own or "", ()))
            ok = (
                target_layer == own
                or any(_within(imp.target, a) for a in allowed)
                or (imp.target == "shardstore" and "shardstore" in allowed)
            )
            if ok:
                continue
            reason = UPWARD.get((name, imp.target))
            if reason is not None and imp.lazy:
                continue
            why = " (allowed only as a function-local import)" if reason else ""
            problems.append(f"{where}: layer {own} may not import {imp.target} (layer {target_layer}){why}")
    problems.extend(f"import circle: {' -> '.join(c)}" for c in find_cycles(graph))
    return problems


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component with more than one module (Tarjan), as a path a -> ... -> a."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def strongconnect(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(_cycle_in(sorted(component), graph))

    for v in sorted(graph):
        if v not in index:
            strongconnect(v)
    return cycles


def _cycle_in(component: list[str], graph: dict[str, set[str]]) -> list[str]:
    members, start = set(component), component[0]
    path, seen = [start], {start}
    while True:  # walk inside the component until a module repeats
        nxt = min(w for w in graph[path[-1]] if w in members)
        if nxt in seen:
            return [*path[path.index(nxt) :], nxt]
        path.append(nxt)
        seen.add(nxt)


# ------------------------------------------------------------------------------------------------------- tests


def test_every_module_has_a_layer() -> None:
    missing = [m for m in discover(ROOT) if layer_of(m) is None]
    assert not missing, f"modules outside the layer table: {missing}"


def test_the_layers_hold() -> None:
    problems = check_tree(ROOT)
    assert not problems, "\n".join(problems)


def test_upward_exceptions_are_still_needed() -> None:
    modules = discover(ROOT)
    seen = {
        (i.module, i.target)
        for name, path in modules.items()
        if path.suffix == ".py"
        for i in imports_of(name, path, modules)
    }
    assert set(UPWARD) <= seen, f"stale UPWARD entries: {set(UPWARD) - seen}"


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


@pytest.fixture
def bad_tree(tmp_path: Path) -> Path:
    _write(
        tmp_path,
        {
            "shardstore/__init__.py": "",
            "shardstore/errors.py": "class ShardStoreError(Exception): ...\n",
            "shardstore/mix/__init__.py": "",
            "shardstore/mix/order.py": "import os\nfrom shardstore.store.shards import Shard\n",
            "shardstore/store/__init__.py": "",
            "shardstore/store/shards.py": "from shardstore.store.index import _slots\nclass Shard: ...\n",
            "shardstore/store/index.py": "from shardstore.store import shards\n_slots = []\n",
            "shardstore/store/peek.py": "from shardstore.store import index\nx = index._slots\n",
            "tokenizer/__init__.py": "from shardstore.store.shards import Shard\n",
            "tokenizer/train.py": "from shardstore.preprocess.sources import iter_texts\n",
        },
    )
    return tmp_path


def test_the_checker_reports_each_kind_of_violation(bad_tree: Path) -> None:
    problems = check_tree(bad_tree)
    text = "\n".join(problems)
    assert "shardstore.mix.order is pure index math but imports os" in text
    assert "layer shardstore.mix may not import shardstore.store.shards" in text
    assert "layer tokenizer may not import shardstore.store.shards" in text
    # an UPWARD exception is allowed only where it is lazy
    assert "layer tokenizer may not import shardstore.preprocess.sources" in text
    assert "function-local" in text
    assert "shardstore.store.shards uses the private name shardstore.store.index._slots" in text
    assert "shardstore.store.peek uses the private name shardstore.store.index._slots" in text
    assert (
        "import circle: shardstore.store.index -> shardstore.store.shards -> shardstore.store.index" in text
    )


def test_the_checker_passes_a_clean_tree(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "shardstore/__init__.py": "",
            "shardstore/errors.py": "",
            "shardstore/mix/__init__.py": "",
            "shardstore/mix/order.py": "import math\nfrom shardstore.errors import ShardStoreError\n",
            "tokenizer/__init__.py": "from shardstore.errors import ShardStoreError\n",
            "tokenizer/train.py": "def f():\n    from shardstore.preprocess.sources import iter_texts\n",
        },
    )
    assert check_tree(tmp_path) == []


# ------------------------------------------------------------------------------------------------- module size

MAX_MODULE_LINES = 500  # issue 15: a module longer than this is split by responsibility


NATIVE_SUFFIXES = (".cc", ".h")
# The first line of a generated table, which is edited through its generator, not by hand:
GENERATED_MARK = "// GENERATED by "
VENDORED = {"shardstore/_native/xxhash.h"}  # upstream single-header xxHash, kept as released (BSD-2)


def _sources(root: Path) -> Iterator[Path]:
    """The Python modules and the hand-written native sources of the packages under `root`."""
    yield from (path for path in discover(root).values() if path.suffix == ".py")
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*")):
            vendored = path.relative_to(root).as_posix() in VENDORED
            if (
                path.suffix in NATIVE_SUFFIXES
                and not vendored
                and not path.read_text().startswith(GENERATED_MARK)
            ):
                yield path


def oversized_modules(root: Path, limit: int = MAX_MODULE_LINES) -> list[str]:
    """Every Python module and native source of the packages under `root` with more than `limit` lines, as
    ``path: N lines``; generated tables are exempt."""
    out = []
    for path in _sources(root):
        n = len(path.read_text().splitlines())
        if n > limit:
            out.append(f"{path.relative_to(root)}: {n} lines > {limit}")
    return out


def test_no_module_is_over_the_size_limit() -> None:
    too_long = oversized_modules(ROOT)
    assert not too_long, "split these modules by responsibility:\n" + "\n".join(too_long)


def test_the_size_check_reports_a_long_module(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "shardstore/__init__.py": "",
            "shardstore/store/long.py": "x = 1\n" * (MAX_MODULE_LINES + 1),
            "shardstore/store/ok.py": "x = 1\n" * MAX_MODULE_LINES,
            "tokenizer/core.py": "y = 2\n" * 900,
            "tokenizer/_native/encoder.cc": "int x;\n" * (MAX_MODULE_LINES + 1),
            "tokenizer/_native/ok.h": "int y;\n" * MAX_MODULE_LINES,
            "tokenizer/_native/tables.h": GENERATED_MARK + "gen.py\n" + "int z;\n" * 900,
        },
    )
    assert sorted(oversized_modules(tmp_path)) == [
        f"shardstore/store/long.py: {MAX_MODULE_LINES + 1} lines > {MAX_MODULE_LINES}",
        f"tokenizer/_native/encoder.cc: {MAX_MODULE_LINES + 1} lines > {MAX_MODULE_LINES}",
        f"tokenizer/core.py: 900 lines > {MAX_MODULE_LINES}",
    ]
