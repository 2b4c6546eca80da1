"""TensorFlow imported once and quietly, and the device it trains on said in one plain line.

Importing TensorFlow prints lines that are not the user's business: "oneDNN custom operations are
on", "Could not find cuda drivers", CPU-feature notes, and "E0000 … failed call to cuInit: CUDA
error (303)" when the machine has no GPU — some of them twice, and several before TensorFlow's own
log level (``TF_CPP_MIN_LOG_LEVEL``) is read. :func:`import_tensorflow` sends the process's stderr
(file descriptor 2, where that C++ code writes) to a log file while TensorFlow loads and looks for
GPUs, so the lines are kept for a bug report but the terminal stays clean. Later TensorFlow log
lines below "error" are silenced through ``TF_CPP_MIN_LOG_LEVEL=2`` unless the user set it. Lines
C++ code prints later, outside that log level (the TFLite converter's "fully_quantize: …", the TFLite
interpreter's "Created TensorFlow Lite XNNPACK delegate for CPU"), go to the same log around those
calls (:func:`native_output_to_log`), and the library warnings in :data:`LIBRARY_WARNINGS` (NumPy's
``np.object`` FutureWarning from keras' ONNX export) are ignored for those libraries only.

:func:`gpu_devices` lists the GPUs TensorFlow will use (name, memory) and :func:`device_line` says in
words whether training uses a GPU and, when not, why.
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import subprocess
import sys
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from cnn_studio.core.paths import app_data_dir


def tensorflow_log() -> Path:
    """Where TensorFlow's start-up lines go: ``<app data>/logs/tensorflow.log``."""
    return app_data_dir() / "logs" / "tensorflow.log"


@contextlib.contextmanager
def stderr_to_file(path: str | os.PathLike[str] | None) -> Iterator[None]:
    """Send everything written to file descriptor 2 (C++ libraries included) to ``path`` meanwhile.

    Falls back to the null device when the log folder cannot be written, and does nothing when the
    process has no real stderr (a GUI started without a terminal on some platforms).
    """
    try:
        fd = sys.__stderr__.fileno() if sys.__stderr__ is not None else 2
        saved = os.dup(fd)
    except (OSError, ValueError, AttributeError):
        yield
        return
    target: str = os.devnull
    if path is not None:
        try:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            target = str(path)
        except OSError:
            target = os.devnull
    try:
        sink = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    except OSError:
        sink = os.open(os.devnull, os.O_WRONLY)
    for stream in (sys.stderr, sys.__stderr__):
        with contextlib.suppress(Exception):
            stream.flush()
    os.dup2(sink, fd)
    os.close(sink)
    try:
        yield
    finally:
        for stream in (sys.stderr, sys.__stderr__):
            with contextlib.suppress(Exception):
                stream.flush()
        os.dup2(saved, fd)
        os.close(saved)


def native_output_to_log() -> contextlib.AbstractContextManager[None]:
    """What C++ code prints while a call runs goes to the TensorFlow log, not the terminal.

    For the calls that print after start-up: the TFLite converter ("fully_quantize: 0,
    inference_type: 6, …") and a TFLite interpreter allocating its tensors ("INFO: Created
    TensorFlow Lite XNNPACK delegate for CPU."). Neither reads ``TF_CPP_MIN_LOG_LEVEL``. An error
    is raised as usual once stderr is back.
    """
    return stderr_to_file(tensorflow_log())


# Python warnings libraries raise on their own account, which the user can do nothing about. Each is
# matched by its message *and* the library module it is attributed to, so the same warning from the
# user's own code (or ours) is still shown.
LIBRARY_WARNINGS = (
    # keras' ONNX export asks `hasattr(np, "object")`, which NumPy 2 answers with a FutureWarning
    (FutureWarning, r"In the future `np\.object` will be defined", r"keras\."),
)


def quiet_library_warnings() -> None:
    """Ignore :data:`LIBRARY_WARNINGS` (once per process; the filters are scoped to those modules)."""
    for category, message, module in LIBRARY_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category, module=module)


def import_tensorflow(log_path: str | os.PathLike[str] | None = None):
    """``import tensorflow`` with its start-up noise kept in ``log_path`` (default: :func:`tensorflow_log`).

    Also asks TensorFlow for its GPUs, because CUDA's start-up messages (cuInit) are printed then.
    A second call returns the module at once. Errors (a broken install) are raised as usual, after
    stderr is restored, so their message still reaches the user.
    """
    if "tensorflow" in sys.modules and getattr(import_tensorflow, "_done", False):
        return sys.modules["tensorflow"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    quiet_library_warnings()
    with stderr_to_file(tensorflow_log() if log_path is None else log_path):
        import tensorflow as tf

        tf.config.list_physical_devices("GPU")
    import_tensorflow._done = True  # type: ignore[attr-defined]
    return tf


@dataclass(frozen=True)
class GpuDevice:
    """One GPU TensorFlow can train on."""

    name: str
    memory_mib: int | None = None
    compute_capability: str | None = None

    def describe(self) -> str:
        memory = f", {self.memory_mib / 1024:.0f} GiB" if self.memory_mib else ""
        return f"{self.name}{memory}"

    to_dict = asdict


def nvidia_smi_gpus() -> list[dict[str, int | str]]:
    """The NVIDIA GPUs the driver reports (name, total and used memory in MiB); [] without a driver."""
    exe = shutil.which("nvidia-smi")
    if not exe:
        return []
    try:
        out = subprocess.run([exe, "--query-gpu=name,memory.total,memory.used", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=15, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    gpus = []
    for line in out.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 3 and parts[1].isdigit():
            gpus.append({"name": parts[0], "memory_total_mib": int(parts[1]),
                         "memory_used_mib": int(parts[2]) if parts[2].isdigit() else 0})
    return gpus


def gpu_devices() -> list[GpuDevice]:
    """The GPUs TensorFlow sees, with name, memory (from the driver when it tells) and compute capability."""
    tf = import_tensorflow()
    smi = nvidia_smi_gpus()
    devices = []
    for i, dev in enumerate(tf.config.list_physical_devices("GPU")):
        try:
            details = tf.config.experimental.get_device_details(dev)
        except Exception:  # noqa: BLE001 - details are optional decoration
            details = {}
        cc = details.get("compute_capability")
        name = str(details.get("device_name") or (smi[i]["name"] if i < len(smi) else dev.name))
        memory = int(smi[i]["memory_total_mib"]) if i < len(smi) else None
        devices.append(GpuDevice(name, memory, f"{cc[0]}.{cc[1]}" if isinstance(cc, tuple) else None))
    return devices


def no_gpu_reason() -> str:
    """Why TensorFlow trains on the CPU here, in words a user can act on."""
    tf = import_tensorflow()
    if nvidia_smi_gpus():
        if not tf.test.is_built_with_cuda():
            return ("an NVIDIA GPU is present but this TensorFlow was installed without GPU support: "
                    "install it with `pip install \"tensorflow[and-cuda]\"`")
        return ("an NVIDIA GPU is present but TensorFlow cannot use it (driver or CUDA libraries do not match): "
                f"see {tensorflow_log()}")
    if platform.system() == "Darwin":
        return "TensorFlow uses Apple GPUs only with the tensorflow-metal plugin (`pip install tensorflow-metal`)"
    return "no GPU found"


def device_line(gpus: list[GpuDevice] | None = None) -> str:
    """One plain line: which device trains, e.g. "Training on the GPU: NVIDIA H200, 141 GiB"."""
    gpus = gpu_devices() if gpus is None else gpus
    if not gpus:
        return f"Training on the CPU ({no_gpu_reason()}): large backbones will be slow."
    if len(gpus) == 1:
        return f"Training on the GPU: {gpus[0].describe()}."
    return f"Training on {len(gpus)} GPUs: " + "; ".join(g.describe() for g in gpus) + "."
