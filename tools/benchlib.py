"""What every script in ``tools/`` shares: the repository's paths, resource figures, the machine.

The scripts run from the repository root as modules (``python -m tools.bench ...``), so
the checkout's ``diffmorph`` and ``tools`` are importable without touching ``sys.path``;
the child processes they start get the same through :func:`child_env`. Nothing here
imports TensorFlow or diffmorph (``tools/make_warp_fixtures.py`` runs in another venv).
"""

from __future__ import annotations

import datetime
import os
import platform
import resource
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
IMAGES = REPO / "images"
SIMD_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile", "amx_bf16", "neon", "asimd")
WHO = {"self": resource.RUSAGE_SELF, "children": resource.RUSAGE_CHILDREN}


def alternating_step_times(trainers: dict, rounds: int, block: int = 10, warm_up: int = 3) -> dict[str, list[float]]:
    """Seconds per train step of each trainer (anything with ``step()``), measured in
    alternating blocks of ``block`` steps after ``warm_up`` steps (compilation), so that a
    shared machine's load hits every trainer alike: ``{name: [seconds per step, per round]}``."""
    import time

    for trainer in trainers.values():
        for _ in range(warm_up):
            trainer.step()
    times: dict[str, list[float]] = {name: [] for name in trainers}
    for _ in range(rounds):
        for name, trainer in trainers.items():
            start = time.perf_counter()
            for _ in range(block):
                trainer.step()
            times[name].append((time.perf_counter() - start) / block)
    return times


def child_env(**extra: str) -> dict[str, str]:
    """This process's environment with the checkout first on ``PYTHONPATH`` (plus ``extra``)."""
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, **extra}


def module_command(name: str, *args) -> list[str]:
    """The command that runs ``tools/NAME.py`` as a module with this interpreter (run it with :func:`child_env`)."""
    return [sys.executable, "-m", f"tools.{name}", *(str(a) for a in args)]


def maxrss_mb(kib_or_bytes: int) -> float:
    """``ru_maxrss`` in MB (10^6 bytes): the kernel gives KiB on Linux, bytes on macOS."""
    return kib_or_bytes * (1 if sys.platform == "darwin" else 1024) / 1e6


def peak_rss_mb(who: str = "self") -> float:
    """Peak resident set size in MB of this process (``"self"``) or its waited-for children (``"children"``)."""
    return maxrss_mb(resource.getrusage(WHO[who]).ru_maxrss)


def usage(who: str = "self") -> dict[str, float]:
    """CPU seconds (user, system) and minor / major page faults so far; differences give a span's share."""
    used = resource.getrusage(WHO[who])
    return {
        "user_s": used.ru_utime,
        "system_s": used.ru_stime,
        "minor_faults": used.ru_minflt,
        "major_faults": used.ru_majflt,
    }


def usage_since(before: dict[str, float], who: str = "self") -> dict[str, float]:
    """What :func:`usage` grew by since ``before``."""
    now = usage(who)
    return {key: now[key] - before[key] for key in now}


def cpu_seconds(who: str = "self") -> float:
    """User + system CPU seconds so far (less sensitive to a shared machine's load than wall time)."""
    used = usage(who)
    return used["user_s"] + used["system_s"]


def _sysctl(name: str) -> str:
    try:
        return subprocess.run(["sysctl", "-n", name], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def cpu_info() -> dict:
    """The CPU: model name, family/model numbers (x86 Linux), whether virtualised, SIMD flags.

    Linux: ``/proc/cpuinfo`` (the first processor); macOS: ``sysctl``. ``simd`` lists
    which of :data:`SIMD_FLAGS` the CPU reports (avx2, avx512f, amx_tile: the convolution
    and matrix kernels TensorFlow's oneDNN picks depend on them).
    """
    info = {"model": platform.processor() or platform.machine(), "simd": []}
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if not line.strip():
                    break  # the first processor is enough
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
    except OSError:
        pass
    if fields:
        info["model"] = fields.get("model name", fields.get("Model", info["model"]))
        if "cpu family" in fields:
            info["family"], info["model_number"] = int(fields["cpu family"]), int(fields.get("model", 0))
        flags = set((fields.get("flags") or fields.get("Features") or "").split())
        info["simd"] = [flag for flag in SIMD_FLAGS if flag in flags]
        info["virtualised"] = "hypervisor" in flags
    elif sys.platform == "darwin":
        info["model"] = _sysctl("machdep.cpu.brand_string") or info["model"]
        names = {"avx2": "hw.optional.avx2_0", "avx512f": "hw.optional.avx512f", "neon": "hw.optional.neon"}
        info["simd"] = [flag for flag, key in names.items() if _sysctl(key) == "1"]
    return info


def machine_info() -> dict:
    """Where figures were taken: CPU (:func:`cpu_info`), cores, OS, Python, TensorFlow, load, date."""
    try:
        from importlib.metadata import version

        tensorflow = version("tensorflow")
    except Exception:  # not installed under that name
        tensorflow = None
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": cpu_info()["model"],
        "cpu_info": cpu_info(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": usable,
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "tensorflow": tensorflow,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def describe_cpu(machine: dict) -> str:
    """One line naming the CPU for a table's header.

    E.g. ``AMD EPYC (family 25 model 17, avx2 avx512f, VM), 2 CPUs``.
    """
    cpu = machine.get("cpu_info", {})
    details = []
    if "family" in cpu:
        details.append(f"family {cpu['family']} model {cpu['model_number']}")
    if cpu.get("simd"):
        details.append(" ".join(cpu["simd"]))
    if cpu.get("virtualised"):
        details.append("VM")
    inside = f" ({', '.join(details)})" if details else ""
    return f"{machine['cpu']}{inside}, {machine.get('cpus_usable', machine.get('cpu_count'))} CPUs"
