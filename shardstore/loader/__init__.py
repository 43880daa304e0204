"""The loader layer: opening a mixture's stores, the one stateful batch reader, and the torch integration."""
