"""Time from launching the unpacked desktop bundle to its first visible window, on a virtual screen.

    python tools/measure_bundle_start.py dist/cnn-studio --repeats 5

Each launch starts the bundle's ``cnn-studio`` as a user does (no argument: the app on the bundled
sample) with nothing but the bundle on PATH and a fresh home, waits for a visible window titled "CNN Studio"
(xdotool), then closes it. The first launch after a build is printed apart (the files are not in the
page cache yet, as on a user's first start; dropping the caches needs root on a dedicated machine), then
the median of the rest. ``--cold`` drops the bundle's files from the page cache before each launch
(posix_fadvise, per file: no root, nothing else on the machine is affected). Needs Xvfb and xdotool on this machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "bundle"))
from frozen_app import VirtualScreen, clean_env, start_until_window, stop  # noqa: E402


def evict(folder: Path) -> int:
    """Drop the bundle's files from the page cache (posix_fadvise DONTNEED, no root needed): the next
    launch reads them from disk, as the first start after a reboot does. Returns the files evicted."""
    count = 0
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                count += 1
            finally:
                os.close(fd)
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("bundle", type=Path, help="the unpacked bundle folder (holding cnn-studio)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cold", action="store_true",
                        help="drop the bundle's files from the page cache before every launch (a cold start)")
    args = parser.parse_args(argv)
    bundle = args.bundle.resolve()
    screen = VirtualScreen()
    times: list[float] = []
    try:
        for i in range(args.repeats):
            if args.cold:
                evict(bundle)
            with tempfile.TemporaryDirectory() as tmp:
                home = Path(tmp)
                env = clean_env(bundle, home, screen.display)
                proc, seconds = start_until_window([str(bundle / "cnn-studio")], env, home,
                                                   screen.display, home / "app.log")
                stop(proc)
            times.append(seconds)
            print(f"launch {i + 1}: first window after {seconds:.2f} s", flush=True)
    finally:
        screen.close()
    if args.cold:
        print(f"cold starts (bundle not in the page cache): median {statistics.median(times):.2f} s "
              f"(range {min(times):.2f}-{max(times):.2f} s)")
        return 0
    print(f"first launch: {times[0]:.2f} s; median of launches 2-{len(times)}: "
          f"{statistics.median(times[1:] or times):.2f} s (range {min(times):.2f}-{max(times):.2f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
