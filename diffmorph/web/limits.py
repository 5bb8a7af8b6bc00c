"""What one server lets its users ask for: the limits it enforces on every request.

:class:`Limits` holds them (defaults below; ``diffmorph app`` has a flag for each);
:meth:`Limits.check` refuses a run's settings past them with one line before any work,
and the run's own thread is cancelled once it passes ``max_run_s``. The page's starting
values are :func:`diffmorph.web.app.page_defaults` (within these limits).
"""

from __future__ import annotations

import dataclasses

from diffmorph.errors import InputError

MAX_SIZE = 1024  # working size (the original's default)
MAX_TRAIN_STEPS = 2000  # twice the original's 1000
MAX_FRAMES = 300  # rendered frames, the hold's repeated end frames included
MAX_RUN_S = 1800  # a run (optimisation and rendering) is stopped after 30 minutes
MAX_DISK_BYTES = 2 * 1024**3  # what the app keeps on disk: session folders and the files it hands out
MAX_AGE_S = 24 * 3600  # a session's outputs are removed a day after its last use
MAX_SESSIONS = 32  # sessions held in memory (each may hold two decoded images)
QUEUE_SIZE = 16  # events waiting in the queue; more are refused with "queue full"
MAX_IMAGE_PIXELS = 16_000_000  # an uploaded image's width x height (frames are written at its size)


@dataclasses.dataclass(frozen=True)
class Limits:
    """The server's limits (all > 0).

    max_size: largest working size (pixels). max_train_steps: most train steps of a run.
    max_frames: most frames a run renders (``frames + 2 * hold``). max_run_s: seconds a
    run may take before it is cancelled (its checkpoint kept). max_disk_bytes: the most
    the app keeps on disk (older sessions' outputs are removed first; a run is refused
    when even so it would not fit). max_age_s: seconds after its last use that a
    session's outputs are removed. max_sessions: sessions held at once (a new one
    replaces the least recently used idle one; none is replaced while it runs).
    queue_size: events that may wait in the queue. max_image_pixels: width x height of an
    image a run accepts.
    """

    max_size: int = MAX_SIZE
    max_train_steps: int = MAX_TRAIN_STEPS
    max_frames: int = MAX_FRAMES
    max_run_s: float = MAX_RUN_S
    max_disk_bytes: int = MAX_DISK_BYTES
    max_age_s: float = MAX_AGE_S
    max_sessions: int = MAX_SESSIONS
    queue_size: int = QUEUE_SIZE
    max_image_pixels: int = MAX_IMAGE_PIXELS

    def __post_init__(self):
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise InputError(f"{field.name} must be a number above 0 (got {value!r})", setting=field.name)

    def check(self, config, image_shape=None) -> None:
        """Refuse a run past the limits (one line naming the setting and the server's limit).

        Args:
          config: the run's :class:`diffmorph.MorphConfig`.
          image_shape: the source's ``(H, W, ...)``, or None not to check the image size.

        Raises:
          InputError: a setting over its limit.
        """
        frames = config.frames + 2 * config.hold
        for setting, value, limit in (
            ("size", config.size, self.max_size),
            ("train_steps", config.train_steps, self.max_train_steps),
            ("frames", frames, self.max_frames),
        ):
            if value > limit:
                what = "frames (with the hold's end frames)" if setting == "frames" else setting
                raise InputError(f"{what} {value} is over this server's limit of {limit}", setting=setting)
        if image_shape is not None and image_shape[0] * image_shape[1] > self.max_image_pixels:
            raise InputError(
                f"the source image is {image_shape[1]}x{image_shape[0]} pixels, over this server's limit of "
                f"{self.max_image_pixels / 1e6:g} megapixels (frames are written at its size)",
                setting="source",
            )

    def estimate_bytes(self, config, image_shape) -> int:
        """About the most a run writes (bytes): its frames as PNGs (at most their raw size),
        plus 16 raw frames and 64 MiB for the video, GIF, snapshots, maps and report."""
        frame = image_shape[0] * image_shape[1] * 3
        return frame * (config.frames + 2 * config.hold + 16) + 64 * 1024**2
