"""Benchmarks: ``python -m kraby_rl.bench NAME``; each prints figures and ends with one JSON line."""
