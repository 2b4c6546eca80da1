"""Issue 23: a .keras file is a zip; one that would unpack to far more than its size is refused before Keras reads it."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from cnn_studio.backbones import registry
from cnn_studio.core import keras_archive
from cnn_studio.core.errors import RunError, WeightsUnavailable


def _archive(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


def _config_bomb(path: Path) -> Path:
    """A small file whose config.json unpacks to 40 MB of JSON (the attack, scaled down)."""
    config = b'{"class_name": "Functional", "config": {"name": "' + b" " * (40 << 20) + b'"}}'
    return _archive(path, {"metadata.json": b'{"keras_version": "3.15.1"}', "config.json": config,
                           "model.weights.h5": b"\x89HDF\r\n\x1a\n"})


def test_a_config_that_unpacks_to_tens_of_mb_is_refused_before_keras_reads_it(tmp_path, monkeypatch):
    import keras

    from cnn_studio.runs.run_folder import load_model

    bomb = _config_bomb(tmp_path / "model.keras")
    assert bomb.stat().st_size < 200_000
    assert "config.json would unpack to 41.9 MB" in keras_archive.archive_problem(bomb)
    opened = []
    monkeypatch.setattr(keras.saving, "load_model", lambda *a, **k: opened.append(a))
    with pytest.raises(RunError) as info:
        load_model(bomb)
    assert "is not a model file CNN Studio can open safely" in info.value.message
    assert "trust" in info.value.hint and opened == [], "Keras never saw the file"


def test_members_that_unpack_to_far_more_than_the_file_are_refused(tmp_path):
    many = _archive(tmp_path / "many.keras", {"config.json": b"{}", "model.weights.h5": bytes(100 << 20)})
    assert "would unpack to 104.9 MB from a file of" in keras_archive.archive_problem(many)
    plain = _archive(tmp_path / "plain.keras", {"config.json": b"{}", "model.weights.h5": bytes(1 << 20)})
    assert keras_archive.archive_problem(plain) is None, "a small model compressed by another tool is fine"
    (tmp_path / "not_a_zip.keras").write_bytes(b"nothing")
    assert keras_archive.archive_problem(tmp_path / "not_a_zip.keras") is None, "left to Keras' damaged-file error"


def test_a_weights_import_of_an_archive_bomb_is_refused(tmp_path, monkeypatch):
    from cnn_studio.backbones import weights_store

    monkeypatch.setenv("CNN_STUDIO_HOME", str(tmp_path / "app"))
    bomb = _config_bomb(tmp_path / "vgg16.keras")
    with pytest.raises(WeightsUnavailable, match="can open safely"):
        weights_store.import_weights(bomb, registry.get("vgg16"))
    assert weights_store.stored(registry.get("vgg16")) is None and bomb.exists()


@pytest.mark.slow
def test_a_model_saved_by_keras_passes_and_loads(tmp_path):
    from cnn_studio.backbones.classifier import build_classifier
    from cnn_studio.runs.run_folder import load_model

    path = tmp_path / "small.keras"
    build_classifier(registry.get("small_cnn"), 2, image_size=32).save(path)
    assert keras_archive.archive_problem(path) is None
    assert load_model(path).output_shape == (None, 2)
