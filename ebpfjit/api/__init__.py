"""The user-facing API: `program` (Program: raw bytecode and assembly) and `loader` (load(), the
live Object and its programs). The package root re-exports what users need.

Imports: (nothing)
"""
