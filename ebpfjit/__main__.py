"""`python -m ebpfjit`: the `ebpfjit` command."""
import sys

from .cli.commands import main

sys.exit(main())
