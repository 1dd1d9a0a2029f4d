"""The static verifier of ebpfjit (issue 13).

Imports: (nothing)
"""
