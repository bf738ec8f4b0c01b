"""Deduplication in layers: exact keys, near-duplicates, same story. No I/O."""
