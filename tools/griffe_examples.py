"""A griffe extension for the documentation's API reference (mkdocs.yml, mkdocstrings' ``extensions``).

The docstrings title their doctests ``Example:`` (the project's style); griffe's Google
parser knows only ``Examples:`` and would render the section as prose, so this renames
the title before parsing and the doctests show as code. Nothing else is changed.
"""

from __future__ import annotations

import re

import griffe

_TITLE = re.compile(r"^(\s*)Example:\s*$", re.MULTILINE)


class ExampleSections(griffe.Extension):
    """``Example:`` section titles read as ``Examples:``."""

    def on_instance(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = _TITLE.sub(r"\1Examples:", obj.docstring.value)
