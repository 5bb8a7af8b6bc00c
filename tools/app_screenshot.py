"""The web app's start-up time, a run's time through the page, and the README's screenshot.

``python -m tools.app_screenshot [--size 256] [--train-steps 200] [--runs 1] [--png docs/app.png]``

Starts ``python -m diffmorph app`` on a free localhost port (a subprocess, as a user
would) and prints the seconds until the page answers; then drives headless Chromium
(Selenium, Debian's ``chromium`` + ``chromedriver``): uploads the bundled photo pair,
picks one point pair, sets the working size and train steps (other settings: the
library's defaults, 100 frames), presses Run and prints the seconds until the results
are shown, then saves a screenshot of the page's top (downsized, palette PNG). The first
run of a process includes TensorFlow's import and compile; ``--runs 2`` also times a
second run in the same app. Print the CPU (``lscpu``) with the figures.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from tools.benchlib import REPO, describe_cpu, machine_info


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--train-steps", type=int, default=200)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--png", default=str(REPO / "docs" / "app.png"))
    parser.add_argument("--width", type=int, default=900, help="width of the saved screenshot in pixels")
    args = parser.parse_args()

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    port, root = free_port(), tempfile.mkdtemp(prefix="diffmorph-app-bench-")
    url = f"http://127.0.0.1:{port}/"
    start = time.perf_counter()
    server = subprocess.Popen(
        [sys.executable, "-m", "diffmorph", "app", "--port", str(port), "--output-root", root], cwd=REPO
    )
    try:
        while True:
            try:
                urllib.request.urlopen(url, timeout=2).read()
                break
            except OSError:
                if server.poll() is not None:
                    raise SystemExit("the app exited") from None
                time.sleep(0.05)
        print(f"start-up: {time.perf_counter() - start:.1f} s until the page answers ({describe_cpu(machine_info())})")

        options = webdriver.ChromeOptions()
        options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
        for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1200,2900"):
            options.add_argument(arg)
        driver = webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver")))
        try:
            driver.get(url)

            def wait(condition, timeout=1800):
                end = time.monotonic() + timeout
                while time.monotonic() < end:
                    value = condition()
                    if value:
                        return value
                    time.sleep(0.1)
                raise SystemExit("timed out")

            def number(elem_id, value):
                field = driver.find_element(By.CSS_SELECTOR, f"#{elem_id} input")
                field.send_keys(Keys.CONTROL, "a")
                field.send_keys(str(value), Keys.TAB)

            def status():
                return driver.find_element(By.CSS_SELECTOR, "#status").text.strip()

            wait(lambda: driver.find_elements(By.CSS_SELECTOR, "#run"))
            for elem_id, name in (("source", "astronaut.jpg"), ("target", "cat.jpg")):
                driver.find_element(By.CSS_SELECTOR, f"#{elem_id} input[type=file]").send_keys(
                    str(REPO / "images" / name)
                )
            for elem_id, fx, fy in (("pick-source", 0.41, 0.40), ("pick-target", 0.31, 0.37)):
                image = wait(lambda e=elem_id: driver.find_elements(By.CSS_SELECTOR, f"#{e} img"))[0]
                w, h = image.size["width"], image.size["height"]
                ActionChains(driver).move_to_element_with_offset(
                    image, int((fx - 0.5) * w), int((fy - 0.5) * h)
                ).click().perform()
                time.sleep(1)
            number("size", args.size)
            number("train-steps", args.train_steps)
            for run in range(1, args.runs + 1):
                time.sleep(1)
                began = time.perf_counter()
                driver.find_element(By.CSS_SELECTOR, "#run").click()
                if run > 1:  # the last run's "Done" goes first
                    wait(lambda: not status().startswith("Done"), 60)
                wait(lambda: status().startswith("Done") and driver.find_elements(By.CSS_SELECTOR, "#video video"))
                print(
                    f"run {run}: {time.perf_counter() - began:.1f} s from Run to the results "
                    f"(size {args.size}, {args.train_steps} train steps, 100 frames, MP4 + GIF + frames + report)"
                )
                driver.execute_script(
                    "document.querySelector('#status').textContent = '';"
                ) if run < args.runs else None
            driver.execute_script("window.scrollTo(0, 0)")
            time.sleep(1)
            shot = Path(tempfile.mkdtemp()) / "page.png"
            driver.save_screenshot(str(shot))
        finally:
            driver.quit()
        from PIL import Image

        with Image.open(shot) as page:
            small = page.convert("RGB").resize(
                (args.width, round(page.height * args.width / page.width)), Image.LANCZOS
            )
            small.quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(args.png, optimize=True)
        print(f"screenshot: {args.png} ({Path(args.png).stat().st_size // 1024} kB)")
    finally:
        server.terminate()
        server.wait(30)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
