"""Quality benchmark of morph presets: ``python -m tools.quality_bench``.

A benchmark script (it prints figures; it is not a test). It morphs image pairs with
one or more *presets* (named sets of :class:`~diffmorph.config.MorphConfig` settings,
see :data:`diffmorph.config.PRESETS`) and measures the middle frame (alpha = 0.5).

Pairs with a known midpoint ("synthetic", named ``SCENE-AMP``, e.g. ``astro-4``)
---------------------------------------------------------------------------------
A scene image ``A`` (uint8 RGB, ``H x W``) and a random smooth flow ``F`` (pixels,
``(H, W, 2)``, channel 0 = dy, channel 1 = dx) plus per-channel colour gains ``g``::

    B     = round(clip(g * warp(A, F), 0, 255))
    truth = round(clip((1 + g) / 2 * warp(A, F / 2), 0, 255))

where ``warp`` is a backward warp (``out[y, x] = A[y - F[y, x, 0], x - F[y, x, 1]]``,
edge clamp) applied at the scene's own size to the 0..255 values (float32). So the truth
is the scene warped half-way with half the colour change, in the same sense in which the
renderer scales the maps by alpha (flow * alpha, gain 1 + alpha * (g - 1)).
``--truth-warp`` picks its resampling kernel: ``lanczos`` (default; ``cv2.remap`` with
``INTER_LANCZOS4``, an 8 x 8 windowed sinc, the closest of the three to resampling the
continuous scene, and a kernel the renderer does not use), ``cubic`` (``INTER_CUBIC``)
or ``bilinear`` (the project's :func:`diffmorph.core.warp.dense_image_warp`). A bilinear
truth is itself blurred by its warp, so it rewards renderers that blur in the same way
(the bilinear oracle row reaches only ~0.8 of its sharpness); compare presets under more
than one.

* Scenes: ``astro`` = images/astronaut.jpg enlarged to 512 x 448 (W x H, INTER_CUBIC,
  so the output size is larger than the working size and not square); ``cat`` =
  images/cat.jpg at its own 256 x 256; ``texture`` = a procedural 600 x 400 picture
  (8 octaves of colour value noise plus anti-aliased discs and lines: detail at every
  scale, finer than the working size).
* Flow: ``F = shift + smooth``. ``smooth`` is a sum of the 15 lowest cosine modes
  ``cos(2 pi (ky y / H + kx x / W) + phase)``, ``ky, kx in {0, 1, 2, 3}`` (not both 0),
  with N(0, 1) / (ky + kx) amplitudes per channel, scaled so its largest displacement
  is ``0.6 * amp * min(H, W)``; ``shift`` is a constant displacement of length
  ``0.4 * amp * min(H, W)`` in a random direction. ``AMP`` in the pair's name is
  ``amp`` in percent (2, 4 or 8): a bound on the displacement in % of the image size.
* Gains: ``g`` ~ U(0.8, 1.2) per channel.
* Everything is drawn from ``numpy.random.default_rng(1000 * index + pair seed)``
  (``index`` of the pair's name in :data:`SYNTHETIC`; ``--pair-seed``, default 0), so
  every preset sees the same pairs.

Real pairs (no truth): ``astro-cat`` (images/astronaut.jpg -> images/cat.jpg) and
``toy`` (images/toy_a.png -> images/toy_b.png).

Reference rows (synthetic pairs; ``--no-reference`` leaves them out)
-------------------------------------------------------------------
* ``dissolve``: the cross-dissolve ``(A + B) / 2``.
* ``oracle``: the middle frame the renderer's formula gives with the *exact* maps
  (flow ``F`` and its exact inverse, gains half-way), warped bilinearly like the
  renderer: the ceiling that better maps can reach with the current renderer. Its
  sharpness is below 1 because ``B`` was already resampled once when it was made.

Figures (per pair, preset and net seed)
---------------------------------------
* ``psnr``, ``ssim``: middle frame against the truth (:func:`diffmorph.core.metrics.psnr`
  / :func:`~diffmorph.core.metrics.ssim` on uint8 RGB, peak 255), over the frame minus a border of
  ``round(0.05 * min(H, W))`` pixels (where the flow pulls in clamped border pixels
  the truth itself is arbitrary).
* ``sharp``: variance of the Laplacian (:func:`diffmorph.core.metrics.sharpness`) of
  the middle frame over the same region, divided by the truth's (real pairs: by the
  mean of the two inputs').
* ``pace``: std / mean (``cv`` of :func:`diffmorph.core.metrics.pace_stats`) of
  ``mean |frame[i+1] - frame[i]|`` over the ``--frames``
  rendered frames (0 = perfectly even) at the preset's alphas (its ``pacing``).
* ``time_s``: wall time of the optimisation (building the Trainer, compiling, all
  train steps as :func:`diffmorph.core.optimise.optimise` runs them) plus building the
  :class:`~diffmorph.core.render.FrameRenderer` and rendering all frames, with the
  dense pass of uniform pacing (no encoding).
  ``cpu_s``: the process's user + system CPU time over the same span (less sensitive
  to other load on a shared machine than the wall time).
* ``peak_rss_mb``: the preset's process's peak resident memory (all its pairs); every
  preset runs in its own subprocess.
* ``--render-kernels cubic ...`` (an experiment on the render side, not the project's
  renderer): the middle frame rendered again from the same maps with ``cv2.remap``
  and that kernel, scored as ``cubic_psnr``, ``cubic_sharp`` ...

How to run (from the repository root)::

    python -m tools.quality_bench                                  # default pairs, faithful vs best
    python -m tools.quality_bench --steps 1000 --seeds 0 1 2
    python -m tools.quality_bench --pairs astro-8 texture-8 --presets faithful
    python -m tools.quality_bench --custom fast_lr 'preset=faithful,learning_rate=0.002'
    python -m tools.quality_bench --render-kernels cubic --truth-warp cubic
    python -m tools.quality_bench --save-frames /tmp/quality_frames

The default run (6 pairs, 2 presets, 300 steps at size 256) takes about 4-6 minutes on
a 2-core machine. Output: progress on stderr, a table per pair, preset and seed, then
means per preset over the synthetic and over the real pairs on stdout, and last ONE
line of JSON with every figure, the settings and the load averages before and after
(the machine may be shared: compare presets from one run, and repeat).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from diffmorph.config import PRESETS, MorphConfig  # noqa: E402
from tools.benchlib import IMAGES, child_env, cpu_seconds, describe_cpu, machine_info, module_command, peak_rss_mb  # noqa: E402

SCENES = ("astro", "cat", "texture")
AMPLITUDES = (2, 4, 8)  # percent of min(H, W)
SYNTHETIC = tuple(f"{scene}-{amp}" for scene in SCENES for amp in AMPLITUDES)
REAL = {"astro-cat": ("astronaut.jpg", "cat.jpg"), "toy": ("toy_a.png", "toy_b.png")}
DEFAULT_PAIRS = ("astro-2", "astro-8", "cat-4", "texture-8", "astro-cat", "toy")
SHIFT_SHARE = 0.4  # of the amplitude: the global shift; the rest is the smooth field
GAIN_RANGE = (0.8, 1.2)
MODES = 4  # cosine modes 0..3 per axis
BORDER = 0.05  # metrics ignore this share of min(H, W) at each edge


# ----------------------------------------------------------------------------- pairs


def read_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise SystemExit(f"quality_bench: cannot read {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def texture_scene(width: int = 600, height: int = 400, seed: int = 7) -> np.ndarray:
    """Procedural uint8 ``(height, width, 3)`` picture with detail at every scale."""
    rng = np.random.default_rng(seed)
    image = np.zeros((height, width, 3), np.float32)
    for octave in range(1, 9):  # value noise: 2**octave cells across, cubic upsampling
        cells = 2**octave
        grid = rng.normal(0, 1, (cells * height // width + 2, cells + 2, 3)).astype(np.float32)
        image += cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC) / octave**0.5
    image = (image - image.min()) / (image.max() - image.min()) * 255
    image = image.astype(np.uint8)
    for _ in range(40):  # anti-aliased discs and lines
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        if rng.random() < 0.5:
            cv2.circle(image, (x, y), int(rng.integers(4, 30)), colour, -1, cv2.LINE_AA)
        else:
            x2, y2 = int(rng.integers(0, width)), int(rng.integers(0, height))
            cv2.line(image, (x, y), (x2, y2), colour, int(rng.integers(1, 4)), cv2.LINE_AA)
    return image


def scene(name: str) -> np.ndarray:
    """The scene image of a synthetic pair, uint8 ``(H, W, 3)`` RGB."""
    if name == "astro":
        return cv2.resize(read_rgb(IMAGES / "astronaut.jpg"), (512, 448), interpolation=cv2.INTER_CUBIC)
    if name == "cat":
        return read_rgb(IMAGES / "cat.jpg")
    return texture_scene()


def smooth_flow(height: int, width: int, amp: float, rng) -> np.ndarray:
    """Random smooth flow, float32 ``(H, W, 2)`` pixels (dy, dx), length <= amp * min(H, W)."""
    y = np.arange(height, dtype=np.float64)[:, None] / height
    x = np.arange(width, dtype=np.float64)[None, :] / width
    field = np.zeros((height, width, 2))
    for ky in range(MODES):
        for kx in range(MODES):
            if ky == kx == 0:
                continue
            for c in range(2):
                field[..., c] += (
                    rng.normal() / (ky + kx) * np.cos(2 * np.pi * (ky * y + kx * x) + rng.uniform(0, 2 * np.pi))
                )
    size = min(height, width)
    field *= (1 - SHIFT_SHARE) * amp * size / np.sqrt((field**2).sum(-1)).max()
    angle = rng.uniform(0, 2 * np.pi)
    field += SHIFT_SHARE * amp * size * np.array([np.sin(angle), np.cos(angle)])
    return field.astype(np.float32)


def warp(image: np.ndarray, flow: np.ndarray, kernel: str = "bilinear") -> np.ndarray:
    """Backward warp of a float ``(H, W, C)`` image by ``(H, W, 2)`` pixels (dy, dx).

    ``bilinear``: the project's ``dense_image_warp``; ``cubic`` / ``lanczos``:
    ``cv2.remap`` with ``INTER_CUBIC`` / ``INTER_LANCZOS4`` and ``BORDER_REPLICATE`` at
    the same query points ``(y - dy, x - dx)``.
    """
    if kernel == "bilinear":
        from diffmorph.core.warp import dense_image_warp

        return np.asarray(dense_image_warp(image[None].astype(np.float32), flow[None].astype(np.float32)))[0]
    height, width = image.shape[:2]
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
    out = cv2.remap(
        image.astype(np.float32),
        cols - flow[..., 1],
        rows - flow[..., 0],
        cv2.INTER_LANCZOS4 if kernel == "lanczos" else cv2.INTER_CUBIC,
        borderMode=cv2.BORDER_REPLICATE,
    )
    return out.reshape(image.shape)


def inverse_flow(flow: np.ndarray, iterations: int = 30) -> np.ndarray:
    """The flow ``G`` with ``warp(warp(A, F), G) = A``: ``G(x) = -F(x - G(x))`` by fixed point."""
    inverse = -flow
    for _ in range(iterations):
        inverse = -warp(flow, inverse)
    return inverse


class Pair(NamedTuple):
    """uint8 RGB source, target and truth (None for real pairs); flow and gains of a synthetic pair."""

    a: np.ndarray
    b: np.ndarray
    truth: np.ndarray | None = None
    flow: np.ndarray | None = None
    gain: np.ndarray | None = None


def to_uint8(x) -> np.ndarray:
    return np.rint(np.clip(x, 0, 255)).astype(np.uint8)


def make_pair(name: str, pair_seed: int = 0, kernel: str = "bilinear") -> Pair:
    """The pair called ``name`` (see the module docstring)."""
    if name in REAL:
        a, b = (read_rgb(IMAGES / f) for f in REAL[name])
        if b.shape != a.shape:
            b = cv2.resize(b, a.shape[1::-1], interpolation=cv2.INTER_AREA)
        return Pair(a, b)
    scene_name, amp = name.rsplit("-", 1)
    a = scene(scene_name)
    rng = np.random.default_rng(1000 * SYNTHETIC.index(name) + pair_seed)
    flow = smooth_flow(a.shape[0], a.shape[1], int(amp) / 100, rng)
    gain = rng.uniform(*GAIN_RANGE, 3).astype(np.float32)
    b = to_uint8(gain * warp(a.astype(np.float32), flow, kernel))
    truth = to_uint8((1 + gain) / 2 * warp(a.astype(np.float32), flow / 2, kernel))
    return Pair(a, b, truth, flow, gain)


def oracle_middle(pair: Pair) -> np.ndarray:
    """The middle frame the renderer would give with the exact maps (bilinear warps).

    ``(W(A g_half_ab, F / 2) + W(B g_half_ba, G / 2)) / 2`` with ``G`` the exact inverse
    flow and the gains taken half-way (``1 + (g - 1) / 2``, ``1 + (1 / g - 1) / 2``):
    the ceiling of what better maps can reach with the bilinear render.
    """
    inverse = inverse_flow(pair.flow)
    half_a = (1 + (pair.gain - 1) / 2) * warp(pair.a.astype(np.float32), pair.flow / 2)
    half_b = (1 + (1 / pair.gain - 1) / 2) * warp(pair.b.astype(np.float32), inverse / 2)
    return to_uint8((half_a + half_b) / 2)


# ----------------------------------------------------------------------------- metrics


def crop(image: np.ndarray) -> np.ndarray:
    m = round(BORDER * min(image.shape[:2]))
    return np.ascontiguousarray(image[m : image.shape[0] - m, m : image.shape[1] - m])


def sharpness(image: np.ndarray) -> float:
    """Variance of the Laplacian of the grey image (inside the border): :func:`diffmorph.core.metrics.sharpness`."""
    from diffmorph.core import metrics

    return metrics.sharpness(crop(image))


def psnr_ssim(image: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """PSNR and SSIM inside the border (:func:`diffmorph.core.metrics.psnr`, :func:`~diffmorph.core.metrics.ssim`)."""
    from diffmorph.core import metrics

    return metrics.psnr(crop(truth), crop(image)), metrics.ssim(crop(truth), crop(image))


def pace(frames: list[np.ndarray]) -> float:
    """std / mean of the mean absolute difference between neighbouring frames (``cv`` of
    :func:`diffmorph.core.metrics.pace_stats` over :func:`~diffmorph.core.metrics.mean_abs_diff`)."""
    from diffmorph.core import metrics

    steps = [metrics.mean_abs_diff(a, b) for a, b in itertools.pairwise(frames)]
    return metrics.pace_stats(steps)["cv"] or 0.0


# ----------------------------------------------------------------------------- one preset


def remap_middle(a: np.ndarray, b: np.ndarray, maps_low: np.ndarray, config: MorphConfig, kernel: str):
    """EXPERIMENT (render-side): the alpha = 0.5 frame with ``cv2.remap`` and ``kernel``.

    The renderer's formula (native size, per-axis flow scale, clip, blend), with the
    bilinear ``dense_image_warp`` replaced by ``cv2.remap`` (``INTER_LINEAR``,
    ``INTER_CUBIC`` or ``INTER_LANCZOS4``, ``BORDER_REPLICATE``). Measurement only.
    """
    from diffmorph.core.maps import colour_transform, split_maps
    from diffmorph.core.model import upsample_maps
    from diffmorph.core.render import resize_maps_rows, to_float
    from diffmorph.core.render import to_uint8 as float_to_uint8

    height, width = a.shape[:2]
    maps = resize_maps_rows(upsample_maps(maps_low, config.size).numpy(), height, width, 0, height)
    scale = np.array(config.flow_scale(height, width), np.float32)
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
    flag = {"linear": cv2.INTER_LINEAR, "cubic": cv2.INTER_CUBIC, "lanczos": cv2.INTER_LANCZOS4}[kernel]
    halves = []
    for image, direction in zip((a, b), split_maps(maps)):
        half = direction.scaled(0.5)
        colour = np.asarray(colour_transform(to_float(image), half, config))[0]
        flow = np.asarray(half.flow)[0] * scale
        halves.append(
            np.clip(
                cv2.remap(colour, cols - flow[..., 1], rows - flow[..., 0], flag, borderMode=cv2.BORDER_REPLICATE),
                -1,
                1,
            )
        )
    return float_to_uint8((halves[0] + halves[1]) / 2)


def morph(a, b, config: MorphConfig):
    """Optimise and render; returns (frames, middle frame, wall seconds, CPU seconds, maps_low)."""
    from diffmorph.core.optimise import StagedTrainer, Trainer
    from diffmorph.core.pacing import alphas_for, linear_alphas
    from diffmorph.core.render import FrameRenderer, to_working

    def trainer_at(size: int) -> Trainer:
        return Trainer(to_working(a, size), to_working(b, size), config.stage_config(size))

    start, cpu = time.perf_counter(), cpu_seconds()
    trainer = Trainer(to_working(a, config.size), to_working(b, config.size), config)
    for _ in StagedTrainer(trainer, trainer_at).run():  # the size_schedule's stages (one without)
        pass
    maps_low = trainer.maps_low()
    renderer = FrameRenderer(a, b, maps_low, config)
    if config.pacing == "linear":
        alphas = linear_alphas(config.frames)
    else:  # the dense pass on the frames' own renderer (the app downsizes frames over 256 px first)
        alphas = alphas_for(config.frames, config.pacing, config.ease, renderer=renderer)
    frames = [f.image for f in renderer.frames(alphas)]
    seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    middle = frames[alphas.index(0.5)] if 0.5 in alphas else renderer.render(0, 0.5).image
    return frames, middle, seconds, cpu, maps_low


def score(row: dict, middle: np.ndarray, pair: Pair, prefix: str = "") -> None:
    """Add PSNR, SSIM (synthetic pairs) and relative sharpness of ``middle`` to ``row``."""
    if pair.truth is not None:
        row[prefix + "psnr"], row[prefix + "ssim"] = (round(v, 4) for v in psnr_ssim(middle, pair.truth))
        row[prefix + "sharp"] = round(sharpness(middle) / sharpness(pair.truth), 4)
    else:
        row[prefix + "sharp"] = round(sharpness(middle) / ((sharpness(pair.a) + sharpness(pair.b)) / 2), 4)


def save(folder, name: str, image: np.ndarray) -> None:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(folder / f"{name}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))


def run_preset(label: str, settings: dict, args) -> list[dict]:
    """Every pair and seed with one preset, in this process."""
    results = []
    for name in args.pairs:
        pair = make_pair(name, args.pair_seed, args.truth_warp)
        for seed in args.seeds:
            config = MorphConfig(
                **{
                    **settings,
                    "size": args.size,
                    "train_steps": settings.get("train_steps", args.steps),  # a preset's own count wins
                    "frames": args.frames,
                    "seed": seed,
                    "render": "native",
                }
            )
            print(f"quality_bench: {label} {name} seed {seed}", file=sys.stderr, flush=True)
            frames, middle, seconds, cpu, maps_low = morph(pair.a, pair.b, config)
            row = {
                "preset": label,
                "pair": name,
                "seed": seed,
                "time_s": round(seconds, 2),
                "cpu_s": round(cpu, 2),
                "pace": round(pace(frames), 4),
            }
            score(row, middle, pair)
            for kernel in args.render_kernels:
                score(row, remap_middle(pair.a, pair.b, maps_low, config, kernel), pair, f"{kernel}_")
            if args.save_frames:
                save(args.save_frames, f"{name}_{label}_s{seed}", middle)
            results.append(row)
    for row in results:
        row["peak_rss_mb"] = round(peak_rss_mb(), 1)
    return results


def reference_rows(args) -> list[dict]:
    """Per synthetic pair: the cross-dissolve ``(A + B) / 2`` and the oracle (see :func:`oracle_middle`)."""
    rows = []
    for name in args.pairs:
        pair = make_pair(name, args.pair_seed, args.truth_warp)
        if pair.truth is None:
            continue
        dissolve = to_uint8((pair.a.astype(np.float32) + pair.b) / 2)
        for label, middle in (("dissolve", dissolve), ("oracle", oracle_middle(pair))):
            row = {
                "preset": label,
                "pair": name,
                "seed": "-",
                "time_s": 0.0,
                "cpu_s": 0.0,
                "pace": 0.0,
                "peak_rss_mb": 0.0,
            }
            score(row, middle, pair)
            rows.append(row)
            if args.save_frames:
                save(args.save_frames, f"{name}_{label}", middle)
        if args.save_frames:
            save(args.save_frames, f"{name}_truth", pair.truth)
    return rows


# ----------------------------------------------------------------------------- parent


def parse_value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def split_top_level(text: str) -> list[str]:
    """``text`` split at the commas outside brackets (``size_schedule=[[128,0.8]],seed=1``)."""
    items, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += {"[": 1, "]": -1}.get(char, 0)
        if char == "," and depth == 0:
            items.append(text[start:i])
            start = i + 1
    return items + [text[start:]]


def resolve_presets(args) -> dict[str, dict]:
    """Preset label -> MorphConfig settings (named presets, then ``--custom`` ones)."""
    out = {}
    for name in args.presets:
        if name not in PRESETS:
            raise SystemExit(f"quality_bench: unknown preset {name!r} (presets: {', '.join(PRESETS)})")
        out[name] = dict(PRESETS[name])
    for label, text in args.custom or []:
        settings = {}
        for item in filter(None, split_top_level(text)):
            key, _, value = item.partition("=")
            settings[key.strip()] = parse_value(value.strip())
        base = settings.pop("preset", "faithful")
        out[label] = {**PRESETS[base], **settings}
    for settings in out.values():
        MorphConfig(**settings)  # fail early on a bad setting
    return out


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def summarise(rows: list[dict], labels: list[str]) -> list[dict]:
    """Per preset: means over the synthetic and over the real pairs; total wall and CPU time."""
    out = []
    for label in labels:
        mine = [r for r in rows if r["preset"] == label]
        if not mine:
            continue
        synth = [r for r in mine if "psnr" in r]
        real = [r for r in mine if "psnr" not in r]
        entry = {
            "preset": label,
            "time_s": round(sum(r["time_s"] for r in mine), 1),
            "cpu_s": round(sum(r["cpu_s"] for r in mine), 1),
            "peak_rss_mb": max(r["peak_rss_mb"] for r in mine),
        }
        keys = [k for k in mine[0] if k.endswith(("psnr", "ssim", "sharp")) or k == "pace"]
        for key in keys:
            if synth and key in synth[0]:
                entry[f"synth_{key}"] = round(float(np.mean([r[key] for r in synth])), 4)
            if real and key in real[0]:
                entry[f"real_{key}"] = round(float(np.mean([r[key] for r in real])), 4)
        out.append(entry)
    return out


def _cell(row: dict, key: str, fmt: str, width: int) -> str:
    return format(row[key], fmt).rjust(width) if key in row else "-".rjust(width)


def table(rows: list[dict], summary: list[dict], kernels: list[str]) -> str:
    extra = [
        (f"{k}_{m}", f"{k[:3]}_{m[:4]}", ".2f" if m == "psnr" else ".3f") for k in kernels for m in ("psnr", "sharp")
    ]
    head = (
        f"{'pair':<11} {'preset':<16} {'seed':>4} {'psnr':>7} {'ssim':>6} {'sharp':>6} {'pace':>6} "
        f"{'time_s':>7} {'cpu_s':>7} {'rss_mb':>7}" + "".join(f" {short:>9}" for _, short, _ in extra)
    )
    lines = [head]
    for r in rows:
        lines.append(
            f"{r['pair']:<11} {r['preset']:<16} {r['seed']!s:>4} {_cell(r, 'psnr', '.2f', 7)} "
            f"{_cell(r, 'ssim', '.3f', 6)} {_cell(r, 'sharp', '.3f', 6)} {r['pace']:6.3f} "
            f"{r['time_s']:7.1f} {r['cpu_s']:7.1f} {r['peak_rss_mb']:7.0f}"
            + "".join(f" {_cell(r, key, fmt, 9)}" for key, _, fmt in extra)
        )
    lines += ["", "means over the synthetic pairs (syn_) and the real pairs (real_); times are totals"]
    lines.append(
        f"{'preset':<16} {'syn_psnr':>8} {'syn_ssim':>8} {'syn_shp':>7} {'syn_pace':>8} "
        f"{'real_shp':>8} {'real_pace':>9} {'time_s':>7} {'cpu_s':>7} {'rss_mb':>7}"
        + "".join(f" {'s_' + short:>11}" for _, short, _ in extra)
        + "".join(f" {'r_' + k[:3] + '_shp':>9}" for k in kernels)
    )
    for e in summary:
        lines.append(
            f"{e['preset']:<16} {_cell(e, 'synth_psnr', '.2f', 8)} {_cell(e, 'synth_ssim', '.4f', 8)} "
            f"{_cell(e, 'synth_sharp', '.3f', 7)} {_cell(e, 'synth_pace', '.3f', 8)} "
            f"{_cell(e, 'real_sharp', '.3f', 8)} {_cell(e, 'real_pace', '.3f', 9)} "
            f"{e['time_s']:7.1f} {e['cpu_s']:7.1f} {e['peak_rss_mb']:7.0f}"
            + "".join(f" {_cell(e, 'synth_' + key, fmt, 11)}" for key, _, fmt in extra)
            + "".join(f" {_cell(e, 'real_' + k + '_sharp', '.3f', 9)}" for k in kernels)
        )
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--size", type=int, default=256, help="working size S (default 256)")
    p.add_argument("--steps", type=int, default=300, help="train steps (default 300)")
    p.add_argument("--frames", type=int, default=25, help="rendered frames (default 25; odd includes alpha 0.5)")
    p.add_argument(
        "--pairs",
        nargs="+",
        default=list(DEFAULT_PAIRS),
        choices=list(SYNTHETIC) + list(REAL),
        metavar="PAIR",
        help=f"pairs (default {' '.join(DEFAULT_PAIRS)}; all: {' '.join(SYNTHETIC + tuple(REAL))})",
    )
    p.add_argument("--presets", nargs="*", default=["faithful", "best"], help="named presets (config.PRESETS)")
    p.add_argument(
        "--custom",
        nargs=2,
        action="append",
        metavar=("LABEL", "SETTINGS"),
        help="an ad-hoc preset: 'preset=best,key=value,...' (values as JSON where they parse)",
    )
    p.add_argument("--seeds", nargs="+", type=int, default=[0], help="net seeds (default 0)")
    p.add_argument("--pair-seed", type=int, default=0, help="offset of the synthetic pairs' random draws")
    p.add_argument(
        "--truth-warp",
        choices=("lanczos", "cubic", "bilinear"),
        default="lanczos",
        help="the kernel B and the truth are warped from the scene with (default lanczos; see the docstring)",
    )
    p.add_argument(
        "--render-kernels",
        nargs="*",
        default=[],
        choices=("linear", "cubic", "lanczos"),
        help="EXPERIMENT: also score the middle frame rendered with cv2.remap and these kernels",
    )
    p.add_argument("--no-reference", action="store_true", help="leave out the dissolve and oracle rows")
    p.add_argument("--save-frames", metavar="DIR", help="write each middle frame (and truths) as PNG here")
    p.add_argument("--worker", metavar="JSON", help=argparse.SUPPRESS)  # internal: run one preset
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.worker:
        job = json.loads(args.worker)
        print(json.dumps(run_preset(job["label"], job["settings"], args)))
        return 0
    presets = resolve_presets(args)
    before = load_average()
    rows = []
    passthrough = [
        "--size",
        str(args.size),
        "--steps",
        str(args.steps),
        "--frames",
        str(args.frames),
        "--pairs",
        *args.pairs,
        "--seeds",
        *map(str, args.seeds),
        "--pair-seed",
        str(args.pair_seed),
        "--truth-warp",
        args.truth_warp,
        "--render-kernels",
        *args.render_kernels,
    ]
    if args.save_frames:
        passthrough += ["--save-frames", args.save_frames]
    for label, settings in presets.items():
        job = json.dumps({"label": label, "settings": settings})
        proc = subprocess.run(
            [*module_command("quality_bench"), *passthrough, "--worker", job],
            env=child_env(),
            check=False,
            stdout=subprocess.PIPE,
            text=True,
        )
        if proc.returncode != 0:
            print(f"quality_bench: preset {label} failed (exit {proc.returncode})", file=sys.stderr)
            return 1
        rows += json.loads(proc.stdout.strip().splitlines()[-1])
    after = load_average()
    if not args.no_reference:
        rows = reference_rows(args) + rows
    labels = ([] if args.no_reference else ["dissolve", "oracle"]) + list(presets)
    rows.sort(key=lambda r: (args.pairs.index(r["pair"]), labels.index(r["preset"])))
    summary = summarise(rows, labels)
    print(f"machine: {describe_cpu(machine_info())}; load {before} -> {after}")
    print(table(rows, summary, args.render_kernels))
    print(
        json.dumps(
            {
                "settings": {
                    k: getattr(args, k)
                    for k in ("size", "steps", "frames", "pairs", "seeds", "pair_seed", "truth_warp", "render_kernels")
                },
                "presets": presets,
                "load_before": before,
                "load_after": after,
                "machine": machine_info(),
                "summary": summary,
                "rows": rows,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
