"""The remote layer: fsspec transfers with retries and the node-local cache that stages stores from URLs."""
