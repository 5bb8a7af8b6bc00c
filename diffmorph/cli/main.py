"""The ``diffmorph`` command: subcommands, exit statuses, signals.

``diffmorph SUBCOMMAND ...`` runs a subcommand; anything else (``diffmorph -s A -t
B ...``, the original's command line) runs ``morph``. ``python -m diffmorph`` and
``python morph.py`` are the same command. TensorFlow is imported only once the
flags and inputs are checked, so ``--help``, ``--version`` and usage errors answer at
once.

Exit statuses (every subcommand): 0 done; 2 bad input or flags (one line on stderr,
no traceback, nothing written); 1 a failure while optimising or writing (the previous
outputs stay complete); 130 interrupted by Ctrl-C or SIGTERM (the message says what
was kept). :func:`main` returns the status instead of exiting, and restores every
signal handler and warning filter it changes, so it can be called in-process.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
import warnings

from ..errors import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_USAGE, USER_ERRORS, Interrupted, exit_status
from ..version import __version__
from . import app, batch, colour_transfer, demo, morph, report, sequence
from .options import UsageError, in_flags, new_subcommand
from .progress import PROG, say

SUBCOMMANDS = {
    "morph": morph,
    "demo": demo,
    "sequence": sequence,
    "batch": batch,
    "report": report,
    "colour-transfer": colour_transfer,
    "app": app,
}
TOP_LEVEL = ("-h", "--help", "--version")


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one line on stderr (and exit status 2)."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``diffmorph`` parser with one sub-parser per subcommand."""
    parser = _Parser(
        prog=PROG,
        description="Reference-point-free image morphing (a port of DiffMorph).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Without a subcommand the arguments are the morph command's (the original's command\n"
        "line): 'diffmorph -s A -t B' is 'diffmorph morph -s A -t B', as is 'python morph.py -s A -t B'.\n"
        "'diffmorph SUBCOMMAND --help' describes each subcommand. Exit status: 0 done, 2 bad input\n"
        "or flags, 1 a failure while optimising or writing, 130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(title="subcommands", dest="command", metavar="SUBCOMMAND", parser_class=_Parser)
    parser.subcommands = {}
    for name, module in SUBCOMMANDS.items():  # each module: HELP (texts), add_options(parser), run(args)
        parser.subcommands[name] = new_subcommand(subparsers, name, module.run, **module.HELP)
        module.add_options(parser.subcommands[name])
    return parser


def with_subcommand(argv: list[str]) -> list[str]:
    """``argv`` with ``morph`` put first when it names no subcommand (the original's command line)."""
    if argv and (argv[0] in SUBCOMMANDS or argv[0] in TOP_LEVEL):
        return argv
    return ["morph", *argv]


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """SIGTERM raises KeyboardInterrupt (handled as Ctrl-C) while inside; the old handler is restored."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    """Run the ``diffmorph`` command with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    argv = with_subcommand([str(a) for a in (sys.argv[1:] if argv is None else argv)])
    parser = build_parser()
    with _sigterm_as_interrupt():
        try:
            try:
                args, unknown = parser.parse_known_args(argv)
                if unknown:  # blamed on the subcommand, whose --help lists its flags
                    parser.subcommands[args.command].error(f"unrecognized arguments: {' '.join(unknown)}")
            except SystemExit as exc:  # --help, --version (0) and usage errors (2, already printed)
                return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else EXIT_USAGE)
            return _run(args, parser)
        except KeyboardInterrupt:  # before the command could say more (e.g. while parsing)
            say("interrupted")
            return EXIT_INTERRUPTED


def _run(args, parser) -> int:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # library warnings are not for a command-line user
            return args.run(args)
    except UsageError as exc:
        sys.stderr.write(f"{PROG} {args.command}: error: {exc} (see '{PROG} {args.command} --help')\n")
        return EXIT_USAGE
    except USER_ERRORS as exc:  # the library names settings; the terminal shows their flags
        say(f"error: {in_flags(str(exc), getattr(exc, 'setting', None))}")
        return exit_status(exc)
    except Interrupted as exc:
        hint = f"; {args.resume_hint}" if exc.resumable else ""
        say(f"{in_flags(exc.message)}{hint}")
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        say("interrupted; nothing was written")
        return EXIT_INTERRUPTED
    except Exception as exc:
        if not _out_of_memory(exc):
            raise  # a bug: its traceback is worth reporting
        say("error: not enough memory for this morph; use a smaller --size or smaller images, or free some memory")
        return EXIT_FAILURE


def _out_of_memory(error: BaseException) -> bool:
    """MemoryError, or TensorFlow's allocator running out (ResourceExhaustedError), by name:
    the command line does not import TensorFlow to catch it."""
    return isinstance(error, MemoryError) or type(error).__name__ == "ResourceExhaustedError"
