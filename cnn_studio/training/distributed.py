"""Training on several workers with TensorFlow's own engine: ``tf.distribute.MultiWorkerMirroredStrategy``.

Two uses (docs/architecture.md, "Several machines"):

* ``cnn-studio train DATA --out RUN --workers N`` starts N worker processes on this computer
  (:func:`run_local_workers`), each a ``cnn-studio train`` with the same arguments and its own
  ``TF_CONFIG`` naming the N workers on 127.0.0.1 (loopback only: nothing listens on the network).
* On a real cluster each machine runs ``cnn-studio train`` with the same arguments and either a
  ``TF_CONFIG`` environment variable or ``--cluster FILE --task-index I`` (:func:`tf_config_from_file`).

Worker 0 (or the task of type "chief") is the chief: it alone writes ``--out``; the other workers
write their identical copies of the checkpoints into a temporary folder that is removed at the end
(:func:`worker_out_dir`), as TensorFlow's multi-worker guide asks. Every worker reads the whole
dataset from the same path (a shared file system on a cluster); the strategy shards the batches.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from cnn_studio.core.child_process import program_command
from cnn_studio.core.errors import ConfigError

LOOPBACK = "127.0.0.1"


def tf_config(environ: Mapping[str, str] | None = None) -> dict | None:
    """The parsed ``TF_CONFIG`` (None when unset or empty); a malformed one is a :class:`ConfigError`."""
    raw = (os.environ if environ is None else environ).get("TF_CONFIG", "").strip()
    if not raw:
        return None
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"TF_CONFIG is not valid JSON: {exc}.",
                          'Expected e.g. {"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
                          '"task": {"type": "worker", "index": 0}}.') from exc
    if not isinstance(config, dict) or not isinstance(config.get("cluster"), dict):
        raise ConfigError("TF_CONFIG has no \"cluster\".", "See docs/architecture.md, \"Several machines\".")
    return config


def task_count(config: Mapping) -> int:
    """How many chief and worker tasks the cluster names."""
    cluster = config.get("cluster") or {}
    return sum(len(cluster.get(kind) or []) for kind in ("chief", "worker"))


def is_chief(config: Mapping | None) -> bool:
    """True without a cluster, for the "chief" task, and for worker 0 of a cluster that names no chief."""
    if config is None:
        return True
    task = config.get("task") or {}
    kind, index = task.get("type", "worker"), int(task.get("index", 0))
    if kind == "chief":
        return True
    return kind == "worker" and index == 0 and not (config.get("cluster") or {}).get("chief")


def free_ports(n: int, host: str = LOOPBACK) -> list[int]:
    """``n`` distinct TCP ports free on ``host`` right now."""
    sockets, ports = [], []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            sockets.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in sockets:
            s.close()
    return ports


def local_cluster(n: int, ports: Sequence[int] | None = None) -> list[dict]:
    """The N ``TF_CONFIG`` dicts of a cluster of N workers on 127.0.0.1, worker 0 first."""
    if n < 1:
        raise ConfigError(f"Setting 'workers': expected a whole number >= 1, received {n!r}.")
    ports = list(ports) if ports is not None else free_ports(n)
    workers = [f"{LOOPBACK}:{p}" for p in ports]
    return [{"cluster": {"worker": workers}, "task": {"type": "worker", "index": i}} for i in range(n)]


def tf_config_from_file(path: str | os.PathLike[str], index: int) -> dict:
    """A ``TF_CONFIG`` dict from a cluster file and this machine's task index.

    The file is either JSON (``{"worker": ["host1:12345", ...]}`` or a whole ``{"cluster": ...}``)
    or plain text, one ``host:port`` a line (``#`` comments allowed), worker 0 first.
    """
    text = Path(path).read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        data = {"worker": [line.split("#", 1)[0].strip() for line in text.splitlines()
                           if line.split("#", 1)[0].strip()]}
    cluster = data.get("cluster", data) if isinstance(data, dict) else {"worker": list(data)}
    workers = cluster.get("worker") or []
    if not workers or not all(isinstance(w, str) and ":" in w for w in workers):
        raise ConfigError(f"The cluster file {path} names no workers as host:port.",
                          "Write one host:port a line, worker 0 (the chief) first.")
    if not 0 <= index < task_count({"cluster": cluster}):
        raise ConfigError(f"Setting 'task-index': expected 0 to {task_count({'cluster': cluster}) - 1}, "
                          f"received {index}.")
    return {"cluster": cluster, "task": {"type": "worker", "index": index}}


def worker_out_dir(out: str | os.PathLike[str], config: Mapping | None) -> Path:
    """Where this process writes its run folder: ``out`` on the chief, a fresh temporary folder elsewhere."""
    if is_chief(config):
        return Path(out)
    index = int((config or {}).get("task", {}).get("index", 0))
    return Path(tempfile.mkdtemp(prefix=f"cnn-studio-worker{index}-")) / "run"


def child_argv(argv: Sequence[str]) -> list[str]:
    """The ``cnn-studio train`` arguments a local worker runs: ``argv`` without ``--workers N``."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == "--workers":
            skip = True
            continue
        if arg.startswith("--workers="):
            continue
        out.append(arg)
    return out


def run_local_workers(argv: Sequence[str], n: int, *, log_dir: str | os.PathLike[str] | None = None,
                      timeout_s: float | None = None) -> int:
    """Run ``cnn-studio train`` ``argv`` as ``n`` workers on 127.0.0.1; return the chief's exit status.

    The chief's output goes to this terminal; the other workers' to ``log_dir/worker-I.log``
    (default: a temporary folder, named on failure). When one worker fails, the others are stopped.
    """
    configs = local_cluster(n)
    log_dir = Path(log_dir or tempfile.mkdtemp(prefix="cnn-studio-workers-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    procs, logs = [], []
    for config in configs:
        env = dict(os.environ, TF_CONFIG=json.dumps(config))
        index = config["task"]["index"]
        if index == 0:
            out = None
        else:
            out = open(log_dir / f"worker-{index}.log", "wb")  # noqa: SIM115 - closed below
            logs.append(out)
        cmd = program_command("train", *child_argv(argv))
        procs.append(subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT if out else None))
    try:
        codes = _wait_all(procs, timeout_s)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        for f in logs:
            f.close()
    if any(codes[1:]) and not codes[0]:
        print(f"error: a worker failed; see {log_dir}", file=sys.stderr)
        return max(codes)
    if codes[0]:
        print(f"note: the other workers' logs are in {log_dir}", file=sys.stderr)
    return codes[0]


def _wait_all(procs: list[subprocess.Popen], timeout_s: float | None) -> list[int]:
    """Wait for every process; when one fails, stop the rest (they would wait for it for ever)."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        codes = [p.poll() for p in procs]
        if all(c is not None for c in codes):
            return [int(c) for c in codes]  # type: ignore[arg-type]
        if any(c not in (None, 0) for c in codes) or (deadline is not None and time.monotonic() > deadline):
            for p in procs:
                if p.poll() is None:
                    p.terminate()
            for p in procs:
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()
            return [int(p.returncode if p.returncode is not None else 1) for p in procs]
        time.sleep(0.2)
