"""Options shared by the subcommands, and how flags become a :class:`MorphConfig`.

The parser's defaults for the morph settings are ``None``, so the settings given
explicitly on the command line can be told apart from the defaults: an explicit flag
overrides what a maps file stored (and is refused if it contradicts it, unless
``--force``). The help texts show the defaults, read from :mod:`diffmorph.config`.
"""

from __future__ import annotations

import argparse
import dataclasses
import re

from ..app import write
from ..app.write import DEFAULT_GIF_MAX_SIDE, FORMATS
from ..config import (
    COLOUR_MAPS,
    COLOUR_PATHS,
    DEFAULT_ADD_SCALE,
    DEFAULT_FPS,
    DEFAULT_FRAMES,
    DEFAULT_MULT_SCALE,
    DEFAULT_SIZE,
    DEFAULT_TRAIN_STEPS,
    DEFAULT_WARP_SCALE,
    EASES,
    GEOMETRIES,
    PACINGS,
    POINT_CONSISTENCY_WEIGHT,
    POINT_PRIORS,
    POINT_WEIGHT,
    PRESETS,
    RENDER_KERNELS,
    RENDER_MODES,
    MorphConfig,
    preset_config,
)

DEFAULT_FORMATS = ",".join(write.DEFAULT_FORMATS)  # the flag's default, as typed
TRUE_WORDS = ("1", "true", "t", "yes", "y", "on")
FALSE_WORDS = ("0", "false", "f", "no", "n", "off")

# THE table from the library's names to the command line's: a MorphConfig field or an
# argument of the library's functions -> (argparse dest, the flag as users write it).
# Below the command line, messages name settings as in Python (``train_steps``,
# ``resume=True``); :func:`in_flags` rewrites them with these flags for the terminal.
FLAGS = {
    # MorphConfig fields (the settings; ``explicit_settings`` reads these)
    "train_steps": ("train_epochs", "-e/--train_epochs"),
    "add_scale": ("add_scale", "-a/--add_scale"),
    "mult_scale": ("mult_scale", "-m/--mult_scale"),
    "warp_scale": ("warp_scale", "-w/--warp_scale"),
    "add_first": ("add_first", "-add_first"),
    "fps": ("fps", "--fps"),
    "frames": ("steps", "--steps"),
    "size": ("size", "--size"),
    "seed": ("seed", "--seed"),
    "render": ("render", "--render"),
    "render_kernel": ("render_kernel", "--render-kernel"),
    "pacing": ("pacing", "--pacing"),
    "ease": ("ease", "--ease"),
    "hold": ("hold", "--hold"),
    "colour_path": ("colour_path", "--colour-path"),
    "plain": ("plain", "--plain"),
    "point_weight": ("point_weight", "--point-weight"),
    "point_prior": ("point_prior", "--point-prior"),
    "geometry": ("geometry", "--geometry"),
    "colour_maps": ("colour_maps", "--colour-maps"),
    "point_consistency_weight": ("point_consistency_weight", "--point-consistency"),
    "size_schedule": ("size_schedule", "--size-schedule"),
    # arguments of morph(), morph_sequence() and OutputOptions
    "preset": ("preset", "--preset"),
    "maps": ("maps", "--maps"),
    "resume": ("resume", "--resume"),
    "force": ("force", "--force"),
    "out_dir": ("output_dir", "--output-dir"),
    "frames_dir": ("frames_dir", "--frames-dir"),
    "work_dir": ("work_dir", "--work-dir"),
    "loop": ("loop", "--loop"),
    "formats": ("formats", "--formats"),
    "gif_max_side": ("gif_max_side", "--gif-max-side"),
    "boomerang": ("boomerang", "--boomerang"),
    "report": ("report", "--report"),
    "points": ("points", "--points"),
    "held_out": ("held_out", "--held-out"),
    "workers": ("workers", "--workers"),
    "ray_address": ("ray_address", "--ray-address"),
    "shared_dir": ("shared_dir", "--shared-dir"),
    "pair_time_limit": ("pair_time_limit", "--pair-time-limit"),
    # colour transfer's settings (TransferSettings)
    "method": ("method", "--method"),
    "bins": ("bins", "--bins"),
    "lambda": ("lam", "--lambda"),
    "eps0": ("eps0", "--eps"),
    "stages": ("stages", "--stages"),
    "iters": ("iters", "--iters"),
}
CONFIG_FIELDS = tuple(f.name for f in dataclasses.fields(MorphConfig))

# ``name=VALUE`` as library messages write a setting with its value: True, False, a
# number or word, a quoted string, or a tuple of quoted strings
_ASSIGNED = re.compile(r"(?<![\w./-])([a-z][a-z0-9_]*)=(True|False|'[^']*'|\"[^\"]*\"|\([^()]*\)|[\w.+-]*\w)")
# a bare setting name with an underscore (``train_steps``), not inside a path or a longer word
_BARE = re.compile(r"(?<![\w./=-])([a-z][a-z0-9]*_[a-z0-9_]+)(?![\w=]|\.\w)")


SWITCHES = ("plain", "resume", "force", "loop", "boomerang", "report")  # flags that take no value


def _flag_with_value(name: str, value: str) -> str:
    flag = FLAGS[name][1]
    if name in SWITCHES and value == "True":
        return flag
    if value.startswith("("):
        value = ",".join(part.strip().strip("'\"") for part in value[1:-1].split(",") if part.strip())
    return f"{flag} {value.strip(chr(39) + chr(34))}"


def in_flags(message: str, setting: str | None = None) -> str:
    """A library message as the command line shows it: settings and arguments named by their flags.

    ``name=VALUE`` becomes the flag with its value (``resume=True`` -> ``--resume``,
    ``size=64`` -> ``--size 64``, ``formats=("gif", "frames")`` -> ``--formats gif,frames``);
    a bare setting name with an underscore becomes its flag (``train_steps`` ->
    ``-e/--train_epochs``); a message that starts with the name of ``setting`` (the
    error's ``setting``, e.g. ``"size must be ..."``) gets its flag there. Names not in
    :data:`FLAGS` are left as they are.

    >>> in_flags("resume=True: no checkpoint at c.npz; lower add_scale", "resume")
    '--resume: no checkpoint at c.npz; lower -a/--add_scale'
    """
    if setting in FLAGS and re.match(rf"{re.escape(setting)}\b(?!=)", message):
        message = FLAGS[setting][1] + message[len(setting) :]
    message = _ASSIGNED.sub(
        lambda m: _flag_with_value(m[1], m[2]) if m[1] in FLAGS else m[0],
        message,
    )
    return _BARE.sub(lambda m: FLAGS[m[1]][1] if m[1] in FLAGS else m[0], message)


EXIT_HELP = (
    "Exit status: 0 done, 2 bad input or flags (nothing written), 1 a failure while optimising or "
    "writing, 130 interrupted."
)


def new_subcommand(
    subparsers, name: str, run, summary: str, description: str, epilog: str = "", resume_hint: str = "", **kwargs
) -> argparse.ArgumentParser:
    """A subcommand's parser: ``summary`` in ``diffmorph --help``, ``description`` and ``epilog``
    (followed by the exit statuses) in its own help; ``run(args) -> status`` runs it, and
    ``resume_hint`` is added to an interruption's message when the run can be resumed."""
    parser = subparsers.add_parser(
        name,
        help=summary,
        description=description,
        epilog=f"{epilog}\n\n{EXIT_HELP}" if epilog else EXIT_HELP,
        **kwargs,
    )
    parser.set_defaults(run=run, resume_hint=resume_hint)
    return parser


class UsageError(Exception):
    """A bad flag value found after parsing; reported like argparse's errors (exit 2)."""


def parse_bool(text: str) -> bool:
    """``True/False/1/0/yes/no/on/off`` (any case) to bool; argparse type for ``-add_first``."""
    word = str(text).strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean (true/false, 1/0, yes/no), got {text!r}")


def parse_formats(text: str) -> tuple[str, ...]:
    """``mp4,gif,frames`` (any subset, comma-separated) to a tuple of names."""
    names = tuple(dict.fromkeys(part.strip().lower() for part in text.split(",") if part.strip()))
    unknown = [n for n in names if n not in FORMATS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown format(s) {', '.join(unknown) or repr(text)}; choose from {', '.join(FORMATS)}"
        )
    return names


def size_schedule(text: str) -> tuple[tuple[int, float], ...]:
    """``SIZE:FRACTION,...`` (e.g. ``128:0.8``; ``none`` for no schedule) to MorphConfig's ``size_schedule``."""
    if text.strip().lower() in ("none", ""):
        return ()
    try:
        return tuple((int(size), float(fraction)) for size, fraction in (part.split(":") for part in text.split(",")))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected SIZE:FRACTION stages separated by commas, e.g. 128:0.8 or 128:0.6,256:0.2 (got {text!r})"
        ) from None


def number(kind, name: str):
    """An argparse type converting to ``kind`` (int or float) with a one-line error."""

    def convert(text):
        try:
            return kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{name} must be {'an integer' if kind is int else 'a number'}, got {text!r}"
            ) from None

    convert.__name__ = name
    return convert


def add_morph_options(parser: argparse.ArgumentParser) -> None:
    """The settings and output options shared by ``morph`` and ``sequence`` (defaults None)."""
    opt = parser.add_argument
    opt(
        "--preset",
        choices=tuple(PRESETS),
        default="faithful",
        help="faithful: the original DiffMorph's settings (default); best: sharper, evenly paced morphs "
        "(learning rate 0.002 decaying along a cosine, colour gain floor 0.5, bicubic render kernel, "
        "uniform pacing; docs/guides/presets.md); fast: faithful's quality sooner (coarse-to-fine: most train steps at "
        "working size 128, with best's learning rate and gain floor); preview: a quick look in seconds (working "
        "size 128, 120 train steps, 20 frames, fast's learning rate and gain floor). Flags given explicitly "
        "override the preset's values",
    )
    opt(
        "-e",
        "--train_epochs",
        type=number(int, "epochs"),
        metavar="N",
        help=f"optimisation (train) steps (default {DEFAULT_TRAIN_STEPS})",
    )
    opt(
        "-a",
        "--add_scale",
        type=number(float, "add_scale"),
        metavar="X",
        help=f"scale of the additive colour map (default {DEFAULT_ADD_SCALE})",
    )
    opt(
        "-m",
        "--mult_scale",
        type=number(float, "mult_scale"),
        metavar="X",
        help=f"scale of the multiplicative colour map (default {DEFAULT_MULT_SCALE})",
    )
    opt(
        "-w",
        "--warp_scale",
        type=number(float, "warp_scale"),
        metavar="X",
        help=f"scale of the flow, as a fraction of the image size (default {DEFAULT_WARP_SCALE})",
    )
    opt(
        "-add_first",
        "--add_first",
        type=parse_bool,
        nargs="?",
        const=True,
        metavar="BOOL",
        help="add before multiplying; a bare flag means true (default false)",
    )
    opt("--fps", type=number(float, "fps"), help=f"frames per second (default {DEFAULT_FPS})")
    opt("--steps", type=number(int, "steps"), metavar="N", help=f"frames in the morph, >= 2 (default {DEFAULT_FRAMES})")
    opt(
        "--size",
        type=number(int, "size"),
        metavar="S",
        help=f"working resolution S (S x S) for optimisation, 16..2048 (default {DEFAULT_SIZE})",
    )
    opt(
        "--size-schedule",
        type=size_schedule,
        metavar="SIZE:FRACTION,...",
        help="coarse-to-fine: the first FRACTION of the train steps at working size SIZE, and so on; the rest "
        "at --size (e.g. 128:0.8; 'none': every step at --size, the default)",
    )
    opt("--seed", type=number(int, "seed"), help="seed for the net's initial weights (default random)")
    opt(
        "--render",
        choices=RENDER_MODES,
        help="native: frames at the source's own size (default); working: render at S x S and "
        "resize each frame (the original's path)",
    )
    opt(
        "--render-kernel",
        choices=RENDER_KERNELS,
        dest="render_kernel",
        help="bilinear: the original's sampling of the warped images (default); bicubic: sharper frames "
        "(rendering only; the maps are the same)",
    )
    opt(
        "--pacing",
        choices=PACINGS,
        help="linear: the original's even alphas (default); uniform: alphas that even out the change "
        "between frames (measured on a quick low-resolution pass)",
    )
    opt("--ease", choices=EASES, help="ease-in-out of the pacing (default none)")
    opt(
        "--hold",
        type=number(int, "hold"),
        metavar="N",
        help="repeat the first and last frames N more times: the loop rests on each image (default 0)",
    )
    opt(
        "--colour-path",
        choices=COLOUR_PATHS,
        dest="colour_path",
        help="none (default) or bures: move each frame's colours onto the W2 (Bures) geodesic between the "
        "end images' colour statistics, so the middle frames are not washed out",
    )
    opt(
        "--point-weight",
        type=number(float, "point-weight"),
        metavar="W",
        help=f"weight of the point pairs' loss with --points (default {POINT_WEIGHT:g}; per squared pixel of "
        "error, measured at a 256 working size)",
    )
    opt(
        "--point-prior",
        choices=POINT_PRIORS,
        dest="point_prior",
        help="with --points: tps starts the flow from a thin-plate spline through the pairs, which the "
        "optimisation refines; none: from zero; auto (default): tps when points are given",
    )
    opt(
        "--geometry",
        choices=GEOMETRIES,
        help="how frames are warped: scaled, the original's alpha-scaled flows; between, both images warped "
        "to the in-between geometry, as a classic morph (one subject when points move far); auto (default): "
        "between for a guided morph, else scaled",
    )
    opt(
        "--colour-maps",
        choices=COLOUR_MAPS,
        dest="colour_maps",
        help="on: the mult and add maps change colours (the original); off: shape changes only by the warp, "
        "with a cross-dissolve (no painted-in features); auto (default): off for a guided morph, else on",
    )
    opt(
        "--point-consistency",
        type=number(float, "point-consistency"),
        dest="point_consistency_weight",
        metavar="W",
        help=f"consistency weight of a guided morph: keeps both directions' flows each other's inverse "
        f"(default {POINT_CONSISTENCY_WEIGHT:g}; the unguided weight is the original's 1)",
    )
    opt(
        "--report",
        action="store_true",
        help="also write report.json and report.png: pace, path length, sharpness, colour path of the frames",
    )
    opt(
        "--formats",
        type=parse_formats,
        default=parse_formats(DEFAULT_FORMATS),
        metavar="LIST",
        help=f"outputs to write, comma-separated from {','.join(FORMATS)} (default {DEFAULT_FORMATS})",
    )
    opt(
        "--gif-max-side",
        type=number(int, "gif-max-side"),
        default=DEFAULT_GIF_MAX_SIDE,
        metavar="N",
        help=f"downsize the GIF (only) so its longer side is at most N (default {DEFAULT_GIF_MAX_SIDE})",
    )
    opt("--boomerang", action="store_true", help="play forward then backward (a seamless loop)")
    opt(
        "--plain",
        action="store_true",
        help="use the plain path (separate warps, no XLA) instead of the fast one; same results, slower",
    )
    opt("-q", "--quiet", action="store_true", help="no progress bars")


def explicit_settings(args) -> dict:
    """The config fields set by flags given on the command line: ``{field: value}``."""
    out = {}
    for field in CONFIG_FIELDS:
        value = getattr(args, FLAGS[field][0], None) if field in FLAGS else None
        if value is not None and not (field == "plain" and value is False):  # --plain is a switch
            out[field] = value
    return out


def preset_base(args) -> MorphConfig:
    """The config of the chosen ``--preset`` (before the explicit flags are applied)."""
    return preset_config(args.preset)


def make_config(base: MorphConfig, settings: dict) -> MorphConfig:
    """``base`` with ``settings`` applied, validated.

    Raises:
      UsageError: naming the flag of the first invalid setting.
    """
    try:
        return base.replace(**settings)
    except ValueError as exc:  # the message starts with the setting's name
        text = str(exc)
        raise UsageError(in_flags(text, text.partition(" ")[0])) from None


def output_options(args):
    """The :class:`~diffmorph.app.write.OutputOptions` of the parsed flags.

    Raises:
      UsageError: a bad ``--gif-max-side``.
    """
    from ..app.write import OutputOptions

    if args.gif_max_side < 2:
        raise UsageError(f"--gif-max-side must be >= 2 (got {args.gif_max_side})")
    return OutputOptions(
        formats=args.formats, gif_max_side=args.gif_max_side, boomerang=args.boomerang, report=args.report
    )
