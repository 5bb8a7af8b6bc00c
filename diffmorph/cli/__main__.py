"""``python -m diffmorph.cli`` runs the command line (same as ``diffmorph``)."""

import sys

from .main import main

sys.exit(main())
