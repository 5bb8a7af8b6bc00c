"""The one capture of file descriptor 2 (diffmorph.io.stderr), used by image decoding and TensorFlow's import."""

from __future__ import annotations

import os
import threading

import pytest

from diffmorph.io.stderr import CAPTURED_BYTES, captured_stderr


def fd2_target() -> tuple[int, int]:
    """What file descriptor 2 points at now: (device, inode)."""
    info = os.fstat(2)
    return info.st_dev, info.st_ino


def test_captures_what_is_written_to_the_descriptor():
    before = fd2_target()
    with captured_stderr() as captured:
        os.write(2, b"libpng warning: iCCP: known incorrect sRGB profile\n")
        assert fd2_target() != before  # redirected meanwhile
    assert captured.text == "libpng warning: iCCP: known incorrect sRGB profile\n"
    assert fd2_target() == before  # restored


def test_muted_keeps_nothing():
    before = fd2_target()
    with captured_stderr(keep=False) as captured:
        os.write(2, b"I tensorflow/core/platform/cpu_feature_guard.cc:210] noise\n")
        assert os.fstat(2).st_ino == os.stat(os.devnull).st_ino
    assert captured.text == ""
    assert fd2_target() == before


def test_restores_the_descriptor_when_the_block_raises():
    before = fd2_target()
    with pytest.raises(KeyboardInterrupt):
        with captured_stderr():
            raise KeyboardInterrupt
    assert fd2_target() == before


def test_keeps_at_most_the_limit_and_replaces_bad_bytes():
    with captured_stderr() as captured:
        os.write(2, b"\xff" + b"x" * (CAPTURED_BYTES + 100))
    assert len(captured.text) == CAPTURED_BYTES and captured.text[0] == "\ufffd"


def test_nested_captures_each_get_their_own_text():
    with captured_stderr() as outer:
        os.write(2, b"outer 1\n")
        with captured_stderr() as inner:
            os.write(2, b"inner\n")
        os.write(2, b"outer 2\n")
    assert inner.text == "inner\n" and outer.text == "outer 1\nouter 2\n"


def test_threads_take_turns():
    texts = {}

    def capture(name: str):
        with captured_stderr() as captured:
            for _ in range(50):
                os.write(2, f"{name}\n".encode())
        texts[name] = captured.text

    threads = [threading.Thread(target=capture, args=(f"t{k}",)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert texts == {f"t{k}": f"t{k}\n" * 50 for k in range(4)}
