"""Device choices (precision, strategy, GPU memory) tested with fake device lists: no GPU ran these."""

from __future__ import annotations

import json

import pytest

from cnn_studio.core import events as ev
from cnn_studio.core.errors import ConfigError
from cnn_studio.core.tf_runtime import GpuDevice
from cnn_studio.training import devices, distributed


def test_mixed_precision_only_on_gpus_with_tensor_cores():
    h200, t4, p100 = GpuDevice("H200", 143771, "9.0"), GpuDevice("T4", 15360, "7.5"), GpuDevice("P100", 16280, "6.0")
    assert devices.choose_precision("auto", gpus=[h200]) == "mixed_float16"
    assert devices.choose_precision("auto", gpus=[t4, h200]) == "mixed_float16"
    assert devices.choose_precision("auto", gpus=[p100]) == "float32"
    assert devices.choose_precision("auto", gpus=[h200, p100]) == "float32"  # the slowest GPU decides
    assert devices.choose_precision("auto", gpus=[GpuDevice("Apple M2")]) == "float32"  # capability unknown
    assert devices.choose_precision("auto", gpus=[]) == "float32"
    assert devices.choose_precision("mixed_float16", gpus=[]) == "mixed_float16"  # asked for: as asked
    assert devices.choose_precision("float32", gpus=[h200]) == "float32"
    assert "tensor cores" in devices.precision_line("float32", [p100])


def test_the_precision_line_says_nothing_on_a_cpu_and_keeps_the_advice_for_old_gpus():
    p100 = GpuDevice("P100", 16280, "6.0")
    assert devices.precision_line("float32", []) == ""  # every CPU training: nothing to explain
    assert "tensor cores" not in devices.precision_line("mixed_float16", [])
    assert "slower" in devices.precision_line("mixed_float16", [])  # asked for on a CPU: said once
    assert devices.precision_line("float32", [p100]).startswith("float32: P100")
    assert "tensor cores" in devices.precision_line("mixed_float16", [GpuDevice("A100", 40960, "8.0")])


def test_auto_precision_asks_the_visible_gpus(monkeypatch):
    monkeypatch.setattr(devices.tf_runtime, "gpu_devices", lambda: [GpuDevice("A100", 40960, "8.0")])
    assert devices.choose_precision("auto") == "mixed_float16"
    monkeypatch.setattr(devices.tf_runtime, "gpu_devices", lambda: [])
    assert devices.choose_precision("auto") == "float32"


def test_strategy_kind_from_gpus_and_tf_config():
    two = json.dumps(distributed.local_cluster(2, ports=[1111, 2222])[1])
    assert devices.strategy_kind(0, {}) == "default"
    assert devices.strategy_kind(1, {}) == "default"
    assert devices.strategy_kind(4, {}) == "mirrored"
    assert devices.strategy_kind(0, {"TF_CONFIG": two}) == "multi_worker"
    one = json.dumps({"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "worker", "index": 0}})
    assert devices.strategy_kind(2, {"TF_CONFIG": one}) == "mirrored"


def test_gpu_memory_is_sampled_at_most_once_a_second():
    calls = []

    def read(device):
        calls.append(device)
        return {"current": 512 * 2**20 * len(calls), "peak": 0}

    sampler = devices.GpuMemorySampler(read=read, enabled=True)
    assert sampler.sample(10.0) == 512.0
    assert sampler.sample(10.5) == 512.0  # within the second: the last reading, no new read
    assert sampler.sample(11.0) == 1024.0
    assert calls == ["GPU:0", "GPU:0"]
    assert devices.GpuMemorySampler(read=read, enabled=False).sample(1.0) is None

    def broken(device):
        raise RuntimeError("no such device")

    failing = devices.GpuMemorySampler(read=broken, enabled=True)
    assert failing.sample(1.0) is None and not failing.enabled


def test_cpu_sampler_is_off_and_batch_events_default_to_no_memory():
    assert devices.GpuMemorySampler().sample(0.0) is None  # this machine has no GPU
    e = ev.BatchEnded(phase="head", epoch=0, step=1, steps=2)
    assert e.gpu_memory_mib is None
    assert ev.TrainStarted("r", "b", 1, 1, 1, 1).device == ""


def test_local_cluster_is_loopback_only_and_has_one_chief():
    configs = distributed.local_cluster(3)
    workers = configs[0]["cluster"]["worker"]
    assert len(set(workers)) == 3 and all(w.startswith("127.0.0.1:") for w in workers)
    assert [distributed.is_chief(c) for c in configs] == [True, False, False]
    assert distributed.is_chief(None)
    with_chief = {"cluster": {"chief": ["h:1"], "worker": ["h:2"]}, "task": {"type": "worker", "index": 0}}
    assert not distributed.is_chief(with_chief)
    assert distributed.task_count(with_chief) == 2


def test_tf_config_parsing_and_cluster_files(tmp_path):
    assert distributed.tf_config({}) is None
    with pytest.raises(ConfigError):
        distributed.tf_config({"TF_CONFIG": "{not json"})
    text = tmp_path / "hosts.txt"
    text.write_text("# chief first\ngpu1:12345\ngpu2:12345  # second\n")
    config = distributed.tf_config_from_file(text, 1)
    assert config == {"cluster": {"worker": ["gpu1:12345", "gpu2:12345"]}, "task": {"type": "worker", "index": 1}}
    js = tmp_path / "cluster.json"
    js.write_text(json.dumps({"worker": ["a:1", "b:2", "c:3"]}))
    assert distributed.task_count(distributed.tf_config_from_file(js, 2)) == 3
    with pytest.raises(ConfigError):
        distributed.tf_config_from_file(js, 3)


def test_worker_folders_and_child_arguments(tmp_path):
    configs = distributed.local_cluster(2, ports=[1, 2])
    assert distributed.worker_out_dir(tmp_path / "run", configs[0]) == tmp_path / "run"
    other = distributed.worker_out_dir(tmp_path / "run", configs[1])
    assert other != tmp_path / "run" and not other.exists()
    assert distributed.child_argv(["data", "--workers", "2", "--out", "r", "--workers=3"]) == ["data", "--out", "r"]
