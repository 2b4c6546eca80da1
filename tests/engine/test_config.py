"""TrainConfig: validation messages say what was expected and received; JSON round-trips."""

from __future__ import annotations

import json

import pytest

from cnn_studio.core.errors import ConfigError
from cnn_studio.training.config import TrainConfig


def test_train_config_validation_messages():
    TrainConfig().validate()
    with pytest.raises(ConfigError, match=r"batch_size.*expected a whole number from 1 to 4096.*received 0"):
        TrainConfig(batch_size=0).validate()
    with pytest.raises(ConfigError, match="augment"):
        TrainConfig(augment=("wobble",)).validate()
    with pytest.raises(ConfigError, match="val_fraction"):
        TrainConfig(val_fraction=0.6, test_fraction=0.5).validate()
    with pytest.raises(ConfigError, match="at least one epoch"):
        TrainConfig(epochs=0, fine_tune_epochs=0).validate()


def test_train_config_json_round_trip_keeps_unknown_keys():
    c = TrainConfig(backbone="vgg16", augment=("flip", "zoom"), image_size=64)
    d = json.loads(json.dumps(c.to_dict()))
    assert TrainConfig.from_dict(d) == c
    d["from_the_future"] = 3
    assert TrainConfig.from_dict(d).extra == {"from_the_future": 3}
