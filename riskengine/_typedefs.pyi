"""Stubs for riskengine._typedefs (cext/riskengine/_typedefs.pyx)."""

CODES: dict[str, dict[str, int]]
