"""The web app (``diffmorph app``): a Gradio page that wires the library's calls.

Optional: needs the ``app`` extra (``pip install "diffmorph[app]"``, which adds Gradio).
:func:`launch` runs a server process (what ``diffmorph app`` calls); :mod:`.app` builds
and serves the page; :mod:`.sessions` gives each browser session its own folder and
removes only what it made; :mod:`.limits` holds what one server allows; :mod:`.runs`
runs a morph on a worker thread; :mod:`.points` holds the page's point pairs;
:mod:`.progress` is the :class:`diffmorph.Progress` the page's runs report to.
Importing this package does not import Gradio.
"""

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # the one place: before any module here imports Gradio


def launch(host="127.0.0.1", port=7860, output_root=None, *, limits=None, auth=None, ready=None) -> None:
    """Run a ``diffmorph app`` server in this process until Ctrl-C (:func:`diffmorph.web.app.launch`)."""
    from .app import launch as run_server

    run_server(host, port, output_root, limits=limits, auth=auth, ready=ready)


__all__ = ["launch"]
