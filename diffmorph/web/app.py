"""The morphing page: Gradio components wired to :func:`diffmorph.morph` and friends.

``build(page)`` makes the ``gr.Blocks``; :func:`serve` serves it (localhost by default, no
analytics, no share link, no run history, nothing fetched from elsewhere); :func:`launch`
owns a whole ``diffmorph app`` process around it. Everything the page does is a library
call: images are read by :func:`diffmorph.load_image`, settings checked by
:func:`diffmorph.preset_config`, runs made by :func:`diffmorph.morph` (re-renders with
``maps=``, resumes with ``resume=True`` when :func:`diffmorph.app.runs.can_resume` says
the checkpoint fits); a library error becomes a one-line message in the page
(``gr.Error``) without server paths, never a traceback.

What a server shares, and its limits (:class:`~diffmorph.web.limits.Limits`):

* the queue is the only way in (``api_open=False``; at most ``queue_size`` waiting
  events); one morph runs at a time (runs, re-renders and API calls share one slot);
* a run is cancelled when its client goes away, on Stop, or after ``max_run_s``;
* working size, train steps, frames and image size are capped; a run that would not
  fit in ``max_disk_bytes`` is refused;
* only the files a session's own runs made are served (hard links in Gradio's cache);
  nothing under the output root is served as such.

The run is also the API endpoint ``/morph``::

    from gradio_client import Client, handle_file
    mp4, gif = Client("http://127.0.0.1:7860/").predict(
        handle_file("a.jpg"), handle_file("b.jpg"), "faithful", 256, 200, 50, "", api_name="/morph")
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

import gradio as gr
import numpy as np

import diffmorph
from diffmorph import config as defaults
from diffmorph.app.markers import draw_markers
from diffmorph.app.runs import can_resume, latest_snapshot, output_paths
from diffmorph.errors import USER_ERRORS, InputError, Interrupted, OutputError
from diffmorph.io.samples import samples_dir

from . import points as point_pairs
from .limits import Limits
from .progress import WebProgress
from .runs import Runner, frames_zip
from .sessions import Session, Sessions

LOGGER = logging.getLogger("diffmorph.web")
POLL_S = 0.25  # how often a running morph's progress and snapshots are shown
MAX_UPLOAD = "50mb"  # largest upload Gradio accepts (the library checks image sizes)
MAX_CSV_BYTES = 1_000_000
RUN_SLOT = "morph"  # the queue slot runs, re-renders and API calls share (one at a time)
try:  # the bundled pair: images/ in a checkout, the package data diffmorph/data/ in a wheel
    EXAMPLES = samples_dir()
except InputError:
    EXAMPLES = Path(diffmorph.__file__).resolve().parent / "data"  # missing: no examples shown
TABLE_HEADERS = ["#", *point_pairs.HEADER]
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
FRAME_SETTINGS = ("frames", "fps", "pacing", "ease", "hold", "colour_path", "render_kernel")
PAGE_SETTINGS = ("size", "train_steps", *FRAME_SETTINGS)  # the settings panel's numbers and choices
FIRST_PRESET = "preview"  # the page opens with a quick first result (seconds); "faithful" is one click away
FULL_PRESET = "faithful"


def page_defaults() -> dict:
    """The settings the page (and the ``/morph`` endpoint) start with: the one place they are set.

    ``preset`` (:data:`FIRST_PRESET`: a quick first result) and the values of
    :data:`PAGE_SETTINGS` that preset gives (:func:`diffmorph.preset_config`). Another
    preset's values replace them when the user picks it (:func:`preset_values`); a blank
    field uses :class:`diffmorph.MorphConfig`'s default.
    """
    first = defaults.preset_config(FIRST_PRESET)
    return {"preset": FIRST_PRESET, **{name: getattr(first, name) for name in PAGE_SETTINGS}}


def is_local(host: str) -> bool:
    """Whether ``host`` only listens on this machine (127.0.0.1, localhost, ::1)."""
    return host in LOCAL_HOSTS


def image_input(**kwargs) -> gr.Image:
    """A ``gr.Image`` whose handlers get the uploaded file's path without Gradio opening it,
    so that the library reads it and names what is wrong with it (a text file, a 1x1 image...).

    (Set on the instance: a subclass of a Gradio component makes Gradio write a ``.pyi`` file.)
    """
    image = gr.Image(type="filepath", **kwargs)
    opened = image.preprocess

    def preprocess(payload):
        if payload is not None and payload.path and not str(payload.url or "").startswith("data:"):
            return str(payload.path)
        return opened(payload)

    image.preprocess = preprocess
    return image


_PRIVATE: list[tuple[str, str]] = []  # (server folder, what a message calls it), longest first


def keep_private(folder, name: str) -> None:
    """Messages shown in the page name ``folder`` (and what is below it) as ``name``."""
    if (str(folder), name) not in _PRIVATE:
        _PRIVATE.append((str(folder), name))
    _PRIVATE.sort(key=lambda item: -len(item[0]))


def scrub(text: str) -> str:
    """``text``'s first line, with the server's folders (:func:`keep_private`) replaced by their names."""
    line = (text or "").splitlines()[0] if text else ""
    for folder, name in _PRIVATE:
        if folder:
            line = line.replace(folder, name)
    return line


def fail(error: BaseException) -> gr.Error:
    """The page's one-line message for an error (no traceback and no server path reaches the page)."""
    if isinstance(error, gr.Error):
        return error
    if isinstance(error, (*USER_ERRORS, ValueError)):
        text = str(error)
    elif isinstance(error, MemoryError) or type(error).__name__ == "ResourceExhaustedError":
        text = "not enough memory for this morph; use a smaller working size or smaller images"
    else:
        LOGGER.error("the run failed", exc_info=error)
        text = f"the run failed ({type(error).__name__}: {scrub(str(error))})"
    return gr.Error(scrub(text) or "the run failed", print_exception=False)


def shown_failures(updates):
    """Pass a run's page updates on; an error becomes the status line ``Failed: ...`` and a toast.

    The updates are tuples whose first item is the status line (the other seven: skipped).
    Any exception is raised again as :func:`fail`'s one line.
    """
    try:
        yield from updates
    except Exception as exc:  # noqa: BLE001 (shown in the page, never as a traceback)
        error = fail(exc)
        yield (f"Failed: {error.message}", *[gr.skip()] * 7)
        raise error from None


def read_image(path, what: str) -> np.ndarray:
    """An uploaded image as uint8 ``(H, W, 3)``; its server path is kept out of messages."""
    if not path:
        raise gr.Error(f"upload a {what} image first", print_exception=False)
    try:
        return diffmorph.load_image(path)
    except USER_ERRORS as exc:
        said = str(exc).replace(str(path), "").lstrip(": ")
        raise gr.Error(f"{what} image: {scrub(said)}", print_exception=False) from None


def make_config(preset, **settings) -> diffmorph.MorphConfig:
    """:func:`diffmorph.preset_config` with the page's values (blank seed: random)."""
    explicit = {}
    seed = str(settings.pop("seed", None) or "").strip()
    if seed:
        try:
            explicit["seed"] = int(seed)
        except ValueError:
            raise gr.Error(f"seed must be a whole number, or blank for a random one (got {seed[:20]!r})") from None
    for name, value in settings.items():
        if value is None or value == "":
            continue
        if isinstance(value, float) and name not in ("fps",) and value.is_integer():
            value = int(value)
        explicit[name] = value
    try:
        return diffmorph.preset_config(preset or "faithful", **explicit)
    except ValueError as exc:
        raise fail(exc) from None


class Page:
    """The handlers of one app (its sessions and limits shared by them)."""

    def __init__(self, sessions: Sessions):
        self.sessions = sessions
        self.limits: Limits = sessions.limits
        self._active: Runner | None = None  # the run holding the server (one at a time)

    def session(self, request: gr.Request | None) -> Session:
        try:
            return self.sessions.get(getattr(request, "session_hash", None))
        except USER_ERRORS as exc:
            raise fail(exc) from None

    # --- images and point pairs -------------------------------------------------

    def pick_images(self, session: Session):
        """Both images with their numbered markers (None where an image is missing)."""
        out = []
        for index, name in ((0, "source"), (2, "target")):
            image = session.images.get(name)
            if image is None:
                out.append(None)
            else:
                marks = [None if p[index] is None else (p[index], p[index + 1]) for p in session.pairs]
                out.append(draw_markers(image, marks))
        return out

    def points_view(self, session: Session, hint: str = ""):
        """(source picker, target picker, table, CSV file for export, hint) after a change."""
        rows = [[i, *("" if v is None else v for v in p)] for i, p in enumerate(session.pairs, 1)]
        csv = self.sessions.new_batch(session, "points") / "points.csv"
        csv.write_text(point_pairs.csv_text(session.pairs))
        if not hint:
            pending = session.pairs and session.pairs[-1][2] is None
            hint = (
                f"Pair {len(session.pairs)}: now click its partner on the target."
                if pending
                else "Click a point on the source, then its partner on the target."
            )
        return (*self.pick_images(session), rows, str(csv), hint)

    def upload(self, which: str):
        def handler(path, request: gr.Request):
            session = self.session(request)
            if not path:
                session.images.pop(which, None)
                return self.points_view(session)
            try:
                session.images[which] = read_image(path, which)
            except gr.Error as exc:
                session.images.pop(which, None)
                gr.Warning(exc.message)
            return self.points_view(session)

        return handler

    def pick_source(self, evt: gr.SelectData, request: gr.Request):
        session = self.session(request)
        x, y = (int(v) for v in evt.index)
        if session.pairs and session.pairs[-1][2] is None:
            session.pairs[-1][:2] = [x, y]  # the pending pair's source point moves
        elif len(session.pairs) >= point_pairs.MAX_PAIRS:
            raise gr.Error(f"at most {point_pairs.MAX_PAIRS} point pairs", print_exception=False)
        else:
            session.pairs.append([x, y, None, None])
        return self.points_view(session)

    def pick_target(self, evt: gr.SelectData, request: gr.Request):
        session = self.session(request)
        if not session.pairs or session.pairs[-1][2] is not None:
            return self.points_view(session, "Click a point on the source first, then its partner on the target.")
        session.pairs[-1][2:] = [int(v) for v in evt.index]
        return self.points_view(session)

    def remove_pair(self, number, request: gr.Request):
        session = self.session(request)
        if number is None or not 1 <= int(number) <= len(session.pairs):
            raise gr.Error(f"no pair {number!r} to remove (pairs 1 to {len(session.pairs)})", print_exception=False)
        del session.pairs[int(number) - 1]
        return self.points_view(session)

    def clear_pairs(self, request: gr.Request):
        session = self.session(request)
        session.pairs.clear()
        return self.points_view(session)

    def import_pairs(self, file, request: gr.Request):
        session = self.session(request)
        path = Path(file if isinstance(file, str) else file.name)
        if path.stat().st_size > MAX_CSV_BYTES:
            raise gr.Error(f"the points file is over {MAX_CSV_BYTES // 1000} kB", print_exception=False)
        try:
            rows = point_pairs.read_text(path.read_text(encoding="utf-8", errors="replace"), "the points file")
        except USER_ERRORS as exc:
            raise fail(exc) from None
        session.pairs = [[float(v) for v in row] for row in rows]
        return self.points_view(session)

    def edit_pairs(self, table, request: gr.Request):
        """The pairs table edited by hand: its rows become the pairs, read by the library's reader
        (a row whose target cells are blank, the last one, is a pair still being picked)."""
        session = self.session(request)
        rows = table.values.tolist() if hasattr(table, "values") else list(table or [])
        cells = [["" if v is None or v != v else str(v).strip() for v in list(row)[1:5]] for row in rows]
        cells = [row for row in cells if any(row)]
        pending = cells.pop() if cells and len(cells[-1]) == 4 and not any(cells[-1][2:]) else None
        text = "\n".join([",".join(point_pairs.HEADER), *(",".join(row) for row in cells)]) + "\n"
        try:
            pairs = point_pairs.read_text(text if cells else "", "the pairs table")
            if "source" in session.images and "target" in session.images:
                point_pairs.check_inside(pairs, session.images["source"].shape, session.images["target"].shape)
            start = [float(v) for v in pending[:2]] if pending else None
        except (*USER_ERRORS, ValueError) as exc:
            gr.Warning(fail(exc).message)
            return self.points_view(session)
        session.pairs = [[float(v) for v in row] for row in pairs] + ([[*start, None, None]] if start else [])
        return self.points_view(session)

    def auto_pairs(self, request: gr.Request):
        session = self.session(request)
        if "source" not in session.images or "target" not in session.images:
            raise gr.Error("upload both images first", print_exception=False)
        try:
            found = diffmorph.find_points(session.images["source"], session.images["target"], notes := WebProgress())
        except USER_ERRORS as exc:
            raise fail(exc) from None
        session.pairs = [[float(v) for v in row] for row in np.asarray(found).reshape(-1, 4)]
        return self.points_view(session, f"Found {len(session.pairs)} point pairs ({notes.snapshot().notices[-1]}).")

    # --- runs ---------------------------------------------------------------------

    def prepare(self, session: Session, config, source, target, pairs) -> None:
        """The checks before a run: the server's limits, the pairs inside their images, the
        room on disk (older sessions' files removed to make it)."""
        try:
            self.limits.check(config, source.shape)
            point_pairs.check_inside(pairs, source.shape, target.shape)
            self.sessions.make_room(session, self.limits.estimate_bytes(config, source.shape))
        except USER_ERRORS as exc:
            raise fail(exc) from None

    def start(self, session: Session, source, target, config, **kwargs) -> Runner:
        """Start a run for ``session`` once the previous run (perhaps of a client that went
        away, still stopping) is over: one run at a time."""
        previous = self._active
        if previous is not None:
            previous.cancel()
            previous.join()
        runner = Runner(
            session, source, target, config, max_s=self.limits.max_run_s, done=self._finished, **kwargs
        ).start()
        self._active = runner
        return runner

    def _finished(self, runner: Runner) -> None:
        self.sessions.measure(runner.session)

    def run(
        self,
        source,
        target,
        preset,
        size,
        train_steps,
        frames,
        fps,
        pacing,
        ease,
        hold,
        colour_path,
        render_kernel,
        seed,
        request: gr.Request,
        progress=gr.Progress(),  # noqa: B008 (Gradio's way to ask for its progress bar)
    ):
        """Optimise and render; yields (status, snapshot, results...) as the run goes.

        A failure is shown twice: a toast (``gr.Error``) and a ``Failed: ...`` status line
        that stays until the next run (a toast fades after a few seconds).
        """
        settings = dict(
            size=size,
            train_steps=train_steps,
            frames=frames,
            fps=fps,
            pacing=pacing,
            ease=ease,
            hold=hold,
            colour_path=colour_path,
            render_kernel=render_kernel,
            seed=seed,
        )
        yield from shown_failures(self._run(source, target, preset, settings, request, progress))

    def _run(self, source, target, preset, settings: dict, request: gr.Request, progress):
        session = self.session(request)
        config = make_config(preset, **settings)
        a, b = read_image(source, "source"), read_image(target, "target")
        pairs = point_pairs.complete(session.pairs)
        self.prepare(session, config, a, b, pairs)
        resume = session.stopped and can_resume(session.run_dir, a, b, config, pairs if len(pairs) else None)
        runner = self.start(session, a, b, config, pairs=pairs, resume=resume)
        yield from self._follow(runner, progress)
        if isinstance(runner.error, Interrupted):
            text = self.stopped_text(runner)
            gr.Warning(text)
            yield (text, *[gr.skip()] * 7)
            return
        if runner.error is not None:
            raise fail(runner.error)
        session.config, session.inputs = runner.result.config, (a, b)
        yield self._results(runner, session, "Done")

    def stopped_text(self, runner: Runner) -> str:
        """The status line of a stopped run; its session resumes on the next Run if it can."""
        resumable = getattr(runner.error, "resumable", False)
        runner.session.stopped = resumable
        said = scrub(str(runner.error).replace(str(runner.session.folder), "the session folder"))
        if runner.timed_out:
            said = f"the run passed this server's time limit of {self.limits.max_run_s / 60:g} minutes; {said}"
        return f"Stopped: {said}." + (" Press Run to resume." if resumable else "")

    def rerender(self, frames, fps, pacing, ease, hold, colour_path, render_kernel, request: gr.Request):
        """Render the last run's maps again with other frame settings (no optimisation)."""
        values = (frames, fps, pacing, ease, hold, colour_path, render_kernel)
        yield from shown_failures(self._rerender(dict(zip(FRAME_SETTINGS, values)), request))

    def _rerender(self, settings: dict, request: gr.Request):
        session = self.session(request)
        maps = output_paths(session.run_dir).maps_npz
        if session.config is None or session.inputs is None or not maps.exists():
            raise gr.Error("run a morph first; re-rendering uses its maps", print_exception=False)
        checked = make_config(None, **settings)  # the page's values, checked (blank fields: the defaults)
        config = session.config.replace(**{name: getattr(checked, name) for name in settings})
        self.prepare(session, config, *session.inputs, np.zeros((0, 4)))
        runner = self.start(session, *session.inputs, config, maps=maps)
        yield from self._follow(runner, None)
        if isinstance(runner.error, Interrupted):
            yield (self.stopped_text(runner), *[gr.skip()] * 7)
            return
        if runner.error is not None:
            raise fail(runner.error)
        session.config = runner.result.config
        yield self._results(runner, session, "Re-rendered from the last maps")

    def closed(self, request: gr.Request):
        """The browser tab closed: its run is cancelled, its images and pairs dropped from memory."""
        self.sessions.forget(getattr(request, "session_hash", None))

    def stop(self, request: gr.Request):
        runner = self.session(request).runner
        if runner is not None:
            runner.cancel()
            return "Stopping at the next step..."
        return gr.skip()

    def _follow(self, runner: Runner, progress):
        """Yield the run's status (and the newest snapshot) until it ends. Closed before
        then (the client went away, the event was cancelled), it cancels the run."""
        shown = None
        try:
            while not runner.join(POLL_S):
                state = runner.progress.snapshot()
                if progress is not None and state.total:
                    unit = "steps" if state.phase == "Training" else "frames"
                    progress((state.done, state.total), desc=state.line(), unit=unit)
                snapshot = latest_snapshot(runner.session.run_dir) if state.phase == "Training" else None
                if snapshot is not None and snapshot != shown:
                    shown = snapshot
                    image = self.sessions.hand_out(runner.session, [snapshot], "snapshot")[0]
                else:
                    image = gr.skip()
                yield (state.line(), image, *[gr.skip()] * 6)
        finally:
            if not runner.join(0):
                runner.cancel()  # returns at once; the run's thread frees the session when it stops

    def _results(self, runner: Runner, session: Session, word: str):
        result = runner.result
        paths = result.paths
        frames = sorted(paths.frames.glob("*.png"))
        notices = runner.progress.snapshot().notices
        text = f"{word}: {result.frames} frames, {result.train_steps} train steps, working size {result.config.size}."
        if notices:
            text += " " + " ".join(f"({scrub(n)})" for n in notices)
        middle = frames[len(frames) // 2] if frames else None
        report = paths.report_png if paths.report_png.exists() else None
        mp4, gif, middle, maps_jpg, report, snapshot, maps_npz = self.sessions.hand_out(
            session, [paths.mp4, paths.gif, middle, paths.maps_jpg, report, latest_snapshot(paths.root), paths.maps_npz]
        )
        self.sessions.measure(session)
        return (text, snapshot or gr.skip(), mp4, gif, middle, maps_jpg, report, [mp4, gif, maps_npz])

    def zip_frames(self, request: gr.Request):
        """The last run's frames as one ZIP, made when asked (the frames are not written twice otherwise)."""
        session = self.session(request)
        frames = output_paths(session.run_dir).frames
        if session.config is None or not frames.is_dir():
            raise gr.Error("run a morph first", print_exception=False)
        out = frames_zip(frames, self.sessions.new_batch(session, "zip") / "frames.zip")
        self.sessions.measure(session)
        return str(out)

    def api_morph(self, source, target, preset, size, train_steps, frames, points_csv, request: gr.Request):
        """The ``/morph`` endpoint: returns (MP4, GIF) paths (while it runs: no values)."""
        yield from self._api_morph(source, target, preset, size, train_steps, frames, points_csv, request)

    def _api_morph(self, source, target, preset, size, train_steps, frames, points_csv, request):
        session = self.session(request)
        config = make_config(preset, size=size, train_steps=train_steps, frames=frames)
        a, b = read_image(source, "source"), read_image(target, "target")
        try:
            pairs = point_pairs.read_text(points_csv, "points_csv")
        except USER_ERRORS as exc:
            raise fail(exc) from None
        self.prepare(session, config, a, b, pairs)
        runner = self.start(session, a, b, config, pairs=pairs)
        for _ in self._follow(runner, None):
            yield gr.skip(), gr.skip()
        if isinstance(runner.error, Interrupted):
            raise gr.Error(self.stopped_text(runner), print_exception=False)
        if runner.error is not None:
            raise fail(runner.error)
        paths = runner.result.paths
        yield tuple(self.sessions.hand_out(session, [paths.mp4, paths.gif]))


def preset_values(name: str):
    """The settings panel's values (:data:`PAGE_SETTINGS`) for a preset: its own, else the library's defaults."""
    preset = defaults.PRESETS.get(name, {})
    base = defaults.MorphConfig()
    return [gr.update(value=preset[k]) if k in preset else gr.update(value=getattr(base, k)) for k in PAGE_SETTINGS]


def full_quality():
    """The Full quality button: the faithful preset and its values, then a run."""
    return [gr.update(value=FULL_PRESET), *preset_values(FULL_PRESET)]


def estimate_line(preset, size, train_steps, frames, hold, source) -> str:
    """The estimated run time on this machine for the page's settings (:func:`diffmorph.estimate_seconds`)."""
    try:
        config = make_config(preset, size=size, train_steps=train_steps, frames=frames, hold=hold)
    except gr.Error:
        return "Estimated time: - (check the settings)"
    output = None
    if source:
        try:
            from PIL import Image

            with Image.open(source) as image:  # reads the header only
                output = (image.height, image.width)
        except (OSError, ValueError):
            output = None
    estimate = diffmorph.estimate_seconds(config, output, compiled=diffmorph.is_compiled(config))
    return f"Estimated time on this machine: {estimate.text()}"


def build(page: Page) -> gr.Blocks:
    """The page (not launched)."""
    start = page_defaults()
    presets = list(defaults.PRESETS)
    max_age = int(page.limits.max_age_s)
    with gr.Blocks(title="diffmorph", analytics_enabled=False, delete_cache=(3600, max_age)) as demo:
        gr.Markdown("## diffmorph: morph one image into another")
        with gr.Row():
            source = image_input(label="Source", sources=["upload", "clipboard"], elem_id="source")
            target = image_input(label="Target", sources=["upload", "clipboard"], elem_id="target")
        if (EXAMPLES / "astronaut.jpg").exists() and (EXAMPLES / "cat.jpg").exists():
            gr.Examples([[str(EXAMPLES / "astronaut.jpg"), str(EXAMPLES / "cat.jpg")]], [source, target])
        with gr.Accordion("Settings", open=True):
            with gr.Row():
                preset = gr.Dropdown(presets, value=start["preset"], label="Preset", elem_id="preset")
                size = gr.Number(start["size"], label="Working size", precision=0, elem_id="size")
                train_steps = gr.Number(start["train_steps"], label="Train steps", precision=0, elem_id="train-steps")
                frames = gr.Number(start["frames"], label="Frames", precision=0, elem_id="frames")
                fps = gr.Number(start["fps"], label="Frames per second", elem_id="fps")
                seed = gr.Textbox("", label="Seed (blank: random)", elem_id="seed")
            with gr.Row():
                pacing = gr.Dropdown(list(defaults.PACINGS), value=start["pacing"], label="Pacing")
                ease = gr.Dropdown(list(defaults.EASES), value=start["ease"], label="Ease")
                hold = gr.Number(start["hold"], label="Hold (extra end frames)", precision=0)
                colour_path = gr.Dropdown(list(defaults.COLOUR_PATHS), value=start["colour_path"], label="Colour path")
                kernel = gr.Dropdown(list(defaults.RENDER_KERNELS), value=start["render_kernel"], label="Render kernel")
            limits = page.limits
            gr.Markdown(
                f"This server's limits: working size {limits.max_size}, {limits.max_train_steps} train steps, "
                f"{limits.max_frames} frames, {limits.max_run_s / 60:g} minutes a run.",
                elem_id="limits",
            )
        with gr.Accordion("Point pairs (optional)", open=True):
            hint = gr.Markdown("Click a point on the source, then its partner on the target.", elem_id="points-hint")
            with gr.Row():
                pick_source = gr.Image(label="Source points", interactive=False, elem_id="pick-source")
                pick_target = gr.Image(label="Target points", interactive=False, elem_id="pick-target")
            table = gr.Dataframe(
                headers=TABLE_HEADERS, value=[], interactive=True, label="Pairs (editable)", elem_id="pairs"
            )
            with gr.Row():
                number = gr.Number(1, label="Pair #", precision=0, minimum=1, min_width=80)
                remove = gr.Button("Remove pair")
                clear = gr.Button("Clear pairs")
                auto = gr.Button("Auto points")
                load = gr.UploadButton("Import CSV", file_types=[".csv", ".txt", ".json"])
                export = gr.DownloadButton("Export CSV")
        estimate = gr.Markdown("", elem_id="estimate")
        with gr.Row():
            run = gr.Button("Run", variant="primary", elem_id="run")
            full = gr.Button("Full quality (faithful: 1024, 1000 steps)", elem_id="full-quality")
            stop = gr.Button("Stop", variant="stop", elem_id="stop")
            again = gr.Button("Re-render from the last maps", elem_id="rerender")
        status = gr.Markdown("", elem_id="status")
        snapshot = gr.Image(label="Training snapshot (source warped towards the target)", interactive=False)
        with gr.Row():
            video = gr.Video(label="Video (MP4)", interactive=False, elem_id="video", loop=True)
            gif = gr.Image(label="GIF", interactive=False, format="gif", elem_id="gif")
        with gr.Row():
            middle = gr.Image(label="Middle frame", interactive=False)
            maps = gr.Image(label="Maps", interactive=False)
            report = gr.Image(label="Report", interactive=False)
        downloads = gr.File(label="Downloads: MP4, GIF, maps.npz", file_count="multiple", elem_id="downloads")
        with gr.Row():
            zip_button = gr.Button("Frames as a ZIP", elem_id="zip-frames")
            zipped = gr.File(label="Frames (ZIP of PNGs)", elem_id="frames-zip")

        private = dict(api_visibility="private")
        view = [pick_source, pick_target, table, export, hint]
        source.change(page.upload("source"), [source], view, **private)
        target.change(page.upload("target"), [target], view, **private)
        pick_source.select(page.pick_source, None, view, **private)
        pick_target.select(page.pick_target, None, view, **private)
        remove.click(page.remove_pair, [number], view, **private)
        clear.click(page.clear_pairs, None, view, **private)
        auto.click(page.auto_pairs, None, view, **private)
        load.upload(page.import_pairs, [load], view, **private)
        table.input(page.edit_pairs, [table], view, **private)
        shown = [size, train_steps, frames, fps, pacing, ease, hold, colour_path, kernel]  # PAGE_SETTINGS
        preset.change(preset_values, [preset], shown, **private)
        estimated = [preset, size, train_steps, frames, hold, source]
        for box in estimated:
            box.change(estimate_line, estimated, [estimate], **private)
        demo.load(estimate_line, estimated, [estimate], **private)

        results = [status, snapshot, video, gif, middle, maps, report, downloads]
        frame_settings = [frames, fps, pacing, ease, hold, colour_path, kernel]
        slot = dict(concurrency_limit=1, concurrency_id=RUN_SLOT)
        run.click(
            page.run, [source, target, preset, size, train_steps, *frame_settings, seed], results, **slot, **private
        ).then(estimate_line, estimated, [estimate], **private)  # the steps just measured, the programs compiled
        full.click(full_quality, None, [preset, *shown], **private).then(
            page.run, [source, target, preset, size, train_steps, *frame_settings, seed], results, **slot, **private
        )
        again.click(page.rerender, frame_settings, results, **slot, **private)
        stop.click(page.stop, None, [status], **private)  # queued too (its own slot): the queue is the only way in
        zip_button.click(page.zip_frames, None, [zipped], **private)
        demo.unload(page.closed)

        with gr.Group(visible=False):  # the API endpoint's own inputs and outputs
            api_inputs = [
                image_input(label="source"),
                image_input(label="target"),
                gr.Dropdown(presets, value=start["preset"], label="preset"),
                gr.Number(start["size"], label="size", precision=0),
                gr.Number(start["train_steps"], label="train_steps", precision=0),
                gr.Number(start["frames"], label="frames", precision=0),
                gr.Textbox("", label="points_csv"),
            ]
            api_outputs = [gr.File(label="mp4"), gr.File(label="gif")]
            api_button = gr.Button("morph")
        api_button.click(page.api_morph, api_inputs, api_outputs, api_name="morph", **slot)
    return demo


UPLOAD_ENV = "GRADIO_TEMP_DIR"  # Gradio's folder for uploads and the files it serves
_OWN_UPLOADS: list[Path] = []  # this process's own folder, made by the first server


def use_own_upload_folder() -> Path:
    """Give this process its own Gradio upload folder (before the page is built); returns it.

    Gradio's default, ``<temp>/gradio``, is shared by every Gradio server on the machine,
    and an upload's path there is named by its content: when one server closes, it deletes
    its uploads, and with them another server's upload of the same image, which then
    fails as "no such file". So unless the user set ``GRADIO_TEMP_DIR``, this process
    uses a folder of its own (``<temp>/diffmorph-gradio-XXXXXXXX``, removed at exit) for
    all its servers. ``GRADIO_TEMP_DIR`` is read by Gradio at request time too, so it
    stays set for the life of the process.
    """
    chosen = os.environ.get(UPLOAD_ENV)
    if chosen and not (_OWN_UPLOADS and chosen == str(_OWN_UPLOADS[0])):
        return Path(chosen)  # the user's choice
    if not _OWN_UPLOADS:
        folder = Path(tempfile.mkdtemp(prefix="diffmorph-gradio-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        _OWN_UPLOADS.append(folder)
    os.environ[UPLOAD_ENV] = str(_OWN_UPLOADS[0])
    return _OWN_UPLOADS[0]


def serve(host: str, port: int, output_root, *, limits: Limits | None = None, auth=None, block: bool = False):
    """Serve the page; returns ``(demo, url)`` (``block=False``: at once; else when stopped).

    Args:
      host, port: where to listen. output_root: the sessions' folder (claimed, see
        :func:`diffmorph.web.sessions.claim_root`). limits: the server's
        :class:`~diffmorph.web.limits.Limits` (default: the documented ones).
      auth: ``(user, password)`` every visitor and API client must give (Gradio's login), or None.

    Raises:
      InputError: an output root holding files this app did not write.
      OutputError: the output root cannot be written.
      OSError: the port cannot be used.
    """
    uploads = use_own_upload_folder()
    sessions = Sessions(Path(output_root), uploads, limits)
    keep_private(Path(output_root).resolve(), "the output folder")
    keep_private(output_root, "the output folder")
    keep_private(uploads, "the upload folder")
    keep_private(tempfile.gettempdir(), "the temporary folder")
    demo = build(Page(sessions))
    demo.queue(default_concurrency_limit=1, api_open=False, max_size=sessions.limits.queue_size)
    _, url, _ = demo.launch(
        server_name=host,
        server_port=port,
        share=False,
        prevent_thread_lock=not block,
        quiet=not block,
        show_error=False,
        allowed_paths=[],
        auth=auth,
        max_file_size=MAX_UPLOAD,
        footer_links=["api"],
        ssr_mode=False,
        pwa=False,
        mcp_server=False,
        enable_monitoring=False,
        run_history=False,
    )
    return demo, url


def launch(host="127.0.0.1", port=7860, output_root=None, *, limits=None, auth=None, ready=None) -> None:
    """Run a ``diffmorph app`` server in this process until Ctrl-C.

    Owns the process's side of it: Gradio's upload folder (:func:`use_own_upload_folder`),
    a temporary output root when ``output_root`` is None (removed at exit), the server
    (:func:`serve`), the serve loop, and closing the server on the way out.

    Args:
      host, port, limits, auth: as for :func:`serve`.
      output_root: the sessions' folder (None: a new temporary folder).
      ready: called as ``ready(url, output_root)`` once the page is served.

    Raises:
      InputError: an unusable output root.
      OutputError: the output root cannot be written, or the port cannot be served.
    """
    use_own_upload_folder()
    if output_root is None:
        output_root = tempfile.mkdtemp(prefix="diffmorph-app-")
        atexit.register(shutil.rmtree, output_root, ignore_errors=True)
    try:
        demo, url = serve(host, port, output_root, limits=limits, auth=auth)
    except (InputError, OutputError):
        raise
    except OSError as exc:
        raise OutputError(f"cannot serve on {host}:{port} ({exc})") from None
    if ready is not None:
        ready(url, Path(output_root))
    try:
        while True:
            time.sleep(1)
    finally:
        demo.close()
