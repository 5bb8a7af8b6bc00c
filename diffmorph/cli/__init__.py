"""The command line: ``diffmorph`` (also ``python -m diffmorph`` and ``python morph.py``)."""

from .main import build_parser, main, make_config  # noqa: F401
