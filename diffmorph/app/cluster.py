"""Fitting many pairs at once on a Ray cluster (the ``cluster`` extra: ``pip install "diffmorph[cluster]"``).

Only the optimisations leave this process: :class:`Cluster` starts one worker (a Ray
actor, :class:`PairWorker`) per pair that may run at once, sends each worker a pair,
and yields the pairs' maps as they come back through Ray's object store. The caller
(a sequence, a batch) writes the maps files, renders and publishes here, so re-use and
resume behave exactly as in a serial run.

Where things run and how much they take:

- ``workers`` actors, each asking Ray for ``threads`` CPUs (the cluster's CPUs shared
  out, at most one node's) and, when the cluster has GPUs, a GPU (or a share of one);
  each sets TensorFlow's thread counts to its CPUs, so workers x threads fits the cores.
  Each keeps one compiled optimiser for all its pairs (the process-level cache of
  :mod:`diffmorph.app.fit`).
- Without an address (and no ``RAY_ADDRESS``), a local cluster with this machine's
  cores (at least ``workers`` CPUs) is started and stopped with the run; an
  already-initialised Ray (``ray.init`` by the caller) is used as it is.
- Inputs travel as pixels through the object store (each image once), or as paths
  when they lie below ``shared_dir`` (a folder every node sees at the same path).
- A worker on this machine (or with the work folder below ``shared_dir``) writes a
  pair's snapshots and checkpoints in its work folder; a worker elsewhere keeps them
  in its own temporary folder until the pair is done (or has failed: the folder is
  removed either way, so a node's disk does not fill up with failed pairs).
- ``pair_time_limit``: the seconds one pair's optimisation may take on its worker
  (checked at every train step); past it the pair stops with its checkpoint saved and
  comes back as a :class:`~diffmorph.errors.TimeLimitError` outcome, and the worker
  takes the next pair.

Faults: a worker process that dies is restarted by Ray (``max_restarts``) and its pair
is retried (``max_task_retries``); the retry resumes from the pair's last checkpoint
when that checkpoint is reachable from the new process (same machine, or a shared
work folder). A pair that fails with a user error (bad input, divergence, a write
failure) comes back as an :class:`~diffmorph.app.pairs.Outcome` with its error; the
other pairs go on. Ctrl-C (or ``progress.cancelled``) stops the workers; finished
pairs are the caller's to keep.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import socket
import tempfile
import uuid
from collections import deque
from pathlib import Path

from ..errors import USER_ERRORS, InputError, Interrupted, OutputError, display_path, first_line
from .pairs import Outcome, PairJob, check_time_limit, fit_in_folder, peak_memory_mb

RAY_MISSING = 'pairs on a cluster need Ray, which is not installed: pip install "diffmorph[cluster]"'
ADDRESS_ENV = "RAY_ADDRESS"  # Ray's own convention
CONNECT_TIMEOUT_S = 3.0  # for the reachability check of an address
MAX_RESTARTS = 3  # a worker process that dies is restarted (and its pair retried) this many times
WAIT_S = 0.25  # how often the driver looks for a cancel while waiting for pairs
NICENESS_ENV = "RAY_worker_niceness"  # Ray's setting of its workers' nice value
ACTOR_PREFIX = "diffmorph-worker-"  # workers are named actors: ACTOR_PREFIX + run + "-" + k


def import_ray():
    """The ``ray`` module.

    Raises:
      InputError: Ray is not installed (names the extra to install).
    """
    try:
        import ray
    except ImportError:
        raise InputError(RAY_MISSING) from None
    return ray


def check_workers(workers) -> int | None:
    """``workers`` as an int >= 1 (or None).

    Raises:
      InputError: anything else.
    """
    if workers is None:
        return None
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InputError(f"workers must be an integer >= 1 (got {workers!r})")
    return workers


def resolve_address(address: str | None) -> str | None:
    """The cluster to join: ``address``, else the ``RAY_ADDRESS`` environment variable (Ray's
    convention), else None."""
    if address is not None and str(address).strip():
        return str(address).strip()
    return os.environ.get(ADDRESS_ENV, "").strip() or None


def uses_cluster(workers, address) -> bool:
    """Whether a run with these arguments fits its pairs on Ray: ``workers`` >= 2 or an address
    (``address``, or ``RAY_ADDRESS``).

    Raises:
      InputError: ``workers`` is not an integer >= 1.
    """
    workers = check_workers(workers)
    return (workers is not None and workers >= 2) or resolve_address(address) is not None


def _host_port(address: str) -> tuple[str, int] | None:
    text = address
    if text in ("auto", "local"):
        return None
    if "://" in text:
        text = text.split("://", 1)[1]
    text = text.split("/", 1)[0]
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise InputError(f"ray_address must be host:port, ray://host:port or auto (got {address!r})")
    return host.strip("[]"), int(port)


def check_reachable(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Fail fast when nothing listens at ``address`` (Ray itself would retry for minutes).

    Raises:
      InputError: a malformed address, or no answer within ``timeout`` seconds.
    """
    host_port = _host_port(address)
    if host_port is None:
        return
    try:
        with socket.create_connection(host_port, timeout=timeout):
            pass
    except OSError as exc:
        reason = "no answer" if isinstance(exc, socket.timeout) else (exc.strerror or str(exc))
        raise InputError(
            f"cannot reach the Ray cluster at {address} ({reason}); start it with 'ray start --head' there"
        ) from None


def _package_root() -> str:
    """The folder holding the ``diffmorph`` package (local workers import it from there)."""
    return str(Path(__file__).resolve().parents[2])


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


class PairWorker:
    """A Ray actor that fits pairs (one at a time; a second thread answers :meth:`pid` and :meth:`status`).

    Args:
      threads: TensorFlow's intra- and inter-op threads in this process.
    """

    def __init__(self, threads: int):
        from .runtime import import_tensorflow_quietly

        self.threads = threads
        self.folder = None  # the work folder of the pair in progress
        os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")  # workers sharing a GPU take what they use
        import_tensorflow_quietly(threads)

    def pid(self) -> int:
        """This worker's process id."""
        return os.getpid()

    def status(self) -> dict:
        """``{"pid": process id, "folder": the work folder of the pair in progress, or None}``."""
        return {"pid": os.getpid(), "folder": self.folder}

    def fit(self, spec: dict, source, target) -> dict:
        """Fit one pair (``spec`` from :meth:`Cluster._spec`; ``source``/``target`` its pixels, or
        None when ``spec`` names files to read).

        Returns:
          ``{"fitted": Fitted}`` or ``{"error": one of USER_ERRORS}``, with ``"worker"`` and
          ``"peak_mb"``.
        """
        import ray

        from ..io.images import pixels_digest
        from .inputs import Pair, as_pixels, match_size
        from .layout import MorphPaths

        node = ray.get_runtime_context().get_node_id()
        here = {"worker": f"pid {os.getpid()} on node {node[:8]}", "peak_mb": 0.0}
        local = None
        try:
            pixels = []
            for given, file, digest in zip((source, target), spec["files"], spec["digests"]):
                if given is None:  # a path below the shared folder: read here, as the driver did
                    given = match_size(as_pixels(file, display_path(file)), *spec["shape"][:2])
                    if pixels_digest(given) != digest:
                        raise InputError(f"{display_path(file)} differs from the file the driver read")
                pixels.append(given)
            pair = Pair(pixels[0], pixels[1], tuple(spec["digests"]))
            if spec["shared"] or node == spec["driver_node"]:
                paths = MorphPaths(Path(spec["folder"]))
            else:  # the driver's folder is not visible here: checkpoints stay on this node
                local = Path(tempfile.gettempdir()) / "diffmorph-ray" / spec["key"]
                paths = MorphPaths(local)
            self.folder = str(paths.root)
            fitted = fit_in_folder(pair, paths, spec["config"], guide=spec["guide"], time_limit=spec.get("time_limit"))
        except USER_ERRORS as exc:
            return {"error": exc, **here, "peak_mb": peak_memory_mb()}
        finally:
            self.folder = None
            if local is not None:  # on success and on failure: the driver cannot see it, nothing resumes from it
                shutil.rmtree(local, ignore_errors=True)
        return {"fitted": fitted, **here, "peak_mb": peak_memory_mb()}


class Cluster:
    """Ray workers for the pairs of one run; a context manager (connects on entry, stops the
    workers, and a local cluster it started, on exit).

    Args:
      workers: pairs fitted at once (None: one per node of a joined cluster, or 1).
      address: a cluster to join (see :func:`resolve_address`); None: a local cluster.
      shared_dir: a folder every node sees at the same path (see the module docstring).
      threads: TensorFlow threads per worker (default: the cluster's CPUs shared out).
      pair_time_limit: seconds one pair's optimisation may take (None: no limit; see the
        module docstring).

    Raises:
      InputError: Ray is missing, ``workers`` is not an integer >= 1, the address is
        malformed or unreachable, ``shared_dir`` is not a folder, ``pair_time_limit`` is not
        a number of seconds > 0 (checked here, before any work).
    """

    def __init__(
        self,
        workers: int | None = None,
        address: str | None = None,
        shared_dir=None,
        threads=None,
        pair_time_limit: float | None = None,
    ):
        self.pair_time_limit = check_time_limit(pair_time_limit)
        self.ray = import_ray()
        self.workers = check_workers(workers)
        self.address = resolve_address(address)
        if shared_dir is not None and not Path(shared_dir).is_dir():
            raise InputError(f"shared_dir {display_path(shared_dir)} is not a folder")
        self.shared_dir = Path(shared_dir).resolve() if shared_dir is not None else None
        self.threads = check_workers(threads)
        if self.address is not None:
            check_reachable(self.address)
        self.started = False
        self.actors: list = []
        self.names: list[str] = []
        self.plan: dict = {}

    # ---------------------------------------------------------------- connecting

    def __enter__(self) -> Cluster:
        ray = self.ray
        if not ray.is_initialized():
            self._connect()
        self.plan = self._plan()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
        if self.started:
            with contextlib.suppress(Exception):
                self.ray.shutdown()
            self.started = False

    def _connect(self) -> None:
        ray = self.ray
        quiet = dict(log_to_driver=False, logging_level=logging.ERROR)
        ray_logger = logging.getLogger("ray")
        level = ray_logger.level
        ray_logger.setLevel(logging.ERROR)
        try:
            if self.address is not None:
                try:
                    ray.init(address=self.address, **quiet)
                except Exception as exc:  # Ray raises ConnectionError, RuntimeError, ValueError...
                    raise InputError(f"cannot join the Ray cluster at {self.address}: {first_line(exc)}") from None
            else:
                # Ray lowers its workers' priority (nice 15) by default; a local run's workers get this
                # process's, as the pairs of a serial run would (read by Ray's raylet when it starts)
                saved = os.environ.get(NICENESS_ENV)
                os.environ[NICENESS_ENV] = saved if saved is not None else "0"
                try:
                    ray.init(
                        address="local",
                        num_cpus=max(self.workers or 1, _cores()),
                        include_dashboard=False,
                        runtime_env={"env_vars": {"PYTHONPATH": _package_root()}},
                        **quiet,
                    )
                except Exception as exc:
                    raise OutputError(f"cannot start a local Ray cluster: {first_line(exc)}") from None
                finally:
                    if saved is None:
                        os.environ.pop(NICENESS_ENV, None)
        finally:
            ray_logger.setLevel(level)
        self.started = True

    def _plan(self) -> dict:
        """Workers, threads, CPUs and GPUs per worker, from the cluster's resources."""
        ray = self.ray
        total = ray.cluster_resources()
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        cpus = float(total.get("CPU", 1.0))
        gpus = float(total.get("GPU", 0.0))
        node_cpus = max((float(n.get("Resources", {}).get("CPU", 0.0)) for n in nodes), default=cpus) or cpus
        workers = self.workers or max(1, len(nodes))
        threads = self.threads or max(1, int(min(cpus / workers, node_cpus)))
        return {
            "workers": workers,
            "threads": threads,
            "cpus_per_worker": min(float(threads), cpus / workers, node_cpus),
            "gpus_per_worker": min(1.0, gpus / workers) if gpus else 0.0,
            "nodes": len(nodes),
            "cluster_cpus": cpus,
            "cluster_gpus": gpus,
        }

    def _start_workers(self, count: int) -> None:
        ray, plan = self.ray, self.plan
        run = uuid.uuid4().hex[:8]
        remote = ray.remote(PairWorker)
        for k in range(count):
            name = f"{ACTOR_PREFIX}{run}-{k}"
            actor = remote.options(
                name=name,
                num_cpus=plan["cpus_per_worker"],
                num_gpus=plan["gpus_per_worker"],
                max_restarts=MAX_RESTARTS,
                max_task_retries=MAX_RESTARTS,
                max_concurrency=2,  # fit runs in one thread; pid() and status() answer in the other
            ).remote(plan["threads"])
            self.actors.append(actor)
            self.names.append(name)

    def stop(self) -> None:
        """Stop this run's workers (a pair in progress keeps its last checkpoint)."""
        for actor in self.actors:
            with contextlib.suppress(Exception):
                self.ray.kill(actor, no_restart=True)
        self.actors, self.names = [], []

    # ---------------------------------------------------------------- fitting

    def _spec(self, job: PairJob, config, driver_node: str) -> tuple[dict, bool]:
        """What a worker needs besides the pixels, and whether the inputs go as files."""
        files = tuple(None if f is None or self.shared_dir is None else Path(f).resolve() for f in job.files)
        as_files = all(f is not None and f.is_relative_to(self.shared_dir) for f in files)
        shared = self.shared_dir is not None and job.paths.root.resolve().is_relative_to(self.shared_dir)
        key = hashlib.sha256(f"{job.pair.digests}{job.paths.root.resolve()}".encode()).hexdigest()[:16]
        spec = {
            "files": tuple(str(f) for f in files) if as_files else (None, None),
            "shape": job.pair.source.shape,
            "digests": job.pair.digests,
            "folder": str(job.paths.root.resolve()),
            "shared": shared,
            "driver_node": driver_node,
            "key": key,
            "config": config,
            "guide": job.guide,
            "time_limit": self.pair_time_limit,
        }
        return spec, as_files

    def fit(self, jobs, config, progress=None):
        """Fit ``jobs`` on the workers; yields an :class:`~diffmorph.app.pairs.Outcome` per job as
        each finishes (in finishing order).

        Raises:
          Interrupted: Ctrl-C or ``progress.cancelled``: the workers are stopped (each pair in
            progress keeps its last checkpoint where it was written).
        """
        ray = self.ray
        jobs = list(jobs)
        if not jobs:
            return
        if not self.actors:
            self._start_workers(min(self.plan["workers"], len(jobs)))
        driver_node = ray.get_runtime_context().get_node_id()
        stored: dict = {}  # id(array) -> ObjectRef: each image goes to the object store once

        def put(array):
            if id(array) not in stored:
                stored[id(array)] = (ray.put(array), array)
            return stored[id(array)][0]

        queue = deque(jobs)
        running: dict = {}  # ObjectRef -> (job, actor)
        alive = list(self.actors)

        def submit(actor) -> None:
            job = queue.popleft()
            spec, as_files = self._spec(job, config, driver_node)
            pixels = (None, None) if as_files else (put(job.pair.source), put(job.pair.target))
            running[actor.fit.remote(spec, *pixels)] = (job, actor)

        try:
            for actor in alive[: len(queue)]:
                submit(actor)
            while running:
                if getattr(progress, "cancelled", False):
                    raise KeyboardInterrupt
                ready, _ = ray.wait(list(running), num_returns=1, timeout=WAIT_S)
                for ref in ready:
                    job, actor = running.pop(ref)
                    outcome, gone = self._outcome(job, ref)
                    if gone:  # the worker died more often than Ray restarts it
                        alive.remove(actor)
                    elif queue:
                        submit(actor)
                    yield outcome
                if queue and not running and not alive:
                    while queue:
                        yield Outcome(queue.popleft(), error=OutputError("no cluster worker is left to fit it"))
        except KeyboardInterrupt:
            stopped = len(running)
            for ref in running:  # cancelled first, so that Ray does not retry them when their workers stop
                with contextlib.suppress(Exception):
                    ray.cancel(ref)
            self.stop()
            raise Interrupted(
                f"interrupted; {stopped} pair(s) in progress stopped (each resumes from its last checkpoint)"
            ) from None

    def _outcome(self, job: PairJob, ref) -> tuple[Outcome, bool]:
        """The outcome of a finished call, and whether its worker is gone for good."""
        ray = self.ray
        try:
            result = ray.get(ref)
        except ray.exceptions.RayError as exc:
            gone = isinstance(exc, ray.exceptions.RayActorError)
            cause = getattr(exc, "cause", None) or exc  # a RayTaskError carries the worker's exception
            reason = f"the cluster worker failed: {type(cause).__name__}: {first_line(cause)}"
            return Outcome(job, error=OutputError(f"{job.label}: {reason}")), gone
        if "error" in result:
            return Outcome(job, error=result["error"], worker=result["worker"], peak_mb=result["peak_mb"]), False
        return Outcome(job, result["fitted"], worker=result["worker"], peak_mb=result["peak_mb"]), False
