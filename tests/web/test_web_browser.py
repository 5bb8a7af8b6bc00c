"""The web app in a real browser: Selenium driving Debian's Chromium headless (marked ``browser``).

The app runs in this process on a free localhost port; Chromium resolves no other host
(as with the network off), and every request it makes is checked to go to the app. Each
test saves a screenshot under pytest's temporary folder (``artefacts/``).
"""

from __future__ import annotations

import shutil
import time
import urllib.request
import zipfile

import pytest

pytest.importorskip("gradio")
webdriver = pytest.importorskip("selenium.webdriver")

from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402

from conftest import TOY_A, TOY_B, read_video  # noqa: E402

pytestmark = pytest.mark.browser
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
WAIT_S = 300  # a run: TensorFlow's first compile on a loaded 2-core machine


@pytest.fixture(scope="module")
def app(web_app):
    return web_app[0]  # the page's URL


@pytest.fixture(scope="module")
def artefacts(tmp_path_factory):
    return tmp_path_factory.mktemp("artefacts")


@pytest.fixture
def browser(app, web_app, artefacts, request):
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,2200",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",  # no other host
        "--disable-background-networking",
        "--no-first-run",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    if not shutil.which(CHROMIUM) or not shutil.which(CHROMEDRIVER):
        pytest.fail("Chromium and chromedriver are needed (apt-get install chromium chromium-driver)")
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.server_log = web_app.log  # shown when a wait times out
    driver.set_page_load_timeout(60)
    driver.get(app)
    wait_for(driver, lambda: driver.find_elements(By.CSS_SELECTOR, "#run"), 60)
    yield driver
    driver.save_screenshot(str(artefacts / f"{request.node.name}.png"))
    driver.quit()


def wait_for(driver, condition, timeout=WAIT_S, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}; {page_state(driver)}")


def wait_for_status(driver, prefix, what, timeout=WAIT_S, before=None):
    """Wait until the status line starts with ``prefix``; fail at once on a ``Failed: ...``
    other than ``before`` (the line shown before the click)."""

    def reached():
        text = status(driver)
        if text.startswith("Failed") and text != before:
            raise AssertionError(f"{what} failed; {page_state(driver)}")
        return text.startswith(prefix)

    wait_for(driver, reached, timeout, what)


def page_state(driver) -> str:
    log = getattr(driver, "server_log", lambda: "")()
    return f"status {status(driver)!r}, tracker {tracker(driver)!r}, toasts {toasts(driver)!r}; server log:\n{log}"


def status(driver) -> str:
    """The status line (the Markdown's text, without Gradio's tracker: "Error", timers)."""
    found = driver.find_elements(By.CSS_SELECTOR, "#status [data-testid=markdown]")
    return found[0].text.strip() if found else ""


def tracker(driver) -> str:
    """Gradio's status tracker over the status line: a timer or queue place while an event is
    pending, "Error" after one failed, nothing when no event ran."""
    found = driver.find_elements(By.CSS_SELECTOR, "#status [data-testid=status-tracker]")
    return " ".join(found[0].text.split()) if found else ""


def toasts(driver) -> str:
    return " | ".join(e.text for e in driver.find_elements(By.CSS_SELECTOR, ".toast-body"))


def upload(driver, elem_id, path):
    field = driver.find_element(By.CSS_SELECTOR, f"#{elem_id} input[type=file]")
    field.send_keys(str(path))


def set_number(driver, elem_id, value):
    field = driver.find_element(By.CSS_SELECTOR, f"#{elem_id} input")
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys(str(value), Keys.TAB)


def click(driver, elem_id):
    """Click a button by its id, once it is shown and enabled: the click event goes to the
    element itself, not to whatever is at its screen position at that instant."""

    def ready():
        return [b for b in driver.find_elements(By.CSS_SELECTOR, f"#{elem_id}") if b.is_displayed() and b.is_enabled()]

    button = wait_for(driver, ready, 30, f"the {elem_id} button")[0]
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'}); arguments[0].click();", button)


def click_run(driver):
    """Press Run and wait until the page shows the run started (a queue place, a timer or a new
    status line). A press that started nothing within 30 s is pressed once more, as a user
    would (seen once in CI on a loaded machine; a second press cannot start a second run: the
    button's event runs once at a time)."""
    before = status(driver)
    click(driver, "run")
    try:
        wait_for(driver, lambda: tracker(driver) or status(driver) != before, 30, "the run to start")
    except AssertionError:
        click(driver, "run")


def click_image(driver, elem_id, fx, fy):
    """Click at fraction (fx, fy) of the image shown in ``elem_id``."""
    image = wait_for(driver, lambda: driver.find_elements(By.CSS_SELECTOR, f"#{elem_id} img"), 30, elem_id)[0]
    width, height = image.size["width"], image.size["height"]
    offset = (int((fx - 0.5) * width), int((fy - 0.5) * height))  # from the image's centre
    ActionChains(driver).move_to_element_with_offset(image, *offset).click().perform()


def requests_made(driver) -> list[str]:
    import json

    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def start_small_run(driver, steps):
    upload(driver, "source", TOY_A)
    upload(driver, "target", TOY_B)
    wait_for(driver, lambda: driver.find_elements(By.CSS_SELECTOR, "#pick-target img"), 60, "both images")
    set_number(driver, "size", 32)
    set_number(driver, "train-steps", steps)
    set_number(driver, "frames", 5)
    click_run(driver)


def test_page_loads_offline_with_no_console_errors(browser, app):
    wait_for(browser, lambda: "Click a point on the source" in browser.page_source, 60, "the page")
    time.sleep(2)  # late requests (fonts, analytics) would show up here
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []
    urls = requests_made(browser)
    assert urls
    outside = [u for u in urls if not u.startswith((app, "data:", "blob:"))]
    assert outside == []


def test_run_with_a_picked_pair_plays_the_video_downloads_it_and_re_renders(browser, app, tmp_path):
    upload(browser, "source", TOY_A)
    upload(browser, "target", TOY_B)
    click_image(browser, "pick-source", 0.25, 0.25)
    wait_for(browser, lambda: "now click its partner" in browser.page_source, 30, "pending pair")
    click_image(browser, "pick-target", 0.75, 0.5)
    cells = wait_for(
        browser, lambda: browser.find_elements(By.CSS_SELECTOR, '#pairs [role=gridcell][data-row="0"]'), 30, "the pair"
    )
    cells = [c.text for c in cells]
    assert cells[0] == "1"
    sx, sy, tx, ty = (float(c) for c in cells[1:5])
    assert abs(sx - 64) <= 6 and abs(sy - 64) <= 6 and abs(tx - 192) <= 6 and abs(ty - 128) <= 6  # 256x256 images
    set_number(browser, "size", 32)
    set_number(browser, "train-steps", 12)
    set_number(browser, "frames", 5)
    click_run(browser)
    wait_for_status(browser, "Done", "the run")
    duration = wait_for(
        browser,
        lambda: browser.execute_script("const v = document.querySelector('#video video'); return v && v.duration;"),
        30,
        "the video's duration",
    )
    assert duration == pytest.approx(5 / 45, abs=0.05)
    links = [a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, "#downloads a")]
    names = sorted({link.split("/")[-1].split("?")[0] for link in links if link})
    assert names == ["maps.npz", "morph.gif", "morph.mp4"]
    mp4 = next(link for link in links if link and link.split("?")[0].endswith(".mp4"))
    assert mp4.startswith(app)
    data = urllib.request.urlopen(mp4, timeout=30).read()
    path = tmp_path / "downloaded.mp4"
    path.write_bytes(data)
    frames, meta = read_video(path)
    assert len(frames) == 5 and meta["codec"] == "h264"
    click(browser, "zip-frames")  # the frames' ZIP is made when asked for
    zipped = wait_for(browser, lambda: browser.find_elements(By.CSS_SELECTOR, "#frames-zip a"), 60, "the frames' ZIP")[
        0
    ].get_attribute("href")
    assert zipped.startswith(app) and zipped.split("?")[0].endswith("/frames.zip")
    (tmp_path / "frames.zip").write_bytes(urllib.request.urlopen(zipped, timeout=30).read())
    with zipfile.ZipFile(tmp_path / "frames.zip") as archive:
        assert [n for n in archive.namelist() if n.endswith(".png")] == [f"frame_{k:05d}.png" for k in range(5)]

    set_number(browser, "frames", 3)  # re-rendered from the maps: no training
    click(browser, "rerender")
    wait_for_status(browser, "Re-rendered", "the re-render")
    assert "3 frames" in status(browser)
    links = [a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, "#downloads a")]
    mp4 = next(link for link in links if link and link.split("?")[0].endswith(".mp4"))
    path.write_bytes(urllib.request.urlopen(mp4, timeout=30).read())
    assert len(read_video(path)[0]) == 3


def test_a_text_file_as_source_shows_the_one_line_error_and_the_next_run_works(browser, tmp_path):
    text = tmp_path / "photo.png"
    text.write_text("hello, not an image\n")
    upload(browser, "source", text)
    upload(browser, "target", TOY_B)
    set_number(browser, "size", 32)
    set_number(browser, "train-steps", 3)
    set_number(browser, "frames", 3)
    click_run(browser)
    message = wait_for(browser, lambda: "the file is text" in toasts(browser) and toasts(browser), 60, "the error")
    assert "source image: the file is text, not an image file" in message
    failed = wait_for(browser, lambda: status(browser).startswith("Failed") and status(browser), 30, "the status")
    assert failed == "Failed: source image: the file is text, not an image file"  # stays after the toast fades
    assert "Traceback" not in browser.page_source
    upload(browser, "source", TOY_A)
    time.sleep(1)
    click_run(browser)
    wait_for_status(browser, "Done", "the second run", before=failed)
    assert "3 frames" in status(browser)


def test_stop_during_training_then_run_resumes(browser):
    start_small_run(browser, 2000)
    wait_for(browser, lambda: "Training: " in status(browser) and _step(status(browser)) >= 20, what="training")
    click(browser, "stop")
    wait_for(browser, lambda: status(browser).startswith("Stopped"), 120, "the stop")
    stopped = status(browser)
    assert "checkpoint saved" in stopped and "Press Run to resume" in stopped
    step = int(stopped.split("train step ")[1].split(";")[0])
    assert 20 <= step < 2000
    set_number(browser, "train-steps", 2000)
    click_run(browser)
    first = wait_for(browser, lambda: _step(status(browser)), 120, "the resumed training")
    assert first >= step
    click(browser, "stop")
    wait_for(browser, lambda: status(browser).startswith("Stopped"), 120, "the second stop")


def _step(text: str) -> int:
    """N in ``Training: N of M, ...`` (0 if absent)."""
    if not text.startswith("Training: "):
        return 0
    return int(text.split("Training: ")[1].split(" of ")[0])
