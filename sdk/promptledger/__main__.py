"""``python -m promptledger`` runs the CLI, like the ``promptledger`` console script."""

import sys

from .cli import main

sys.exit(main())
