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
    assert str(caught.value) == "points_csv: the header must be source_x,source_y,target_x,target_y (got 1,2,3)"
    mp4, _ = call(url, TOY_A, TOY_B, 3)
    assert len(read_video(mp4)[0]) == 3


def test_points_csv_is_the_librarys_reader_with_its_coordinate_rule():
    """One reader, one rule: the page's CSV is diffmorph.io.points' (header required), and a
    point of a W x H image is inside from -0.5 to W - 0.5 (the old page parser refused
    -0.5 and accepted nothing the library's rule did not)."""
    from diffmorph.io.points import read_points

    pairs = [[1, 2, 3, 4], [5.5, 6, 7, 8.25], [9, 9, None, None]]  # the last one is still pending
    text = points.csv_text(pairs)
    assert text.splitlines()[0] == "source_x,source_y,target_x,target_y"
    np.testing.assert_array_equal(points.read_text(text), [[1, 2, 3, 4], [5.5, 6, 7, 8.25]])
    np.testing.assert_array_equal(read_points(text), points.read_text(text))
    assert points.read_text("").shape == points.read_text("  \n").shape == (0, 4)
    edge = points.read_text("source_x,source_y,target_x,target_y\n-0.5,-0.5,39.5,29.5")  # no final newline
    points.check_inside(edge, (30, 40, 3), (30, 40, 3))  # the corners' outer edges: inside
    with pytest.raises(InputError, match=r"points CSV row 2: 'x' is not a number"):
        points.read_text("source_x,source_y,target_x,target_y\n1,2,3,4\n1,2,x,4")
    with pytest.raises(InputError, match=r"row 1: the target point \(39.6, 1\) is outside the target image"):
        points.check_inside(np.array([[1, 1, 39.6, 1]]), (30, 40, 3), (30, 40, 3))


def test_markers_are_drawn_where_the_points_are():
    from diffmorph.app.markers import draw_markers

    image = np.zeros((60, 80, 3), np.uint8)
    marked = draw_markers(image, [(10, 20), None, (70, 50)])
    assert image.sum() == 0  # a copy
    assert marked[20, 10].tolist() == [255, 40, 40]  # the dot's colour at its centre
    assert marked[20, 10 - 3 : 10 + 4].any(axis=1).all() and not marked[5:10, 40:45].any()  # a dot 7 pixels wide
    assert marked[50, 70].any()


def own_sessions(tmp_path, **limits):
    from diffmorph.web.limits import Limits
    from diffmorph.web.sessions import Sessions

    return Sessions(tmp_path / "root", tmp_path / "cache", Limits(**limits))


def test_only_own_old_sessions_are_removed_and_running_ones_never(tmp_path):
    sessions = own_sessions(tmp_path, max_age_s=3600, max_disk_bytes=10_000, max_sessions=3)
    root = sessions.root
    foreign = root / "project"  # a user's folder, two days old: never ours to remove
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine\n")
    os.utime(foreign, (time.time() - 2 * 86400,) * 2)
    fake = root / ("0" * 32)  # named like a session, without the root's token
    fake.mkdir()
    (fake / ".diffmorph-session").write_text("f" * 32 + "\n")
    old, big, new = (sessions.get(key) for key in ("old", "big", "new"))
    old.used -= 7200
    (big.folder / "x.bin").write_bytes(b"0" * 20_000)
    sessions.measure(big)
    big.used -= 60
    removed = sessions.make_room(new, 100)
    assert set(removed) == {old.folder, big.folder}
    assert not old.folder.exists() and not big.folder.exists() and new.folder.is_dir()
    assert foreign.is_dir() and (foreign / "notes.txt").is_file() and fake.is_dir()
    # bounded: a fourth session replaces the least recently used idle one, never a running one
    running = sessions.get("a")
    running.runner = object()
    running.used -= 9999
    sessions.get("b")
    sessions.get("c")
    assert len(sessions) == 3 and sessions.get("a") is running and running.folder.is_dir()
    for key in ("b", "c"):
        sessions.get(key).runner = object()
    from diffmorph.web.sessions import Busy

    with pytest.raises(Busy, match="the server is busy"):
        sessions.get("d")


def test_a_non_empty_foreign_root_is_refused_and_an_own_one_is_reused(tmp_path):
    from diffmorph.web.sessions import claim_root

    root = tmp_path / "projects"
    root.mkdir()
    (root / "thesis.tex").write_text("x\n")
    with pytest.raises(InputError, match="the output root holds files this app did not write"):
        claim_root(root)
    fresh = tmp_path / "fresh"
    token = claim_root(fresh)
    assert len(token) == 32 and claim_root(fresh) == token  # ours: the same token next time
    run = run_cli(["app", "--port", str(free_port()), "--output-root", root])
    assert run.returncode == 2
    assert run.lines == [
        f"diffmorph app: error: --output-root {root}: the output root holds files this app did not write; "
        "choose an empty or new folder (the app removes old session folders in it) (see 'diffmorph app --help')"
    ]


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

    from diffmorph.web.app import make_config

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
        "from diffmorph.web.app import serve\n"
        "demo, url = serve('127.0.0.1', int(sys.argv[1]), tempfile.mkdtemp())\n"
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


def test_files_handed_to_the_page_are_links_kept_per_kind(tmp_path):
    sessions = own_sessions(tmp_path)
    session = sessions.get("tab")
    output = session.folder / "morph.mp4"
    output.write_bytes(b"video")
    (mp4,) = sessions.hand_out(session, [output])
    assert Path(mp4).read_bytes() == b"video" and os.path.samefile(mp4, output)
    assert Path(mp4).is_relative_to(tmp_path / "cache") and Path(mp4).name == "morph.mp4"
    for _ in range(3):  # the page's later point edits do not take the results' files away
        sessions.new_batch(session, "points")
    assert Path(mp4).is_file() and len(list((session.served / "points").iterdir())) == 2
    sessions.measure(session)
    assert session.bytes == len(b"video") + 33  # and the marker (token, newline): a link counted once
    assert sessions.hand_out(session, [None]) == [None]


def test_resume_decision_and_snapshots_come_from_the_library(tmp_path):
    """The page resumes a stopped run only when diffmorph.app.runs.can_resume (the checkpoint's
    own record) says morph(resume=True) would continue it."""
    import diffmorph
    from diffmorph.app.runs import can_resume, latest_snapshot

    a, b = diffmorph.load_image(TOY_A), diffmorph.load_image(TOY_B)
    config = diffmorph.MorphConfig(size=32, train_steps=4, frames=2, seed=1)
    out = tmp_path / "run"
    diffmorph.morph(a, b, out, config, options=diffmorph.OutputOptions(formats=("gif",)))
    assert can_resume(out, a, b, config) and can_resume(out, a, b, config.replace(train_steps=9))
    assert not can_resume(out, a, b, config.replace(train_steps=3))  # the checkpoint is past it
    assert not can_resume(out, a, b, config.replace(size=48))
    assert not can_resume(out, b, a, config)
    assert not can_resume(out, a, b, config, np.array([[1.0, 1, 2, 2]]))  # other point pairs
    assert not can_resume(tmp_path / "none", a, b, config)
    assert latest_snapshot(out).name == "a_to_b_4.jpg" and latest_snapshot(tmp_path / "none") is None


def test_the_pairs_table_edited_by_hand_is_read_by_the_librarys_reader(tmp_path):
    import types

    import pandas as pd

    from diffmorph.web.app import Page

    page = Page(own_sessions(tmp_path))
    request = types.SimpleNamespace(session_hash="tab")
    session = page.session(request)
    session.images = {"source": np.zeros((30, 40, 3), np.uint8), "target": np.zeros((30, 40, 3), np.uint8)}
    table = pd.DataFrame([[1, 10, 20, 30.5, 29.5], [2, 5, 5, "", ""]], columns=["#", *points.HEADER])
    view = page.edit_pairs(table, request)
    assert session.pairs == [[10.0, 20.0, 30.5, 29.5], [5.0, 5.0, None, None]]  # the last one: still picking
    assert view[2] == [[1, 10.0, 20.0, 30.5, 29.5], [2, 5.0, 5.0, "", ""]]
    for bad, said in (
        ([1, "x", 2, 3, 4], "the pairs table row 1: 'x' is not a number"),
        ([1, 1, 1, 40, 1], r"point pairs row 1: the target point \(40, 1\) is outside the target image"),
    ):
        with pytest.warns(UserWarning, match=said):  # the page's warning toast, outside a request
            page.edit_pairs(pd.DataFrame([bad], columns=["#", *points.HEADER]), request)
        assert session.pairs[0] == [10.0, 20.0, 30.5, 29.5]  # unchanged


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
