"""The web app (``diffmorph app``): a Gradio page that wires the library's calls.

Optional: needs the ``app`` extra (``pip install "diffmorph[app]"``, which adds Gradio).
:mod:`.app` builds and launches the page; :mod:`.sessions` gives each browser session its
own output folder and removes old ones; :mod:`.runs` runs a morph on a worker thread;
:mod:`.points` reads, writes and draws point pairs; :mod:`.progress` is the
:class:`diffmorph.Progress` the page's runs report to.
"""
