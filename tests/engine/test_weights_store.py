"""The app's weights store: import (copy, recognise, hash or load check), offline status that means "loads",
download with progress/cancel, and the offline message."""

from __future__ import annotations

import hashlib
import io
import json
import re
import urllib.request
from pathlib import Path

import h5py
import numpy as np
import pytest

from cnn_studio.backbones import registry, weights_store
from cnn_studio.backbones.weights import parse_weights
from cnn_studio.backbones.weights_store import resolve_weights
from cnn_studio.core import events as ev
from cnn_studio.core.cancel import Cancelled, CancelToken
from cnn_studio.core.errors import WeightsUnavailable


@pytest.fixture
def homes(tmp_path, monkeypatch):
    """Empty app data folder and Keras home."""
    monkeypatch.setenv("CNN_STUDIO_HOME", str(tmp_path / "app"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    (tmp_path / "keras" / "models").mkdir(parents=True)
    return tmp_path


@pytest.fixture
def unreachable_network(monkeypatch):
    proxy = urllib.request.ProxyHandler({"http": "http://127.0.0.1:9", "https": "http://127.0.0.1:9"})
    monkeypatch.setattr(urllib.request, "_opener", urllib.request.build_opener(proxy))


def _keras3_weights(path: Path, shapes) -> Path:
    """A file in the .weights.h5 layout holding arrays of the given shapes (values random)."""
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        layers = f.create_group("layers")
        for i, shape in enumerate(shapes):
            layers.create_group(f"l{i}").create_group("vars").create_dataset("0", data=rng.random(shape, "float32"))
        f.create_group("vars")
    return path


def _legacy_weights(path: Path, shapes) -> Path:
    """A file in the layout of Keras' .h5 downloads (root attribute layer_names)."""
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [f"l{i}".encode() for i in range(len(shapes))]
        for i, shape in enumerate(shapes):
            g = f.create_group(f"l{i}")
            g.attrs["weight_names"] = [b"kernel:0"]
            g.create_dataset("kernel:0", data=np.zeros(shape, "float32"))
    return path


VGG_SHAPES = [s for i in range(13) for s in ((3, 3, [3, 64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512][i],
                                               [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512][i]),
                                              ([64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512][i],))]


def test_hash_table_is_the_one_keras_publishes():
    """Every no-top hash in our table appears in the Keras application module that downloads the file."""
    import importlib.util

    root = Path(importlib.util.find_spec("keras").origin).parent / "src" / "applications"
    sources = "\n".join(p.read_text() for p in root.glob("*.py"))
    for key, digest in weights_store.KERAS_NOTOP_HASHES.items():
        assert f'"{digest}"' in sources, key
    assert set(weights_store.KERAS_NOTOP_HASHES) | {"mobilenet_v2"} == {
        s.key for s in registry.all_specs() if s.has_pretrained_weights}
    # the no-top VGG16 hash is the second one Keras passes for vgg16 (the first is the file with the top)
    vgg = (root / "vgg16.py").read_text()
    assert re.findall(r'file_hash="(\w+)"', vgg)[1] == weights_store.KERAS_NOTOP_HASHES["vgg16"]


def test_backbone_is_recognised_from_the_arrays(tmp_path):
    f = _keras3_weights(tmp_path / "mine.weights.h5", VGG_SHAPES)
    assert weights_store.recognise_backbone(f) == "vgg16"
    assert weights_store.h5_layout(f) == "keras3"
    other = _keras3_weights(tmp_path / "other.weights.h5", [(3, 3, 3, 8)])
    assert weights_store.recognise_backbone(other) is None


def test_import_copies_never_moves_and_recognises_keras_original_by_hash(homes, monkeypatch):
    (homes / "downloads").mkdir()
    src = _legacy_weights(homes / "downloads" / "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5", VGG_SHAPES)
    before = src.read_bytes()
    digest = hashlib.md5(before).hexdigest()
    monkeypatch.setitem(weights_store.KERAS_NOTOP_HASHES, "vgg16", digest)  # this file plays Keras' original
    loaded = []
    monkeypatch.setattr(weights_store, "_check_loads", lambda spec, path: loaded.append(path))
    events: list = []
    entry = weights_store.import_weights(src, sink=events.append)
    assert entry.backbone == "vgg16" and entry.origin == weights_store.ORIGIN_KERAS
    assert loaded == [], "Keras' original (hash matches) needs no load check"
    assert src.read_bytes() == before, "the user's file is untouched"
    stored = Path(entry.path)
    assert stored.parent == homes / "app" / "weights" / "vgg16" and stored.read_bytes() == before
    assert stored.name == "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
    assert any(isinstance(e, ev.StageChanged) for e in events)
    st = weights_store.offline_status(registry.get("vgg16"))
    assert (st.available, st.source, st.path) == (True, "store", entry.path)
    # --weights imagenet uses the store first, with no network
    assert resolve_weights(registry.get("vgg16"), "imagenet") == entry.path
    assert json.loads((stored.parent / "entry.json").read_text())["origin"] == "keras-original"


def test_import_of_another_file_is_checked_by_loading_and_refused_when_it_does_not_fit(homes, monkeypatch):
    src = _keras3_weights(homes / "mine.weights.h5", VGG_SHAPES)
    checked = []
    monkeypatch.setattr(weights_store, "_check_loads", lambda spec, path: checked.append((spec.key, path.suffixes)))
    entry = weights_store.import_weights(src, registry.get("VGG16"))
    assert entry.origin == weights_store.ORIGIN_CHECKED and checked[0][0] == "vgg16"
    assert Path(entry.path).name == "vgg16_notop.weights.h5", "the copy keeps a suffix that matches its layout"
    assert src.exists()

    def refuse(spec, path):
        raise WeightsUnavailable("does not fit", "")

    monkeypatch.setattr(weights_store, "_check_loads", refuse)
    with pytest.raises(WeightsUnavailable):
        weights_store.import_weights(src, registry.get("vgg19"))
    assert weights_store.stored(registry.get("vgg19")) is None and src.exists()
    assert not list((homes / "app" / "weights" / "vgg19").glob("*.h5")), "nothing half-imported"
    unknown = _keras3_weights(homes / "odd.weights.h5", [(3, 3, 3, 8)])
    with pytest.raises(WeightsUnavailable, match="not the weights of a backbone"):
        weights_store.import_weights(unknown)


def test_available_offline_means_loads_not_a_file_name(homes):
    cache = homes / "keras" / "models"
    name = registry.get("vgg16").weights_file_notop
    (cache / name).write_bytes(b"\x89HDF\r\n")  # right name, not a weights file
    assert not weights_store.offline_status(registry.get("vgg16")).available
    # a .weights.h5 renamed to Keras' .h5 name: right arrays, but Keras would read it with the wrong loader
    (cache / name).unlink()
    _keras3_weights(cache / name, VGG_SHAPES)
    st = weights_store.offline_status(registry.get("vgg16"))
    assert not st.available and "name Keras reads as" in st.message
    (cache / name).unlink()
    _legacy_weights(cache / name, VGG_SHAPES)
    st = weights_store.offline_status(registry.get("vgg16"))
    assert (st.available, st.source) == (True, "keras_cache")
    checks = json.loads((homes / "app" / "weights" / "checks.json").read_text())
    assert checks[str(cache / name)]["problem"] is None, "the verdict is remembered by size and mtime"


def test_offline_download_fails_fast_with_one_short_message(homes, unreachable_network, caplog):
    with pytest.raises(WeightsUnavailable) as info:
        weights_store.download_weights(registry.get("xception"))
    err = info.value
    assert "xception_weights_tf_dim_ordering_tf_kernels_notop.h5" in err.message
    assert "https://storage.googleapis.com/tensorflow/keras-applications/xception/" in err.hint
    assert "cnn-studio weights import FILE" in err.hint and "Import weights file…" in err.hint
    assert "Errno" not in err.message + err.hint and "URL" not in err.message
    assert "\n" not in err.message
    assert "download of" in caplog.text, "the technical cause is logged"
    assert not list((homes / "app" / "weights").rglob("*.h5")), "no partial file"


class _FakeResponse(io.BytesIO):
    def __init__(self, data: bytes):
        super().__init__(data)
        self.headers = {"Content-Length": str(len(data))}


def test_download_reports_progress_checks_the_hash_and_can_be_cancelled(homes, monkeypatch):
    data = b"w" * (3 << 20)
    monkeypatch.setitem(weights_store.KERAS_NOTOP_HASHES, "vgg16", hashlib.md5(data).hexdigest())
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: _FakeResponse(data))
    events: list = []
    entry = weights_store.download_weights(registry.get("vgg16"), sink=events.append)
    progress = [e for e in events if isinstance(e, ev.TaskProgress)]
    assert progress[-1].done == progress[-1].total == len(data)
    assert entry.origin == weights_store.ORIGIN_KERAS and Path(entry.path).read_bytes() == data

    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        weights_store.download_weights(registry.get("vgg19"), cancel=token)
    assert not list((homes / "app" / "weights" / "vgg19").glob("*.h5"))

    monkeypatch.setitem(weights_store.KERAS_NOTOP_HASHES, "vgg19", "0" * 32)
    with pytest.raises(WeightsUnavailable, match="damaged"):
        weights_store.download_weights(registry.get("vgg19"))
    assert weights_store.stored(registry.get("vgg19")) is None


def test_every_spelling_of_no_weights_skips_the_frozen_phase():
    from cnn_studio.training.config import TrainConfig
    from cnn_studio.training.phases import _phases

    for spelling in ("none", "None", " scratch ", "RANDOM", ""):
        assert not parse_weights(spelling).pretrained
        config = TrainConfig(backbone="vgg16", weights=spelling or "none", epochs=2, fine_tune_epochs=1)
        assert [p.name for p in _phases(config)] == ["scratch"], spelling


def test_weights_cli_lists_and_imports(homes, monkeypatch, capsys):
    from cnn_studio.cli import main

    src = _keras3_weights(homes / "mine.weights.h5", VGG_SHAPES)
    monkeypatch.setattr(weights_store, "_check_loads", lambda spec, path: None)
    assert main(["weights", "import", str(src)]) == 0
    assert "imported for VGG16" in capsys.readouterr().out
    assert main(["weights", "list", "--json"]) == 0
    rows = {r["key"]: r for r in json.loads(capsys.readouterr().out)["backbones"]}
    assert rows["vgg16"]["available_offline"] and rows["vgg16"]["origin"] == "checked"
    assert not rows["xception"]["available_offline"]
    assert main(["weights", "import", str(homes / "missing.h5")]) == 2


def test_cli_defaults_small_cnn_needs_no_weights_and_the_default_works_offline(homes, unreachable_network, capsys):
    from cnn_studio.cli.train import default_backbone_and_weights

    assert default_backbone_and_weights("small_cnn", None) == ("small_cnn", "none")
    assert default_backbone_and_weights("vgg16", None) == ("vgg16", "imagenet"), "an explicit backbone is kept"
    assert default_backbone_and_weights(None, "scratch") == ("mobilenet_v2", "scratch")
    assert default_backbone_and_weights(None, None, sink=lambda e: None) == ("small_cnn", "none")
    err = capsys.readouterr().err
    assert "MobileNetV2" in err and "Small CNN from scratch instead" in err
    assert "cnn-studio weights import FILE" in err and "Errno" not in err


def test_import_of_a_file_inside_the_store_folder_deletes_nothing(homes, monkeypatch, capsys):
    """Issue 23: a user's file lying in the store's folder is never deleted, nor any other file there."""
    from cnn_studio.cli import main

    monkeypatch.setattr(weights_store, "_check_loads", lambda spec, path: None)
    folder = homes / "app" / "weights" / "vgg16"
    folder.mkdir(parents=True)
    mine = _keras3_weights(folder / "my_copy.weights.h5", VGG_SHAPES)
    notes = folder / "notes.txt"
    notes.write_text("my notes")
    before = mine.read_bytes()
    assert main(["weights", "import", str(mine)]) == 0
    assert "was copied and is unchanged" in capsys.readouterr().out
    assert mine.read_bytes() == before and notes.read_text() == "my notes", "the user's files are untouched"
    first = weights_store.stored(registry.get("vgg16"))
    assert Path(first.path).name == "vgg16_notop.weights.h5" and Path(first.path).read_bytes() == before

    # importing the store's own file again: recognised, nothing copied, nothing removed
    assert main(["weights", "import", first.path]) == 0
    assert "already CNN Studio's weights file" in capsys.readouterr().out
    assert weights_store.stored(registry.get("vgg16")) == first and Path(first.path).read_bytes() == before

    # a new file replaces only the store's previous record; a file by hand under the store's own name stays
    legacy = _legacy_weights(homes / "vgg16_download.h5", VGG_SHAPES)
    second = weights_store.import_weights(legacy, registry.get("vgg16"))
    assert Path(second.path).read_bytes() == legacy.read_bytes()
    assert not Path(first.path).exists(), "the store's own earlier file is replaced"
    assert mine.read_bytes() == before and notes.read_text() == "my notes" and legacy.exists()
    by_hand = folder / "vgg16_notop.weights.h5"
    by_hand.write_bytes(before)
    third = weights_store.import_weights(mine, registry.get("vgg16"))
    assert Path(third.path) != by_hand and Path(third.path).name == "vgg16_notop-2.weights.h5"
    assert by_hand.read_bytes() == before and not Path(second.path).exists()
    assert sorted(p.name for p in folder.iterdir()) == [
        "entry.json", "my_copy.weights.h5", "notes.txt", "vgg16_notop-2.weights.h5", "vgg16_notop.weights.h5"]


def _nan_weights(path: Path, spec_key: str, value: float) -> Path:
    """A .weights.h5 with exactly the backbone's arrays, every value replaced by ``value`` (a forged file)."""
    base = registry.get(spec_key).build_base(96)
    base.save_weights(path)
    with h5py.File(path, "r+") as f:
        def poison(_name, obj):
            if isinstance(obj, h5py.Dataset) and obj.shape:
                obj[...] = value
        f.visititems(poison)
    return path


@pytest.mark.slow
@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_import_refuses_weights_that_are_not_numbers(homes, value):
    src = _nan_weights(homes / "forged.weights.h5", "mobilenet_v3_small", value)
    assert weights_store.recognise_backbone(src) == "mobilenet_v3_small", "the shapes are right"
    with pytest.raises(WeightsUnavailable) as info:
        weights_store.import_weights(src)
    assert "are not numbers (NaN) or are infinite" in info.value.message
    assert weights_store.stored(registry.get("mobilenet_v3_small")) is None and src.exists()
    assert not list((homes / "app" / "weights" / "mobilenet_v3_small").glob("*.h5")), "nothing half-imported"
    # training from the same file directly is refused the same way, before any epoch
    from cnn_studio.backbones.classifier import build_backbone

    with pytest.raises(WeightsUnavailable, match="not numbers"):
        build_backbone(registry.get("mobilenet_v3_small"), 96, str(src))
