"""Kernel tests: each kernel pair called directly, as the bridge calls it (see conftest.py)."""
