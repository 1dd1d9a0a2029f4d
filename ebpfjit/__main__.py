"""`python -m ebpfjit`: the `ebpfjit` command.

Imports: ebpfjit.cli
"""
import sys

from .cli.commands import main

sys.exit(main())
