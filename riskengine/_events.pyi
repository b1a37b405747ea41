"""Stubs for riskengine._events (cext/riskengine/_events.pyx): C-level only, no Python API."""
