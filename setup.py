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

# module -> sources (the first one defines the module); every module sees the tokenizer's headers (utf8.h is shared
# with shardstore's JSON-lines scanner)
MODULES = {
    "tokenizer._native._encoder": [
        os.path.join(NATIVE, f) for f in ("encoder.cc", "encoder_batch.cc", "encoder_packed.cc")
    ],
    "tokenizer._native._trainer": [os.path.join(NATIVE, f) for f in ("trainer.cc", "trainer_merger.cc")],
    "shardstore._native._jsonl": os.path.join("shardstore", "_native", "jsonl.cc"),
    "shardstore._native._edf": os.path.join("shardstore", "_native", "edf.cc"),
    "shardstore._native._pieces": os.path.join("shardstore", "_native", "pieces.cc"),
    "shardstore._native._minhash": [
        os.path.join("shardstore", "_native", f) for f in ("minhash.cc", "minhash_scan.cc", "minhash_df.cc")
    ],
    "shardstore._native._verifybatch": os.path.join("shardstore", "_native", "verifybatch.cc"),
}
HEADERS = [
    os.path.join(d, f)
    for d in (NATIVE, os.path.join("shardstore", "_native"))
    for f in os.listdir(os.path.join(HERE, d))
    if f.endswith((".h", ".hh"))
]

SOURCES = {name: [src] if isinstance(src, str) else src for name, src in MODULES.items()}
ext_modules = [
    Extension(
        name,
        sources=srcs,
        include_dirs=[NATIVE],
        depends=HEADERS,
        extra_compile_args=CFLAGS,
        language="c++",
    )
    for name, srcs in SOURCES.items()
    if os.path.exists(os.path.join(HERE, srcs[0]))
]

setup(ext_modules=ext_modules)
