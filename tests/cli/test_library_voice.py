"""One library voice: below the command line, messages name settings and Python arguments,
never flags; errors carry the setting they are about; the command line shows its flags
(one table, :data:`diffmorph.cli.options.FLAGS`); a maps file's settings merge in one place."""

from __future__ import annotations

import ast
import pathlib
import re

import numpy as np
import pytest

from conftest import REPO, TOY_A, TOY_B, assert_one_line_error, run_cli
from diffmorph.cli.main import build_parser
from diffmorph.cli.options import FLAGS, in_flags
from diffmorph.config import MorphConfig
from diffmorph.errors import InputError, OutputError
from diffmorph.io import mapsfile

LIBRARY_LAYERS = ("app", "core", "io")
# other programs' flags a library message may quote (pip's, TensorFlow's, Ray's)
FOREIGN_FLAGS = {"--force-reinstall", "--tf_xla_persistent_cache_directory", "--head"}


def our_flags() -> set[str]:
    """Every option string of every subcommand of the ``diffmorph`` command."""
    parser = build_parser()
    flags = set(parser._option_string_actions)
    for sub in parser.subcommands.values():
        flags |= set(sub._option_string_actions)
    return flags


def string_literals(path: pathlib.Path):
    """``(line, text)`` of every string literal in a module (docstrings and f-string parts included)."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.lineno, node.value


def flag_spellings(text: str, flags: set[str]) -> list[str]:
    """The flags spelled in ``text``: any of ``flags`` as a whole token (``-e``, ``(-a, -m, -w)``,
    ``--resume``), and any other ``--word`` not in :data:`FOREIGN_FLAGS`."""
    found = [
        m[0]
        for m in re.finditer(r"(?<![\w-])-{1,2}[A-Za-z][\w-]*", text)
        if m[0] in flags or (m[0].startswith("--") and m[0] not in FOREIGN_FLAGS)
    ]
    return found


def test_the_scan_finds_flag_spellings():
    flags = our_flags()
    assert {"-e", "-a", "-m", "-w", "--steps", "--resume", "--gif-max-side", "-add_first"} <= flags
    assert flag_spellings("the scales are likely too large (-a, -m, -w)", flags) == ["-a", "-m", "-w"]
    assert flag_spellings("--resume: no checkpoint; asked for (-e)", flags) == ["--resume", "-e"]
    assert flag_spellings("use fewer frames (--steps), or ``--formats mp4``", flags) == ["--steps", "--formats"]
    assert flag_spellings("--some-new-flag", flags) == ["--some-new-flag"]
    assert flag_spellings("resume=True; train_steps; ffmpeg -i X -version; -inf; 8-bit; x - e", flags) == []
    assert flag_spellings("pip install --force-reinstall imageio-ffmpeg", flags) == []


def test_no_flag_spelling_in_the_library():
    """No string literal (message or docstring) in diffmorph/app, core or io spells a flag."""
    flags = our_flags()
    found = []
    modules = [p for layer in LIBRARY_LAYERS for p in sorted((REPO / "diffmorph" / layer).rglob("*.py"))]
    assert len(modules) > 20
    for path in modules:
        for line, text in string_literals(path):
            for flag in flag_spellings(text, flags):
                found.append(f"{path.relative_to(REPO)}:{line}: {flag} in {text[:80]!r}")
    assert not found, "\n".join(found)


def test_the_flag_table_names_real_flags():
    flags = our_flags()
    for name, (_, spelled) in FLAGS.items():
        for flag in spelled.split("/"):
            assert flag in flags, (name, flag)
    parsed = build_parser().parse_args(["morph", "-s", "a", "-t", "b"])
    fields = set(MorphConfig.__dataclass_fields__)
    for name, (dest, _) in FLAGS.items():
        if name in fields:
            assert hasattr(parsed, dest), (name, dest)


@pytest.mark.parametrize(
    "library, setting, terminal",
    [
        ("resume=True: no checkpoint at c.npz", "resume", "--resume: no checkpoint at c.npz"),
        (
            "size must be an integer from 16 to 2048 (got 5)",
            "size",
            "--size must be an integer from 16 to 2048 (got 5)",
        ),
        ("train_steps must be >= 1", "train_steps", "-e/--train_epochs must be >= 1"),
        ("beyond the 5 asked for (train_steps)", None, "beyond the 5 asked for (-e/--train_epochs)"),
        (
            "too large (add_scale, mult_scale, warp_scale)",
            None,
            "too large (-a/--add_scale, -m/--mult_scale, -w/--warp_scale)",
        ),
        (
            "m.npz was made with size=64; size=128 contradicts it (or use force=True)",
            "size",
            "m.npz was made with --size 64; --size 128 contradicts it (or use --force)",
        ),
        ("made with add_first=False", "add_first", "made with -add_first False"),
        (
            'fewer frames (frames=N), a smaller gif_max_side, or formats=("mp4",)',
            "gif_max_side",
            "fewer frames (--steps N), a smaller --gif-max-side, or --formats mp4",
        ),
        ('or use formats=("gif", "frames")', "formats", "or use --formats gif,frames"),
        ("the loss became nan (warp_scale=1e+38)", None, "the loss became nan (-w/--warp_scale 1e+38)"),
        ("loop=True and boomerang=True cannot be combined", "loop", "--loop and --boomerang cannot be combined"),
        # left alone: words that are not settings, paths, names not in the table, bare names without "_"
        ("/tmp/train_steps.npz: no such file", None, "/tmp/train_steps.npz: no such file"),
        ("a GIF of 100 frames, size 64, steps_done 3", None, "a GIF of 100 frames, size 64, steps_done 3"),
        ("IMAGEIO_FFMPEG_EXE=/x is not a working ffmpeg", None, "IMAGEIO_FFMPEG_EXE=/x is not a working ffmpeg"),
        ("mult_floor was 0.1, now 0.5", None, "mult_floor was 0.1, now 0.5"),
    ],
)
def test_in_flags_names_the_flags(library, setting, terminal):
    assert in_flags(library, setting) == terminal


def test_errors_carry_their_setting():
    error = InputError("resume=True: no checkpoint", setting="resume")
    assert error.setting == "resume" and str(error) == "resume=True: no checkpoint" and isinstance(error, ValueError)
    assert InputError("x").setting is None
    output = OutputError('MP4 output needs ffmpeg, or use formats=("gif",)', setting="formats")
    assert output.setting == "formats" and isinstance(output, OSError) and str(output).startswith("MP4")
    assert OutputError(28, "No space left on device").setting is None


# --- the maps file's settings meet the caller's in one place: app.saved_maps.settings_for_maps


class Notices:
    def __init__(self):
        self.lines = []

    def notice(self, text):
        self.lines.append(text)


@pytest.fixture
def saved_maps(tmp_path):
    stored = MorphConfig(size=32, add_scale=0.3, warp_scale=0.07)
    path = tmp_path / "maps.npz"
    mapsfile.save_maps(path, np.zeros((1, 6, 6, 16), np.float32), stored, ("a" * 64, "b" * 64), 4)
    return mapsfile.load_maps(path)


def test_maps_settings_come_from_the_file_unless_given(saved_maps):
    from diffmorph.app.saved_maps import settings_for_maps

    assert settings_for_maps(saved_maps, None) == MorphConfig(size=32, add_scale=0.3, warp_scale=0.07)
    # a preset's values give way to the file's; settings that are not maps settings stay the caller's
    caller = MorphConfig(size=128, mult_floor=0.5, frames=7, add_scale=0.3)
    merged = settings_for_maps(saved_maps, caller, explicit={"frames", "add_scale"})
    assert merged == MorphConfig(size=32, add_scale=0.3, warp_scale=0.07, frames=7)
    # explicit None: the config as it is (checked against the file later)
    assert settings_for_maps(saved_maps, caller) is caller


def test_a_contradicting_setting_is_refused_naming_it(saved_maps):
    from diffmorph.app.saved_maps import settings_for_maps

    with pytest.raises(InputError) as info:
        settings_for_maps(saved_maps, MorphConfig(size=64), explicit={"size"})
    assert info.value.setting == "size"
    assert f"{saved_maps.path} was made with size=32; size=64 contradicts it" in str(info.value)
    assert "force=True" in str(info.value) and "--" not in str(info.value)
    notices = Notices()
    forced = settings_for_maps(saved_maps, MorphConfig(size=64), explicit={"size"}, force=True, progress=notices)
    assert forced == MorphConfig(size=64, add_scale=0.3, warp_scale=0.07)
    assert notices.lines == [f"force=True: using size=64 as given instead of 32 from {saved_maps.path}"]


def test_resume_without_a_checkpoint_names_the_argument_in_python_and_the_flag_on_the_command_line(tmp_path):
    from diffmorph import OutputOptions, morph

    config = MorphConfig(size=16, train_steps=2, frames=2, seed=0, plain=True)
    with pytest.raises(InputError) as info:
        morph(TOY_A, TOY_B, tmp_path / "api", config, resume=True, options=OutputOptions(formats=("frames",)))
    assert info.value.setting == "resume"
    assert str(info.value).startswith("resume=True: no checkpoint at ")
    out = tmp_path / "cli"
    run = run_cli(
        ["-s", TOY_A, "-t", TOY_B, "--size", 16, "-e", 2, "--steps", 2, "--plain", "--formats", "frames"]
        + ["--resume", "-q", "-o", out]
    )
    assert_one_line_error(run, 2, "diffmorph: error: --resume: no checkpoint at ")


def test_errors_about_an_argument_name_it(tmp_path):
    from diffmorph import OutputOptions, morph, morph_sequence

    blocker = tmp_path / "a file"
    blocker.write_text("x")
    with pytest.raises(InputError) as info:
        morph(TOY_A, TOY_B, blocker, MorphConfig(size=16, frames=2), options=OutputOptions(formats=("frames",)))
    assert info.value.setting == "out_dir" and "the output folder" in str(info.value)
    with pytest.raises(InputError) as info:
        morph_sequence([TOY_A, TOY_B], tmp_path / "x.mp4", loop=True, options=OutputOptions(boomerang=True))
    assert info.value.setting == "loop" and str(info.value).startswith("loop=True and boomerang=True")
    with pytest.raises(InputError) as info:
        morph(TOY_A, TOY_B, tmp_path, maps=np.zeros((1, 6, 6, 16), np.float32), resume=True)
    assert info.value.setting == "resume"
