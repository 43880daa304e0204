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

MODULES = {
    "tokenizer._native._encoder": "encoder.cc",
    "tokenizer._native._trainer": "trainer.cc",
}

ext_modules = [
    Extension(
        name,
        sources=[os.path.join(NATIVE, src)],
        include_dirs=[NATIVE],
        depends=[
            os.path.join(NATIVE, f)
            for f in os.listdir(os.path.join(HERE, NATIVE))
            if f.endswith((".h", ".hh"))
        ],
        extra_compile_args=CFLAGS,
        language="c++",
    )
    for name, src in MODULES.items()
    if os.path.exists(os.path.join(HERE, NATIVE, src))
]

setup(ext_modules=ext_modules)
