"""``diffmorph demo``: the bundled pair morphed with the demo's settings (flags override them),
guided by the bundled point pairs where there are some. Tiny sizes."""

import json

import pytest

from conftest import IMAGES, assert_one_line_error, run_cli
from diffmorph.app import demo as demo_module
from diffmorph.io import samples

TINY_DEMO = ["--size", 32, "-e", 2, "--steps", 3, "--plain", "--formats", "gif", "-q", "--report"]


def test_the_demo_settings():
    config = demo_module.demo_config()
    assert (config.size, config.train_steps, config.frames, config.fps, config.seed) == (256, 600, 60, 30.0, 0)
    assert (config.lr_schedule, config.render_kernel, config.pacing) == ("cosine", "bicubic", "uniform")  # best
    assert demo_module.demo_config("faithful", size=64).lr_schedule == "constant"


def test_demo_morphs_the_bundled_pair(tmp_path):
    run = run_cli(["demo", "-o", tmp_path / "d", *(flag for flag in TINY_DEMO if flag != "-q")])
    assert run.returncode == 0, run.stderr
    morph = tmp_path / "d" / "morph"
    assert (morph / "morph.gif").is_file() and not (morph / "morph.mp4").exists()
    guided = (IMAGES / samples.POINTS).is_file()  # the bundled pairs, once the repository has them
    assert (morph / "points.csv").is_file() == guided
    assert (json.loads((morph / "report.json").read_text())["input"]["points"] > 0) == guided
    done = f"diffmorph: done: 3 frames in {tmp_path / 'd' / 'morph'}; open {morph / 'morph.gif'}"
    assert run.lines[-1] == done, run.stderr


def test_demo_is_guided_by_the_bundled_points(tmp_path, monkeypatch):
    folder = tmp_path / "data"
    folder.mkdir()
    for name in ("astronaut.jpg", "cat.jpg"):
        (folder / name).write_bytes((IMAGES / name).read_bytes())
    (folder / samples.POINTS).write_text("source_x,source_y,target_x,target_y\n100,107,64,97\n150,107,184,115\n")
    monkeypatch.setattr(samples, "samples_dir", lambda: folder)
    run = run_cli(["demo", "-o", tmp_path / "guided", *TINY_DEMO])
    assert run.returncode == 0, run.stderr
    morph = tmp_path / "guided" / "morph"
    assert (morph / "points.csv").read_text().splitlines()[0] == "source_x,source_y,target_x,target_y"
    assert json.loads((morph / "report.json").read_text())["input"]["points"] == 2
    run = run_cli(["demo", "-o", tmp_path / "plain", "--unguided", *TINY_DEMO])
    assert run.returncode == 0 and not (tmp_path / "plain" / "morph" / "points.csv").exists()


@pytest.mark.parametrize(
    ("flags", "needle"),
    [(["--size", "8"], "--size"), (["--steps", "1"], "--steps"), (["--preset", "nope"], "--preset")],
)
def test_demo_bad_flags_are_one_line(tmp_path, flags, needle):
    assert_one_line_error(run_cli(["demo", "-o", tmp_path / "d", *flags]), 2, needle)


def test_demo_without_samples_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(samples, "__file__", str(tmp_path / "diffmorph" / "io" / "samples.py"))
    assert_one_line_error(run_cli(["demo", "-o", tmp_path / "d", "-q"]), 2, "sample images are missing")
    assert not (tmp_path / "d").exists()
