"""The report (:mod:`diffmorph.app.report`) and the frame readers (:mod:`diffmorph.io.readers`).

Tiny morphs made in ``tmp_path`` as an MP4, a GIF and a folder of PNGs: a gradient
brightened by 10 levels per frame, so the mean absolute difference of neighbours is 10
exactly for lossless frames (and close to it for the MP4 and the GIF). Bad inputs must
raise :class:`~diffmorph.errors.InputError` with a one-line message and write nothing.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from conftest import Calls, one_line
from diffmorph.app.report import REPORT_JSON, REPORT_PNG, format_table, report
from diffmorph.errors import InputError
from diffmorph.io.files import save_image
from diffmorph.io.readers import read_frames
from diffmorph.io.video import GifWriter, Mp4Writer

HEIGHT, WIDTH, FRAMES, STEP = 32, 48, 5, 10


def gradient_frames(n: int = FRAMES, height: int = HEIGHT, width: int = WIDTH) -> list[np.ndarray]:
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([xx * 3, yy * 3, np.full_like(xx, 60)], axis=-1).astype(np.uint8)  # levels 0..141
    return [base + np.uint8(STEP * k) for k in range(n)]


def write_folder(folder, frames, name="frame_{}.png"):
    folder.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(frames):
        save_image(folder / name.format(i), frame)
    return folder


def write_mp4(path, frames):
    writer = Mp4Writer(path, frames[0].shape[:2], 10)
    for frame in frames:
        writer.write(frame)
    writer.close()
    return path


def write_gif(path, frames):
    writer = GifWriter(path, 10)
    for frame in frames:
        writer.write(frame)
    writer.close()
    return path


def assert_written(out, result):
    # with the set's manifest, which tells a later run these are diffmorph's own files
    assert sorted(p.name for p in out.iterdir()) == [".report.outputs.json", REPORT_JSON, REPORT_PNG]
    loaded = json.loads((out / REPORT_JSON).read_text())
    assert loaded == json.loads(json.dumps(result))  # the file holds what was returned
    assert loaded["files"] == [str(out / REPORT_JSON), str(out / REPORT_PNG)]
    with Image.open(out / REPORT_PNG) as png:
        assert png.format == "PNG" and png.width > 400 and png.height > 400
    return loaded


def test_report_on_a_folder_is_exact(tmp_path):
    frames = gradient_frames()
    calls = []
    result = report(
        write_folder(tmp_path / "frames", frames),
        source=frames[0],
        target=frames[-1],
        truth=frames[2],
        out_dir=tmp_path / "out",
        progress=Calls(calls),
    )
    loaded = assert_written(tmp_path / "out", result)
    assert loaded["input"]["kind"] == "folder" and loaded["frames"] == FRAMES and loaded["size"] == [HEIGHT, WIDTH]
    assert loaded["mad"]["distances"] == [STEP] * (FRAMES - 1) and loaded["mad"]["cv"] == 0.0
    assert loaded["endpoints"]["source"]["exact"] and loaded["endpoints"]["target"]["exact"]
    assert loaded["truth"]["exact"] and loaded["truth"]["frame"] == 2 and loaded["middle_index"] == 2
    assert len(loaded["distance"]["distances"]) == FRAMES - 1 and loaded["distance"]["scales"] == 2
    assert calls == [("start", "measure", FRAMES), *[(i, FRAMES) for i in range(1, FRAMES + 1)], ("end",)]
    table = format_table(result)
    assert "frames          5 (48x32), middle frame 2" in table and "source exact; target exact" in table


def test_report_on_an_mp4(tmp_path):
    frames = gradient_frames()
    video = write_mp4(tmp_path / "morph.mp4", frames)
    result = report(video, source=frames[0], target=frames[-1], out_dir=tmp_path / "out")
    loaded = assert_written(tmp_path / "out", result)
    assert loaded["input"] == {"path": str(video), "kind": "video"}
    assert loaded["frames"] == FRAMES and loaded["size"] == [HEIGHT, WIDTH]
    assert loaded["mad"]["distances"] == pytest.approx([STEP] * (FRAMES - 1), abs=1.5)  # H.264 is lossy
    assert loaded["endpoints"]["source"]["psnr"] > 35 and loaded["endpoints"]["target"]["psnr"] > 35


def test_report_on_a_gif(tmp_path):
    frames = gradient_frames()
    result = report(write_gif(tmp_path / "morph.gif", frames), out_dir=tmp_path / "out")
    loaded = assert_written(tmp_path / "out", result)
    assert loaded["input"]["kind"] == "gif" and loaded["frames"] == FRAMES and loaded["size"] == [HEIGHT, WIDTH]
    assert loaded["mad"]["distances"] == pytest.approx([STEP] * (FRAMES - 1), abs=2.0)  # 256-colour palettes
    assert loaded["endpoints"]["source"] is None and loaded["truth"] is None


def test_report_without_out_dir_writes_nothing(tmp_path):
    folder = write_folder(tmp_path / "frames", gradient_frames())
    before = sorted(p.name for p in tmp_path.rglob("*"))
    result = report(folder)
    assert result["files"] == [] and sorted(p.name for p in tmp_path.rglob("*")) == before


def test_morph_output_folders(tmp_path):
    frames = gradient_frames()
    morph = tmp_path / "run" / "morph"
    write_folder(morph / "frames", frames, "frame_{:05d}.png")
    save_image(morph / "result.jpg", frames[0])  # not a frame: the morph folder is not an image folder
    for path in (morph, morph.parent):
        kind, found = read_frames(path).kind, read_frames(path).path
        assert (kind, found) == ("folder", morph / "frames")
    write_mp4(morph / "morph.mp4", frames)
    reader = read_frames(morph.parent)
    assert (reader.kind, reader.path, reader.count) == ("video", morph / "morph.mp4", FRAMES)
    assert sum(1 for _ in reader) == FRAMES
    (morph / "morph.mp4").unlink()
    for item in (morph / "frames").iterdir():
        item.unlink()
    (morph / "frames").rmdir()
    with pytest.raises(InputError, match="a morph folder without morph.mp4"):
        read_frames(morph)


def test_folder_order_is_natural_and_skips_other_files(tmp_path):
    frames = gradient_frames(12)
    folder = write_folder(tmp_path / "f", frames, "f{}.PNG")  # f2 before f10; upper-case extension
    (folder / "notes.txt").write_text("not a frame")
    save_image(folder / ".f3.part.png", frames[0])  # a hidden temporary file
    read = list(read_frames(folder))
    assert len(read) == 12 and all(np.array_equal(a, b) for a, b in zip(read, frames, strict=True))


def test_gif_frames_are_composited_as_displayed(tmp_path):
    red = np.zeros((20, 30, 3), np.uint8)
    red[..., 0] = 255
    frames = [red.copy() for _ in range(3)]
    frames[1][2:6, 3:9] = (0, 0, 255)
    frames[2][10:15, 20:25] = (0, 0, 255)
    images = [Image.fromarray(f) for f in frames]
    path = tmp_path / "partial.gif"  # optimize=True stores later frames cropped to what changed
    images[0].save(path, save_all=True, append_images=images[1:], optimize=True, duration=100, loop=0)
    read = list(read_frames(path))
    assert len(read) == 3 and all(np.array_equal(a, b) for a, b in zip(read, frames, strict=True))


def one_line_error(call, match):
    with pytest.raises(InputError, match=match) as info:
        call()
    one_line(info)


@pytest.mark.parametrize(
    "case",
    [
        "missing",
        "empty folder",
        "one frame",
        "one-frame gif",
        "sizes differ",
        "bad video",
        "empty video",
        "single image",
        "truth size",
        "source size",
        "bad truth file",
    ],
)
def test_bad_inputs_raise_one_line_and_write_nothing(tmp_path, case):
    frames = gradient_frames()
    out = tmp_path / "out"
    kwargs = {}
    if case == "missing":
        source, match = tmp_path / "nothing.mp4", "no such file"
    elif case == "empty folder":
        source, match = tmp_path / "empty", "no frames"
        source.mkdir()
    elif case == "one frame":
        source, match = write_folder(tmp_path / "one", frames[:1]), "only one frame"
    elif case == "one-frame gif":
        source, match = write_gif(tmp_path / "one.gif", frames[:1]), "only one frame"
    elif case == "sizes differ":
        source, match = write_folder(tmp_path / "mixed", frames[:2] + gradient_frames(1, 16, 16)), "one size"
    elif case == "bad video":
        source, match = tmp_path / "broken.mp4", "not a video ffmpeg can read"
        source.write_bytes(b"\x00\x00\x00\x18ftypmp42 this is not a video" * 10)
    elif case == "empty video":
        source, match = tmp_path / "empty.mp4", "not a video ffmpeg can read"
        source.write_bytes(b"")
    elif case == "single image":
        source, match = tmp_path / "one.png", "a single image"
        save_image(source, frames[0])
    else:
        source = write_folder(tmp_path / "frames", frames)
        if case == "truth size":
            kwargs, match = {"truth": gradient_frames(1, 16, 16)[0]}, "the truth image is 16x16"
        elif case == "source size":
            small = save_image(tmp_path / "small.png", gradient_frames(1, 16, 16)[0]) or tmp_path / "small.png"
            kwargs, match = {"source": small}, "the source image is 16x16"
        else:
            (tmp_path / "truth.png").write_bytes(b"not a png")
            kwargs, match = {"truth": tmp_path / "truth.png"}, "not an image file"
    one_line_error(lambda: report(source, out_dir=out, **kwargs), match)
    assert not out.exists()


def test_report_reads_the_inputs_as_morph_does(tmp_path):
    """``report OUT/morph/morph.mp4 --source A --target B``: A of odd size 45x31, B 64x64. The morph resized B to
    A's size (and the MP4 is padded to even sizes); the report reads A and B the same way and measures our video."""
    import diffmorph
    from conftest import make_test_image, run_cli, write_rgb

    source = write_rgb(tmp_path / "a.png", make_test_image(45, 31, seed=1))
    target = write_rgb(tmp_path / "b.png", make_test_image(64, 64, seed=2))
    config = diffmorph.MorphConfig(size=16, train_steps=2, frames=3, seed=0)
    options = diffmorph.OutputOptions(formats=("mp4",))
    diffmorph.morph(source, target, tmp_path / "out", config, options=options)
    video = tmp_path / "out" / "morph" / "morph.mp4"
    result = report(video, source, target)
    assert result["frames"] == 3
    assert result["endpoints"]["source"]["psnr"] > 25 and result["endpoints"]["target"]["psnr"] > 25
    alone = report(video, target=target)  # alone: resized to the frames' size, as the morph's frames have A's
    assert alone["endpoints"]["target"] == result["endpoints"]["target"]
    run = run_cli(["report", video, "--source", source, "--target", target, "-o", tmp_path / "r", "-q"])
    assert run.returncode == 0, run.stderr
    assert json.loads((tmp_path / "r" / REPORT_JSON).read_text())["endpoints"]["target"]["psnr"] > 25


# ----------------------------------------------------------------------------- alignment of the halves


def shift_maps(ab_dx: float, ba_dx: float, size: int) -> np.ndarray:
    """Net output with uniform horizontal flows, in pixels at working size ``size`` (w_s 0.05)."""
    maps = np.zeros((1, 84, 84, 16), np.float32)
    maps[..., 7], maps[..., 15] = ab_dx / (size * 0.05), ba_dx / (size * 0.05)
    return maps


def test_report_measures_the_alignment_of_the_middle_frame_by_hand(tmp_path):
    from diffmorph.config import MorphConfig
    from diffmorph.io import mapsfile
    from diffmorph.io.points import write_points

    size = 64
    frames = write_folder(tmp_path / "frames", gradient_frames())  # 48 x 32 frames
    (tmp_path / "saved").mkdir()
    maps = tmp_path / "saved" / "maps.npz"  # not beside the frames: only found when given
    # A->B moves 6 working pixels right, B->A 2 back: the halves disagree by |6 - 2| / 2 = 2 px everywhere
    mapsfile.save_maps(maps, shift_maps(6, -2, size), MorphConfig(size=size), ("a" * 64, "b" * 64), 10)
    # pairs in the frames' pixels (48 wide: 6 working pixels are 4.5 frame pixels)
    pairs = tmp_path / "pairs.csv"
    write_points(pairs, np.array([[10.0, 10, 14.5, 10], [30, 20, 34.5, 20]]))
    held = tmp_path / "held.csv"
    write_points(held, np.array([[20.0, 16, 24.5, 16]]))
    result = report(frames, maps=maps, points=pairs, held_out=held, out_dir=tmp_path / "out")
    aligned = result["alignment"]
    diagonal = size * np.sqrt(2)
    assert aligned["geometry"] == "scaled" and aligned["alpha"] == 0.5 and aligned["maps"].endswith("maps.npz")
    assert aligned["dense"]["mean"] == pytest.approx(2 / diagonal * 100, rel=1e-3)
    # a pair that moves 6 px right: the source half puts a at a + 3 (alpha 0.5 of 6), the target half
    # shows b at b - (1 - 0.5) * 2 = b - 1 = a + 5: 2 px apart
    assert aligned["points"]["count"] == 2 and aligned["points"]["mean"] == pytest.approx(2 / diagonal * 100, rel=1e-3)
    assert aligned["held_out"]["count"] == 1
    assert "alignment" in format_table(result) and "held-out pairs" in format_table(result)
    assert json.loads((tmp_path / "out" / REPORT_JSON).read_text())["alignment"] == json.loads(json.dumps(aligned))
    # consistent flows: 0
    mapsfile.save_maps(maps, shift_maps(6, -6, size), MorphConfig(size=size), ("a" * 64, "b" * 64), 10)
    assert report(frames, maps=maps, points=pairs)["alignment"]["points"]["mean"] < 1e-3
    # no maps: no alignment; held-out pairs then are bad input
    assert report(frames)["alignment"] is None
    with pytest.raises(InputError, match="held_out: needs the morph's maps"):
        report(frames, held_out=held)
