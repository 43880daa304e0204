"""The store layer: shard bytes and their format, the manifest, writing, mapping, verification, row reads."""
