"""Native extension build: plain C++17 CPython extensions, only a compiler needed (no Rust, no pybind11).

Each module is built when its main source exists, so the package installs at every step of development.
"""

import os
import sys

from setuptools import Extension, setup

HERE = os.path.dirname(os.path.abspath(__file__))
NATIVE = os.path.join("tokenizer", "_native")

if sys.platform == "win32":
    CFLAGS = ["/O2", "/std:c++17"]
else:
    CFLAGS = [
        "-O3",
        "-std=c++17",
        "-Wall",
        "-Wextra",
        "-Wno-missing-field-initializers",
        "-fvisibility=hidden",
    ]

# module -> source; every module sees the tokenizer's headers (utf8.h is shared with shardstore's JSON-lines scanner)
MODULES = {
    "tokenizer._native._encoder": os.path.join(NATIVE, "encoder.cc"),
    "tokenizer._native._trainer": os.path.join(NATIVE, "trainer.cc"),
    "shardstore._native._jsonl": os.path.join("shardstore", "_native", "jsonl.cc"),
    "shardstore._native._edf": os.path.join("shardstore", "_native", "edf.cc"),
    "shardstore._native._pieces": os.path.join("shardstore", "_native", "pieces.cc"),
    "shardstore._native._minhash": os.path.join("shardstore", "_native", "minhash.cc"),
    "shardstore._native._verifybatch": os.path.join("shardstore", "_native", "verifybatch.cc"),
}
# extra sources of a module, beside its main one (split by responsibility)
EXTRA_SOURCES = {
    "shardstore._native._minhash": [
        os.path.join("shardstore", "_native", f) for f in ("minhash_scan.cc", "minhash_df.cc")
    ],
}
HEADERS = [
    os.path.join(d, f)
    for d in (NATIVE, os.path.join("shardstore", "_native"))
    for f in os.listdir(os.path.join(HERE, d))
    if f.endswith((".h", ".hh"))
]

ext_modules = [
    Extension(
        name,
        sources=[src, *EXTRA_SOURCES.get(name, [])],
        include_dirs=[NATIVE],
        depends=HEADERS,
        extra_compile_args=CFLAGS,
        language="c++",
    )
    for name, src in MODULES.items()
    if os.path.exists(os.path.join(HERE, src))
]

setup(ext_modules=ext_modules)
