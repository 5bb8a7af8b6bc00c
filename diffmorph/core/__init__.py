"""The numerical core: warp, maps, net, optimisation, rendering, colour and metrics.

Computes only: it never reads argv, the working directory or fixed folders, and
writes no files. Configuration is one :class:`diffmorph.config.MorphConfig` passed
down. Layers (enforced by import-linter, see ``pyproject.toml``):
``diffmorph.io`` <- ``diffmorph.core`` <- ``diffmorph.app`` <- ``diffmorph.cli``.
"""
