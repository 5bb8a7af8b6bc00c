"""Tests of ``diffmorph sequence`` (:mod:`diffmorph.app.sequence`) and ``scripts/morph_folder.sh``.

The command is called in-process (``run_cli(["sequence", ...])``) with tiny settings.
One module-scoped run of three images (frames written as PNGs, so that frames can be
compared exactly) is shared; the re-run, loop, boomerang and interrupted runs use
copies of its work folder, so they re-use its pairs. The folder script is run for
real (bash) with a stand-in interpreter that records the command it is given, which
is then parsed by the command's own parser.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import (
    REPO,
    Run,
    assert_one_line_error,
    file_bytes,
    files_under,
    frames_in,
    make_test_image,
    maps_low,
    part_files,
    read_gif,
    read_rgb,
    read_video,
    run_cli,
    tiny_flags,
    write_rgb,
)
from diffmorph.app.sequence import images_in, pair_folder_name, pairs_of
from diffmorph.app.write import frame_order, total_frames

SCRIPT = REPO / "scripts" / "morph_folder.sh"
STEPS = 4
WIDTH, HEIGHT = 40, 32  # the first image's size: every frame's size
TINY = tiny_flags(frames=STEPS, formats=None)
# the sequence_run fixture's command (in its folder): a -> b -> c, every format
THREE_IMAGES = ["sequence", "a.png", "b.png", "c.png", "-o", "out/seq.mp4", "--work-dir", "work"]
THREE_IMAGES += ["--formats", "mp4,gif,frames", *TINY]
FRAME_MS = 20  # 45 fps in GIF's 10 ms steps
RESIZED = "diffmorph: {} is 48x40, the first image 40x32: resizing it to the first image's size"


def reusing(k: int, pair_folder) -> str:
    return f"diffmorph: reusing pair {k}/2 ({Path(pair_folder) / 'morph' / 'maps.npz'})"


def image(seed: int, width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    return make_test_image(width, height, seed=seed)


def sequence_again(folder, out, work, *flags) -> Run:
    """The sequence_run fixture's three images again (in ``folder``), into ``out`` with ``work`` and ``flags``."""
    images = [folder / name for name in ("a.png", "b.png", "c.png")]
    return run_cli(["sequence", *images, "-o", out, "--work-dir", work, *flags, *TINY])


def folders_in(folder) -> list[str]:
    return sorted(p.name for p in Path(folder).iterdir() if p.is_dir())


# ----------------------------------------------------------------------------- pure helpers


def test_frame_count_rule():
    assert pairs_of(3, False) == [(0, 1), (1, 2)]
    assert pairs_of(3, True) == [(0, 1), (1, 2), (2, 0)]
    assert pairs_of(2, True) == [(0, 1), (1, 0)]
    assert total_frames(2, STEPS, False) == 8  # 3 images: 2 x steps
    assert total_frames(3, STEPS, False) == 12  # 3 images with --loop: 3 x steps
    assert total_frames(2, STEPS, True) == 14  # boomerang: 2F - 2
    assert total_frames(1, 100, False) == 100  # one pair: the morph command's count
    # boomerang plays everything backwards without the last and the first frame of the whole video
    assert list(frame_order(2, 2, True)) == [(0, 0), (0, 1), (1, 0), (1, 1), (1, 0), (0, 1)]
    assert list(frame_order(1, 3, False)) == [(0, 0), (0, 1), (0, 2)]


def test_pair_folder_names_are_safe():
    assert pair_folder_name(0, "x/a.png", "y/b.jpg") == "000_a_to_b"
    assert pair_folder_name(12, "my photo (1).JPG", "../é.png") == "012_my_photo_1_to_image"
    assert pair_folder_name(3, "a" * 100 + ".png", "b.png") == "003_" + "a" * 40 + "_to_b"


def test_images_in_sorts_and_filters(tmp_path):
    for name in ("b.png", "A.JPG", "c d.webp", "e.jpeg", "f.bmp", "notes.txt", ".hidden.png"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub.png").mkdir()
    assert [p.name for p in images_in(tmp_path)] == ["A.JPG", "b.png", "c d.webp", "e.jpeg", "f.bmp"]


def test_help_states_the_frame_rule():
    run = run_cli(["sequence", "--help"])
    assert run.returncode == 0 and run.stderr == ""
    assert "P pairs give P x steps" in run.stdout and "2 x F - 2" in run.stdout


# ----------------------------------------------------------------------------- usage and input errors


@pytest.mark.parametrize(
    "args, needle",
    [
        (["a.png", "-o", "out.mp4"], "give at least two images (got 1)"),
        (["-o", "out.mp4"], "the following arguments are required: IMAGE"),
        (["a.png", "b.png"], "-o/--output"),
        (["a.png", "b.png", "-o", "out.gif"], "must name an .mp4 file"),
        (["a.png", "b.png", "-o", "out.mp4", "--loop", "--boomerang"], "--loop and --boomerang cannot be combined"),
        (["a.png", "b.png", "-o", "out.mp4", "--steps", "1"], "--steps must be an integer from 2"),
    ],
    ids=["one-image", "no-image", "no-output", "gif-output", "loop-and-boomerang", "steps-1"],
)
def test_usage_errors_exit_2(tmp_path, args, needle):
    write_rgb(tmp_path / "a.png", image(0))
    write_rgb(tmp_path / "b.png", image(1))
    run = run_cli(["sequence", *TINY, *args], cwd=tmp_path)
    assert_one_line_error(run, 2, needle)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "b.png"]  # nothing written


@pytest.mark.parametrize("bad", ["missing.png", "broken.png"])
def test_bad_image_is_one_line_exit_2(tmp_path, bad):
    write_rgb(tmp_path / "a.png", image(0))
    (tmp_path / "broken.png").write_text("not an image")
    run = run_cli(["sequence", "a.png", bad, "a.png", "-o", "out.mp4", *TINY], cwd=tmp_path)
    assert_one_line_error(run, 2, f"diffmorph: error: {bad}: ")
    assert not (tmp_path / "out.mp4").exists() and not (tmp_path / "out_pairs").exists()


def test_output_that_is_a_folder_exits_2(tmp_path):
    write_rgb(tmp_path / "a.png", image(0))
    (tmp_path / "out.mp4").mkdir()
    run = run_cli(["sequence", "a.png", "a.png", "-o", "out.mp4", *TINY], cwd=tmp_path)
    assert_one_line_error(run, 2, "out.mp4 is a folder")
    assert list((tmp_path / "out.mp4").iterdir()) == []
    assert not (tmp_path / "out_pairs").exists()


# ----------------------------------------------------------------------------- end to end


def _counting(patch, cls) -> list:
    """Count the instances of ``cls`` made while ``patch`` is active."""
    made, init = [], cls.__init__

    def counted(self, *args, **kwargs):
        made.append(1)
        init(self, *args, **kwargs)

    patch.setattr(cls, "__init__", counted)
    return made


@pytest.fixture(scope="module")
def sequence_run(tmp_path_factory):
    """Three images (the second 48x40, the others 40x32) morphed with tiny settings, every format.

    Returns ``(folder, Run, trainers made, render program sets made)``; outputs in
    ``folder/out/seq.*`` and ``folder/out/seq_frames/``, pairs in ``folder/work``.
    """
    from diffmorph.app.fit import clear_compiled
    from diffmorph.core.optimise import Trainer
    from diffmorph.core.render import RenderPrograms

    folder = tmp_path_factory.mktemp("sequence")
    write_rgb(folder / "a.png", image(0))
    write_rgb(folder / "b.png", image(1, 48, 40))
    write_rgb(folder / "c.png", image(2))
    clear_compiled()  # an earlier test's optimiser of the same settings would be reused: count from none
    with pytest.MonkeyPatch.context() as patch:
        trainers, programs = _counting(patch, Trainer), _counting(patch, RenderPrograms)
        run = run_cli(THREE_IMAGES, cwd=folder)
    assert run.returncode == 0, run.stderr
    return folder, run, len(trainers), len(programs)


def b_resized() -> np.ndarray:
    """Image b as the sequence uses it: resized to the first image's size (INTER_AREA)."""
    return cv2.resize(image(1, 48, 40), (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA)


def test_three_images_give_two_pairs_of_frames(sequence_run):
    folder, run, _, _ = sequence_run
    assert run.lines == [RESIZED.format("b.png")]
    frames = frames_in(folder / "out" / "seq_frames")
    assert len(frames) == 2 * STEPS and all(f.shape == (HEIGHT, WIDTH, 3) for f in frames)
    assert np.array_equal(frames[0], image(0)) and np.array_equal(frames[-1], image(2))
    # the joint: the last frame of pair 1 and the first of pair 2 are both image b
    assert np.array_equal(frames[STEPS - 1], b_resized()) and np.array_equal(frames[STEPS], b_resized())
    video, meta = read_video(folder / "out" / "seq.mp4")
    assert meta["size"] == (WIDTH, HEIGHT) and len(video) == 2 * STEPS
    for i, (png, decoded) in enumerate(zip(frames, video)):
        assert np.abs(png.astype(int) - decoded).mean() < 12, i  # H.264 at 40x32, yuv420p
    gif, durations, loop = read_gif(folder / "out" / "seq.gif")
    assert gif[0].shape == (HEIGHT, WIDTH, 3) and loop == 0
    # same frames and timing; the GIF stores the held joint frame once, with double duration
    assert len(gif) == 2 * STEPS - 1 and sum(durations) == 2 * STEPS * FRAME_MS
    assert durations[STEPS - 1] == 2 * FRAME_MS
    assert not part_files(folder)


def test_pair_folders(sequence_run):
    folder, _, _, _ = sequence_run
    assert folders_in(folder / "work") == ["000_a_to_b", "001_b_to_c"]
    for name in ("000_a_to_b", "001_b_to_c"):
        assert files_under(folder / "work" / name) == [
            "morph/checkpoint.npz",
            "morph/maps.jpg",
            "morph/maps.npz",
            "morph/result.jpg",
            "train/a_to_b_3.jpg",
            "train/b_to_a_3.jpg",
        ], name
        assert read_rgb(folder / "work" / name / "train" / "a_to_b_3.jpg").shape == (HEIGHT, WIDTH, 3)
        assert maps_low(folder / "work" / name / "morph" / "maps.npz").shape == (1, 84, 84, 16)


def test_one_trainer_and_one_set_of_render_programs(sequence_run):
    _, _, trainers, programs = sequence_run
    assert (trainers, programs) == (1, 1)


@pytest.mark.slow
def test_reused_trainer_gives_the_maps_of_a_fresh_one(sequence_run, tmp_path):
    """Pair 2 (b -> c) was optimised by the Trainer reset after pair 1: a morph of the same pixels
    with the same settings (a fresh Trainer) makes the same maps."""
    folder, _, _, _ = sequence_run
    source = write_rgb(tmp_path / "b_resized.png", b_resized())
    out = tmp_path / "pair2"
    run = run_cli(["-s", source, "-t", folder / "c.png", *TINY, "--formats", "mp4", "-o", out])
    assert run.returncode == 0, run.stderr
    np.testing.assert_allclose(
        maps_low(out / "morph" / "maps.npz"),
        maps_low(folder / "work" / "001_b_to_c" / "morph" / "maps.npz"),
        rtol=0,
        atol=1e-6,
    )


def test_rerun_reuses_pairs(sequence_run, monkeypatch):
    from diffmorph.core.optimise import Trainer

    folder, _, _, _ = sequence_run
    maps = sorted((folder / "work").glob("*/morph/maps.npz"))
    before_maps = [p.read_bytes() for p in maps]
    before_frames = file_bytes(folder / "out" / "seq_frames")
    monkeypatch.setattr(Trainer, "step", lambda self: pytest.fail("a finished pair was optimised again"))
    run = run_cli(THREE_IMAGES, cwd=folder)
    assert run.returncode == 0, run.stderr
    assert run.lines == [RESIZED.format("b.png"), reusing(1, "work/000_a_to_b"), reusing(2, "work/001_b_to_c")]
    assert [p.read_bytes() for p in maps] == before_maps
    assert file_bytes(folder / "out" / "seq_frames") == before_frames  # the same frames again
    assert len(read_video(folder / "out" / "seq.mp4")[0]) == 2 * STEPS


@pytest.mark.slow
def test_changed_image_is_optimised_again_in_the_default_work_dir(sequence_run, tmp_path):
    """Only the pair whose image changed is optimised; without --work-dir the pairs are in OUT_pairs."""
    folder, _, _, _ = sequence_run
    shutil.copytree(folder / "work", tmp_path / "videos" / "seq_pairs")
    for name in ("a.png", "b.png"):
        shutil.copy(folder / name, tmp_path / name)
    write_rgb(tmp_path / "c.png", image(3))  # not the c of the first run
    run = run_cli(
        ["sequence", "a.png", "b.png", "c.png", "-o", "videos/seq.mp4", "--formats", "mp4,frames", *TINY], cwd=tmp_path
    )
    assert run.returncode == 0, run.stderr
    reused = [line for line in run.lines if "reusing" in line]
    assert reused == ["diffmorph: reusing pair 1/2 (videos/seq_pairs/000_a_to_b/morph/maps.npz)"], run.stderr
    new = maps_low(tmp_path / "videos" / "seq_pairs" / "001_b_to_c" / "morph" / "maps.npz")
    assert not np.allclose(new, maps_low(folder / "work" / "001_b_to_c" / "morph" / "maps.npz"))
    frames = frames_in(tmp_path / "videos" / "seq_frames")
    assert len(frames) == 2 * STEPS and np.array_equal(frames[-1], image(3))
    assert len(read_video(tmp_path / "videos" / "seq.mp4")[0]) == 2 * STEPS
    assert not (tmp_path / "videos" / "seq.gif").exists()  # not asked for


def test_loop_adds_the_pair_back_to_the_first(sequence_run, tmp_path):
    folder, _, _, _ = sequence_run
    shutil.copytree(folder / "work", tmp_path / "work")
    run = sequence_again(folder, tmp_path / "loop.mp4", tmp_path / "work", "--loop", "--formats", "gif,frames")
    assert run.returncode == 0, run.stderr
    reused = [line for line in run.lines if "reusing" in line]
    assert [line.split(" (")[0] for line in reused] == ["diffmorph: reusing pair 1/3", "diffmorph: reusing pair 2/3"]
    assert (tmp_path / "work" / "002_c_to_a" / "morph" / "maps.npz").is_file()
    frames = frames_in(tmp_path / "loop_frames")
    assert len(frames) == 3 * STEPS
    assert np.array_equal(frames[-1], image(0))  # back at the first image
    first = frames_in(folder / "out" / "seq_frames")
    assert all(np.array_equal(x, y) for x, y in zip(frames, first))  # the same first two pairs
    gif, durations, _ = read_gif(tmp_path / "loop.gif")
    assert sum(durations) == 3 * STEPS * FRAME_MS and len(gif) == 3 * STEPS - 2  # two joints held


def test_boomerang_plays_back_without_repeating_the_ends(sequence_run, tmp_path):
    folder, _, _, _ = sequence_run
    shutil.copytree(folder / "work", tmp_path / "work")
    run = sequence_again(folder, tmp_path / "boom.mp4", tmp_path / "work", "--boomerang", "--formats", "frames")
    assert run.returncode == 0, run.stderr
    assert len([line for line in run.lines if "reusing" in line]) == 2, run.stderr
    frames = frames_in(tmp_path / "boom_frames")
    forward = 2 * STEPS
    assert len(frames) == 2 * forward - 2
    assert all(np.array_equal(x, y) for x, y in zip(frames, frames_in(folder / "out" / "seq_frames")))
    for k in range(1, forward - 1):  # frame forward-1+k mirrors frame forward-1-k, re-rendered exactly
        assert np.array_equal(frames[forward - 1 + k], frames[forward - 1 - k]), k
    assert not (tmp_path / "boom.mp4").exists() and not (tmp_path / "boom.gif").exists()  # --formats frames


@pytest.mark.slow
def test_interrupted_pair_is_resumed_by_the_next_run(sequence_run, tmp_path, monkeypatch):
    """Ctrl-C during pair 2: pair 1 and pair 2's checkpoint are kept; the same command again re-uses
    pair 1, resumes pair 2 and ends with the maps of an uninterrupted run."""
    from diffmorph.core.optimise import Trainer

    folder, _, _, _ = sequence_run
    work = tmp_path / "work"
    shutil.copytree(folder / "work", work)
    for name in ("maps.npz", "checkpoint.npz"):  # pair 2 not done yet
        (work / "001_b_to_c" / "morph" / name).unlink()
    args = [
        "sequence",
        folder / "a.png",
        folder / "b.png",
        folder / "c.png",
        "-o",
        tmp_path / "seq.mp4",
        "--work-dir",
        work,
        "--formats",
        "mp4",
        *TINY,
    ]
    real_step, calls = Trainer.step, []

    def step(self):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_step(self)

    with monkeypatch.context() as patch:
        patch.setattr(Trainer, "step", step)
        run = run_cli(args)
    checkpoint = work / "001_b_to_c" / "morph" / "checkpoint.npz"
    assert run.returncode == 130, run.stderr
    assert run.lines[:2] == [RESIZED.format(folder / "b.png"), reusing(1, work / "000_a_to_b")], run.stderr
    interrupted = run.lines[2:]
    assert len(interrupted) == 1 and interrupted[0].startswith(
        f"diffmorph: interrupted at train step 1; checkpoint saved in {checkpoint} (pair 2/2); "
        f"finished pairs are kept in {work}"
    ), run.stderr
    assert not (tmp_path / "seq.mp4").exists()
    assert not part_files(tmp_path)

    run = run_cli(args)
    assert run.returncode == 0, run.stderr
    assert run.lines == [
        RESIZED.format(folder / "b.png"),
        reusing(1, work / "000_a_to_b"),
        "diffmorph: resuming at train step 1 of 3",
    ], run.stderr
    np.testing.assert_allclose(
        maps_low(work / "001_b_to_c" / "morph" / "maps.npz"),
        maps_low(folder / "work" / "001_b_to_c" / "morph" / "maps.npz"),
        rtol=0,
        atol=1e-6,
    )
    assert len(read_video(tmp_path / "seq.mp4")[0]) == 2 * STEPS
    # the line said how to go on (the sequence's hint, as the morph command gives --resume)
    assert interrupted[0].endswith(f"finished pairs are kept in {work}; run the same command again to continue"), (
        interrupted[0]
    )


# ----------------------------------------------------------------------------- scripts/morph_folder.sh

# A stand-in for the interpreter: records its arguments (NUL-separated) and PYTHONPATH.
RECORDER = """#!/usr/bin/env bash
printf '%s\\0' "$@" > "$RECORD_ARGS"
printf '%s' "${PYTHONPATH:-}" > "$RECORD_ARGS.path"
"""


def run_script(args, cwd, python, **env) -> subprocess.CompletedProcess:
    """``scripts/morph_folder.sh ARGS`` with ``PYTHON=python`` and ``env`` added (no PYTHONPATH)."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"} | env | {"PYTHON": str(python)}
    return subprocess.run(
        [str(SCRIPT), *map(str, args)], cwd=str(cwd), capture_output=True, text=True, timeout=60, env=env, check=False
    )


@pytest.mark.slow
def test_script_morphs_a_folder(tmp_path):
    """The script finds the images (sorted by byte order: the first one's size is the video's), and runs
    ``python -m diffmorph sequence`` on them with the options given."""
    assert os.access(SCRIPT, os.X_OK)
    folder = tmp_path / "my photos"
    folder.mkdir()
    write_rgb(folder / "a.png", image(0))
    write_rgb(folder / "b image.png", image(1))
    write_rgb(folder / "C.PNG", image(2, 48, 40))
    (folder / "notes.txt").write_text("not an image")
    write_rgb(folder / ".hidden.png", image(3))
    (folder / "sub.png").mkdir()
    recorder = tmp_path / "python"
    recorder.write_text(RECORDER)
    recorder.chmod(0o755)
    out = tmp_path / "out dir" / "seq.mp4"
    proc = run_script([folder, out, *TINY], tmp_path, recorder, RECORD_ARGS=str(tmp_path / "args"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == f"morph_folder.sh: 3 images from {folder} -> {out}"
    recorded = (tmp_path / "args").read_text().split("\0")[:-1]
    assert recorded[0] == "-m" and recorded[1] in ("diffmorph", "diffmorph.cli"), recorded
    images = [str(folder / name) for name in ("C.PNG", "a.png", "b image.png")]  # C < a < b in byte order
    assert recorded[2:] == ["sequence", *images, "-o", str(out), *map(str, TINY)]
    assert (tmp_path / "args.path").read_text().split(os.pathsep)[0] == str(REPO)  # this checkout first

    # which is a valid sequence command (the command itself is tested above)
    from diffmorph.cli.main import build_parser

    args = build_parser().parse_args(recorded[2:])
    assert (args.command, args.images, args.output, args.size, args.train_epochs) == (
        "sequence",
        images,
        str(out),
        32,
        3,
    )


@pytest.mark.slow
def test_script_usage(tmp_path):
    """Usage errors exit 2 with a usage line and run nothing; --help exits 0."""
    folder = tmp_path / "images"
    folder.mkdir()
    never = tmp_path / "never"  # an interpreter that must not be run
    never.write_text("#!/usr/bin/env bash\necho ran >&2\nexit 99\n")
    never.chmod(0o755)
    cases = {
        "no arguments": [],
        "not a folder": [tmp_path / "nope", "out.mp4"],
        "empty": [folder, "out.mp4"],
        "one image": [folder, "out.mp4"],
        "output is an option": [folder, "-q"],
    }
    for case, args in cases.items():
        if case == "one image":
            write_rgb(folder / "a.png", image(0))
        if case == "output is an option":
            write_rgb(folder / "b.png", image(1))
        proc = run_script(args, tmp_path, never)
        assert proc.returncode == 2, (case, proc.stderr)
        assert "usage:" in proc.stderr and "ran" not in proc.stderr, (case, proc.stderr)
        assert not (tmp_path / "out.mp4").exists()
    proc = run_script(["--help"], tmp_path, never)
    assert proc.returncode == 0 and proc.stdout.startswith("usage: morph_folder.sh DIR OUT.mp4"), proc.stdout
