"""Shared helpers and fixtures for the tests (every folder below ``tests/`` uses them).

One in-process launcher (:func:`run_cli`: the ``diffmorph`` entry point's own code,
output captured), one subprocess launcher for the few tests that need a real process
(:func:`run_process`: signals, the entry scripts, the lazy TensorFlow import), the
one-line-error checks (:func:`assert_one_line_error` for commands, :func:`one_line` for
exceptions), the flags of a tiny run (:func:`tiny_flags`, :data:`TINY`), a re-render from
saved maps (:func:`rerender`, :func:`rerender_args`), readers (video, GIF, PNG frames,
maps), POT (:func:`import_pot`) and image makers. Tiny sizes everywhere.
"""

import os
import sys

# Quieten TensorFlow's C++ logging; must happen before tensorflow is first imported.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("POT_BACKEND_DISABLE_TENSORFLOW", "1")  # POT (a test reference) need not load TF
os.environ.setdefault("POT_BACKEND_DISABLE_PYTORCH", "1")
if "DIFFMORPH_CACHE_DIR" not in os.environ:  # compiled programs shared by this run's processes, not the user's cache
    import tempfile

    os.environ["DIFFMORPH_CACHE_DIR"] = tempfile.mkdtemp(prefix="diffmorph-test-cache-")

# Make the in-repo package importable under plain `pytest` too (not only `python -m pytest`).
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import contextlib  # noqa: E402
import dataclasses  # noqa: E402
import io  # noqa: E402
import pathlib  # noqa: E402
import subprocess  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from diffmorph.app.progress import Progress  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parent.parent
IMAGES = REPO / "images"
FIXTURES = REPO / "tests" / "fixtures"  # reference data written by tools/make_*_fixtures.py
TOY_A = IMAGES / "toy_a.png"
TOY_B = IMAGES / "toy_b.png"
SMALL_SIZE = 64  # working resolution used by the fast tests
RENDERED_FRAMES = 6  # frames of the rendered_run fixture
RENDERED_TRAIN_STEPS = 12  # its train steps: snapshots at steps 10 and 12
PREFIX = "diffmorph: "


@dataclasses.dataclass
class Run:
    """What a command did: exit status and captured output."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def lines(self) -> list[str]:
        """The non-empty stderr lines that are not progress bars."""
        return [
            line
            for line in self.stderr.replace("\r", "\n").splitlines()
            if line.strip() and not line.startswith(("Optimising", "Rendering", "Pairs", "Measuring"))
        ]


def run_cli(args, cwd=None) -> Run:
    """``diffmorph ARGS`` in this process (``diffmorph.cli.main.main``), in ``cwd``, output captured."""
    from diffmorph.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    previous = os.getcwd()
    try:
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main([str(a) for a in args])
    finally:
        os.chdir(previous)
    return Run(code, out.getvalue(), err.getvalue())


def cli_env() -> dict:
    """The environment of a user's shell: no PYTHONPATH, TensorFlow's logging as it comes."""
    env = dict(os.environ)
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # the command quietens TensorFlow itself
    env.pop("PYTHONPATH", None)  # morph.py must find the package beside itself
    return env


def run_process(args, cwd=None, timeout=300, entry=None) -> subprocess.CompletedProcess:
    """A real ``python morph.py ARGS`` (or ``python ENTRY... ARGS``) process, text captured."""
    command = [sys.executable, *(entry if entry is not None else [str(REPO / "morph.py")]), *map(str, args)]
    return subprocess.run(command, cwd=str(cwd or REPO), env=cli_env(), capture_output=True, text=True, timeout=timeout)


def assert_one_line_error(run, code: int, *needles: str) -> str:
    """``run`` failed with ``code`` and one ``diffmorph...error:`` line (no traceback) holding ``needles``."""
    lines = run.lines if isinstance(run, Run) else [x for x in run.stderr.splitlines() if x.strip()]
    assert run.returncode == code, (run.returncode, run.stderr)
    assert "Traceback" not in run.stderr, run.stderr
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("diffmorph") and "error:" in lines[0], lines[0]
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def one_line(error) -> str:
    """The message of ``error`` (an exception or a ``pytest.raises`` ExceptionInfo), asserted to be
    one non-empty printable line without a traceback; returned."""
    message = str(getattr(error, "value", error))
    assert message and "\n" not in message and "\r" not in message, message
    assert "Traceback" not in message, message
    message.encode("utf-8")  # printable: no lone surrogates
    return message


def tiny_flags(
    train_steps: int = 3,
    frames: int | None = 3,
    formats: str | None = "mp4",
    plain: bool = True,
    size: int = 32,
    quiet: bool = True,
) -> list:
    """The flags of a tiny optimising run: working size ``size``, ``train_steps`` train steps, seed 0,
    ``frames`` frames (None: the default), ``--formats formats`` (None: the default), ``--plain``, ``-q``."""
    flags = ["--size", size, "-e", train_steps, "--seed", 0]
    flags += ["--steps", frames] if frames is not None else []
    flags += ["--formats", formats] if formats is not None else []
    return flags + (["--plain"] if plain else []) + (["-q"] if quiet else [])


TINY = tiny_flags()  # the usual tiny run: 3 train steps, 3 frames, MP4 only


def rerender_args(maps, out, *extra, pair=(TOY_A, TOY_B), plain: bool = True, quiet: bool = True) -> list:
    """``-s SOURCE -t TARGET --maps MAPS [--plain] [-q] -o OUT EXTRA``: render from saved maps, no optimisation."""
    flags = (["--plain"] if plain else []) + (["-q"] if quiet else [])
    return ["-s", pair[0], "-t", pair[1], "--maps", maps, *flags, "-o", out, *extra]


def rerender(maps, out, *extra, **options) -> Run:
    """:func:`rerender_args` run in-process; asserts success and no temporary file left in ``out``."""
    run = run_cli(rerender_args(maps, out, *extra, **options))
    assert run.returncode == 0, run.stderr
    assert not part_files(out)
    return run


def frames_in(folder) -> list[np.ndarray]:
    """The numbered PNG frames of a folder, in order (numbered from 0 without gaps), as uint8 RGB."""
    paths = sorted(pathlib.Path(folder).iterdir())
    assert [p.name for p in paths] == [f"frame_{i:05d}.png" for i in range(len(paths))]
    return [read_rgb(p) for p in paths]


def maps_low(path) -> np.ndarray:
    """The low-resolution maps stored in a maps file: float32 (1, h, w, 16)."""
    from diffmorph.io import mapsfile

    return mapsfile.load_maps(path).maps_low


def import_pot():
    """POT (``ot``, a test requirement: the reference implementation), without its TensorFlow and
    PyTorch backends (the environment variables at the top of this file)."""
    import ot

    return ot


def random_gaussian(rng: np.random.Generator, scale: float = 0.05, ridge: float = 1e-4):
    """A random colour :class:`~diffmorph.core.colour.Gaussian`: mean in [0.2, 0.8], covariance
    ``R R^T + ridge I`` with R normal of standard deviation ``scale``."""
    from diffmorph.core.colour import Gaussian

    root = rng.normal(size=(3, 3)) * scale
    return Gaussian(rng.uniform(0.2, 0.8, size=3), root @ root.T + ridge * np.eye(3))


def read_rgb(path) -> np.ndarray:
    """An image file as uint8 (H, W, 3) RGB (OpenCV reads BGR)."""
    import cv2

    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert bgr is not None, f"cannot read {path}"
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def write_rgb(path, rgb: np.ndarray) -> pathlib.Path:
    """Write uint8 (H, W, 3) RGB with OpenCV (PNG/JPEG by extension); returns the path."""
    import cv2

    path = pathlib.Path(path)
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)), f"cannot write {path}"
    return path


def read_video(path):
    """All frames of a video as uint8 (H, W, 3) arrays, and its metadata (imageio-ffmpeg)."""
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    width, height = meta["size"]
    frames = [np.frombuffer(f, np.uint8).reshape(height, width, 3) for f in reader]
    return frames, meta


def read_gif(path):
    """A GIF's frames as uint8 (H, W, 3) RGB and their durations in ms (Pillow)."""
    from PIL import Image, ImageSequence

    with Image.open(path) as gif:
        frames = [(np.asarray(f.convert("RGB")), f.info.get("duration")) for f in ImageSequence.Iterator(gif)]
        loop = gif.info.get("loop")
    return [f for f, _ in frames], [d for _, d in frames], loop


def make_test_image(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A deterministic uint8 (height, width, 3) RGB picture: gradient plus a disc."""
    import cv2

    yy, xx = np.mgrid[0:height, 0:width]
    img = np.stack(
        [xx * 255 // max(1, width - 1), yy * 255 // max(1, height - 1), np.full_like(xx, 40 + 50 * seed)], axis=-1
    ).astype(np.uint8)
    img = np.ascontiguousarray(img)
    cv2.circle(img, (width // 2 + seed, height // 2), max(2, min(width, height) // 4), (250, 30 + 60 * seed, 200), -1)
    return img


def files_under(folder) -> list[str]:
    """Every file below ``folder``, as sorted relative paths (hidden lock files and set manifests left out)."""
    folder = pathlib.Path(folder)
    return sorted(
        str(p.relative_to(folder))
        for p in folder.rglob("*")
        if p.is_file() and p.name != ".diffmorph.lock" and not p.name.endswith((".lock", ".outputs.json"))
    )


def file_bytes(folder) -> dict[str, bytes]:
    """Every file below ``folder`` (as :func:`files_under` lists them) and its bytes: compare before/after."""
    folder = pathlib.Path(folder)
    return {name: (folder / name).read_bytes() for name in files_under(folder)}


def part_files(folder) -> list[pathlib.Path]:
    """Temporary files or folders left below ``folder`` (``.NAME.part-*``, ``.NAME.old-*``, journals)."""
    return [
        p
        for p in pathlib.Path(folder).rglob("*")
        if ".part" in p.name or ".old-" in p.name or p.name.endswith(".publish.json")
    ]


UNREADABLE: set[str] = set()  # paths os.open refuses while deny_unreadable is active


def Unreadable(path) -> pathlib.Path:  # noqa: N802 (reads as a type at the call sites)
    """Mark ``path`` as a file without read permission, as a normal user sees it: while the
    :func:`deny_unreadable` fixture is active ``os.open`` refuses it with EACCES (root, who
    runs CI, reads anything whatever its mode, so chmod cannot do this)."""
    path = pathlib.Path(path)
    UNREADABLE.add(os.fspath(path))
    return path


@pytest.fixture
def deny_unreadable(monkeypatch):
    """Make ``os.open`` of the paths marked by :func:`Unreadable` fail with EACCES."""
    import errno

    real_open = os.open

    def guarded_open(path, *args, **kwargs):
        name = os.fsdecode(path) if isinstance(path, (bytes, str, os.PathLike)) else path
        if name in UNREADABLE:
            raise PermissionError(errno.EACCES, "Permission denied", name)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", guarded_open)


@pytest.fixture
def no_face_extra(monkeypatch):
    """dlib made unimportable (as without the faces extra); the loaded face models forgotten before and after."""
    from diffmorph.core import faces

    faces._models.cache_clear()
    monkeypatch.setitem(sys.modules, "dlib", None)
    yield
    faces._models.cache_clear()


@pytest.fixture(scope="session")
def toy_pair():
    """The toy images as uint8 (256, 256, 3) RGB: (source, target)."""
    return read_rgb(TOY_A), read_rgb(TOY_B)


@pytest.fixture(scope="session")
def toy_working(toy_pair):
    """The toy pair at the small working size: float32 (1, 64, 64, 3) each, in [-1, 1]."""
    from diffmorph.core.render import to_working

    return to_working(toy_pair[0], SMALL_SIZE), to_working(toy_pair[1], SMALL_SIZE)


@pytest.fixture(scope="session")
def cli_run(tmp_path_factory):
    """One end-to-end morph on the toy pair, shared by the output assertions.

    ``--size 64 -e 12 --steps 12 --seed 0 -q -o OUT`` in-process; returns (Run, OUT).
    """
    out = tmp_path_factory.mktemp("cli_e2e") / "out"
    flags = tiny_flags(size=SMALL_SIZE, train_steps=12, frames=12, formats=None, plain=False)
    run = run_cli(["-s", TOY_A, "-t", TOY_B, *flags, "-o", out])
    return run, out


@pytest.fixture(scope="session")
def rendered_run(tmp_path_factory):
    """One complete morph of the toy pair with every format, shared read-only (copy it to write).

    ``--size 64 -e 12 --steps 6 --seed 0 --formats mp4,gif,frames --plain -q -o OUT``
    in-process; returns (Run, OUT). Its ``OUT/morph/maps.npz`` is the maps file the
    re-render tests read.
    """
    out = tmp_path_factory.mktemp("rendered") / "out"
    flags = tiny_flags(RENDERED_TRAIN_STEPS, RENDERED_FRAMES, "mp4,gif,frames", size=SMALL_SIZE)
    run = run_cli(["-s", TOY_A, "-t", TOY_B, *flags, "-o", out])
    assert run.returncode == 0, run.stderr
    return run, out


class Calls(Progress):
    """A :class:`diffmorph.Progress` that appends what it is told to ``calls``:
    ``("start", phase, total)``, ``(done, total)`` per update, ``("end",)``."""

    def __init__(self, calls: list):
        self.calls, self.totals = calls, []

    def start(self, phase, total, done=0):
        self.totals.append(total)
        self.calls.append(("start", phase, total))

    def update(self, done, status=None):
        self.calls.append((done, self.totals[-1]))

    def end(self):
        self.totals.pop()
        self.calls.append(("end",))


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (for a server a test starts)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class WebApp(tuple):
    """``(url, sessions root folder)``, and ``log()``: what the server logged (for failure messages)."""

    def __new__(cls, url, root, records):
        app = super().__new__(cls, (url, root))
        app.records = records
        return app

    def log(self) -> str:
        import logging

        formatter = logging.Formatter("%(name)s %(levelname)s: %(message)s")
        return "\n".join(formatter.format(record) for record in self.records) or "(nothing logged)"


@pytest.fixture(scope="module")
def web_app(tmp_path_factory):
    """The web app (``diffmorph.web.app.serve``) serving on a free localhost port for one
    test module: a :class:`WebApp` ``(url, sessions root folder)`` that keeps the server's log."""
    import logging
    import logging.handlers

    from diffmorph.web.app import serve

    handler = logging.handlers.BufferingHandler(capacity=10_000)  # its records: handler.buffer
    handler.setLevel(logging.INFO)
    loggers = [logging.getLogger(name) for name in ("diffmorph", "gradio", "uvicorn.error")]
    for logger in loggers:
        logger.addHandler(handler)
    root = tmp_path_factory.mktemp("web-sessions")
    demo, url = serve("127.0.0.1", free_port(), root)
    yield WebApp(url, root, handler.buffer)
    demo.close()
    for logger in loggers:
        logger.removeHandler(handler)
