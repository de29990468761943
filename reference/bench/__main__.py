"""`python -m reference.bench`: the same as `scratch bench`."""

import sys

from reference.bench.command import main

sys.exit(main())
