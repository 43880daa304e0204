"""`shardstore demo`: the whole pipeline on the Python standard library."""
