"""``python -m diffmorph`` runs the command line (same as ``diffmorph``)."""

import sys

from .cli.main import main

sys.exit(main())
