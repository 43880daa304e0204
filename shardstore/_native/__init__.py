"""Native (C++) hot loops of shardstore, built by setup.py: `_jsonl`, the JSON Lines fast path of the build, and
`_edf`, the earliest-deadline-first merge of the mixture interleave, and `_pieces`, the piece copies of rows that
span excluded documents (`shardstore.store.pieces`)."""
