"""The flags that send a command's pairs to a Ray cluster (``sequence`` and ``batch``)."""

from __future__ import annotations

import argparse

from .options import UsageError, number

SCALE_HELP = """\
Scaling out (needs the cluster extra: pip install "diffmorph[cluster]"): with --workers N
(N >= 2) each pair's optimisation is a Ray task, N at a time, on a local Ray cluster
started for the run; with --ray-address ADDR (or RAY_ADDRESS) they run on that cluster
('ray start --head' on one machine, 'ray start --address HEAD:6379' on the others).
Rendering and the outputs stay on this machine. Without --workers N (N >= 2), --ray-address
and RAY_ADDRESS, the pairs are optimised one after another here, without Ray."""


def add_cluster_options(parser: argparse.ArgumentParser) -> None:
    opt = parser.add_argument
    opt(
        "--workers",
        type=number(int, "workers"),
        metavar="N",
        help="optimise N pairs at once on Ray workers (default: one after another, without Ray, unless "
        "there is a cluster address)",
    )
    opt(
        "--ray-address",
        metavar="ADDR",
        help="run the pairs on the Ray cluster at ADDR (host:port, ray://host:port or auto; default "
        "$RAY_ADDRESS, Ray's convention)",
    )
    opt(
        "--shared-dir",
        metavar="DIR",
        help="a folder every cluster node sees at the same path: images below it are read by the "
        "workers, and a work folder below it gets their checkpoints",
    )
    opt(
        "--pair-time-limit",
        type=number(float, "pair-time-limit"),
        metavar="SECONDS",
        help="stop a pair's optimisation after SECONDS (here or on a worker), keeping its checkpoint; "
        "the pair fails and a re-run without the limit resumes it (default: no limit)",
    )


def cluster_arguments(args) -> dict:
    """The ``workers``, ``ray_address``, ``shared_dir`` and ``pair_time_limit`` arguments of the parsed flags.

    Raises:
      UsageError: ``--workers`` below 1, ``--pair-time-limit`` not above 0.
    """
    if args.workers is not None and args.workers < 1:
        raise UsageError(f"--workers must be an integer >= 1 (got {args.workers})")
    if args.pair_time_limit is not None and not args.pair_time_limit > 0:
        raise UsageError(f"--pair-time-limit must be a number of seconds > 0 (got {args.pair_time_limit:g})")
    return {
        "workers": args.workers,
        "ray_address": args.ray_address,
        "shared_dir": args.shared_dir,
        "pair_time_limit": args.pair_time_limit,
    }
