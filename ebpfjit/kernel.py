"""Compatibility alias: `ebpfjit.kernel` moved to `ebpfjit.oracle.kernel` (issue #11).

It stays importable for one release so that code written against 0.1 keeps working; import
`ebpfjit.oracle.kernel` in new code. (No DeprecationWarning: the test suite runs with warnings as
errors in places, and the alias is documented in DEVELOPERS.md instead.)

Imports: ebpfjit.oracle.kernel
"""
from .oracle.kernel import *  # noqa: F403  (the whole public surface of the old module)
from .oracle.kernel import __all__  # noqa: F401
