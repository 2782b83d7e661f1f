"""Benchmarks for the design targets (ARCHITECTURE.md section 13); see docs/benchmarks.md."""
