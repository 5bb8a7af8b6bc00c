"""``diffmorph app``: the web app in the browser (needs the ``app`` extra: Gradio).

Serves the page of :mod:`diffmorph.web` on localhost (by default) until Ctrl-C: one call
to :func:`diffmorph.web.launch`. Gradio is imported then, TensorFlow only on the first
morph, so the page is up in seconds.
"""

from __future__ import annotations

import argparse
import importlib.util
import time

from ..errors import InputError, OutputError
from .options import UsageError
from .progress import say

HELP = dict(
    summary="the web app: morph in the browser (pip install 'diffmorph[app]')",
    description="Serve the morphing web app (Gradio) on HOST:PORT: upload two images, pick point pairs, run, "
    "watch the training, download the video, GIF, frames and maps. Also an API endpoint /morph "
    "(gradio_client), through the same queue. Needs the app extra: pip install 'diffmorph[app]'.",
    epilog="Each browser session writes in its own folder under --output-root (default: a new temporary "
    "folder, removed on exit; a folder given must be new, empty or one this app made before). Only a session's "
    "own outputs are served; sessions unused for 24 hours are removed, and the least recently used ones when "
    "the app keeps over --max-disk-gb. One morph runs at a time; a run is cancelled when its browser tab or "
    "client goes away, on Stop, or after --max-run-minutes. The app makes no requests to other hosts and "
    "sends no analytics. Anyone who can reach HOST:PORT can use it: with --host other than 127.0.0.1, set --auth.",
)


LIMIT_FLAGS = (  # flag, Limits field, type, flag value -> field value, help (the default is added)
    ("--max-size", "max_size", int, 1, "largest working size"),
    ("--max-train-steps", "max_train_steps", int, 1, "most train steps of a run"),
    ("--max-frames", "max_frames", int, 1, "most frames a run renders, --hold's end frames included"),
    ("--max-run-minutes", "max_run_s", float, 60, "a run is cancelled after this long"),
    ("--max-disk-gb", "max_disk_bytes", float, 1024**3, "most the app keeps on disk (GiB)"),
    ("--max-sessions", "max_sessions", int, 1, "browser sessions held at once"),
)


def add_options(parser: argparse.ArgumentParser) -> None:
    from ..web.limits import Limits

    opt = parser.add_argument
    opt("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    opt("--port", type=int, default=7860, help="port to listen on (default 7860)")
    opt("--output-root", metavar="DIR", help="folder for the sessions' outputs (default: a temporary folder)")
    opt("--auth", metavar="USER:PASSWORD", help="ask every visitor and API client for this user and password")
    for flag, field, kind, scale, text in LIMIT_FLAGS:
        default = getattr(Limits, field) / scale
        opt(flag, type=kind, default=kind(default), help=f"{text} (default {default:g})")


def run(args) -> int:
    """Serve the app until Ctrl-C; returns the exit status."""
    if not 1 <= args.port <= 65535:
        raise UsageError(f"--port must be from 1 to 65535 (got {args.port})")
    auth = None
    if args.auth is not None:
        user, colon, password = args.auth.partition(":")
        if not colon or not user or not password:
            raise UsageError("--auth must be USER:PASSWORD, both non-empty")
        auth = (user, password)
    if importlib.util.find_spec("gradio") is None:
        raise OutputError("the web app needs Gradio: pip install 'diffmorph[app]'")
    from .. import web
    from ..web.app import is_local
    from ..web.limits import Limits

    start = time.perf_counter()
    try:
        values = {field: getattr(args, flag[2:].replace("-", "_")) * scale for flag, field, _, scale, _ in LIMIT_FLAGS}
        limits = Limits(**{k: int(v) if k == "max_disk_bytes" else v for k, v in values.items()})
    except InputError as exc:
        flag = next(flag for flag, field, *_ in LIMIT_FLAGS if field == exc.setting)
        raise UsageError(f"{flag} must be above 0") from None

    def ready(url, root):
        say(f"serving on {url} (started in {time.perf_counter() - start:.1f} s; outputs in {root}); Ctrl-C stops it")
        if not is_local(args.host) and auth is None:
            say(
                f"warning: listening on {args.host}: anyone who can reach this machine on port {args.port} "
                "can use the app; set --auth USER:PASSWORD"
            )
        elif not is_local(args.host):
            say(f"note: listening on {args.host}: visitors log in with the --auth user and password")

    try:
        web.launch(args.host, args.port, args.output_root, limits=limits, auth=auth, ready=ready)
    except InputError as exc:
        where = f"--output-root {args.output_root}: " if exc.setting == "output_root" else ""
        raise UsageError(f"{where}{exc}") from None
    except KeyboardInterrupt:
        say("stopped")
    return 0
