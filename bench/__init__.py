"""Benchmarks against the real components; each prints one JSON object as its last line."""
