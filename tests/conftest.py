"""Shared test fixtures: offscreen Qt, quiet TensorFlow, and generated image folders.

Every image a test uses is made here with PIL in ``tmp_path``; nothing is downloaded.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from studio_testkit import make_class_image, tiny_run  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def _app_data_in_a_temp_folder(tmp_path_factory):
    """No test reads or writes the user's own app data (settings, logs, runs, the weights store).

    Tests that need their own folder still use the ``studio_home`` fixture, which overrides this one.
    """
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CNN_STUDIO_HOME", str(tmp_path_factory.mktemp("cnn_studio_home")))
        yield


@pytest.fixture
def image_folder(tmp_path: Path):
    """Factory: ``image_folder(classes=("a", "b"), per_class=8, size=32, fmt="png")`` → root path.

    Layout is class-per-subfolder; images are learnable by position of a bright square.
    """

    def make(classes=("cat", "dog"), per_class: int = 8, size: int = 32, fmt: str = "png",
             root: Path | None = None) -> Path:
        root = root or (tmp_path / "data")
        for label, name in enumerate(classes):
            d = root / name
            d.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                make_class_image(label, size, seed=i).save(d / f"{name}_{i:03d}.{fmt}")
        return root

    return make


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """A real run folder (small_cnn, 2 classes, 2 epochs), trained once per test session and shared.

    Tests that change a run work on a copy (``shutil.copytree(trained_run, tmp_path / "run")``).
    """
    return tiny_run(tmp_path_factory)


@pytest.fixture
def tiny_config():
    """A TrainConfig small enough for a test: a tiny CNN from scratch on 32x32 images, 1 epoch."""
    from cnn_studio.training.config import TrainConfig

    return TrainConfig(backbone="small_cnn", weights="none", image_size=32, batch_size=8, epochs=1,
                       fine_tune_epochs=0, cache="memory", seed=0)
