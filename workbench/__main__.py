"""``python -m workbench``: the command line (also what ``torchrun -m workbench train ...`` starts)."""

import sys

from .cli import main

sys.exit(main())
