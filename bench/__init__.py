"""Benchmarks that print figures: `python bench/bench.py` and `python bench/soak_load.py` (code in testkit/)."""
