"""The command line: ``diffmorph`` (also ``python -m diffmorph`` and ``python morph.py``).

Owns argv, paths as the user wrote them, progress bars, messages and exit statuses;
everything else is :mod:`diffmorph.app`.
"""

from .main import main

__all__ = ["main"]
