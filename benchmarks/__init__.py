"""Benchmarks: searchseg against what a user would pick instead, measured side by side in one run."""
