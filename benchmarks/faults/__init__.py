"""Fault and soak harness: a Django deployment under load while one fault at a time is injected.

Run ``python benchmarks/faults [--quick] [scenario ...]`` (or ``python -m
benchmarks.faults``); see :mod:`benchmarks.faults.cli`.
"""
