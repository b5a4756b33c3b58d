"""`python -m compress.quantize`."""

import sys

from .cli import main

sys.exit(main())
