"""Which targets a batch carries in ``labels``: shifted here (``next``), or HF's convention (``hf``).

``next`` (the default): ``labels[:, t]`` is the token after ``input_ids[:, t]``, for a loss computed as
``cross_entropy(logits, labels)`` with no shift (our training example, Lightning modules written that way).

``hf``: ``labels`` equals ``input_ids``, as Hugging Face causal LMs expect: they shift inside the model
(``logits[:, :-1]`` against ``labels[:, 1:]``). Passing ``next`` labels to such a model trains on token t+2,
silently. An ``hf`` batch has no ``source_ids`` (``model(**batch)`` would hand it to the model's forward).

``hf_doc_masked``: ``hf`` plus ``-100`` (HF's ignore index) on the first token of each document after the first
in a window, so no position is trained to predict across a document boundary; pairs with document masking
(``doc_info="position_ids"``). Column 0 is ``-100`` too, which the model's shift drops anyway.

Cost: one ``[B, seq_len]`` int64 copy per batch (``labels`` cannot alias ``input_ids``: the model may keep it).
"""

from __future__ import annotations

from enum import StrEnum

import numpy as np

__all__ = ["IGNORE_INDEX", "Labels", "format_labels"]

IGNORE_INDEX = -100  # torch's cross_entropy default and HF's ignore index


class Labels(StrEnum):
    NEXT = "next"
    HF = "hf"
    HF_DOC_MASKED = "hf_doc_masked"


def format_labels(
    batch: dict[str, np.ndarray], labels: Labels, *, keep_position_ids: bool = True
) -> dict[str, np.ndarray]:
    """The batch with ``labels`` in the given format (``batch`` from `BatchReader.read`; ``hf_doc_masked`` needs
    its ``position_ids``). ``keep_position_ids=False`` drops them afterwards (read only for the mask)."""
    if labels is Labels.NEXT:
        return batch
    out = {k: v for k, v in batch.items() if k != "source_ids"}
    target = np.array(batch["input_ids"], dtype=np.int64, copy=True)
    if labels is Labels.HF_DOC_MASKED:
        target[batch["position_ids"] == 0] = IGNORE_INDEX
        if not keep_position_ids:
            del out["position_ids"]
    out["labels"] = target
    return out
