"""Pure index math: packing into windows, keyed permutations, the interleave, mixture config and plan.

No I/O, no torch, no store: every function here is a pure function of its arguments (tests/test_layers.py)."""
