"""The batch pipeline: many independent pairs, each morphed into its own folder.

Rows come from a CSV file (:func:`read_batch_csv`) or from Python (:func:`batch_rows`);
each row ``NAME`` becomes ``OUT_DIR/NAME/`` with the morph command's layout
(:mod:`diffmorph.app.layout`: ``train/``, ``preds.npy``, ``morph/morph.mp4``, ``morph.gif``,
``maps.npz``...). The pairs are fitted one after another in this process, or several
at once on a Ray cluster (``workers``/``ray_address``, :mod:`diffmorph.app.cluster`);
rendering and publishing each row's outputs happen here, as each pair's maps arrive.

Before any work every row gets the checks :func:`~diffmorph.app.morph.morph` makes before its
work (inputs that an output would replace, the strip's width, the GIF's memory, the folders);
the settings' own problems (a strip wider than JPEG allows) refuse the whole batch.

A re-run skips the rows that are finished for what is asked now (maps file for the same
pixels and settings, and the set published there with the same settings, render settings and
output options included, every output unchanged: :func:`~diffmorph.app.pairs.finished_outputs`),
renders again the rows whose maps are finished but whose outputs are not (other frames, fps,
hold, formats, GIF size, report...), and resumes an interrupted row from its checkpoint. A
publish cut off by a kill is rolled back (:func:`~diffmorph.io.outputs.recover`) before a row
is judged. A row that cannot
be done (a missing or unreadable image, a divergence, a write failure) is a failed row
with its one-line reason; the other rows go on. ``OUT_DIR/batch.json`` (written
atomically at the end, also after Ctrl-C) lists every row: its status (``done``,
``skipped``, ``failed``, ``stopped``), seconds, output folder and reason.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import os
import re
import time
from pathlib import Path

from ..config import MorphConfig
from ..errors import USER_ERRORS, InputError, Interrupted, display_path
from ..io.files import ensure_folder, write_bytes
from ..io.outputs import FolderLock, recover, sweep
from .cluster import Cluster, uses_cluster
from .inputs import load_pair
from .layout import MorphPaths, check_before_work, check_ffmpeg, refuse_inputs_as_outputs
from .pairs import PairJob, check_time_limit, finished_maps, finished_outputs, fit_serially
from .points import AUTOMATIC, guide_for
from .progress import SILENT, Progress
from .publish import publish_pair
from .runtime import import_tensorflow_quietly
from .write import OutputOptions, check_strip

COLUMNS = ("source", "target", "name", "points")
REQUIRED = ("source", "target")
SUMMARY_FILE = "batch.json"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


@dataclasses.dataclass(frozen=True)
class BatchRow:
    """One pair of a batch: ``row`` (1-based, in the CSV's order), ``name`` (its folder below the
    output folder), ``source`` and ``target`` (image paths or uint8 ``(H, W, 3)`` arrays) and
    ``points`` (point pairs for the guided morph, or None)."""

    row: int
    name: str
    source: object
    target: object
    points: object = None


@dataclasses.dataclass
class RowResult:
    """What happened to one row: ``status`` ``done``, ``skipped`` (finished earlier), ``failed``
    (``reason`` says why) or ``stopped`` (interrupted); ``seconds`` the fit and render time;
    ``output`` the row's folder; ``worker`` where it was fitted; ``resumed_from`` the train step
    it resumed at (0: from the start); ``render_seconds`` the part of ``seconds`` spent rendering and
    publishing in this process; ``peak_mb`` the fitting process's peak resident memory (MB)."""

    row: int
    name: str
    status: str
    seconds: float = 0.0
    output: str = ""
    reason: str = ""
    worker: str = ""
    resumed_from: int = 0
    render_seconds: float = 0.0
    peak_mb: float = 0.0


@dataclasses.dataclass
class BatchResult:
    """What :func:`morph_batch` did: one :class:`RowResult` per row, in row order."""

    rows: list
    out_dir: Path
    seconds: float = 0.0
    workers: dict = dataclasses.field(default_factory=dict)

    def count(self, status: str) -> int:
        return sum(1 for r in self.rows if r.status == status)

    @property
    def failed(self) -> int:
        return self.count("failed")

    def table(self) -> str:
        """The summary as a plain-text table (row, name, status, time, output or reason)."""
        lines = [("row", "name", "status", "time", "output")]
        for r in self.rows:
            time_text = f"{r.seconds:.1f} s" if r.status == "done" else "-"
            lines.append((str(r.row), r.name, r.status, time_text, r.reason or r.output))
        widths = [max(len(line[k]) for line in lines) for k in range(4)]
        text = [" ".join(cell.ljust(width) for cell, width in zip(line, widths)) + " " + line[4] for line in lines]
        counts = ", ".join(f"{self.count(s)} {s}" for s in ("done", "skipped", "failed", "stopped") if self.count(s))
        return "\n".join(text + [f"{len(self.rows)} rows: {counts} ({self.seconds:.1f} s)"])

    def as_dict(self) -> dict:
        return {
            "out_dir": str(self.out_dir),
            "seconds": round(self.seconds, 3),
            "counts": {s: self.count(s) for s in ("done", "skipped", "failed", "stopped")},
            "workers": self.workers,
            "rows": [dataclasses.asdict(r) for r in self.rows],
        }


def read_batch_csv(path) -> list[BatchRow]:
    """The rows of a batch file: a CSV with a header line naming the columns ``source``,
    ``target`` and optionally ``name`` and ``points`` (any order, any case). Image and points
    paths are relative to the CSV file's folder. Blank lines are skipped.

    Raises:
      InputError: the file cannot be read, a column is missing or unknown, a row has no
        source or target, a name is not a plain folder name or is used twice.
    """
    path = Path(path)
    shown = display_path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8 text"
        raise InputError(f"{shown}: cannot read the batch file ({reason})") from None
    try:
        reader = csv.reader(text.splitlines())
        records = [(reader.line_num, row) for row in reader]
    except csv.Error as exc:
        raise InputError(f"{shown}: not a CSV file ({exc})") from None
    records = [(line, row) for line, row in records if any(cell.strip() for cell in row)]
    if not records:
        raise InputError(f"{shown}: empty; the first line must name the columns source,target[,name][,points]")
    (_, header), body = records[0], records[1:]
    columns = [cell.strip().lower() for cell in header]
    unknown = [c for c in columns if c not in COLUMNS]
    missing = [c for c in REQUIRED if c not in columns]
    if unknown or missing:
        problem = f"unknown column(s) {', '.join(map(repr, unknown))}" if unknown else ""
        problem += ("; " if problem else "") + (f"missing column(s) {', '.join(missing)}" if missing else "")
        raise InputError(f"{shown}: {problem}; the columns are source,target[,name][,points]")
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if repeated:
        raise InputError(f"{shown}: column(s) {', '.join(repeated)} named twice")
    base = path.parent
    rows = []
    for k, (line, cells) in enumerate(body, start=1):
        if len(cells) > len(columns):
            raise InputError(f"{shown}, line {line}: {len(cells)} cells for {len(columns)} columns")
        values = dict(zip(columns, (cell.strip() for cell in cells)))
        for column in REQUIRED:
            if not values.get(column):
                raise InputError(f"{shown}, line {line}: no {column}")
        points = values.get("points") or None
        if points is not None and points not in AUTOMATIC:
            points = base / points
        rows.append(
            {
                "row": k,
                "source": base / values["source"],
                "target": base / values["target"],
                "name": values.get("name") or None,
                "points": points,
                "line": f"{shown}, line {line}",
            }
        )
    return batch_rows(rows)


def _default_name(source, target, row: int) -> str:
    def stem(image, fallback):
        if isinstance(image, (str, os.PathLike)):
            text = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(image).stem).strip("._")
            return text[:40] or fallback
        return fallback

    return f"{stem(source, f'row{row}a')}_to_{stem(target, f'row{row}b')}"


def batch_rows(rows) -> list[BatchRow]:
    """Rows for :func:`morph_batch` from mappings with ``source``, ``target`` and optionally
    ``name`` and ``points`` (paths relative to the working directory, or arrays), from
    ``(source, target)`` tuples, or :class:`BatchRow`.

    A missing name is ``SOURCE-STEM_to_TARGET-STEM`` (characters other than ``[A-Za-z0-9._-]``
    become ``_``).

    Raises:
      InputError: a row without a source or target, a name that is not a plain folder name
        (letters, digits, ``. _ -``; not starting with ``.``), a name used twice, also when
        the two differ only in case (one folder on a case-insensitive file system: macOS,
        Windows).
    """
    out, seen = [], {}
    for k, item in enumerate(rows, start=1):
        if isinstance(item, BatchRow):
            item = dataclasses.asdict(item)
        elif isinstance(item, (tuple, list)):
            if len(item) not in (2, 3):
                raise InputError(f"row {k}: expected (source, target) or (source, target, name)")
            item = dict(zip(("source", "target", "name"), item))
        elif not isinstance(item, dict):
            raise InputError(f"row {k}: expected a mapping with source and target, got {type(item).__name__}")
        where = item.get("line") or f"row {k}"
        unknown = sorted(set(item) - set(COLUMNS) - {"row", "line"})
        if unknown:
            raise InputError(f"{where}: unknown key(s) {', '.join(unknown)}; the keys are {', '.join(COLUMNS)}")
        for column in REQUIRED:
            if item.get(column) is None or (isinstance(item[column], str) and not item[column].strip()):
                raise InputError(f"{where}: no {column}")
        row = int(item.get("row") or k)
        name = item.get("name") or _default_name(item["source"], item["target"], row)
        if not isinstance(name, str) or not NAME.match(name) or name == SUMMARY_FILE:
            raise InputError(
                f"{where}: the name {name!r} is not a plain folder name (letters, digits, '.', '_', '-'; "
                f"at most 100 characters; not {SUMMARY_FILE})"
            )
        if name.casefold() in seen:
            first, taken = seen[name.casefold()]
            same = (
                "" if taken == name else f" as {taken!r} (names differing only in case share a folder on some systems)"
            )
            raise InputError(f"{where}: the name {name!r} is already used by row {first}{same}")
        seen[name.casefold()] = (row, name)
        out.append(BatchRow(row, name, item["source"], item["target"], item.get("points")))
    if not out:
        raise InputError("the batch has no rows")
    return out


def morph_batch(
    rows,
    out_dir,
    config: MorphConfig | None = None,
    *,
    workers: int | None = None,
    ray_address: str | None = None,
    shared_dir=None,
    options: OutputOptions | None = None,
    progress: Progress = SILENT,
    pair_time_limit: float | None = None,
) -> BatchResult:
    """Morph every row's pair into ``out_dir/NAME/`` and write ``out_dir/batch.json``.

    Args:
      rows: a CSV file (see :func:`read_batch_csv`) or rows for :func:`batch_rows`.
      out_dir: the output folder (created).
      config: the settings of every pair (default :class:`MorphConfig`).
      workers: pairs fitted at once on a Ray cluster (the ``cluster`` extra); None or 1:
        one after another in this process, without Ray (unless ``ray_address`` is given).
      ray_address: join this Ray cluster (default the ``RAY_ADDRESS`` environment variable);
        see :func:`diffmorph.app.sequence.morph_sequence`.
      shared_dir: a folder every node sees at the same path (inputs below it go as paths).
      options: formats, GIF size, boomerang, report (as :func:`diffmorph.app.morph.morph`).
      pair_time_limit: seconds each row's optimisation may take, here or on a worker (checked at
        every train step; None: no limit); a row past it fails with its checkpoint kept (a
        re-run without the limit resumes it).
      progress: receives notices, the ``pairs`` phase, each row's ``render`` (and, serially,
        ``optimise``); ``progress.cancel()`` stops the batch at the next train step, frame or row.

    Returns:
      :class:`BatchResult` (``failed`` counts the failed rows; the rows' reasons are in it).

    Raises:
      InputError: bad rows (missing column, duplicate name...), settings no row could be written
        with (a strip wider than JPEG allows), Ray missing, the cluster unreachable, an output
        folder that is a file (before any work).
      OutputError: the output folder cannot be created, ffmpeg is missing, ``batch.json``
        cannot be written.
      Interrupted: Ctrl-C; finished rows are kept, ``batch.json`` lists the rest as stopped.
      Cancelled: ``progress.cancel()``; as Interrupted.
    """
    started = time.perf_counter()
    config = config or MorphConfig()
    options = options or OutputOptions()
    if isinstance(rows, (str, os.PathLike)):
        rows = read_batch_csv(rows)
    else:
        rows = batch_rows(rows)
    out = Path(out_dir)
    check_strip(config)  # the settings alone: every row would fail
    time_limit = check_time_limit(pair_time_limit)
    cluster = None
    if uses_cluster(workers, ray_address):
        cluster = Cluster(workers, ray_address, shared_dir, pair_time_limit=time_limit)
    if out.exists() and not out.is_dir():
        raise InputError(f"the output folder {display_path(out)} exists and is not a folder")
    ensure_folder(out)
    if "mp4" in options.formats:
        check_ffmpeg()
    results = {r.row: RowResult(r.row, r.name, "stopped", output=str(out / r.name)) for r in rows}
    result = BatchResult([results[r.row] for r in rows], out)
    with FolderLock(out, ".batch.lock"):
        try:
            _run(rows, out, config, options, progress, cluster, results, result, time_limit)
        except Interrupted as exc:  # or Cancelled
            result.seconds = time.perf_counter() - started
            _write_summary(out, result)
            raise type(exc)(f"{exc.message}; finished rows are kept in {display_path(out)}", True) from None
    result.seconds = time.perf_counter() - started
    _write_summary(out, result)
    return result


def _run(rows, out: Path, config, options, progress: Progress, cluster, results: dict, result: BatchResult, time_limit):
    jobs, to_render = [], []
    for row in rows:
        record = results[row.row]
        paths = MorphPaths(out / row.name)
        try:
            notices = _Prefixed(progress, row.name)
            refuse_inputs_as_outputs(paths, [row.source, row.target])
            pair = load_pair(row.source, row.target, notices)
            guide = guide_for(row.points, pair.source, pair.target, pair.target_size, notices)
            _recover(paths)  # a publish cut off by a kill is rolled back before the row is judged
            if finished_outputs(paths, config, options, pair.digests, guide):
                record.status = "skipped"
                continue
            maps = finished_maps(paths, config, pair.digests, guide)
            check_before_work(paths, pair.source.shape[:2], config, options, optimising=maps is None)
        except USER_ERRORS as exc:
            record.status, record.reason = "failed", str(exc)
            continue
        files = tuple(x if isinstance(x, (str, os.PathLike)) else None for x in (row.source, row.target))
        job = PairJob(row.row, pair, paths, f"row {row.row} ({row.name})", files, guide)
        if maps is not None:
            to_render.append((job, maps))
        else:
            jobs.append(job)
    skipped = sum(1 for r in results.values() if r.status != "stopped")
    for record in results.values():
        if record.status == "skipped":
            progress.notice(f"row {record.row} ({record.name}) is finished; skipped")
    if jobs or to_render:
        import_tensorflow_quietly()
    with progress.phase("pairs", len(rows), skipped):
        done = skipped
        for job, maps in to_render:
            _publish_row(job, maps, None, config, options, progress, results)
            done += 1
            progress.update(done)
        with contextlib.ExitStack() as stack:
            if cluster is None:
                outcomes = fit_serially(jobs, config, progress, time_limit)
            else:
                stack.enter_context(cluster)
                result.workers = dict(cluster.plan)
                outcomes = cluster.fit(jobs, config, progress)
            for outcome in outcomes:
                record = results[outcome.job.index]
                if outcome.error is not None:
                    record.status, record.reason, record.worker = "failed", str(outcome.error), outcome.worker
                    record.peak_mb = outcome.peak_mb
                else:
                    _publish_row(outcome.job, outcome.fitted.maps_low, outcome, config, options, progress, results)
                done += 1
                progress.update(done)


def _recover(paths: MorphPaths) -> None:
    """Roll back a cut-off publish in the row's folder and sweep its leftovers (under its lock)."""
    if paths.root.is_dir():
        with FolderLock(paths.root):
            recover(paths.root, "morph")
            sweep(paths.set_files() + [paths.frames])


def _publish_row(job: PairJob, maps_low, outcome, config, options, progress, results):
    """Render and publish one row's outputs as one set (``outcome``: its fit, None when its maps
    were finished earlier) with the caller's ``progress`` (its ``render`` phase; a cancel stops
    it, the previous outputs kept); a failure fails the row only."""
    record = results[job.index]
    started = time.perf_counter()
    paths = job.paths
    try:
        with FolderLock(paths.root):
            recover(paths.root, "morph")
            sweep(paths.set_files() + [paths.frames])
            publish_pair(job.pair, maps_low, config, paths, options, config.train_steps, progress, True, job.guide)
    except USER_ERRORS as exc:
        record.status, record.reason = "failed", str(exc)
        return
    except Interrupted as exc:  # or Cancelled
        raise type(exc)(f"{exc.message} ({job.label})", exc.resumable) from None
    record.status = "done"
    record.render_seconds = time.perf_counter() - started
    record.seconds = record.render_seconds
    if outcome is not None:
        record.seconds += outcome.fitted.seconds
        record.worker, record.resumed_from, record.peak_mb = (
            outcome.worker,
            outcome.fitted.resumed_from,
            outcome.peak_mb,
        )
    progress.notice(f"{job.label} done ({record.seconds:.1f} s)")


def _write_summary(out: Path, result: BatchResult) -> None:
    write_bytes(out / SUMMARY_FILE, (json.dumps(result.as_dict(), indent=2) + "\n").encode())


class _Prefixed(Progress):
    """Passes notices on with the row's name in front."""

    def __init__(self, progress: Progress, name: str):
        self.progress, self.name = progress, name

    def notice(self, text: str) -> None:
        self.progress.notice(f"{self.name}: {text}")
