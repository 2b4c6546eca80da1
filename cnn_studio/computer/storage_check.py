"""The doctor's storage checks: ImageNet weights available offline, and the runs folder with its free disk space."""

from __future__ import annotations

import os
import shutil

from cnn_studio.backbones.registry import all_specs
from cnn_studio.backbones.weights_store import offline_status, store_dir
from cnn_studio.computer.doctor_report import INFO, OK, PROBLEM, WARNING, Check
from cnn_studio.core.paths import app_data_dir, keras_cache_dir, runs_dir

DISK_WARNING_BYTES = 2 * 1024**3
DISK_PROBLEM_BYTES = 300 * 1024**2


def weights_checks(facts: dict[str, object]) -> list[Check]:
    """Which backbones' ImageNet weights load without the internet (the app's store, then Keras' cache)."""

    cached = [spec.key for spec in all_specs() if offline_status(spec).available]
    facts["imagenet_weights_offline"] = cached
    facts["keras_cache"] = str(keras_cache_dir())
    facts["weights_store"] = str(store_dir())
    if cached:
        return [Check("ImageNet weights offline", OK, f"{len(cached)} backbone(s): {', '.join(cached)}.")]
    return [Check("ImageNet weights offline", INFO,
                  f"none that load, in the app's weights store ({store_dir()}) or Keras' cache "
                  f"({keras_cache_dir()}): they are downloaded on first use (needs the internet).",
                  "on a computer without internet: `cnn-studio weights import FILE` (or Model step → Import weights "
                  "file…) with the file fetched elsewhere")]


def disk_checks(facts: dict[str, object]) -> list[Check]:
    """The runs folder, whether it can be written, and the free disk space under it."""
    folder = runs_dir()
    facts["runs_folder"] = str(folder)
    facts["app_data"] = str(app_data_dir())
    probe = folder
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    facts["free_disk_bytes"] = free
    writable = os.access(probe, os.W_OK)
    gib = free / 1024**3
    if not writable:
        return [Check("Runs folder", PROBLEM, f"{folder} cannot be written (no permission on {probe}).",
                      "set CNN_STUDIO_HOME to a folder you can write, or save the project in one")]
    if free < DISK_PROBLEM_BYTES:
        return [Check("Runs folder", PROBLEM, f"{folder}: only {free / 1024**2:.0f} MB free — a run cannot save.",
                      "free disk space or set CNN_STUDIO_HOME to another disk")]
    if free < DISK_WARNING_BYTES:
        return [Check("Runs folder", WARNING, f"{folder}: {gib:.1f} GiB free — large backbones need more.",
                      "free disk space or set CNN_STUDIO_HOME to another disk")]
    return [Check("Runs folder", OK, f"{folder} ({gib:.0f} GiB free).")]
