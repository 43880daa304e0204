"""Native (C++) hot loops of shardstore, built by setup.py: `_jsonl`, the JSON Lines fast path of the build."""
