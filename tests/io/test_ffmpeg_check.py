"""check_ffmpeg and Mp4Writer: a missing or broken ffmpeg is one OutputError line, never a traceback."""

from __future__ import annotations

import os
import stat

import pytest

from conftest import one_line
from diffmorph.errors import OutputError
from diffmorph.io.video import Mp4Writer, check_ffmpeg


def script(path, body: str):
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def bad_env_cases(tmp_path):
    """(id, IMAGEIO_FFMPEG_EXE value, words the message must contain)."""
    plain = tmp_path / "plain.txt"
    plain.write_text("not a program\n")
    plain.chmod(0o644)
    return [
        ("missing", str(tmp_path / "no" / "ffmpeg"), ["no such file"]),
        ("not-executable", str(plain), ["not executable"]),
        ("exits-non-zero", str(script(tmp_path / "broken-ffmpeg", "exit 3")), ["exits with status 3"]),
        ("newline-in-name", str(tmp_path / "new\nline"), ["no such file", "'"]),
    ]


@pytest.mark.parametrize("case", ["missing", "not-executable", "exits-non-zero", "newline-in-name"])
def test_check_ffmpeg_names_the_variable(tmp_path, monkeypatch, case):
    if os.name != "posix":
        pytest.skip("shell scripts and modes are POSIX")
    _, value, words = next(c for c in bad_env_cases(tmp_path) if c[0] == case)
    monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", value)
    with pytest.raises(OutputError) as info:
        check_ffmpeg()
    message = one_line(info)
    assert message.startswith("IMAGEIO_FFMPEG_EXE=") and "unset it" in message, message
    assert 'formats=("gif", "frames")' in message and info.value.setting == "formats"
    for word in words:
        assert word in message, (word, message)


def test_check_ffmpeg_when_imageio_ffmpeg_finds_none(monkeypatch):
    import imageio_ffmpeg

    def none_found():
        raise RuntimeError("No ffmpeg exe could be found. Install ffmpeg on your system,\nor set the variable.")

    monkeypatch.delenv("IMAGEIO_FFMPEG_EXE", raising=False)
    monkeypatch.setattr(imageio_ffmpeg, "get_ffmpeg_exe", none_found)
    with pytest.raises(OutputError) as info:
        check_ffmpeg()
    message = one_line(info)
    assert "no ffmpeg found" in message and "reinstall imageio-ffmpeg" in message
    assert 'formats=("gif", "frames")' in message and info.value.setting == "formats"


def test_check_ffmpeg_when_the_found_binary_is_broken(tmp_path, monkeypatch):
    import imageio_ffmpeg

    broken = script(tmp_path / "ffmpeg", "exit 1")
    monkeypatch.delenv("IMAGEIO_FFMPEG_EXE", raising=False)
    monkeypatch.setattr(imageio_ffmpeg, "get_ffmpeg_exe", lambda: str(broken))
    with pytest.raises(OutputError) as info:
        check_ffmpeg()
    message = one_line(info)
    assert str(broken) in message and "exits with status 1" in message and "reinstall imageio-ffmpeg" in message


def test_check_ffmpeg_returns_a_working_binary(tmp_path, monkeypatch):
    fake = script(tmp_path / "ffmpeg", 'test "$1" = -version')  # succeeds only when asked for -version
    monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", str(fake))
    assert check_ffmpeg() == str(fake)


def test_check_ffmpeg_with_the_installed_ffmpeg(monkeypatch):
    monkeypatch.delenv("IMAGEIO_FFMPEG_EXE", raising=False)
    exe = check_ffmpeg()
    assert os.path.basename(exe).startswith("ffmpeg")


def mp4_writer_refused(tmp_path) -> str:
    """The one-line OutputError of an Mp4Writer opened in an empty folder, which stays empty (no .part file)."""
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(OutputError) as info:
        Mp4Writer(out / "morph.mp4", (8, 8), 10)
    assert list(out.iterdir()) == []
    return one_line(info)


def test_mp4_writer_without_ffmpeg_is_one_line_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", str(tmp_path / "nowhere" / "ffmpeg"))
    message = mp4_writer_refused(tmp_path)
    assert "IMAGEIO_FFMPEG_EXE" in message and "no such file" in message


def test_mp4_writer_when_ffmpeg_fails_to_start(tmp_path, monkeypatch):
    """check_ffmpeg passes but starting the encoder fails (e.g. out of processes): one line, no .part file."""
    import imageio_ffmpeg

    def failing_start(*args, **kwargs):
        raise OSError(11, "Resource temporarily unavailable")
        yield  # a generator, like the real one

    monkeypatch.delenv("IMAGEIO_FFMPEG_EXE", raising=False)
    monkeypatch.setattr(imageio_ffmpeg, "write_frames", failing_start)
    message = mp4_writer_refused(tmp_path)
    assert "cannot start ffmpeg" in message and "temporarily unavailable" in message
