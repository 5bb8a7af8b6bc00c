"""A griffe extension for the documentation's API reference (mkdocs.yml, mkdocstrings' ``extensions``).

The docstrings title their doctests ``Example:`` (the project's style); griffe's Google
parser knows only ``Examples:`` and would render the section as prose, so this renames
the title before parsing and the doctests show as code. Sphinx roles in the docstrings
(``:func:`~diffmorph.app.morph.morph```) are shown as code (``morph``), since Markdown
has no roles. Nothing else is changed.
"""

from __future__ import annotations

import re

import griffe

_TITLE = re.compile(r"^(\s*)Example:\s*$", re.MULTILINE)
_ROLE = re.compile(r":(?:func|class|mod|meth|data|attr|exc|obj):`(~?)([^`]+)`")


def _role(match: re.Match) -> str:
    name = match[2].rpartition(".")[2] if match[1] else match[2]
    return f"``{name}``"


class ExampleSections(griffe.Extension):
    """``Example:`` section titles read as ``Examples:``; Sphinx roles shown as code."""

    def on_instance(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = _ROLE.sub(_role, _TITLE.sub(r"\1Examples:", obj.docstring.value))
