"""Which precision and which distribution strategy a run uses, chosen from the visible devices.

* ``precision="auto"`` → ``mixed_float16`` when every visible GPU has tensor cores (compute
  capability 7.0 or higher: Volta, Turing, Ampere, Ada, Hopper, ...), where it is about 2x faster;
  ``float32`` on older GPUs (mixed precision is slower there), on a GPU whose compute capability
  TensorFlow does not report, and on the CPU. The classifier's last layer stays float32 so the
  probabilities are exact enough.
* Several workers (``TF_CONFIG`` naming more than one task: ``cnn-studio train --workers N`` or a
  cluster, see :mod:`cnn_studio.training.distributed`) → ``tf.distribute.MultiWorkerMirroredStrategy``;
  more than one GPU on one machine → ``tf.distribute.MirroredStrategy``; otherwise the default strategy.
* :class:`GpuMemorySampler` reads the GPU memory in use for the Train step, at most once a second.

The GPU branches were written against TensorFlow's documented API and are tested with fake device
lists; they were not run on a GPU in this project's tests (no GPU machine was available).
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable, Iterator, Sequence

from cnn_studio.core import tf_runtime
from cnn_studio.training import distributed

MIXED_PRECISION_MIN_COMPUTE_CAPABILITY = (7, 0)


def visible_gpus() -> list:
    """The GPUs TensorFlow sees; TensorFlow imported through tf_runtime, so its start-up lines go to the log."""
    return tf_runtime.import_tensorflow().config.list_physical_devices("GPU")


def _capability(gpu) -> tuple[int, int] | None:
    cc = getattr(gpu, "compute_capability", None)
    if isinstance(cc, tuple) and len(cc) == 2:
        return int(cc[0]), int(cc[1])
    if isinstance(cc, str) and "." in cc:
        major, minor = cc.split(".", 1)
        if major.isdigit() and minor.isdigit():
            return int(major), int(minor)
    return None


def benefits_from_mixed_precision(gpu) -> bool:
    """True for a GPU with tensor cores (compute capability >= 7.0); False when older or unknown."""
    cc = _capability(gpu)
    return cc is not None and cc >= MIXED_PRECISION_MIN_COMPUTE_CAPABILITY


def choose_precision(precision="auto", gpus: Sequence | None = None) -> str:
    """The Keras dtype policy for a run: a ``TrainConfig`` or its ``precision`` setting.

    "auto" gives "mixed_float16" when GPUs are visible and all of them benefit
    (:func:`benefits_from_mixed_precision`), "float32" otherwise; "float32" and "mixed_float16" are
    returned as asked. ``gpus`` (``tf_runtime.GpuDevice`` list) defaults to the visible GPUs.
    Apply it with :func:`precision_policy`.
    """
    precision = getattr(precision, "precision", precision)
    if precision != "auto":
        return precision
    gpus = tf_runtime.gpu_devices() if gpus is None else list(gpus)
    if gpus and all(benefits_from_mixed_precision(g) for g in gpus):
        return "mixed_float16"
    return "float32"


BFLOAT16_CPU_FLAG = "amx_bf16"  # the CPUs where the bfloat16 frozen pass was measured faster (Intel AMX)


def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> set[str]:
    """The CPU's feature flags as Linux lists them (empty where there is no such file: macOS, Windows)."""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def bfloat16_frozen_pass(precision="auto", gpus: Sequence | None = None, flags: set[str] | None = None) -> bool:
    """Whether the one pass of the training images through the frozen layers runs in bfloat16.

    Only with ``precision`` "auto" (a ``TrainConfig`` or its setting), on a computer without a GPU whose
    CPU computes bfloat16 matrix products natively (:data:`BFLOAT16_CPU_FLAG`, Intel AMX): there VGG16's
    frozen blocks ran 4.7× faster (1.46 against 6.8 ms an image at 64 px, 2 cores), their activations
    within 0.5 % of float32's. Elsewhere bfloat16 is emulated and slower. The validation images, the
    layers that learn and every check after training stay in float32.
    """
    precision = getattr(precision, "precision", precision)
    if precision != "auto":
        return False
    gpus = tf_runtime.gpu_devices() if gpus is None else list(gpus)
    return not gpus and BFLOAT16_CPU_FLAG in (cpu_flags() if flags is None else flags)


def precision_line(policy: str, gpus: Sequence = ()) -> str:
    """Why this precision, in one line (for the run's log); "" on a CPU in float32, where there is no choice to explain."""
    if not gpus:
        return ("Mixed precision, as the settings ask: on a CPU it is slower than float32." if policy == "mixed_float16"
                else "")
    if policy == "mixed_float16":
        return "Mixed precision (float16 compute, float32 weights): the GPU has tensor cores."
    old = [g for g in gpus if not benefits_from_mixed_precision(g)]
    if old:
        return (f"float32: {old[0].describe() if hasattr(old[0], 'describe') else old[0]} has no tensor cores "
                "(compute capability below 7.0 or unknown), where mixed precision is slower.")
    return "float32, as the settings ask (mixed precision would use the GPU's tensor cores)."


@contextlib.contextmanager
def precision_policy(policy: str) -> Iterator[None]:
    """Set Keras' global dtype policy for the duration of a build/fit, then restore it."""
    import keras

    previous = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy(policy)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def strategy_kind(n_gpus: int, environ: dict | None = None) -> str:
    """"multi_worker" when TF_CONFIG names several tasks, "mirrored" for several GPUs, else "default"."""
    config = distributed.tf_config(os.environ if environ is None else environ)
    if config is not None and distributed.task_count(config) > 1:
        return "multi_worker"
    return "mirrored" if n_gpus > 1 else "default"


_MULTI_WORKER: list = []  # TensorFlow allows one MultiWorkerMirroredStrategy per process: reused


def distribution_strategy():
    """MultiWorkerMirroredStrategy under a multi-task TF_CONFIG, MirroredStrategy for several GPUs, else the default."""
    import tensorflow as tf

    kind = strategy_kind(len(visible_gpus()))
    if kind == "multi_worker":
        if not _MULTI_WORKER:
            _MULTI_WORKER.append(_multi_worker_strategy())
        return _MULTI_WORKER[0]
    if kind == "mirrored":
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def _multi_worker_strategy():
    """MultiWorkerMirroredStrategy with two of Keras 3.15's reductions made to work on it.

    Keras' ``fit`` (1) reduces the first *input batch* (a tuple of per-replica tensors) with
    ``strategy.reduce("MEAN", batch, axis=None)`` only to learn its shapes, which the collective
    strategy cannot do for a nested structure; and (2) averages scalar metrics across workers with
    ``axis=0``, which fails for a 0-d tensor. (1) gets this worker's own batch (same shapes);
    (2) is reduced with ``axis=None`` (the mean over the replicas). Found with two workers on
    127.0.0.1 (tests/engine/test_distributed.py).
    """
    import tensorflow as tf

    class MultiWorker(tf.distribute.MultiWorkerMirroredStrategy):
        def reduce(self, reduce_op, value, axis=None):
            if axis is None and isinstance(value, (tuple, list, dict)):
                return tf.nest.map_structure(lambda v: self.experimental_local_results(v)[0], value)
            if axis is not None:
                local = self.experimental_local_results(value)[0]
                if getattr(local, "shape", None) is not None and local.shape.rank == 0:
                    axis = None
            return super().reduce(reduce_op, value, axis)

    return MultiWorker()


def _tf_memory_info(device: str) -> dict:
    import tensorflow as tf

    return tf.config.experimental.get_memory_info(device)


class GpuMemorySampler:
    """The memory in use on ``device`` in MiB, read at most once per ``interval_s`` (None without a GPU).

    ``read`` (default ``tf.config.experimental.get_memory_info``) and ``enabled`` (default: a GPU
    is visible) are injectable for tests. A read that fails switches the sampler off.
    """

    def __init__(self, device: str = "GPU:0", interval_s: float = 1.0,
                 read: Callable[[str], dict] | None = None, enabled: bool | None = None) -> None:
        self.device = device
        self.interval_s = interval_s
        self.read = read or _tf_memory_info
        self.enabled = bool(visible_gpus()) if enabled is None else enabled
        self.value: float | None = None
        self.reads = 0
        self._at = -math.inf

    def sample(self, now: float) -> float | None:
        if not self.enabled:
            return None
        if now - self._at >= self.interval_s:
            self._at = now
            try:
                self.value = float(self.read(self.device)["current"]) / 2**20
                self.reads += 1
            except Exception:  # noqa: BLE001 - a memory figure is never worth failing a batch over
                self.enabled, self.value = False, None
        return self.value
