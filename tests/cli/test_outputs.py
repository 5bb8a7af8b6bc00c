"""What the morph command writes: the layout, the maps file, the video, GIF and PNG frames.

Every run calls the ``diffmorph`` entry point in-process. The shared complete run
(``rendered_run``: the toy pair, ``--size 64 -e 12 --steps 6 --seed 0 --formats
mp4,gif,frames``) is the optimising run; the other runs re-render from its
``maps.npz`` (``--maps``, no optimisation), except the odd-size run, which optimises.
The re-render options (settings from the file, refusals, hand-edited files, frames
folders) are in ``test_maps_rerender.py``.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from conftest import (
    RENDERED_FRAMES,
    SMALL_SIZE,
    TOY_A,
    TOY_B,
    files_under,
    frames_in,
    make_test_image,
    part_files,
    read_gif,
    read_rgb,
    read_video,
    rerender,
    run_cli,
    tiny_flags,
    write_rgb,
)


@pytest.fixture(scope="module")
def a_out(rendered_run):
    """The shared complete run's output folder (read only)."""
    return rendered_run[1]


@pytest.fixture(scope="module")
def a_maps(a_out):
    return a_out / "morph" / "maps.npz"


# ----------------------------------------------------------------------------- the complete run


def test_default_layout(a_out):
    """Exactly the original's layout: snapshots at steps 10 and 12 (the last), the set, the checkpoint."""
    frames = [f"morph/frames/frame_{i:05d}.png" for i in range(RENDERED_FRAMES)]
    snapshots = [f"train/{d}_{n}.jpg" for d in ("a_to_b", "b_to_a") for n in (10, 12)]
    expected = [
        "morph/checkpoint.npz",
        *frames,
        "morph/maps.jpg",
        "morph/maps.npz",
        "morph/morph.gif",
        "morph/morph.mp4",
        "morph/result.jpg",
        "preds.npy",
        *snapshots,
    ]
    assert files_under(a_out) == sorted(expected)
    assert not part_files(a_out)
    for name in snapshots:
        assert read_rgb(a_out / name).shape == (256, 256, 3), name  # at the source's size
    assert read_rgb(a_out / "morph" / "maps.jpg").shape == (2 * SMALL_SIZE, 3 * SMALL_SIZE, 3)
    assert read_rgb(a_out / "morph" / "result.jpg").shape == (3 * SMALL_SIZE, SMALL_SIZE, 3)  # < 10 frames: 1


def test_maps_npz_contents(a_out):
    from diffmorph import __version__
    from diffmorph.io import mapsfile
    from diffmorph.io.images import pixels_digest, read_image

    saved = mapsfile.load_maps(a_out / "morph" / "maps.npz")
    meta, low = saved.meta, saved.maps_low
    assert low.shape == (1, 84, 84, 16) and low.dtype == np.float32
    assert np.isfinite(low).all() and np.abs(low).max() > 0
    assert (meta["format"], meta["kind"], meta["version"]) == ("diffmorph-maps-1", "maps", __version__)
    assert (meta["size"], meta["seed"], meta["train_steps"], meta["steps_done"]) == (SMALL_SIZE, 0, 12, 12)
    assert (meta["add_scale"], meta["mult_scale"], meta["warp_scale"]) == (0.4, 0.4, 0.05)
    assert (meta["add_first"], meta["map_size"], meta["mult_floor"]) == (False, 96, 0.1)
    assert meta["source_sha256"] == pixels_digest(read_image(TOY_A).pixels)
    assert meta["target_sha256"] == pixels_digest(read_image(TOY_B).pixels)
    assert meta["source_sha256"] != meta["target_sha256"]


def test_preds_are_the_upsampled_maps(a_out, a_maps):
    import tensorflow as tf

    from diffmorph.io import mapsfile

    preds = np.load(a_out / "preds.npy")
    assert preds.shape == (1, SMALL_SIZE, SMALL_SIZE, 16) and preds.dtype == np.float32
    low = mapsfile.load_maps(a_maps).maps_low
    reference = tf.image.resize(low, [SMALL_SIZE, SMALL_SIZE]).numpy()  # bilinear, half-pixel centres
    np.testing.assert_allclose(preds, reference, rtol=0, atol=1e-6)


def test_frames_video_and_gif_agree(a_out, toy_pair):
    source, target = toy_pair
    frames = frames_in(a_out / "morph" / "frames")
    assert len(frames) == RENDERED_FRAMES
    assert np.array_equal(frames[0], source) and np.array_equal(frames[-1], target)
    video, meta = read_video(a_out / "morph" / "morph.mp4")
    assert len(video) == RENDERED_FRAMES and meta["size"] == (256, 256)
    for i, (png, decoded) in enumerate(zip(frames, video)):
        assert np.abs(png.astype(int) - decoded).mean() < 3, i  # H.264 at CRF 18: close, not exact
    gif, durations, loop = read_gif(a_out / "morph" / "morph.gif")
    assert len(gif) == RENDERED_FRAMES and gif[0].shape == (256, 256, 3)
    assert durations == [20] * RENDERED_FRAMES and loop == 0  # 45 fps -> 22 ms, in GIF's 10 ms steps
    for i, (png, palette) in enumerate(zip(frames, gif)):
        assert np.abs(png.astype(int) - palette).mean() < 8, i  # 256-colour palette per frame


def test_video_is_h264_yuv420p(a_out):
    _, meta = read_video(a_out / "morph" / "morph.mp4")  # as ffmpeg reports the stream
    assert meta["codec"] == "h264", meta
    assert meta["pix_fmt"].startswith("yuv420p"), meta
    assert meta["fps"] == pytest.approx(45)


# ----------------------------------------------------------------------------- maps round trip


def test_maps_round_trip_frames_are_identical(tmp_path, a_out, a_maps):
    """Re-rendering from maps.npz gives the optimising run's frames pixel for pixel, without optimising."""
    from diffmorph.io import mapsfile

    out = tmp_path / "b"
    run = rerender(a_maps, out, "--steps", RENDERED_FRAMES, "--formats", "frames", quiet=False)
    assert "Rendering" in run.stderr and "Optimising" not in run.stderr  # progress shown without -q
    assert run.lines == [f"diffmorph: done: {out / 'morph'} ({RENDERED_FRAMES} frames)"], run.stderr
    original, again = frames_in(a_out / "morph" / "frames"), frames_in(out / "morph" / "frames")
    assert len(again) == RENDERED_FRAMES
    for i, (x, y) in enumerate(zip(original, again)):
        assert np.array_equal(x, y), f"frame {i} differs"
    names = files_under(out)
    assert not [n for n in names if n.startswith("train/") or n.endswith("checkpoint.npz")], names  # no work state
    # the set's maps file and preds are the input's maps (the steps they had are kept)
    saved = mapsfile.load_maps(out / "morph" / "maps.npz")
    assert np.array_equal(saved.maps_low, mapsfile.load_maps(a_maps).maps_low)
    assert saved.meta["steps_done"] == 12
    assert np.array_equal(np.load(out / "preds.npy"), np.load(a_out / "preds.npy"))


def test_maps_with_new_steps_and_fps(tmp_path, a_maps):
    out = tmp_path / "new_steps"
    rerender(a_maps, out, "--steps", 7, "--fps", 20, "--formats", "mp4,gif")
    video, meta = read_video(out / "morph" / "morph.mp4")
    assert len(video) == 7 and meta["fps"] == pytest.approx(20)
    gif, durations, loop = read_gif(out / "morph" / "morph.gif")
    assert len(gif) == 7  # distinct toy images: no identical consecutive frames for Pillow to merge
    assert gif[0].shape == (256, 256, 3)
    assert durations == [50] * 7 and loop == 0
    assert not (out / "morph" / "frames").exists()  # not asked for


# ----------------------------------------------------------------------------- sizes and render modes


@pytest.mark.slow
def test_odd_sizes(tmp_path):
    """An odd source (31x21) and a target of another size: frames at the source's size, MP4 padded by one pixel."""
    source = make_test_image(31, 21, seed=0)
    target = make_test_image(40, 30, seed=1)
    out = tmp_path / "odd"
    flags = tiny_flags(train_steps=2, frames=4, formats="mp4,gif,frames")
    run = run_cli(
        ["-s", write_rgb(tmp_path / "s.png", source), "-t", write_rgb(tmp_path / "t.png", target), *flags, "-o", out]
    )
    assert run.returncode == 0, run.stderr
    assert run.lines == ["diffmorph: target is 40x30, source 31x21: resizing the target to the source's size"]

    frames = frames_in(out / "morph" / "frames")
    assert len(frames) == 4 and all(f.shape == (21, 31, 3) for f in frames)
    assert np.array_equal(frames[0], source)
    assert np.array_equal(frames[-1], cv2.resize(target, (31, 21), interpolation=cv2.INTER_AREA))
    assert read_rgb(out / "train" / "a_to_b_2.jpg").shape == (21, 31, 3)

    gif, _, _ = read_gif(out / "morph" / "morph.gif")
    assert len(gif) == 4 and gif[0].shape == (21, 31, 3)

    video, meta = read_video(out / "morph" / "morph.mp4")
    assert len(video) == 4 and meta["size"] == (32, 22)
    first = video[0].astype(np.int16)
    # the padding replicates the last real column / row (H.264 + yuv420p: close, not exact)
    assert np.abs(first[:, 31] - first[:, 30]).max() <= 12
    assert np.abs(first[21, :] - first[20, :]).max() <= 12
    assert np.abs(first[:21, :31] - source.astype(np.int16)).mean() < 15  # the picture


def test_working_render(tmp_path, a_out, a_maps, toy_pair):
    """--render working: frames made at S x S and resized to the source's size; not the native frames."""
    out = tmp_path / "working"
    rerender(a_maps, out, "--steps", RENDERED_FRAMES, "--render", "working", "--formats", "frames")
    frames, native = frames_in(out / "morph" / "frames"), frames_in(a_out / "morph" / "frames")
    assert len(frames) == RENDERED_FRAMES and all(f.shape == (256, 256, 3) for f in frames)
    # frame 0 is the source through the working size (64) and back: blurred, not the source itself
    through_working = cv2.resize(
        cv2.resize(toy_pair[0], (SMALL_SIZE, SMALL_SIZE), interpolation=cv2.INTER_AREA),
        (256, 256),
        interpolation=cv2.INTER_AREA,
    )
    assert np.abs(frames[0].astype(int) - through_working).max() <= 1
    assert not np.array_equal(frames[0], toy_pair[0])
    assert all(not np.array_equal(x, y) for x, y in zip(frames, native))


def test_large_input_renders_at_full_size_in_bands(tmp_path, monkeypatch, a_maps):
    """An input larger than the working size is rendered at its own size, band by band when the maps at
    that size exceed the budget: the same frames as in one piece."""
    from diffmorph.core import render

    source, target = make_test_image(300, 200, seed=0), make_test_image(300, 200, seed=1)
    pair = ["-s", write_rgb(tmp_path / "s.png", source), "-t", write_rgb(tmp_path / "t.png", target)]
    common = ["--maps", a_maps, "--force", "--steps", 3, "--formats", "frames", "--plain", "-q"]
    run = run_cli([*pair, *common, "-o", tmp_path / "whole"])
    assert run.returncode == 0, run.stderr

    bands = []

    class SmallBudget(render.FrameRenderer):
        def __init__(self, *args, **kwargs):
            kwargs["maps_budget"] = 300 * 16 * 4 * 60  # 60 rows of maps at 300 wide
            super().__init__(*args, **kwargs)
            bands.append(len(self.bounds))

    monkeypatch.setattr(render, "FrameRenderer", SmallBudget)
    run = run_cli([*pair, *common, "-o", tmp_path / "bands"])
    assert run.returncode == 0, run.stderr
    assert bands and bands[0] == 4  # ceil(200 / 60)
    whole, banded = (
        frames_in(tmp_path / "whole" / "morph" / "frames"),
        frames_in(tmp_path / "bands" / "morph" / "frames"),
    )
    assert len(banded) == 3 and all(f.shape == (200, 300, 3) for f in banded)
    assert np.array_equal(banded[0], source) and np.array_equal(banded[-1], target)
    for i, (x, y) in enumerate(zip(whole, banded)):
        assert np.array_equal(x, y), i


# ----------------------------------------------------------------------------- boomerang, frames dir, GIF size


def test_boomerang(tmp_path, a_maps, toy_pair):
    """Forward, then backward re-rendered without repeating the turning frames: 2 x 5 - 2 frames."""
    out = tmp_path / "boomerang"
    rerender(a_maps, out, "--steps", 5, "--boomerang", "--formats", "mp4,gif,frames")
    frames = frames_in(out / "morph" / "frames")
    assert len(frames) == 8
    for back, forward in ((5, 3), (6, 2), (7, 1)):
        assert np.array_equal(frames[back], frames[forward]), (back, forward)
    assert not np.array_equal(frames[4], frames[3])  # the turn (the target) is not repeated
    assert np.array_equal(frames[0], toy_pair[0]) and np.array_equal(frames[4], toy_pair[1])
    video, _ = read_video(out / "morph" / "morph.mp4")
    assert len(video) == 8
    gif, durations, _ = read_gif(out / "morph" / "morph.gif")
    assert len(gif) == 8 and durations == [20] * 8
    assert read_rgb(out / "morph" / "result.jpg").shape == (3 * SMALL_SIZE, SMALL_SIZE, 3)  # forward frames only


def test_frames_dir_and_gif_max_side(tmp_path, a_maps):
    """--frames-dir puts the frames elsewhere; --gif-max-side downsizes the GIF only."""
    source, target = make_test_image(64, 48, seed=0), make_test_image(64, 48, seed=1)
    out, folder = tmp_path / "small", tmp_path / "small_frames"
    run = run_cli(
        [
            "-s",
            write_rgb(tmp_path / "s.png", source),
            "-t",
            write_rgb(tmp_path / "t.png", target),
            "--maps",
            a_maps,
            "--force",
            "--steps",
            4,
            "--formats",
            "mp4,gif,frames",
            "--gif-max-side",
            16,
            "--frames-dir",
            folder,
            "--plain",
            "-q",
            "-o",
            out,
        ]
    )
    assert run.returncode == 0, run.stderr
    frames = frames_in(folder)
    assert len(frames) == 4 and all(f.shape == (48, 64, 3) for f in frames)
    assert np.array_equal(frames[0], source) and np.array_equal(frames[-1], target)
    assert not (out / "morph" / "frames").exists()
    gif, _, _ = read_gif(out / "morph" / "morph.gif")
    assert len(gif) == 4 and gif[0].shape == (12, 16, 3)
    reference = cv2.resize(frames[0], (16, 12), interpolation=cv2.INTER_AREA)
    assert np.abs(gif[0].astype(int) - reference).mean() < 8
    video, meta = read_video(out / "morph" / "morph.mp4")
    assert meta["size"] == (64, 48) and len(video) == 4
    assert not part_files(folder.parent)
