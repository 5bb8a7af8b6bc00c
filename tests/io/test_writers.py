"""Frame writers (:mod:`diffmorph.io.video`): MP4, GIF, numbered frames, and failures."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import make_test_image, read_gif, read_rgb, read_video
from diffmorph.errors import OutputError
from diffmorph.io import video


def frames(count=5, width=34, height=22):
    """Distinct frames: a picture shifted one pixel per frame, plus a brightness step."""
    base = make_test_image(width + count, height)
    return [
        np.ascontiguousarray(np.clip(base[:, k : k + width].astype(int) + 8 * k, 0, 255).astype(np.uint8))
        for k in range(count)
    ]


def test_mp4_frames_size_and_rate(tmp_path):
    path = tmp_path / "v.mp4"
    writer = video.Mp4Writer(path, (22, 34), fps=12)
    for frame in frames():
        writer.write(frame)
    writer.close()
    decoded, meta = read_video(path)
    assert meta["codec"] == "h264" and meta["fps"] == pytest.approx(12) and meta["size"] == (34, 22)
    assert len(decoded) == 5
    sent = frames()
    for k, got in enumerate(decoded):  # in order: each frame is nearest to the one sent at its place
        distances = [np.abs(got.astype(int) - other).mean() for other in sent]
        assert int(np.argmin(distances)) == k and distances[k] < 10, distances  # yuv420p on 34 x 22: chroma blur
    assert video.mp4_is_complete(path)


def test_mp4_odd_size_is_padded_by_one_edge_pixel(tmp_path):
    path = tmp_path / "odd.mp4"
    writer = video.Mp4Writer(path, (21, 33), fps=10)
    for frame in frames(3, 33, 21):
        writer.write(frame)
    writer.close()
    decoded, meta = read_video(path)
    assert meta["size"] == (34, 22) and len(decoded) == 3
    frame = frames(1, 33, 21)[0]
    padded = video.even_pad(frame)
    assert padded.shape == (22, 34, 3)
    np.testing.assert_array_equal(padded[:21, :33], frame)
    np.testing.assert_array_equal(padded[21, :33], frame[20])  # the last row repeated
    np.testing.assert_array_equal(padded[:21, 33], frame[:, 32])  # the last column repeated


@pytest.mark.parametrize("size, slots", [((22, 34), 4), ((3000, 4000), 1), ((2500, 3000), 2)])
def test_mp4_queue_is_bounded_by_bytes(tmp_path, size, slots):
    writer = video.Mp4Writer(tmp_path / "q.mp4", size, fps=10)
    try:
        assert writer._worker.maxsize == slots
    finally:
        writer.abort()


def test_mp4_encoder_failing_midway_is_one_line_and_leaves_nothing(tmp_path, monkeypatch):
    path = tmp_path / "broken.mp4"
    writer = video.Mp4Writer(path, (22, 34), fps=10)
    real_send, sent = writer._writer.send, []

    def failing_send(frame):
        sent.append(1)
        if len(sent) == 3:
            raise OSError("[Errno 32] Broken pipe\n\nFFMPEG COMMAND:\n...")
        return real_send(frame)

    monkeypatch.setattr(
        writer, "_writer", type("W", (), {"send": staticmethod(failing_send), "close": writer._writer.close})()
    )
    with pytest.raises(OutputError) as info:
        for frame in frames(6):
            writer.write(frame)
        writer.close()
    message = str(info.value)
    assert message == f"video encoding failed for {path}: [Errno 32] Broken pipe"
    assert not path.exists()


def test_mp4_write_after_an_encoder_failure_stops_ffmpeg_and_leaves_nothing(tmp_path, monkeypatch):
    """The error surfaces on the next write (not at close): ffmpeg is stopped and waited for
    before the partial file is deleted, so it cannot write the file again afterwards."""
    import time

    path = tmp_path / "broken.mp4"
    writer = video.Mp4Writer(path, (22, 34), fps=10)
    real = writer._writer

    def failing_send(frame):
        raise OSError("[Errno 32] Broken pipe")

    monkeypatch.setattr(writer, "_writer", type("W", (), {"send": staticmethod(failing_send), "close": real.close})())
    writer.write(frames(1)[0])
    deadline = time.monotonic() + 10
    while writer._worker.error is None and time.monotonic() < deadline:
        time.sleep(0.01)
    with pytest.raises(OutputError, match=r"^video encoding failed for .*broken\.mp4: \[Errno 32\] Broken pipe$"):
        writer.write(frames(1)[0])
    assert not path.exists()
    assert real.gi_frame is None  # the ffmpeg generator was closed (its process waited for)
    time.sleep(0.2)
    assert not path.exists()


def test_mp4_cut_short_is_detected(tmp_path):
    path = tmp_path / "v.mp4"
    writer = video.Mp4Writer(path, (22, 34), fps=10)
    for frame in frames(3):
        writer.write(frame)
    writer.close()
    data = path.read_bytes()
    assert data[4:8] == b"ftyp" and b"moov" in data[:4096]  # faststart: the index first
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[:32])  # ftyp only
    assert not video.mp4_is_complete(cut)
    no_index = tmp_path / "no_index.mp4"
    no_index.write_bytes(data[:28] + (16).to_bytes(4, "big") + b"mdat" + bytes(8))
    assert not video.mp4_is_complete(no_index)
    assert not video.mp4_is_complete(tmp_path / "missing.mp4")


def test_mp4_abort_deletes_the_file(tmp_path):
    path = tmp_path / "v.mp4"
    writer = video.Mp4Writer(path, (22, 34), fps=10)
    writer.write(frames(1)[0])
    writer.abort()
    assert not path.exists()


@pytest.mark.parametrize("fps, duration", [(45, 20), (10, 100), (30, 30), (0.5, 2000), (1000, 10)])
def test_gif_timing_rounds_to_10_ms(tmp_path, fps, duration):
    path = tmp_path / "g.gif"
    writer = video.GifWriter(path, fps)
    for frame in frames(3):
        writer.write(frame)
    writer.close()
    decoded, durations, loop = read_gif(path)
    assert len(decoded) == 3 and loop == 0
    assert durations == [duration] * 3
    for got, sent in zip(decoded, frames(3)):
        assert np.abs(got.astype(int) - sent).mean() < 6  # a 256-colour palette per frame


def test_gif_is_downsized_to_max_side(tmp_path):
    path = tmp_path / "g.gif"
    writer = video.GifWriter(path, 10, max_side=17)
    writer.write(frames(1)[0])  # 34 x 22
    writer.close()
    decoded, _, _ = read_gif(path)
    assert decoded[0].shape == (11, 17, 3)


def test_gif_write_failure_is_one_line(tmp_path):
    path = tmp_path / "missing-folder" / "g.gif"
    writer = video.GifWriter(path, 10)
    writer.write(frames(1)[0])
    with pytest.raises(OutputError, match=f"cannot write {path}"):
        writer.close()


def test_frames_writer_numbers_lossless_pngs(tmp_path):
    folder = tmp_path / "frames"
    writer = video.FramesWriter(folder)
    for frame in frames(3):
        writer.write(frame)
    writer.close()
    assert sorted(p.name for p in folder.iterdir()) == ["frame_00000.png", "frame_00001.png", "frame_00002.png"]
    for k, frame in enumerate(frames(3)):
        np.testing.assert_array_equal(read_rgb(folder / f"frame_{k:05d}.png"), frame)


def test_frame_writers_abort_every_writer_on_an_error(tmp_path):
    files = {"mp4": tmp_path / "v.mp4", "gif": tmp_path / "g.gif", "frames": tmp_path / "f"}
    with pytest.raises(KeyboardInterrupt):
        with video.frame_writers(("mp4", "gif", "frames"), files, (22, 34), 10, 64) as write:
            write(frames(1)[0])
            raise KeyboardInterrupt
    assert not files["mp4"].exists() and not files["gif"].exists()


def test_frame_writers_write_each_format(tmp_path):
    files = {"mp4": tmp_path / "v.mp4", "gif": tmp_path / "g.gif", "frames": tmp_path / "f"}
    with video.frame_writers(("mp4", "gif", "frames"), files, (22, 34), 10, 64) as write:
        for frame in frames(4):
            write(frame)
    assert len(read_video(files["mp4"])[0]) == 4
    assert len(read_gif(files["gif"])[0]) == 4
    assert len(list(files["frames"].iterdir())) == 4
