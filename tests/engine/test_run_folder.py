"""Opening a run folder: errors name the folder and what to do."""

from __future__ import annotations

import pytest

from cnn_studio.core import fsutil
from cnn_studio.core.errors import RunError
from cnn_studio.runs.run_folder import open_run
from cnn_studio.training.config import TrainConfig


def test_open_run_errors_name_what_to_do(tmp_path):
    with pytest.raises(RunError, match="No run folder"):
        open_run(tmp_path / "missing")
    with pytest.raises(RunError, match="not a CNN Studio run folder"):
        open_run(tmp_path)
    fsutil.write_json(tmp_path / "config.json", TrainConfig().to_dict())
    with pytest.raises(RunError) as info:
        open_run(tmp_path)
    assert "resume" in info.value.hint
