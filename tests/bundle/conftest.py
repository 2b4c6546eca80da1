"""The bundle test runs only when asked: building the desktop bundle takes 10-20 minutes.

    CNN_STUDIO_BUNDLE_TEST=build python -m pytest tests/bundle       # build it, then drive it
    CNN_STUDIO_BUNDLE_TEST=dist/cnn-studio-0.1.0-linux-x86_64.tar.xz python -m pytest tests/bundle   # reuse a build

Without the variable its tests are deselected (not skipped), so the default suite never builds.
"""

from __future__ import annotations

import os

ENV = "CNN_STUDIO_BUNDLE_TEST"


def pytest_collection_modifyitems(config, items):
    if os.environ.get(ENV):
        return
    chosen = [item for item in items if item.get_closest_marker("bundle") is None]
    if len(chosen) != len(items):
        config.hook.pytest_deselected(items=[item for item in items if item.get_closest_marker("bundle")])
        items[:] = chosen
