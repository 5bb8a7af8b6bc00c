"""The built package: sdist and wheel from ``python -m build``, the wheel's files (the sample
images in diffmorph/data/, every module, the command), and the wheel installed in a fresh virtual
environment with no checkout on the path, where ``diffmorph --version``, a tiny ``diffmorph demo``
and ``diffmorph app --help`` run from a temporary folder. The fresh environment sees this one's
packages through a ``.pth`` file (TensorFlow is not installed again) and gets the wheel with
``--no-deps``. The extras' requirements must be met by the test environment (CI installs them
from PyPI). Slow: builds and a subprocess."""

import email.parser
import importlib.metadata
import os
import shutil
import site
import subprocess
import sys
import tarfile
import venv
import zipfile

import pytest
from packaging.requirements import Requirement

import diffmorph
from conftest import REPO

# what the tests' checkout holds but a package build must not see (outputs, environments, caches)
SKIP = shutil.ignore_patterns(
    ".git", ".venv", "venv", "site", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", ".hypothesis",
    "train", "morph", "preds.npy", "diffmorph-demo",
)  # fmt: skip
EXTRAS = ("app", "cluster", "docs")  # at least these; every declared extra is checked


def _run(args, **kwargs):
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=600, **kwargs)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(sdist, wheel) built from a copy of the checkout (so no build/ or egg-info lands in it)."""
    root = tmp_path_factory.mktemp("package")
    source = root / "source"
    shutil.copytree(REPO, source, ignore=SKIP, symlinks=True)
    run = _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", root / "dist", source])
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    sdists = list((root / "dist").glob("diffmorph-*.tar.gz"))
    wheels = list((root / "dist").glob("diffmorph-*.whl"))
    assert len(sdists) == 1 and len(wheels) == 1, list((root / "dist").iterdir())
    return sdists[0], wheels[0]


def metadata(wheel):
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        return email.parser.Parser().parsestr(archive.read(name).decode("utf-8"))


@pytest.mark.slow
def test_the_wheel_carries_the_package_the_samples_and_the_command(built):
    sdist, wheel = built
    assert wheel.name.startswith(f"diffmorph-{diffmorph.__version__}-py3-none-any"), wheel.name
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = archive.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    modules = {str(p.relative_to(REPO)) for p in (REPO / "diffmorph").rglob("*.py")}
    assert modules <= names, sorted(modules - names)
    shipped = {"diffmorph/data/astronaut.jpg", "diffmorph/data/cat.jpg", "diffmorph/data/README.md"}
    if (REPO / "images" / "astronaut_cat_points.csv").is_file():
        shipped.add("diffmorph/data/astronaut_cat_points.csv")
    assert shipped <= names, sorted(shipped - names)
    for name in shipped:  # the same bytes as images/: one copy in the repository, mapped into the wheel
        with zipfile.ZipFile(wheel) as archive:
            assert archive.read(name) == (REPO / "images" / name.rpartition("/")[2]).read_bytes(), name
    assert not any(n.startswith(("tests/", "tools/", "docs/", "images/")) for n in names), sorted(names)[:20]
    assert "diffmorph = diffmorph.cli.main:main" in entry_points
    with tarfile.open(sdist) as archive:
        members = {m.name.partition("/")[2] for m in archive.getmembers()}
    assert {"images/astronaut.jpg", "images/cat.jpg", "pyproject.toml", "diffmorph/io/samples.py"} <= members


@pytest.mark.slow
def test_every_extra_resolves(built):
    """Each extra names requirements, and the test environment (installed from PyPI) meets them."""
    meta = metadata(built[1])
    extras = meta.get_all("Provides-Extra")
    assert set(EXTRAS) <= set(extras), extras
    requirements = [Requirement(line) for line in meta.get_all("Requires-Dist")]
    for extra in extras:
        wanted = [r for r in requirements if r.marker is not None and r.marker.evaluate({"extra": extra})]
        assert wanted, extra
        for requirement in wanted:
            installed = importlib.metadata.version(requirement.name)
            assert requirement.specifier.contains(installed, prereleases=True), (extra, str(requirement), installed)
    for requirement in requirements:  # the core requirements too
        if requirement.marker is None:
            assert requirement.specifier.contains(importlib.metadata.version(requirement.name), prereleases=True)


@pytest.mark.slow
def test_the_wheel_installs_and_runs_without_the_checkout(built, tmp_path):
    env_dir = tmp_path / "env"
    venv.create(env_dir, with_pip=False, symlinks=True)
    python = env_dir / "bin" / "python"
    purelib = _run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip()
    # this environment's packages after the fresh one's own (TensorFlow, pip...), but not the checkout
    ours = [p for p in site.getsitepackages() if os.path.isdir(p)]
    assert ours and not any(os.path.samefile(p, REPO) for p in ours)
    (tmp_path / "env" / purelib.partition(str(env_dir) + "/")[2] / "outer.pth").write_text("\n".join(ours) + "\n")
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    install = _run([python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", built[1]], env=clean)
    assert install.returncode == 0, install.stderr
    work = tmp_path / "elsewhere"
    work.mkdir()
    command = env_dir / "bin" / "diffmorph"

    where = _run([python, "-c", "import diffmorph; print(diffmorph.__file__)"], cwd=work, env=clean)
    assert where.stdout.strip().startswith(str(env_dir)), where.stdout + where.stderr
    version = _run([command, "--version"], cwd=work, env=clean)
    assert (version.returncode, version.stdout.strip()) == (0, f"diffmorph {diffmorph.__version__}"), version.stderr
    demo = _run(
        [command, "demo", "-o", "d", "--size", 32, "-e", 2, "--steps", 3, "--plain", "--formats", "gif", "-q"],
        cwd=work,
        env=clean,
    )
    assert demo.returncode == 0, demo.stderr[-3000:]
    assert (work / "d" / "morph" / "morph.gif").is_file() and (work / "d" / "morph" / "maps.npz").is_file()
    assert "Traceback" not in demo.stderr
    app = _run([command, "app", "--help"], cwd=work, env=clean)
    assert app.returncode == 0 and "--host" in app.stdout and "--output-root" in app.stdout, app.stderr
