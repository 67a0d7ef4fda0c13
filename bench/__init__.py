"""The fleet-scale benchmarks (``bench/run``); each runs from the repository root as a module,
e.g. ``.venv/bin/python -m bench.ingest --quick``."""
