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


def add_options(parser: argparse.ArgumentParser) -> None:
    from ..web import limits

    opt = parser.add_argument
    opt("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    opt("--port", type=int, default=7860, help="port to listen on (default 7860)")
    opt("--output-root", metavar="DIR", help="folder for the sessions' outputs (default: a temporary folder)")
    opt("--auth", metavar="USER:PASSWORD", help="ask every visitor and API client for this user and password")
    opt("--max-size", type=int, default=limits.MAX_SIZE, help=f"largest working size (default {limits.MAX_SIZE})")
    opt(
        "--max-train-steps",
        type=int,
        default=limits.MAX_TRAIN_STEPS,
        help=f"most train steps of a run (default {limits.MAX_TRAIN_STEPS})",
    )
    opt(
        "--max-frames",
        type=int,
        default=limits.MAX_FRAMES,
        help=f"most frames a run renders, --hold's included (default {limits.MAX_FRAMES})",
    )
    opt(
        "--max-run-minutes",
        type=float,
        default=limits.MAX_RUN_S / 60,
        help=f"a run is cancelled after this long (default {limits.MAX_RUN_S / 60:g})",
    )
    opt(
        "--max-disk-gb",
        type=float,
        default=limits.MAX_DISK_BYTES / 1024**3,
        help=f"most the app keeps on disk, GiB (default {limits.MAX_DISK_BYTES / 1024**3:g})",
    )
    opt(
        "--max-sessions",
        type=int,
        default=limits.MAX_SESSIONS,
        help=f"browser sessions held at once (default {limits.MAX_SESSIONS})",
    )


FLAGS = {  # Limits field -> flag, to name the flag in a message
    "max_size": "--max-size",
    "max_train_steps": "--max-train-steps",
    "max_frames": "--max-frames",
    "max_run_s": "--max-run-minutes",
    "max_disk_bytes": "--max-disk-gb",
    "max_sessions": "--max-sessions",
    "output_root": "--output-root",
}


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
        limits = Limits(
            max_size=args.max_size,
            max_train_steps=args.max_train_steps,
            max_frames=args.max_frames,
            max_run_s=args.max_run_minutes * 60,
            max_disk_bytes=int(args.max_disk_gb * 1024**3),
            max_sessions=args.max_sessions,
        )
    except InputError as exc:
        raise UsageError(f"{FLAGS.get(exc.setting, exc.setting)} must be above 0") from None

    def ready(url, root):
        say(f"serving on {url} (started in {time.perf_counter() - start:.1f} s; outputs in {root}); Ctrl-C stops it")
        if not is_local(args.host):
            warning = f"anyone who can reach this machine on port {args.port} can use the app"
            say(f"warning: listening on {args.host}: {warning}" + ("" if auth else "; set --auth USER:PASSWORD"))

    try:
        web.launch(args.host, args.port, args.output_root, limits=limits, auth=auth, ready=ready)
    except InputError as exc:
        flag = FLAGS.get(exc.setting)
        raise UsageError(f"{flag} {args.output_root}: {exc}" if flag == "--output-root" else str(exc)) from None
    except KeyboardInterrupt:
        say("stopped")
    return 0
