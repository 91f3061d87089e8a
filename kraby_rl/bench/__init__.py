"""Benchmarks: ``python -m kraby_rl.bench NAME``; each prints figures, then one JSON line."""
