"""Byte-level BPE tokenizer with a native (C++) core: training, encoding, decoding, export."""
