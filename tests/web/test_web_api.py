"""The web app without a browser: the ``/morph`` endpoint through gradio_client (two clients at
once), its one-line errors, the points CSV, session folders and ``diffmorph app`` itself."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("gradio")
pytest.importorskip("gradio_client")

from conftest import REPO, TOY_A, TOY_B, cli_env, free_port, read_gif, read_video, run_cli  # noqa: E402
from diffmorph.errors import InputError  # noqa: E402
from diffmorph.web import points  # noqa: E402
from diffmorph.web.sessions import Sessions  # noqa: E402


@pytest.fixture(scope="module")
def app(web_app):
    return web_app  # (url, sessions root)


def call(url, source, target, frames, points_csv=""):
    from gradio_client import Client, handle_file

    client = Client(url, verbose=False)
    return client.predict(
        handle_file(str(source)), handle_file(str(target)), "faithful", 32, 3, frames, points_csv, api_name="/morph"
    )


def test_two_concurrent_clients_both_finish_with_their_own_outputs(app):
    url, root = app
    results, errors = {}, []

    def one(frames):
        try:
            results[frames] = call(url, TOY_A, TOY_B, frames, "source_x,source_y,target_x,target_y\n5,5,6,6\n")
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(frames,)) for frames in (4, 5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert not errors
    assert sorted(results) == [4, 5]
    for frames, (mp4, gif) in results.items():
        assert mp4.endswith(".mp4") and gif.endswith(".gif")
        assert len(read_video(mp4)[0]) == frames
        assert len(read_gif(gif)[0]) == frames
    assert results[4][0] != results[5][0]
    sessions = [p for p in root.iterdir() if (p / "run" / "morph" / "morph.mp4").exists()]
    assert len(sessions) == 2  # one folder per client


def test_bad_upload_is_one_line_and_the_server_keeps_serving(app, tmp_path):
    from gradio_client.exceptions import AppError

    url, _ = app
    text = tmp_path / "notes.png"
    text.write_text("not an image\n")
    with pytest.raises(AppError) as caught:
        call(url, text, TOY_B, 4)
    assert str(caught.value) == "source image: the file is text, not an image file"
    tiny = tmp_path / "dot.png"
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(tiny)
    with pytest.raises(AppError) as caught:
        call(url, TOY_A, tiny, 4)
    assert str(caught.value).startswith("target image: 1x1 pixels is too small")
    assert str(tmp_path) not in str(caught.value)  # no server paths in the page's messages
    with pytest.raises(AppError) as caught:
        call(url, TOY_A, TOY_B, 4, "1,2,3\n")
    assert "points CSV line 1" in str(caught.value) and "\n" not in str(caught.value)
    mp4, _ = call(url, TOY_A, TOY_B, 3)
    assert len(read_video(mp4)[0]) == 3


def test_points_csv_reads_what_it_writes_and_names_bad_lines():
    pairs = [[1, 2, 3, 4], [5.5, 6, 7, 8.25], [9, 9, None, None]]  # the last one is still pending
    text = points.to_csv(pairs)
    assert text.splitlines()[0] == "source_x,source_y,target_x,target_y"
    np.testing.assert_array_equal(points.parse_csv(text), [[1, 2, 3, 4], [5.5, 6, 7, 8.25]])
    assert points.parse_csv("").shape == (0, 4)
    assert points.parse_csv("# comment\n\n1,2,3,4\n").shape == (1, 4)
    for bad, line in (("1,2,3\n", 1), ("source_x,source_y,target_x,target_y\n1,2,3,4\n1,2,x,4", 3), ("1,2,3,-4", 1)):
        with pytest.raises(InputError, match=f"points CSV line {line}: expected four numbers"):
            points.parse_csv(bad)
    with pytest.raises(InputError, match="pair 1: .* outside the target image"):
        points.check_inside(np.array([[1, 1, 40, 1]]), (30, 40, 3), (30, 40, 3))


def test_markers_are_drawn_where_the_points_are():
    image = np.zeros((60, 80, 3), np.uint8)
    marked = points.draw_markers(image, [(10, 20), None, (70, 50)])
    changed = np.argwhere(marked.any(axis=2))
    assert changed.size and image.sum() == 0  # a copy
    ring = marked[20, 10 - 3 : 10 + 4].any(axis=1)  # the ring crosses the row of its centre
    assert ring.any() and not marked[5:10, 40:45].any()
    assert marked[50, 63:78].any()


def test_old_and_oversized_session_folders_are_removed(tmp_path):
    sessions = Sessions(tmp_path, max_age_s=3600, max_total_bytes=10_000)
    old, big, new = (sessions.get(key).folder for key in ("old", "big", "new"))
    os.utime(old, (time.time() - 7200,) * 2)
    (big / "x.bin").write_bytes(b"0" * 20_000)
    os.utime(big, (time.time() - 60,) * 2)
    (new / "y.bin").write_bytes(b"0" * 100)
    removed = sessions.sweep()
    assert set(removed) == {old, big}
    assert new.is_dir() and not old.exists() and not big.exists()
    assert sessions.get("old").folder not in (old, big)  # a returning session gets a fresh folder
    assert all(len(p.name) == 32 for p in tmp_path.iterdir())  # names are random, never from the request
    kept = sessions.get("tab")
    kept.pairs.append([1, 2, 3, 4])
    sessions.forget("tab")  # the tab closed: its state goes, its folder stays until swept
    assert sessions.get("tab").pairs == [] and kept.folder.is_dir()


def test_app_command_help_and_missing_gradio(monkeypatch):
    run = run_cli(["app", "--help"])
    assert run.returncode == 0 and "--output-root" in run.stdout
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "gradio" else real(name, *a))
    run = run_cli(["app", "--port", "1"])
    assert run.returncode == 1
    assert run.lines == ["diffmorph: error: the web app needs Gradio: pip install 'diffmorph[app]'"]


def test_the_app_serves_without_loading_tensorflow(tmp_path):
    port = free_port()
    code = (
        "import sys, threading, urllib.request\n"
        "from diffmorph.cli.main import main\n"
        "threading.Thread(target=main, args=(['app', '--port', sys.argv[1], '--output-root', sys.argv[2]],),"
        " daemon=True).start()\n"
        "import time\n"
        "for _ in range(600):\n"
        "    try:\n"
        "        page = urllib.request.urlopen(f'http://127.0.0.1:{sys.argv[1]}/', timeout=5).read()\n"
        "        break\n"
        "    except OSError:\n"
        "        time.sleep(0.1)\n"
        "assert b'diffmorph' in page\n"
        "print('tensorflow' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(port), str(tmp_path)],
        cwd=REPO,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "False"


def test_settings_from_the_page_go_through_preset_config():
    import gradio as gr

    from diffmorph.web.app import make_config, run_key

    config = make_config("best", size=32.0, train_steps=5.0, frames=4.0, fps=12.5, seed="  7 ", hold=None)
    assert (config.size, config.train_steps, config.frames, config.fps, config.seed) == (32, 5, 4, 12.5, 7)
    assert config.render_kernel == "bicubic" and config.hold == 0  # the preset's kernel; a blank field: default
    assert make_config("faithful", seed="").seed is None  # blank: a random seed
    with pytest.raises(gr.Error, match="seed must be a whole number"):
        make_config("faithful", seed="x1")
    with pytest.raises(gr.Error, match="size must be an integer from 16 to 2048"):
        make_config("faithful", size=8)
    with pytest.raises(gr.Error, match="preset must be one of"):
        make_config("nope")
    a, b = np.zeros((4, 4, 3), np.uint8), np.ones((4, 4, 3), np.uint8)
    no_points, one_point = np.zeros((0, 4)), np.array([[1.0, 1, 2, 2]])
    keys = {run_key(a, b, config, no_points), run_key(a, b, config, one_point), run_key(b, a, config, no_points)}
    keys.add(run_key(a, b, config.replace(train_steps=6), no_points))
    assert len(keys) == 4 and run_key(a, b, config, no_points) == run_key(a.copy(), b, config, no_points)


def test_a_port_in_use_is_one_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = run_cli(["app", "--port", str(port), "--output-root", str(tmp_path / "root")])
    assert run.returncode == 1
    assert len(run.lines) == 1 and run.lines[0].startswith(f"diffmorph: error: cannot serve on 127.0.0.1:{port}")


def test_a_failed_run_leaves_a_failed_status_line_and_raises_one_line():
    import gradio as gr

    from diffmorph.web.app import shown_failures

    def updates(error):
        yield ("Training: 1 of 5", gr.skip())
        raise error

    seen = []
    with pytest.raises(gr.Error) as raised:
        seen.extend(shown_failures(updates(InputError("train_steps must be at least 1"))))
    assert [u[0] for u in seen] == ["Training: 1 of 5", "Failed: train_steps must be at least 1"]
    assert raised.value.message == "train_steps must be at least 1"
    seen.clear()
    with pytest.raises(gr.Error) as raised:  # an unexpected error: the same one line, no traceback
        seen.extend(shown_failures(updates(RuntimeError("disk on fire\nat line 3"))))
    assert seen[-1][0] == "Failed: the run failed (RuntimeError: disk on fire)"
    assert raised.value.message == "the run failed (RuntimeError: disk on fire)" and len(seen[-1]) == 8


def own_uploads_env() -> dict:
    """A user's environment without this process's GRADIO_TEMP_DIR: the process picks its own."""
    return {k: v for k, v in cli_env().items() if k != "GRADIO_TEMP_DIR"}


def test_each_process_has_its_own_upload_folder(app, monkeypatch, tmp_path):
    """Gradio's shared ``<temp>/gradio`` let one server's close delete another's upload of the
    same image (the second server's run then failed with "no such file")."""
    import tempfile

    import gradio.utils

    from diffmorph.web.app import use_own_upload_folder

    ours = Path(gradio.utils.get_upload_folder())
    assert ours.name.startswith("diffmorph-gradio-") and ours.is_dir()
    assert ours != Path(tempfile.gettempdir()) / "gradio"
    assert use_own_upload_folder() == ours  # the same folder for every server of this process
    code = "from diffmorph.web.app import use_own_upload_folder as f; print(f())"
    other = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=own_uploads_env(), capture_output=True, text=True, timeout=120
    )
    assert other.returncode == 0, other.stderr[-2000:]
    theirs = Path(other.stdout.strip())
    assert theirs.name.startswith("diffmorph-gradio-") and theirs != ours
    assert not theirs.exists()  # removed when that process ended
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path))  # the user's choice is left alone
    assert use_own_upload_folder() == tmp_path


def test_closing_another_server_keeps_this_servers_upload(app):
    import gradio.utils

    call(app[0], TOY_A, TOY_B, 3)  # uploads both images to this server
    uploads = sorted(Path(gradio.utils.get_upload_folder()).glob("*/toy_a.png"))
    assert uploads
    code = (
        "import sys, tempfile\n"
        "from gradio_client import Client, handle_file\n"
        "from diffmorph.web.app import launch\n"
        "demo, url = launch('127.0.0.1', int(sys.argv[1]), tempfile.mkdtemp(), block=False)\n"
        "Client(url, verbose=False).predict(handle_file(sys.argv[2]), handle_file(sys.argv[3]), 'faithful', 32, 3, 3,"
        " '', api_name='/morph')\n"
        "demo.close()\n"
    )
    other = subprocess.run(
        [sys.executable, "-c", code, str(free_port()), str(TOY_A), str(TOY_B)],
        cwd=REPO,
        env=own_uploads_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert other.returncode == 0, other.stderr[-2000:]
    assert [path for path in uploads if not path.is_file()] == []  # the other server's close left them


def test_the_page_opens_with_the_preview_and_estimates_the_run():
    from diffmorph.app import estimate
    from diffmorph.config import preset_config
    from diffmorph.web import app

    assert app.FIRST_PRESET == "preview" and app.FULL_PRESET == "faithful"
    faithful = [update["value"] for update in app.preset_values("faithful")]
    assert faithful[:3] == [1024, 1000, 100]  # size, train steps, frames: the library's defaults
    preview = preset_config("preview")
    assert [update["value"] for update in app.preset_values("preview")][:3] == [
        preview.size,
        preview.train_steps,
        preview.frames,
    ]
    full = app.full_quality()
    assert full[0]["value"] == "faithful" and [u["value"] for u in full[1:]] == faithful
    estimate.clear_records()
    quick = app.estimate_line("preview", 128, 120, 20, 0, str(TOY_A))
    slow = app.estimate_line("faithful", 1024, 1000, 100, 0, str(TOY_A))
    assert quick.startswith("Estimated time on this machine: about ") and " s (start " in quick
    assert " min (start " in slow  # 1000 steps at 1024: minutes
    assert app.estimate_line("faithful", 8, 1000, 100, 0, None) == "Estimated time: - (check the settings)"
    assert app.estimate_line("faithful", 64, 10, 5, 0, str(TOY_A) + ".missing").startswith("Estimated time on")
