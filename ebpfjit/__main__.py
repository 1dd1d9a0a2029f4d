"""`python -m ebpfjit`: the `ebpfjit` command."""
import sys

from .cli import main

sys.exit(main())
