"""Push and pull: moving versions between servers as a checked, streamed transfer (see stream.py)."""
