"""A server someone else can reach, tried as an outsider would: a direct POST past the queue,
a client that goes away mid-run, a foreign folder in the output root and a file request for
it, requests over the limits, a flood of sessions, a login, and messages without server paths."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest

pytest.importorskip("gradio")
pytest.importorskip("gradio_client")

from conftest import REPO, TOY_A, TOY_B, cli_env, free_port  # noqa: E402

RUN_THREAD = "diffmorph-web-run"  # the name of a run's worker thread (diffmorph.web.runs.Runner)


@pytest.fixture(scope="module")
def app(web_app):
    return web_app  # (url, sessions root), the default limits


@pytest.fixture
def server(tmp_path):
    """Start a server with the given limits (and auth) on a free port; closed after the test."""
    from diffmorph.web.app import serve
    from diffmorph.web.limits import Limits

    started = []

    def start(root=None, auth=None, **limits):
        demo, url = serve("127.0.0.1", free_port(), root or tmp_path / "root", limits=Limits(**limits), auth=auth)
        started.append(demo)
        return url

    yield start
    for demo in started:
        demo.close()


def runs_alive() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == RUN_THREAD and t.is_alive()]


def wait_until(condition, timeout, what):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def morph(url, size=32, steps=3, frames=3, source=TOY_A, points="", auth=None):
    from gradio_client import Client, handle_file

    client = Client(url, verbose=False, auth=auth)
    return client.predict(
        handle_file(str(source)), handle_file(str(TOY_B)), "faithful", size, steps, frames, points, api_name="/morph"
    )


def post(url, body) -> tuple[int, str]:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def get(url) -> int:
    try:
        with urllib.request.urlopen(url, timeout=30) as answer:
            return answer.status
    except urllib.error.HTTPError as exc:
        return exc.code


def upload(url, path) -> dict:
    """Upload a file as Gradio's page does; returns the FileData an event takes."""
    import httpx

    with open(path, "rb") as file:
        answer = httpx.post(f"{url}gradio_api/upload", files={"files": (path.name, file, "image/png")}, timeout=60)
    answer.raise_for_status()
    return {"path": answer.json()[0], "meta": {"_type": "gradio.FileData"}, "orig_name": path.name}


def test_a_direct_post_cannot_skip_the_queue(app):
    """Gradio's REST routes run an event at once, outside the queue, unless api_open=False:
    five such calls made five morphs at once."""
    url, root = app
    data = [upload(url, TOY_A), upload(url, TOY_B), "faithful", 32, 3, 3, ""]
    before = {p.name for p in root.iterdir()}
    status, text = post(f"{url}gradio_api/run/morph", {"data": data})
    assert status == 404 and "join the queue" in text
    for fn_index in range(40):  # every event of the page, by number
        status, _ = post(f"{url}gradio_api/run/predict", {"data": [], "fn_index": fn_index, "session_hash": "x"})
        assert status != 200, fn_index
    assert {p.name for p in root.iterdir()} == before  # no session made, nothing ran
    assert runs_alive() == []


@pytest.mark.slow  # real optimisation runs or a subprocess
def test_a_client_that_goes_away_cancels_its_run(app, tmp_path):
    """A client killed mid-run: its run stops (its thread ends) instead of training on."""
    url, _ = app
    code = (
        "import sys, time\n"
        "from gradio_client import Client, handle_file\n"
        "client = Client(sys.argv[1], verbose=False)\n"
        "job = client.submit(handle_file(sys.argv[2]), handle_file(sys.argv[3]), 'faithful', 128, 2000, 3, '',"
        " api_name='/morph')\n"
        "print('submitted', flush=True)\n"
        "time.sleep(600)\n"
    )
    client = subprocess.Popen(
        [sys.executable, "-c", code, url, str(TOY_A), str(TOY_B)],
        cwd=REPO,
        env=cli_env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert client.stdout.readline().strip() == "submitted"
        wait_until(lambda: runs_alive(), 180, "the run to start")  # seen on the server, not by the client's status
        time.sleep(3)  # training
    finally:
        os.kill(client.pid, signal.SIGKILL)
        client.wait(30)
    wait_until(lambda: not runs_alive(), 60, "the run of the client that went away to stop")
    mp4, _ = morph(url)  # the slot is free: the next client's run goes through
    assert mp4.endswith(".mp4")


@pytest.mark.slow  # real optimisation runs or a subprocess
def test_only_what_the_app_made_is_deleted_or_served(server, tmp_path):
    """A foreign folder (two days old) and a file in the root survive a run; the root's files
    cannot be fetched through /gradio_api/file=; the run's own outputs are served."""
    root = tmp_path / "root"
    url = server(root=root, max_age_s=3600)
    foreign = root / "project"
    foreign.mkdir()
    (foreign / "data.csv").write_text("1,2\n")
    os.utime(foreign, (time.time() - 2 * 86400,) * 2)
    notes = root / "notes.txt"
    notes.write_text("private\n")
    mp4, gif = morph(url)
    assert foreign.is_dir() and (foreign / "data.csv").is_file() and notes.is_file()
    assert get(f"{url}gradio_api/file={notes}") == 403
    assert get(f"{url}gradio_api/file={foreign / 'data.csv'}") == 403
    outputs = [p for p in root.glob("*/run/morph/morph.mp4")]
    assert len(outputs) == 1 and get(f"{url}gradio_api/file={outputs[0]}") == 403  # not from the root
    assert open(mp4, "rb").read() == outputs[0].read_bytes()  # what the client got: the run's own output


def test_requests_over_the_limits_are_refused_before_any_work(app, server):
    from gradio_client.exceptions import AppError

    url, _ = app
    for settings, message in (
        (dict(size=2048), "size 2048 is over this server's limit of 1024"),
        (dict(steps=1_000_000), "train_steps 1000000 is over this server's limit of 2000"),
        (dict(frames=5000), "frames (with the hold's end frames) 5000 is over this server's limit of 300"),
    ):
        started = time.monotonic()
        with pytest.raises(AppError) as caught:
            morph(url, **settings)
        assert str(caught.value) == message
        assert time.monotonic() - started < 30 and runs_alive() == []
    small_disk = server(root=None, max_disk_bytes=10_000_000)
    with pytest.raises(AppError, match=r"^this run needs up to \d+ MB and the server keeps at most 10 MB"):
        morph(small_disk)


@pytest.mark.slow  # real optimisation runs or a subprocess
def test_a_run_past_its_time_limit_is_cancelled(server):
    from gradio_client.exceptions import AppError

    url = server(max_run_s=4)
    started = time.monotonic()
    with pytest.raises(AppError) as caught:
        morph(url, size=128, steps=2000)
    assert str(caught.value).startswith("Stopped: the run passed this server's time limit of 0.0666667 minutes;")
    assert time.monotonic() - started < 120
    wait_until(lambda: not runs_alive(), 30, "the run to end")


@pytest.mark.slow  # real optimisation runs or a subprocess
def test_a_flood_of_sessions_keeps_a_bounded_number(server, tmp_path):
    """Each client is a new session; the server keeps at most max_sessions of them (and their
    folders), replacing idle ones."""
    from gradio_client.exceptions import AppError

    root = tmp_path / "root"
    url = server(root=root, max_sessions=3)
    text = tmp_path / "notes.png"
    text.write_text("not an image\n")
    for _ in range(8):
        with pytest.raises(AppError, match="source image: the file is text"):
            morph(url, source=text)
    sessions = [p for p in root.iterdir() if p.is_dir()]
    assert len(sessions) == 3
    mp4, _ = morph(url)  # a real run still goes through
    assert mp4.endswith(".mp4") and len([p for p in root.iterdir() if p.is_dir()]) == 3


def test_auth_is_asked_of_every_client(server):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    url = server(auth=("ada", "s3cret"))
    assert get(f"{url}gradio_api/info") == 401
    with pytest.raises(Exception):  # noqa: B017 (gradio_client's own error for a refused login)
        Client(url, verbose=False)
    with pytest.raises(AppError, match="size 2048 is over"):
        morph(url, size=2048, auth=("ada", "s3cret"))  # logged in: the request reaches the app


def test_page_messages_carry_no_server_paths(app):
    from diffmorph.errors import OutputError
    from diffmorph.web.app import fail

    url, root = app
    folder = root / ("a" * 32) / "run" / "morph"
    assert str(root) not in fail(OutputError(f"cannot write {folder}/morph.mp4: disk full")).message
    assert fail(OutputError(f"cannot write {folder}/x")).message.startswith("cannot write the output folder/")
    said = fail(RuntimeError(f"{root}/x failed\nTraceback")).message
    assert said == "the run failed (RuntimeError: the output folder/x failed)"


@pytest.mark.slow  # real optimisation runs or a subprocess
def test_the_command_warns_about_a_reachable_host_and_checks_auth(tmp_path):
    from conftest import run_cli

    run = run_cli(["app", "--auth", "nopassword", "--output-root", tmp_path / "r"])
    assert run.returncode == 2 and run.lines == [
        "diffmorph app: error: --auth must be USER:PASSWORD, both non-empty (see 'diffmorph app --help')"
    ]
    run = run_cli(["app", "--max-frames", "0", "--output-root", tmp_path / "r"])
    assert run.returncode == 2 and run.lines == [
        "diffmorph app: error: --max-frames must be above 0 (see 'diffmorph app --help')"
    ]
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "diffmorph", "app", "--host", "0.0.0.0", "--port", str(port)],
        cwd=REPO,
        env=cli_env(),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = [server.stderr.readline() for _ in range(2)]
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(60)
    assert lines[0].startswith("diffmorph: serving on http://")
    assert lines[1].strip() == (
        f"diffmorph: warning: listening on 0.0.0.0: anyone who can reach this machine on port {port} "
        "can use the app; set --auth USER:PASSWORD"
    )


@pytest.mark.slow  # real optimisation runs or a subprocess
def test_a_full_queue_refuses_more(server):
    """At most queue_size events wait; more are refused at once instead of piling up."""
    from gradio_client import Client, handle_file

    url = server(queue_size=2)
    args = (handle_file(str(TOY_A)), handle_file(str(TOY_B)), "faithful", 128, 2000, 3, "")
    clients = [Client(url, verbose=False) for _ in range(4)]
    running = clients[0].submit(*args, api_name="/morph")
    wait_until(lambda: runs_alive(), 120, "the first run to start")
    waiting = [client.submit(*args, api_name="/morph") for client in clients[1:3]]
    wait_until(lambda: all(str(job.status().code) == "Status.IN_QUEUE" for job in waiting), 60, "two in the queue")
    with pytest.raises(Exception, match="Queue is full"):  # noqa: B017 (gradio_client's error for a refused join)
        clients[3].submit(*args, api_name="/morph").result(timeout=60)
    for job in [*waiting, running]:
        job.cancel()
    wait_until(lambda: not runs_alive(), 60, "the cancelled run to stop")
