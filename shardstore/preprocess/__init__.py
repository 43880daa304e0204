"""The preprocessing layer: `shardstore.build` — input expansion and readers, work units, executors, journal."""
