"""`python -m deepcrl.cli ARGS`: the same as `deepcrl ARGS`."""

import sys

from deepcrl.cli import main

sys.exit(main())
