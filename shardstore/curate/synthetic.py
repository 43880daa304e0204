"""A synthetic corpus with known ground truth, for the accuracy tests and `benchmarks/bench_dedup.py`.

Documents are paragraphs of words drawn (Zipf-like) from a vocabulary of made-up words. A *family* is an original
and copies of it edited at one rate: each word is substituted, deleted, or followed by an inserted word with
probability ``rate / 3`` each, and with probability ``rate`` two paragraphs swap places. Unrelated documents are
mixed in. Everything is a pure function of the seed, so tests and benchmarks see the same corpus everywhere.
The traps of decontamination are here too: box-drawing tables, zero runs, and one licence header shared by
many documents.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field

__all__ = ["BOX_TABLE", "LICENCE", "SyntheticCorpus", "make_corpus", "vocabulary"]

_SYLLABLES = [c + v for c in "bcdfghjklmnprstvz" for v in ("a", "e", "i", "o", "u", "ai", "ou")]

LICENCE = (
    "Licensed under the Apache License, Version 2.0 (the License); you may not use this file except in "
    "compliance with the License. You may obtain a copy of the License at the project site. Unless required by "
    "applicable law or agreed to in writing, software distributed under the License is distributed on an AS IS "
    "BASIS, WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied."
)
BOX_TABLE = "\n".join(["┌" + "─" * 40 + "┐"] + ["│" + " " * 40 + "│"] * 6 + ["└" + "─" * 40 + "┘"])
ZEROS = " ".join(["0"] * 120)


def vocabulary(size: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(1, 4))))
    return sorted(words)


@dataclass(slots=True)
class SyntheticCorpus:
    """Texts in order; `family[i]` is the family of text i (-1: unrelated); `rate[f]` the edit rate of family f."""

    texts: list[str] = field(default_factory=list)
    family: list[int] = field(default_factory=list)
    rate: list[float] = field(default_factory=list)


class _Writer:
    def __init__(self, rng: random.Random, vocab: list[str]) -> None:
        self.rng = rng
        self.vocab = vocab
        weights = [1.0 / (i + 10) for i in range(len(vocab))]  # Zipf-like, flattened at the head
        self.cum = list(itertools.accumulate(weights))

    def words(self, n: int) -> list[str]:
        return self.rng.choices(self.vocab, cum_weights=self.cum, k=n)

    def document(self, paragraphs: int, words: int) -> list[list[str]]:
        return [self.words(max(5, int(self.rng.gauss(words, words / 4)))) for _ in range(paragraphs)]

    def edit(self, doc: list[list[str]], rate: float) -> list[list[str]]:
        out = []
        for para in doc:
            new: list[str] = []
            for w in para:
                r = self.rng.random()
                if r < rate / 3:
                    new.append(self.words(1)[0])  # substitution
                elif r < 2 * rate / 3:
                    continue  # deletion
                else:
                    new.append(w)
                    if r < rate:
                        new.append(self.words(1)[0])  # insertion
            out.append(new)
        if len(out) > 1 and self.rng.random() < rate:
            i, j = self.rng.sample(range(len(out)), 2)
            out[i], out[j] = out[j], out[i]
        return out


def _text(doc: list[list[str]]) -> str:
    return "\n\n".join(" ".join(p) for p in doc)


def make_corpus(
    *,
    families: int,
    copies: int,
    rates: tuple[float, ...],
    unrelated: int,
    paragraphs: int = 4,
    words: int = 40,
    vocab_size: int = 5000,
    seed: int = 0,
) -> SyntheticCorpus:
    """`families` originals (rates cycled), each with `copies` edited copies, and `unrelated` other documents,
    shuffled together (deterministically)."""
    rng = random.Random(seed)
    w = _Writer(rng, vocabulary(vocab_size, seed))
    items: list[tuple[str, int]] = []
    corpus = SyntheticCorpus()
    for f in range(families):
        rate = rates[f % len(rates)]
        corpus.rate.append(rate)
        original = w.document(paragraphs, words)
        items.append((_text(original), f))
        items.extend((_text(w.edit(original, rate)), f) for _ in range(copies))
    items.extend((_text(w.document(paragraphs, words)), -1) for _ in range(unrelated))
    rng.shuffle(items)
    corpus.texts = [t for t, _ in items]
    corpus.family = [f for _, f in items]
    return corpus
