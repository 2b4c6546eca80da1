"""Where a run keeps its decoded images and frozen-backbone features: the ``auto`` cache, resolved.

``TrainConfig.cache = "auto"`` (the default) is decided when training starts, from the size of
what would be cached and what this computer has now:

* **memory** when it takes less than half of the memory available (``MemAvailable`` in
  /proc/meminfo; elsewhere ``os.sysconf`` ``SC_AVPHYS_PAGES`` × ``SC_PAGE_SIZE``). When neither
  can be read, sets up to :data:`UNKNOWN_MEMORY_CAP` are kept in memory.
* otherwise **disk** (a file in the run's cache folder) when the disk holding it keeps
  :data:`DISK_RESERVE` free after it (``shutil.disk_usage``);
* otherwise **none**: every epoch decodes the files again (slower, but it runs).

The decoded set is images × S × S × channels × bytes per value: 3 uint8 channels for pictures
(the pipeline caches rounded uint8), N float32 bands for multi-band arrays (``ImageRecord.bands``).
The frozen-phase feature cache follows the same rule with images × feature width × 4 bytes
(float32), counting decoded images the run already keeps in memory as taken.

``CNN_STUDIO_MEMORY_BUDGET=<bytes>`` (``2G``, ``500M`` and ``64K`` are read too) replaces the
memory available, to see what a smaller computer would do (``bench/cache_memory.py`` uses it).

Everything here is plain arithmetic on numbers that can be passed in, so the decision is tested
with fake machines (tests/engine/test_cache_choice.py); nothing imports TensorFlow.
"""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Sequence
from dataclasses import astuple, dataclass
from pathlib import Path

from cnn_studio.core.errors import ConfigError
from cnn_studio.data.records import ImageRecord

__all__ = ["DISK_RESERVE", "MEMORY_BUDGET_ENV", "MEMORY_SHARE", "UNKNOWN_MEMORY_CAP", "CacheChoice",
           "CacheWords", "available_memory", "choose", "choose_feature_cache", "choose_image_cache", "decoded_bytes",
           "free_disk", "human_bytes", "shuffle_buffer"]

MEMORY_BUDGET_ENV = "CNN_STUDIO_MEMORY_BUDGET"  # bytes: the memory available, instead of what the system says
MEMORY_SHARE = 0.5  # a cache is kept in memory when it takes less than this share of the memory available
UNKNOWN_MEMORY_CAP = 2 * 10**9  # the memory available cannot be read: caches up to this size stay in memory
DISK_RESERVE = 10**9  # a disk cache must leave this much free on its disk (checkpoints, logs)
SHUFFLE_SHARE = 0.125  # without the memory cache, the per-epoch shuffle holds at most this share of the memory
MIN_SHUFFLE_BUFFER = 256  # images, however little memory there is


@dataclass(frozen=True)
class CacheChoice:
    """Where a cache goes and why, in words.

    ``mode``: "memory", "disk" or "none"; ``reason``: e.g. "memory: the decoded images take about
    1.2 GB of the 20 GB of memory available"; ``size_bytes``: the estimate; ``available_bytes``: the
    memory counted as available (None when unknown); ``asked``: the setting ("auto", or the mode the
    user chose, which is kept as it is).
    """

    mode: str
    reason: str
    size_bytes: int = 0
    available_bytes: int | None = None
    asked: str = "auto"


def human_bytes(n: float) -> str:
    """``1_234_567_890`` → ``"1.2 GB"`` (decimal units, as disks and file managers count)."""
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= scale:
            value = n / scale
            return f"{value:.1f} {unit}" if value < 10 else f"{value:.0f} {unit}"
    return f"{int(n)} bytes"


def parse_bytes(text: str) -> int:
    """``"2000000"``, ``"2G"``, ``"500M"``, ``"64K"`` (binary multiples) → bytes; ConfigError otherwise."""
    s = str(text).strip().upper().removesuffix("B").removesuffix("I")
    scale = {"K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}.get(s[-1:], 1)
    number = s[:-1] if scale > 1 else s
    try:
        value = float(number)
    except ValueError:
        value = -1.0
    if not (math.isfinite(value) and value >= 0):
        raise ConfigError(f"{MEMORY_BUDGET_ENV}: expected a number of bytes such as 2000000000 or 2G, "
                          f"received {text!r}.", f"Unset {MEMORY_BUDGET_ENV} to use the memory the system reports.")
    return int(value * scale)


def _meminfo_available(path: str | Path = "/proc/meminfo") -> int | None:
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    parts = line.split()
                    return int(parts[1]) * (1024 if len(parts) < 3 or parts[2].lower() == "kb" else 1)
    except (OSError, ValueError, IndexError):
        pass
    return None


def _sysconf_available() -> int | None:
    try:
        pages, size = os.sysconf("SC_AVPHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None
    return pages * size if pages > 0 and size > 0 else None


def available_memory(environ: dict[str, str] | None = None) -> tuple[int | None, str]:
    """``(bytes, where from)``: the memory available now, or ``(None, "unknown")``.

    ``where from`` is the environment variable's name when :data:`MEMORY_BUDGET_ENV` is set,
    "MemAvailable" (Linux) or "sysconf" (other systems with ``SC_AVPHYS_PAGES``).
    """
    env = os.environ if environ is None else environ
    if env.get(MEMORY_BUDGET_ENV, "").strip():
        return parse_bytes(env[MEMORY_BUDGET_ENV]), MEMORY_BUDGET_ENV
    value = _meminfo_available()
    if value is not None:
        return value, "MemAvailable"
    value = _sysconf_available()
    if value is not None:
        return value, "sysconf"
    return None, "unknown"


def free_disk(folder: str | Path) -> int | None:
    """Free bytes on the disk that holds ``folder`` (or its nearest existing parent); None when unknown."""
    p = Path(folder).expanduser().absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        return shutil.disk_usage(p).free
    except OSError:
        return None


def decoded_bytes(records: Sequence[ImageRecord], image_size: int) -> int:
    """Bytes of the decoded, resized set as the pipeline caches it.

    Pictures: S × S × 3 uint8 each; multi-band arrays (``bands = N``): S × S × N float32 each.
    """
    pixels = image_size * image_size
    return sum(pixels * (r.bands * 4 if r.bands else 3) for r in records)


@dataclass(frozen=True)
class CacheWords:
    """The words :func:`choose` puts in its reason: what is cached, where its numbers come from, what "none" costs."""

    what: str = "the decoded images"
    memory_source: str = ""  # how the memory available was read (named when it is MEMORY_BUDGET_ENV)
    disk_place: str = "the run's cache folder"  # where a disk cache would go
    without: str = "they are read and decoded again every epoch (slower)"  # what "none" costs


def choose(size_bytes: int, *, memory: int | None, disk: int | None, reserved: int = 0,
           words: CacheWords | None = None) -> CacheChoice:
    """The rule, on numbers: memory if it fits comfortably, else disk if there is room, else none.

    ``memory``: bytes available (None: unknown → memory up to :data:`UNKNOWN_MEMORY_CAP`);
    ``disk``: free bytes where the disk cache would go (None: unknown → no disk cache);
    ``reserved``: bytes of ``memory`` already promised to another cache; ``words``: the reason's wording.

    Examples
    --------
    >>> choose(1_200_000_000, memory=20_000_000_000, disk=None).reason
    'memory: the decoded images take about 1.2 GB of the 20 GB of memory available'
    """
    what, memory_source, disk_place, without = astuple(words or CacheWords())
    size = human_bytes(size_bytes)
    if memory is None:
        if size_bytes <= UNKNOWN_MEMORY_CAP:
            return CacheChoice("memory", f"memory: {what} take about {size}; the memory available could not be "
                                         f"read, and up to {human_bytes(UNKNOWN_MEMORY_CAP)} is kept in memory",
                               size_bytes, None)
        fits_memory, memory_words = False, (f"more than the {human_bytes(UNKNOWN_MEMORY_CAP)} kept in memory when "
                                            "the memory available cannot be read")
    else:
        free = max(memory - reserved, 0)
        source = f" ({memory_source})" if memory_source == MEMORY_BUDGET_ENV else ""
        taken = f", after {human_bytes(reserved)} for the decoded images" if reserved else ""
        fits_memory = size_bytes < free * MEMORY_SHARE
        if fits_memory:
            return CacheChoice("memory", f"memory: {what} take about {size} of the {human_bytes(free)} of memory "
                                         f"available{source}{taken}", size_bytes, memory)
        memory_words = (f"more than half of the {human_bytes(free)} of memory available{source}{taken}")
    if disk is not None and size_bytes + DISK_RESERVE <= disk:
        return CacheChoice("disk", f"disk: {what} (about {size}) would take {memory_words}, so they are kept in "
                                   f"{disk_place} ({human_bytes(disk)} free there)", size_bytes, memory)
    disk_words = ("the free disk space could not be read" if disk is None else
                  f"the disk has no room ({human_bytes(disk)} free, {human_bytes(DISK_RESERVE)} of which must "
                  "stay free)")
    return CacheChoice("none", f"none: {what} (about {size}) would take {memory_words}, and {disk_words}; "
                               f"{without}", size_bytes, memory)


def choose_image_cache(asked: str, records: Sequence[ImageRecord], image_size: int, cache_dir: str | Path, *,
                       environ: dict[str, str] | None = None) -> CacheChoice:
    """The decoded-image cache of a run: ``asked`` as it is, or ``"auto"`` decided by :func:`choose`.

    ``records``: the images a training pass reads (training and validation); ``cache_dir``: where
    a disk cache goes (``RunLayout.feature_cache / "images"``).
    """
    size_bytes = decoded_bytes(records, image_size)
    if asked != "auto":
        return CacheChoice(asked, f"{asked}: chosen in the settings", size_bytes, None, asked)
    memory, source = available_memory(environ)
    choice = choose(size_bytes, memory=memory, disk=free_disk(cache_dir),
                    words=CacheWords(memory_source=source, disk_place=str(cache_dir)))
    return CacheChoice(choice.mode, choice.reason, size_bytes, memory, "auto")


def choose_feature_cache(count: int, width: int, cache_dir: str | Path, *, reserved: int = 0,
                         environ: dict[str, str] | None = None) -> CacheChoice:
    """The frozen-phase feature cache: ``count`` × ``width`` float32, by the same rule.

    ``reserved``: bytes of decoded images this run keeps in memory (not available to the features).
    """
    memory, source = available_memory(environ)
    words = CacheWords("the backbone's features", source, str(cache_dir),
                       "the frozen phase runs the whole model on the images every epoch (slower)")
    return choose(count * width * 4, memory=memory, disk=free_disk(cache_dir), reserved=reserved, words=words)


def shuffle_buffer(mode: str, records: Sequence[ImageRecord], image_size: int, *,
                   memory: int | None | str = "now", environ: dict[str, str] | None = None) -> int | None:
    """Images the per-epoch shuffle may hold, or None for all of them.

    tf.data's shuffle keeps its whole buffer in memory, so a buffer of every training image is a
    second copy of the decoded set: harmless when the images are cached in memory anyway (the
    "less than half" rule counts it), but it would undo a disk cache. Without the memory cache the
    buffer holds what fits in :data:`SHUFFLE_SHARE` of the memory available (at least
    :data:`MIN_SHUFFLE_BUFFER` images); None when that is every image. ``memory``: bytes, None
    (unknown) or "now" (read it).
    """
    n = len(records)
    if mode == "memory" or not n:
        return None
    if memory == "now":
        memory = available_memory(environ)[0]
    per_image = max(decoded_bytes(records, image_size) / n, 1.0)
    fits = int(SHUFFLE_SHARE * (UNKNOWN_MEMORY_CAP if memory is None else memory) / per_image)
    buffer = max(MIN_SHUFFLE_BUFFER, fits)
    return None if buffer >= n else buffer
