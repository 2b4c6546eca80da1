"""The doctor's GPU checks: the GPUs TensorFlow sees, whether training uses one, and how this system can use one."""

from __future__ import annotations

import sys

from cnn_studio.computer.doctor_report import INFO, OK, PROBLEM, WARNING, Check, install_fix
from cnn_studio.core import tf_runtime


def gpu_checks(facts: dict[str, object]) -> list[Check]:
    """The GPUs TensorFlow sees and whether training uses one (imports TensorFlow, quietly)."""

    try:
        tf_runtime.import_tensorflow()
    except Exception as exc:  # noqa: BLE001 - a broken TensorFlow is exactly what doctor reports
        return [Check("TensorFlow", PROBLEM, f"TensorFlow cannot be imported: {type(exc).__name__}: {exc}",
                      install_fix('pip install --force-reinstall "tensorflow>=2.16"'))]
    gpus = tf_runtime.gpu_devices()
    facts["gpus"] = [g.to_dict() for g in gpus]
    facts["device"] = tf_runtime.device_line(gpus)
    if gpus:
        return [Check("GPU", OK, facts["device"])]
    status = INFO if tf_runtime.no_gpu_reason() == "no GPU found" else WARNING
    fix = "" if status == INFO else tf_runtime.no_gpu_reason()
    return [Check("GPU", status, str(facts["device"]), fix)]


GPU_SUPPORT = {
    "linux": "Linux: NVIDIA GPUs through CUDA — install with pip and `pip install \"tensorflow[and-cuda]\"` "
             "(the downloadable app trains on the CPU).",
    "windows": "Windows: TensorFlow's native GPU support ended with version 2.10 — for a GPU, run CNN Studio "
               "in WSL2 (Ubuntu) with the Linux pip install and tensorflow[and-cuda]; here it trains on the CPU.",
    "macos": "macOS: on Apple silicon, `pip install tensorflow-metal` in the pip install trains on the Mac's GPU; "
             "Intel Macs and the downloadable app train on the CPU.",
}
"""How CNN Studio can use a GPU on each desktop system, one line each (doctor shows this computer's)."""


def platform_key(system: str | None = None) -> str:
    """``"linux"``, ``"windows"`` or ``"macos"`` for ``sys.platform`` (or the given one)."""
    system = sys.platform if system is None else system
    if system.startswith("win") or system == "cygwin":
        return "windows"
    return "macos" if system == "darwin" else "linux"


def gpu_support_check(system: str | None = None) -> Check:
    """The one line on how this computer's system can train on a GPU (:data:`GPU_SUPPORT`)."""
    return Check("GPU support", INFO, GPU_SUPPORT[platform_key(system)])
