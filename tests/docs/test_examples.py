"""The documentation's examples run: every block of README.md and docs/**/*.md marked
``<!-- test -->`` or ``<!-- test: tiny -->`` (docs_blocks.py), in a folder that holds ``images/``
and the stand-in files the examples name (``a.jpg``, ``b.jpg``, ``c.jpg``, point-pair files).
Shell blocks run one by one in ``bash -e`` with a ``diffmorph`` command on PATH; a page's Python
blocks run in order in one process. Each starts TensorFlow: slow."""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import IMAGES, REPO, read_rgb, write_rgb
from docs_blocks import DOC_FILES, code_blocks, tiny_command, tiny_python

TESTED = [block for path in DOC_FILES for block in code_blocks(path) if block.mark in ("test", "tiny")]
SHELL = [block for block in TESTED if block.lang in ("bash", "sh", "shell")]
PYTHON_PAGES = sorted({block.path for block in TESTED if block.lang in ("python", "py")})
POINTS_HEADER = "source_x,source_y,target_x,target_y\n"


def make_workspace(folder):
    """``folder`` with images/ and the stand-ins: a.jpg (the astronaut), b.jpg (the same photo moved
    by (12, 8) pixels: automatic point pairs find it), c.jpg (the cat), and point pairs for a -> b
    (points.csv, ab.csv, pts/000.csv) and b -> c (bc.csv, pts/001.csv), and pairs.csv, a batch of a -> b
    and b -> c."""
    shutil.copytree(IMAGES, folder / "images")
    astronaut = read_rgb(IMAGES / "astronaut.jpg")
    write_rgb(folder / "a.jpg", astronaut)
    write_rgb(folder / "b.jpg", np.roll(astronaut, (8, 12), axis=(0, 1)))
    shutil.copy(IMAGES / "cat.jpg", folder / "c.jpg")
    ab = POINTS_HEADER + "100,107,112,115\n150,107,162,115\n128,180,140,188\n"
    bc = POINTS_HEADER + "112,115,64,97\n162,115,184,115\n"
    (folder / "pts").mkdir()
    (folder / "pairs.csv").write_text("source,target\na.jpg,b.jpg\nb.jpg,c.jpg\n")
    for name, text in (("points.csv", ab), ("ab.csv", ab), ("bc.csv", bc), ("pts/000.csv", ab), ("pts/001.csv", bc)):
        (folder / name).write_text(text)
    return folder


def environment(folder) -> dict:
    """A shell whose ``diffmorph`` and ``python`` are this checkout's, run by this interpreter."""
    bin_dir = folder / ".bin"
    bin_dir.mkdir()
    (bin_dir / "diffmorph").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m diffmorph "$@"\n')
    (bin_dir / "diffmorph").chmod(0o755)
    for name in ("python", "python3"):
        (bin_dir / name).symlink_to(sys.executable)
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", PYTHONPATH=str(REPO))
    return env


def test_tiny_command_rewrites_sizes_and_adds_the_missing_ones():
    assert tiny_command("diffmorph -s a.jpg -t b.jpg --size 512 -e 300 --steps 40  # a comment") == (
        "diffmorph -s a.jpg -t b.jpg --size 32 -e 2 --steps 3 --plain -q # a comment"
    )
    assert tiny_command("diffmorph demo") == "diffmorph demo --size 32 -e 2 --steps 3 --plain -q"
    assert tiny_command("diffmorph -s a -t b --maps m.npz --steps 80") == (
        "diffmorph -s a -t b --maps m.npz --steps 3 --plain -q"
    )
    assert tiny_command("diffmorph x --size-schedule 128:0.8") == (
        "diffmorph x --size-schedule 128:0.8 --size 32 -e 2 --steps 3 --plain -q"
    )
    for unchanged in (
        "diffmorph report out -o r",
        "printf 'x' > y.csv",
        "diffmorph colour-transfer a --palette b -o c",
    ):
        assert tiny_command(unchanged) == unchanged
    assert tiny_python("MorphConfig(size=256, train_steps=300, frames=40)") == (
        "MorphConfig(size=32, train_steps=2, frames=3)"
    )


def test_there_are_tested_examples():
    assert len(SHELL) >= 6 and len(PYTHON_PAGES) >= 2, ([b.id for b in SHELL], PYTHON_PAGES)


@pytest.mark.slow
@pytest.mark.parametrize("block", SHELL, ids=lambda b: b.id)
def test_shell_example(block, tmp_path):
    folder = make_workspace(tmp_path)
    lines = block.code.splitlines()
    script = "\n".join(tiny_command(line) if block.mark == "tiny" else line for line in lines)
    run = subprocess.run(
        ["bash", "-e", "-c", script], cwd=folder, env=environment(folder), capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0, f"{block.id}\n{script}\n{run.stderr[-3000:]}"
    assert "Traceback" not in run.stderr, run.stderr


@pytest.mark.slow
@pytest.mark.parametrize("page", PYTHON_PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_python_examples(page, tmp_path):
    folder = make_workspace(tmp_path)
    blocks = [b for b in TESTED if b.path == page and b.lang in ("python", "py")]
    code = "\n".join(tiny_python(b.code) for b in blocks)  # Python examples always run tiny
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=folder, env=environment(folder), capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0, f"{page}\n{code}\n{run.stderr[-3000:]}"
