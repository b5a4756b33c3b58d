"""`python -m compress.prune`."""

import sys

from .cli import main

sys.exit(main())
