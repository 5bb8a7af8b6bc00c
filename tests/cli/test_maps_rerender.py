"""Re-rendering from saved maps (``--maps FILE``): the file's settings, refusals, ``--force``,
hand-edited files, and frames folders replaced as a whole.

Every run calls the ``diffmorph`` entry point in-process and renders from the maps of
the shared complete run (``rendered_run``: toy pair, ``--size 64 -e 12 --steps 6``), so
nothing here optimises. A refused run must write nothing at all.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from conftest import (
    SMALL_SIZE,
    TOY_A,
    TOY_B,
    assert_one_line_error,
    file_bytes,
    make_test_image,
    part_files,
    read_rgb,
    read_video,
    run_cli,
    write_rgb,
)


@pytest.fixture(scope="module")
def a_maps(rendered_run):
    """The shared run's maps file (read only)."""
    return rendered_run[1] / "morph" / "maps.npz"


def toy(*extra) -> list:
    return ["-s", TOY_A, "-t", TOY_B, *extra]


def edited_maps(a_maps, path, meta=None, low=None, raw_meta: str | None = None):
    """A copy of ``a_maps`` with its metadata updated by ``meta`` (or replaced by ``raw_meta``) and/or
    its maps replaced by ``low``, written as a plain ``.npz`` (as a hand edit would)."""
    with np.load(a_maps) as data:
        arrays = {key: data[key] for key in data.files}
    stored = json.loads(str(arrays["meta"]))
    stored.update(meta or {})
    arrays["meta"] = np.asarray(raw_meta if raw_meta is not None else json.dumps(stored))
    if low is not None:
        arrays["low"] = low
    np.savez(path, **arrays)
    return path


# ----------------------------------------------------------------------------- settings from the file


def test_readme_rerender_takes_the_files_settings(tmp_path, rendered_run):
    """The README's re-render: after ``--size 64 -e 12``, ``--maps morph/maps.npz --steps 6`` (no --size)
    works in that folder, at the file's working size 64 (the default would be 1024)."""
    from diffmorph.io import mapsfile

    out = tmp_path / "run"
    shutil.copytree(rendered_run[1], out)
    maps_before = mapsfile.load_maps(out / "morph" / "maps.npz").maps_low
    run = run_cli(toy("--maps", "morph/maps.npz", "--steps", 6), cwd=out)
    assert run.returncode == 0, run.stderr
    assert run.lines == ["diffmorph: done: morph (6 frames)"], run.stderr
    assert np.load(out / "preds.npy").shape == (1, SMALL_SIZE, SMALL_SIZE, 16)
    saved = mapsfile.load_maps(out / "morph" / "maps.npz")
    assert saved.meta["size"] == SMALL_SIZE and np.array_equal(saved.maps_low, maps_before)
    video, _ = read_video(out / "morph" / "morph.mp4")
    assert len(video) == 6
    assert not part_files(out)


def test_flags_that_agree_with_the_file_are_accepted(tmp_path, a_maps):
    out = tmp_path / "out"
    run = run_cli(
        toy(
            "--maps",
            a_maps,
            "--size",
            SMALL_SIZE,
            "-w",
            0.05,
            "-add_first",
            "false",
            "--steps",
            2,
            "--formats",
            "mp4",
            "--plain",
            "-q",
            "-o",
            out,
        )
    )
    assert run.returncode == 0, run.stderr
    assert run.lines == [], run.stderr


@pytest.mark.parametrize(
    "flag, value, stored",
    [
        ("--size", 32, SMALL_SIZE),
        ("-w/--warp_scale", 0.1, 0.05),
        ("-a/--add_scale", 0.2, 0.4),
        ("-m/--mult_scale", 0.3, 0.4),
        ("-add_first", "true", False),
    ],
)
def test_contradicting_flag_is_refused(tmp_path, a_maps, flag, value, stored):
    out = tmp_path / "out"
    written = flag.split("/")[-1] if flag.startswith("-") else flag
    run = run_cli(toy("--maps", a_maps, written, value, "--steps", 2, "-q", "-o", out))
    shown = True if value == "true" else value
    assert_one_line_error(run, 2, f"{a_maps} was made with {flag} {stored}; {flag} {shown} contradicts it", "--force")
    assert not out.exists()


def test_force_takes_the_command_lines_setting_with_a_notice(tmp_path, a_maps):
    from diffmorph.io import mapsfile

    out = tmp_path / "out"
    run = run_cli(
        toy("--maps", a_maps, "--size", 128, "--force", "--steps", 2, "--formats", "mp4", "--plain", "-q", "-o", out)
    )
    assert run.returncode == 0, run.stderr
    assert run.lines == [f"diffmorph: --force: using --size 128 as given instead of {SMALL_SIZE} from {a_maps}"], (
        run.stderr
    )
    assert np.load(out / "preds.npy").shape == (1, 128, 128, 16)
    assert mapsfile.load_maps(out / "morph" / "maps.npz").meta["size"] == 128


def test_maps_for_another_target_are_refused_unless_forced(tmp_path, a_maps):
    other = write_rgb(tmp_path / "other_target.png", make_test_image(256, 256, seed=1))
    args = ["-s", TOY_A, "-t", other, "--maps", a_maps, "--steps", 3, "--formats", "mp4", "--plain", "-q"]
    refused = tmp_path / "refused"
    run = run_cli([*args, "-o", refused])
    assert_one_line_error(run, 2, f"{a_maps} was made for another morph (the target image differs", "--force")
    assert not refused.exists()  # nothing at all, morph/ included
    forced = tmp_path / "forced"
    run = run_cli([*args, "--force", "-o", forced])
    assert run.returncode == 0, run.stderr
    assert run.lines == [], run.stderr
    video, _ = read_video(forced / "morph" / "morph.mp4")
    assert len(video) == 3
    assert np.abs(video[-1].astype(int) - read_rgb(other)).mean() < 3  # ends on the new target


# ----------------------------------------------------------------------------- not a maps file


@pytest.mark.parametrize(
    "name, needle",
    [
        ("morph/checkpoint.npz", "is a checkpoint (for --resume), not maps"),
        ("preds.npy", "is a .npy array"),
    ],
)
def test_checkpoint_or_preds_as_maps_names_the_maps_file(tmp_path, rendered_run, name, needle):
    out = tmp_path / "out"
    path = rendered_run[1] / name
    run = run_cli(toy("--maps", path, "--steps", 2, "-q", "-o", out))
    assert_one_line_error(run, 2, f"{path} {needle}", "morph/maps.npz")
    assert not out.exists()


def test_random_file_as_maps_is_refused(tmp_path):
    random_file = tmp_path / "random.npz"
    random_file.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    out = tmp_path / "out"
    run = run_cli(toy("--maps", random_file, "--steps", 2, "-q", "-o", out))
    assert_one_line_error(run, 2, "random.npz: not a diffmorph maps file")
    assert not out.exists()


NAN_LOW = np.full((1, 84, 84, 16), 0.01, np.float32)
NAN_LOW[0, 3, 4, 5] = np.nan

HAND_EDITS = {
    # id: (edit arguments for edited_maps, extra flags, expected message part)
    "wrong-channels": ({"low": np.zeros((1, 84, 84, 15), np.float32)}, [], "maps of shape (1, 84, 84, 15)"),
    "not-square": ({"low": np.zeros((1, 84, 80, 16), np.float32)}, [], "maps of shape (1, 84, 80, 16)"),
    "three-dims": ({"low": np.zeros((84, 84, 16), np.float32)}, [], "maps of shape (84, 84, 16)"),
    "integer-maps": ({"low": np.zeros((1, 84, 84, 16), np.int32)}, [], "expected float"),
    "nan-values": ({"low": NAN_LOW}, [], "NaN or infinite"),
    "meta-a-list": ({"raw_meta": "[1, 2, 3]"}, [], "its metadata is not a JSON object"),
    "meta-not-json": ({"raw_meta": "{size: 64"}, [], "no valid metadata"),
    "other-format": ({"meta": {"format": "something-else"}}, [], "not a diffmorph maps file"),
    "size-8-forced": ({"meta": {"size": 8}}, ["--force"], "stores invalid settings"),
    "negative-warp-forced": ({"meta": {"warp_scale": -1}}, ["--force"], "stores invalid settings"),
    "add-first-word-forced": ({"meta": {"add_first": "yes"}}, ["--force"], "stores invalid settings"),
    "size-string-forced": ({"meta": {"size": "64"}}, ["--force"], "stores invalid settings"),
    "steps-done-word": ({"meta": {"steps_done": "abc"}}, [], "steps_done"),
    "steps-done-list": ({"meta": {"steps_done": [12]}}, [], "steps_done"),
}


@pytest.mark.parametrize("case", sorted(HAND_EDITS))
def test_hand_edited_maps_file_is_one_line(tmp_path, a_maps, case):
    edit, flags, needle = HAND_EDITS[case]
    path = edited_maps(a_maps, tmp_path / "edited.npz", **edit)
    out = tmp_path / "out"
    run = run_cli(toy("--maps", path, *flags, "--steps", 2, "-q", "--plain", "-o", out))
    assert_one_line_error(run, 2, "edited.npz", needle)
    assert not out.exists()


def test_edited_settings_that_stay_valid_are_used(tmp_path, a_maps):
    """A maps file whose stored working size was changed to another valid one renders at that size
    (the maps file decides; the net's output is resized to it)."""
    path = edited_maps(a_maps, tmp_path / "edited.npz", meta={"size": 48})
    out = tmp_path / "out"
    run = run_cli(toy("--maps", path, "--force", "--steps", 2, "--formats", "mp4", "--plain", "-q", "-o", out))
    assert run.returncode == 0, run.stderr
    assert np.load(out / "preds.npy").shape == (1, 48, 48, 16)


@pytest.mark.parametrize(
    "flags, needle",
    [
        (["--force"], "--force only applies with --maps or --resume"),
        (["--maps", "whatever.npz", "--resume"], "--maps and --resume cannot be combined"),
    ],
)
def test_force_and_resume_usage_errors(tmp_path, flags, needle):
    out = tmp_path / "out"
    run = run_cli(toy("--size", 32, "-q", *flags, "-o", out))
    line = assert_one_line_error(run, 2, needle)
    assert line == f"diffmorph morph: error: {needle} (see 'diffmorph morph --help')"
    assert not out.exists()


# ----------------------------------------------------------------------------- frames folders


def test_rerender_with_fewer_frames_replaces_the_frames_folder(tmp_path, rendered_run, toy_pair):
    out = tmp_path / "out"
    shutil.copytree(rendered_run[1], out)
    frames = out / "morph" / "frames"
    assert len(list(frames.iterdir())) == 6
    run = run_cli(
        toy("--maps", out / "morph" / "maps.npz", "--steps", 3, "--formats", "frames", "--plain", "-q", "-o", out)
    )
    assert run.returncode == 0, run.stderr
    assert sorted(p.name for p in frames.iterdir()) == ["frame_00000.png", "frame_00001.png", "frame_00002.png"]
    assert np.array_equal(read_rgb(frames / "frame_00000.png"), toy_pair[0])
    assert np.array_equal(read_rgb(frames / "frame_00002.png"), toy_pair[1])  # the new last frame
    assert not part_files(out)


@pytest.mark.parametrize("where", ["frames-dir", "default"])
def test_frames_folder_with_foreign_files_is_refused(tmp_path, rendered_run, where):
    """A frames folder is replaced as a whole: one that holds other files is refused, untouched."""
    out = tmp_path / "out"
    shutil.copytree(rendered_run[1], out)
    folder = tmp_path / "mine" if where == "frames-dir" else out / "morph" / "frames"
    folder.mkdir(exist_ok=True)
    (folder / "notes.txt").write_text("keep me\n")
    write_rgb(folder / "frame_00000.png", make_test_image(8, 8))
    before, folder_before = file_bytes(out), file_bytes(folder)
    extra = ["--frames-dir", folder] if where == "frames-dir" else []
    run = run_cli(
        toy(
            "--maps",
            out / "morph" / "maps.npz",
            "--steps",
            3,
            "--formats",
            "mp4,frames",
            "--plain",
            "-q",
            "-o",
            out,
            *extra,
        )
    )
    assert_one_line_error(run, 2, f"the frames folder {folder} holds other files (notes.txt)")
    assert file_bytes(out) == before and file_bytes(folder) == folder_before


def test_frames_dir_may_be_an_existing_empty_folder(tmp_path, a_maps):
    folder = tmp_path / "frames"
    folder.mkdir()
    out = tmp_path / "out"
    run = run_cli(
        toy("--maps", a_maps, "--steps", 2, "--formats", "frames", "--frames-dir", folder, "--plain", "-q", "-o", out)
    )
    assert run.returncode == 0, run.stderr
    assert sorted(p.name for p in folder.iterdir()) == ["frame_00000.png", "frame_00001.png"]
