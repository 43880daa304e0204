"""Byte-level BPE tokenizer with a native (C++) core: training, encoding, decoding, export.

Public names: `Tokenizer` (encode/decode/save/load/export), `patterns` (built-in pre-tokenization patterns) and
`train` (the function, imported lazily from the submodule `tokenizer.train` on first use, so importing this package
loads no training code).

The function and its submodule share the name ``train``. Importing a submodule makes the import system bind it on
the parent package, which would shadow the function; a property on the package's module class keeps
``tokenizer.train`` the function whatever was imported first. Consequence: ``import tokenizer.train as m`` binds the
function too; reach the submodule's other names with ``from tokenizer.train import NAME``.
"""

from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING, Any

from . import patterns
from .core import Tokenizer

if TYPE_CHECKING:
    from .train import train

__all__ = ["Tokenizer", "patterns", "train"]


class _TokenizerPackage(types.ModuleType):
    @property
    def train(self) -> Any:
        from .train import train as train_function

        return train_function

    @train.setter
    def train(self, value: Any) -> None:
        # The import system binds the `tokenizer.train` submodule here; the public name stays the function.
        pass


sys.modules[__name__].__class__ = _TokenizerPackage
