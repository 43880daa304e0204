"""Is this call running at the top level of an unguarded main script? Then worker processes cannot start.

Worker processes started by `spawn` or `forkserver` (the build's process pool uses forkserver) begin by importing
the main script again, as `__mp_main__` (by path for `python script.py`, by name for `python -m module`; never a
package's `__main__`, see `multiprocessing.spawn`). A script that calls `shardstore.build(..., workers=16)` at its top level,
without an ``if __name__ == "__main__":`` guard, therefore runs the build again in every worker, which fails
while the worker is still starting; the build then only saw "a worker process died". This check finds the case
before any worker starts: it walks up the stack to the main module's top-level frame and asks the script's syntax
tree whether that line sits inside an ``if __name__ == "__main__":`` block.
"""

from __future__ import annotations

import ast
import inspect
import sys

__all__ = ["unguarded_main_call"]


def unguarded_main_call() -> tuple[str, int] | None:
    """(script path, line) of the main script's top-level statement that made this call, when that line is not
    under an ``if __name__ == "__main__":`` guard; None otherwise (guarded, interactive, ``-c``, no source)."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if main is None or not isinstance(path, str):
        return None
    name = getattr(getattr(main, "__spec__", None), "name", None)
    if isinstance(name, str) and (name == "__main__" or name.endswith(".__main__")):
        return None  # `python -m package`: multiprocessing does not re-import a package's __main__
    frame = inspect.currentframe()
    line = None
    while frame is not None:
        if frame.f_globals is main.__dict__ and frame.f_code.co_name == "<module>":
            line = frame.f_lineno
            break
        frame = frame.f_back
    del frame
    if line is None:
        return None
    try:
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), filename=path)
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return None
    for node in tree.body:
        for stmt in _guarded(node):
            if stmt.lineno <= line <= (stmt.end_lineno or stmt.lineno):
                return None
    return path, line


def _guarded(node: ast.stmt) -> list[ast.stmt]:
    """The statements that run only in the real main process: the body of ``if __name__ == "__main__":``, or the
    ``else`` of ``if __name__ != "__main__":``."""
    if not isinstance(node, ast.If) or not isinstance(node.test, ast.Compare) or len(node.test.ops) != 1:
        return []
    test = node.test
    sides = [test.left, *test.comparators]
    names = [s for s in sides if isinstance(s, ast.Name) and s.id == "__name__"]
    consts = [s for s in sides if isinstance(s, ast.Constant) and s.value == "__main__"]
    if not (names and consts):
        return []
    if isinstance(test.ops[0], ast.Eq):
        return node.body
    return node.orelse if isinstance(test.ops[0], ast.NotEq) else []
