"""``diffmorph app``: the web app in the browser (needs the ``app`` extra: Gradio).

Serves the page of :mod:`diffmorph.web.app` on localhost (by default) until Ctrl-C.
Gradio is imported here, TensorFlow only on the first morph, so the page is up in
seconds.
"""

from __future__ import annotations

import argparse
import atexit
import importlib.util
import os
import shutil
import tempfile
import time

from ..errors import OutputError
from .options import UsageError
from .progress import say

HELP = dict(
    summary="the web app: morph in the browser (pip install 'diffmorph[app]')",
    description="Serve the morphing web app (Gradio) on HOST:PORT: upload two images, pick point pairs, run, "
    "watch the training, download the video, GIF, frames and maps. Also an API endpoint /morph "
    "(gradio_client). Needs the app extra: pip install 'diffmorph[app]'.",
    epilog="Each browser session writes in its own folder under --output-root (default: a new temporary "
    "folder, removed on exit); folders untouched for 24 hours are removed, and the oldest ones when the root "
    "holds over 2 GB. The app makes no requests to other hosts and sends no analytics.",
)


def add_options(parser: argparse.ArgumentParser) -> None:
    opt = parser.add_argument
    opt("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    opt("--port", type=int, default=7860, help="port to listen on (default 7860)")
    opt("--output-root", metavar="DIR", help="folder for the sessions' outputs (default: a temporary folder)")


def run(args) -> int:
    """Serve the app until Ctrl-C; returns the exit status."""
    if not 1 <= args.port <= 65535:
        raise UsageError(f"--port must be from 1 to 65535 (got {args.port})")
    if importlib.util.find_spec("gradio") is None:
        raise OutputError("the web app needs Gradio: pip install 'diffmorph[app]'")
    start = time.perf_counter()
    root = args.output_root
    if root is None:
        root = tempfile.mkdtemp(prefix="diffmorph-app-")
        atexit.register(shutil.rmtree, root, ignore_errors=True)
    elif os.path.exists(root) and not os.path.isdir(root):
        raise UsageError(f"--output-root {root} exists and is not a folder")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from ..web.app import launch

    try:
        demo, url = launch(args.host, args.port, root, block=False)
    except OSError as exc:
        raise OutputError(f"cannot serve on {args.host}:{args.port} ({exc})") from None
    say(f"serving on {url} (started in {time.perf_counter() - start:.1f} s; outputs in {root}); Ctrl-C stops it")
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        say(f"note: listening on {args.host}: anyone who can reach this machine on port {args.port} can use the app")
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        say("stopped")
    finally:
        demo.close()
    return 0
