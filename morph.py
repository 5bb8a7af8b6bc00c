#!/usr/bin/env python
"""Entry shim: ``python morph.py -s SOURCE -t TARGET`` runs :func:`diffmorph.cli.main`."""

import sys

from diffmorph.cli import main

if __name__ == "__main__":
    sys.exit(main())
