"""The base layer: one implementation of each mechanism the other layers share (durable writes, usable cores,
URL to filesystem, fork safety). Imports nothing of shardstore but `shardstore.errors`."""
