"""The package version (part of the compile-cache key; pyproject.toml says the same number).

Imports: (nothing)
"""
__version__ = "0.1.0"
