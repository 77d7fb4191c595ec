"""Ideal journey models shipped with journey (TOML, read with importlib.resources)."""
