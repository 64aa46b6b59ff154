"""Benchmarks: each module has a main() that prints a table and returns True when its target is met."""
