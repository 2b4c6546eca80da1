"""The event catalogue is closed and every event is frozen."""

from __future__ import annotations

import pytest

from cnn_studio.core import events as ev


def test_event_catalogue_is_frozen_and_closed():
    e = ev.EpochEnded(phase="head", epoch=0, epochs=3, logs={"loss": 1.0})
    with pytest.raises(AttributeError):
        e.epoch = 2  # type: ignore[misc]
    for cls in ev.ALL_EVENTS:
        assert cls.__doc__, f"{cls.__name__} needs a one-line docstring"
        assert cls.__dataclass_params__.frozen
