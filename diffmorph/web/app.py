"""The morphing page: Gradio components wired to :func:`diffmorph.morph` and friends.

``build(sessions)`` makes the ``gr.Blocks``; :func:`launch` serves it on localhost with
no analytics, no share link and nothing fetched from elsewhere. Everything the page does
is a library call: images are read by :func:`diffmorph.load_image`, settings checked by
:func:`diffmorph.preset_config`, runs made by :func:`diffmorph.morph` (re-renders with
``maps=``, resumes with ``resume=True``); a library error becomes a one-line message
in the page (``gr.Error``), never a traceback.

One morph runs at a time (the runs, re-renders and API calls share one queue slot; the
page shows a waiting user their place). The run is also the API endpoint ``/morph``::

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
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before Gradio is imported

import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402

import diffmorph  # noqa: E402
from diffmorph import config as defaults  # noqa: E402
from diffmorph.errors import USER_ERRORS, Interrupted  # noqa: E402

from . import points as point_pairs  # noqa: E402
from .runs import Runner, frames_zip, latest_snapshot, run_key  # noqa: E402
from .sessions import Session, Sessions  # noqa: E402

LOGGER = logging.getLogger("diffmorph.web")
POLL_S = 0.25  # how often a running morph's progress and snapshots are shown
MAX_UPLOAD = "50mb"  # largest upload Gradio accepts (the library checks image sizes)
MAX_CSV_BYTES = 1_000_000
RUN_SLOT = "morph"  # the queue slot runs, re-renders and API calls share (one at a time)
EXAMPLES = Path(diffmorph.__file__).resolve().parent.parent / "images"
TABLE_HEADERS = ["#", *point_pairs.HEADER]


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


def fail(error: BaseException) -> gr.Error:
    """The page's one-line message for an error (no traceback reaches the page)."""
    if isinstance(error, (*USER_ERRORS, ValueError)):
        text = str(error)
    elif isinstance(error, MemoryError) or type(error).__name__ == "ResourceExhaustedError":
        text = "not enough memory for this morph; use a smaller working size or smaller images"
    else:
        LOGGER.error("the run failed", exc_info=error)
        text = f"the run failed ({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''})"
    return gr.Error(text.splitlines()[0] if text else "the run failed", print_exception=False)


def shown_failures(updates):
    """Pass a run's page updates on; an error becomes the status line ``Failed: ...`` and a toast.

    The updates are tuples whose first item is the status line (the other seven: skipped).
    A ``gr.Error`` is raised again as it is; any other exception as :func:`fail`'s one line.
    """
    try:
        yield from updates
    except Exception as exc:  # noqa: BLE001 (shown in the page, never as a traceback)
        error = exc if isinstance(exc, gr.Error) else fail(exc)
        yield (f"Failed: {error.message}", *[gr.skip()] * 7)
        raise error from None


def read_image(path, what: str) -> np.ndarray:
    """An uploaded image as uint8 ``(H, W, 3)``; its server path is kept out of messages."""
    if not path:
        raise gr.Error(f"upload a {what} image first", print_exception=False)
    try:
        return diffmorph.load_image(path)
    except USER_ERRORS as exc:
        raise gr.Error(f"{what} image: {str(exc).replace(str(path), '').lstrip(': ')}", print_exception=False) from None


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
    """The handlers of one app (sessions shared by them)."""

    def __init__(self, sessions: Sessions):
        self.sessions = sessions

    def session(self, request: gr.Request | None) -> Session:
        return self.sessions.get(getattr(request, "session_hash", None))

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
                out.append(point_pairs.draw_markers(image, marks))
        return out

    def points_view(self, session: Session, hint: str = ""):
        """(source picker, target picker, table, CSV file for export, hint) after a change."""
        rows = [[i, *("" if v is None else v for v in p)] for i, p in enumerate(session.pairs, 1)]
        csv = session.folder / "points.csv"
        csv.write_text(point_pairs.to_csv(session.pairs))
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
            rows = point_pairs.parse_csv(path.read_text(encoding="utf-8", errors="replace"))
        except USER_ERRORS as exc:
            raise fail(exc) from None
        session.pairs = [[float(v) for v in row] for row in rows]
        return self.points_view(session)

    def auto_pairs(self, request: gr.Request):
        session = self.session(request)
        if "source" not in session.images or "target" not in session.images:
            raise gr.Error("upload both images first", print_exception=False)
        try:
            found = diffmorph.find_points(session.images["source"], session.images["target"])
        except USER_ERRORS as exc:
            raise fail(exc) from None
        session.pairs = [[float(v) for v in row] for row in np.asarray(found).reshape(-1, 4)]
        return self.points_view(session, f"Found {len(session.pairs)} point pairs.")

    # --- runs ---------------------------------------------------------------------

    def complete_pairs(self, session: Session, source, target) -> np.ndarray:
        pairs = np.array([p for p in session.pairs if None not in p], dtype=np.float64).reshape(-1, 4)
        try:
            point_pairs.check_inside(pairs, source.shape, target.shape)
        except USER_ERRORS as exc:
            raise fail(exc) from None
        return pairs

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
        pairs = self.complete_pairs(session, a, b)
        key = run_key(a, b, config, pairs)
        resume = session.stopped_key == key and (session.run_dir / "morph" / "checkpoint.npz").exists()
        self.sessions.sweep()
        runner = Runner(session, a, b, config, pairs=pairs, resume=resume).start()
        yield from self._follow(runner, progress)
        session.stopped_key = None
        if isinstance(runner.error, Interrupted):
            resumable = getattr(runner.error, "resumable", False)
            session.stopped_key = key if resumable else None
            said = str(runner.error).replace(str(session.folder), "the session folder")
            text = f"Stopped: {said}." + (" Press Run to resume." if resumable else "")
            gr.Warning(text)
            yield (text, *[gr.skip()] * 7)
            return
        if runner.error is not None:
            raise fail(runner.error)
        session.config, session.inputs = runner.result.config, (a, b)
        yield self._results(runner, session, "Done")

    def rerender(self, frames, fps, pacing, ease, hold, colour_path, render_kernel, request: gr.Request):
        """Render the last run's maps again with other frame settings (no optimisation)."""
        settings = dict(
            frames=frames,
            fps=fps,
            pacing=pacing,
            ease=ease,
            hold=hold,
            colour_path=colour_path,
            render_kernel=render_kernel,
        )
        yield from shown_failures(self._rerender(settings, request))

    def _rerender(self, settings: dict, request: gr.Request):
        session = self.session(request)
        maps = session.run_dir / "morph" / "maps.npz"
        if session.config is None or session.inputs is None or not maps.exists():
            raise gr.Error("run a morph first; re-rendering uses its maps", print_exception=False)
        checked = make_config(None, **settings)  # the page's values, checked (blank fields: the defaults)
        config = session.config.replace(**{name: getattr(checked, name) for name in settings})
        runner = Runner(session, *session.inputs, config, maps=maps).start()
        yield from self._follow(runner, None)
        if runner.error is not None:
            raise fail(runner.error)
        session.config = runner.result.config
        yield self._results(runner, session, "Re-rendered from the last maps")

    def closed(self, request: gr.Request):
        """The browser tab closed: its images and pairs are dropped from memory."""
        self.sessions.forget(getattr(request, "session_hash", None))

    def stop(self, request: gr.Request):
        progress = self.session(request).progress
        if progress is not None:
            progress.cancel()
            return "Stopping at the next step..."
        return gr.skip()

    def _follow(self, runner: Runner, progress):
        """Yield the run's status (and the newest snapshot) until it ends."""
        train = runner.session.run_dir / "train"
        shown = None
        while not runner.join(POLL_S):
            state = runner.progress.snapshot()
            if progress is not None and state.total:
                unit = "steps" if state.phase == "Training" else "frames"
                progress((state.done, state.total), desc=state.line(), unit=unit)
            snapshot = latest_snapshot(train) if state.phase == "Training" else None
            image = gr.skip() if snapshot in (None, shown) else str(snapshot)
            shown = snapshot or shown
            yield (state.line(), image, *[gr.skip()] * 6)

    def _results(self, runner: Runner, session: Session, word: str):
        result = runner.result
        paths = result.paths
        frames = sorted(paths.frames.glob("*.png"))
        downloads = session.folder / "downloads"
        downloads.mkdir(exist_ok=True)
        files = [str(paths.mp4), str(paths.gif), str(frames_zip(paths.frames, downloads / "frames.zip"))]
        files.append(str(paths.maps_npz))
        notices = runner.progress.snapshot().notices
        text = f"{word}: {result.frames} frames, {result.train_steps} train steps, working size {result.config.size}."
        if notices:
            text += " " + " ".join(f"({n})" for n in notices)
        middle = str(frames[len(frames) // 2]) if frames else None
        report = str(paths.report_png) if paths.report_png.exists() else None
        snapshot = latest_snapshot(paths.train)
        return (
            text,
            str(snapshot) if snapshot else gr.skip(),
            str(paths.mp4),
            str(paths.gif),
            middle,
            str(paths.maps_jpg),
            report,
            files,
        )

    def api_morph(self, source, target, preset, size, train_steps, frames, points_csv, request: gr.Request):
        """The ``/morph`` endpoint: returns (MP4, GIF) paths."""
        session = self.session(request)
        config = make_config(preset, size=size, train_steps=train_steps, frames=frames)
        a, b = read_image(source, "source"), read_image(target, "target")
        try:
            pairs = point_pairs.parse_csv(points_csv or "")
            point_pairs.check_inside(pairs, a.shape, b.shape)
        except USER_ERRORS as exc:
            raise fail(exc) from None
        self.sessions.sweep()
        runner = Runner(session, a, b, config, pairs=pairs).start()
        runner.join()
        if runner.error is not None:
            raise fail(runner.error)
        return str(runner.result.paths.mp4), str(runner.result.paths.gif)


FIRST_PRESET = "preview"  # the page opens with a quick first result (seconds); "faithful" is one click away
FULL_PRESET = "faithful"
SHOWN = ("size", "train_steps", "frames", "fps", "pacing", "ease", "hold", "colour_path", "render_kernel")


def preset_values(name: str):
    """The settings panel's values (:data:`SHOWN`) for a preset: its own, else the defaults."""
    preset = defaults.PRESETS.get(name, {})
    base = defaults.MorphConfig()
    return [gr.update(value=preset[k]) if k in preset else gr.update(value=getattr(base, k)) for k in SHOWN]


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


def build(sessions: Sessions) -> gr.Blocks:
    """The page (not launched)."""
    page = Page(sessions)
    base = defaults.MorphConfig()
    first = defaults.preset_config(FIRST_PRESET)
    presets = list(defaults.PRESETS)
    with gr.Blocks(title="diffmorph", analytics_enabled=False, delete_cache=(3600, int(sessions.max_age_s))) as demo:
        gr.Markdown("## diffmorph: morph one image into another")
        with gr.Row():
            source = image_input(label="Source", sources=["upload", "clipboard"], elem_id="source")
            target = image_input(label="Target", sources=["upload", "clipboard"], elem_id="target")
        if (EXAMPLES / "astronaut.jpg").exists() and (EXAMPLES / "cat.jpg").exists():
            gr.Examples([[str(EXAMPLES / "astronaut.jpg"), str(EXAMPLES / "cat.jpg")]], [source, target])
        with gr.Accordion("Settings", open=True):
            with gr.Row():
                preset = gr.Dropdown(presets, value=FIRST_PRESET, label="Preset", elem_id="preset")
                size = gr.Number(first.size, label="Working size", precision=0, elem_id="size")
                train_steps = gr.Number(first.train_steps, label="Train steps", precision=0, elem_id="train-steps")
                frames = gr.Number(first.frames, label="Frames", precision=0, elem_id="frames")
                fps = gr.Number(base.fps, label="Frames per second", elem_id="fps")
                seed = gr.Textbox("", label="Seed (blank: random)", elem_id="seed")
            with gr.Row():
                pacing = gr.Dropdown(list(defaults.PACINGS), value=base.pacing, label="Pacing")
                ease = gr.Dropdown(list(defaults.EASES), value=base.ease, label="Ease")
                hold = gr.Number(base.hold, label="Hold (extra end frames)", precision=0)
                colour_path = gr.Dropdown(list(defaults.COLOUR_PATHS), value=base.colour_path, label="Colour path")
                kernel = gr.Dropdown(list(defaults.RENDER_KERNELS), value=base.render_kernel, label="Render kernel")
        with gr.Accordion("Point pairs (optional)", open=True):
            hint = gr.Markdown("Click a point on the source, then its partner on the target.", elem_id="points-hint")
            with gr.Row():
                pick_source = gr.Image(label="Source points", interactive=False, elem_id="pick-source")
                pick_target = gr.Image(label="Target points", interactive=False, elem_id="pick-target")
            table = gr.Dataframe(headers=TABLE_HEADERS, value=[], interactive=False, label="Pairs", elem_id="pairs")
            with gr.Row():
                number = gr.Number(1, label="Pair #", precision=0, minimum=1, min_width=80)
                remove = gr.Button("Remove pair")
                clear = gr.Button("Clear pairs")
                auto = gr.Button("Auto points")
                load = gr.UploadButton("Import CSV", file_types=[".csv", ".txt"])
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
        downloads = gr.File(
            label="Downloads: MP4, GIF, frames (ZIP), maps.npz", file_count="multiple", elem_id="downloads"
        )

        view = [pick_source, pick_target, table, export, hint]
        source.change(page.upload("source"), [source], view, api_visibility="private")
        target.change(page.upload("target"), [target], view, api_visibility="private")
        pick_source.select(page.pick_source, None, view, api_visibility="private")
        pick_target.select(page.pick_target, None, view, api_visibility="private")
        remove.click(page.remove_pair, [number], view, api_visibility="private")
        clear.click(page.clear_pairs, None, view, api_visibility="private")
        auto.click(page.auto_pairs, None, view, api_visibility="private")
        load.upload(page.import_pairs, [load], view, api_visibility="private")
        shown = [size, train_steps, frames, fps, pacing, ease, hold, colour_path, kernel]
        preset.change(preset_values, [preset], shown)
        estimated = [preset, size, train_steps, frames, hold, source]
        for box in estimated:
            box.change(estimate_line, estimated, [estimate], queue=False, api_visibility="private")
        demo.load(estimate_line, estimated, [estimate], queue=False, api_visibility="private")

        results = [status, snapshot, video, gif, middle, maps, report, downloads]
        frame_settings = [frames, fps, pacing, ease, hold, colour_path, kernel]
        run.click(
            page.run,
            [source, target, preset, size, train_steps, *frame_settings, seed],
            results,
            concurrency_limit=1,
            concurrency_id=RUN_SLOT,
            api_visibility="private",
        ).then(estimate_line, estimated, [estimate], queue=False, api_visibility="private")  # measured steps, compiled
        full.click(full_quality, None, [preset, *shown], queue=False, api_visibility="private").then(
            page.run,
            [source, target, preset, size, train_steps, *frame_settings, seed],
            results,
            concurrency_limit=1,
            concurrency_id=RUN_SLOT,
            api_visibility="private",
        )
        again.click(
            page.rerender,
            frame_settings,
            results,
            concurrency_limit=1,
            concurrency_id=RUN_SLOT,
            api_visibility="private",
        )
        stop.click(page.stop, None, [status], queue=False, api_visibility="private")
        demo.unload(page.closed)

        with gr.Group(visible=False):  # the API endpoint's own inputs and outputs
            api_inputs = [
                image_input(label="source"),
                image_input(label="target"),
                gr.Dropdown(presets, value="faithful", label="preset"),
                gr.Number(base.size, label="size", precision=0),
                gr.Number(base.train_steps, label="train_steps", precision=0),
                gr.Number(base.frames, label="frames", precision=0),
                gr.Textbox("", label="points_csv"),
            ]
            api_outputs = [gr.File(label="mp4"), gr.File(label="gif")]
            api_button = gr.Button("morph")
        api_button.click(
            page.api_morph, api_inputs, api_outputs, api_name="morph", concurrency_limit=1, concurrency_id=RUN_SLOT
        )
    return demo


UPLOAD_ENV = "GRADIO_TEMP_DIR"  # Gradio's folder for uploads and the files it serves
_OWN_UPLOADS: list[Path] = []  # this process's own folder, made by the first launch


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


def launch(host: str = "127.0.0.1", port: int = 7860, output_root=None, *, block: bool = True):
    """Serve the page; returns ``(demo, url)`` (``block=False``: at once; else when stopped).

    Uploads go to this process's own folder (:func:`use_own_upload_folder`).
    """
    root = Path(output_root)
    root.mkdir(parents=True, exist_ok=True)
    use_own_upload_folder()
    demo = build(Sessions(root))
    demo.queue(default_concurrency_limit=1)
    allowed = [str(root)] + ([str(EXAMPLES)] if EXAMPLES.is_dir() else [])
    _, url, _ = demo.launch(
        server_name=host,
        server_port=port,
        share=False,
        prevent_thread_lock=not block,
        quiet=not block,
        show_error=False,
        allowed_paths=allowed,
        max_file_size=MAX_UPLOAD,
        footer_links=["api"],
        ssr_mode=False,
        pwa=False,
        mcp_server=False,
        enable_monitoring=False,
    )
    return demo, url
