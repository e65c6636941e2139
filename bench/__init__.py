"""Benchmarks: ``make bench`` (see bench/run.sh)."""
