"""`python -m ebpfjit.cli` runs the `ebpfjit` command.

Imports: ebpfjit.cli.commands
"""
import sys

from .commands import main

sys.exit(main())
