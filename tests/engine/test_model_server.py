"""The run's model held by a long-lived child (views.open_model) answers classify / heat maps / explain / layer maps."""

from __future__ import annotations

import os

import numpy as np
import pytest
from studio_testkit import make_class_image

from cnn_studio.core import events as ev
from cnn_studio.core.cancel import Cancelled, CancelToken
from cnn_studio.core.child_process import LocalServer, Server
from cnn_studio.core.errors import ImageReadError, RunError
from cnn_studio.explain.views import CLASSIFY, EXPLAIN, HEATMAPS, LAYER_MAPS, model_info, open_model

LOAD = "cnn_studio.predict.predictor:Classifier.load"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(trained_run, tmp_path_factory):
    s = open_model(trained_run, log_path=tmp_path_factory.mktemp("logs") / "model.log")
    yield s
    s.close()


@pytest.fixture
def pictures(tmp_path):
    paths = []
    for i in range(6):
        p = tmp_path / f"p{i}.png"
        make_class_image(i % 2, 40, seed=50 + i).save(p)
        paths.append(str(p))
    return paths


def test_answers_match_the_model_in_this_process(server, trained_run, pictures):
    assert isinstance(server, Server) and server.alive and server.pid != os.getpid()
    assert server.info.class_names == ("cat", "dog") and server.info.image_size == 32
    remote = server.call(CLASSIFY, pictures, top_k=2)
    local = LocalServer(LOAD, str(trained_run), describe=model_info).call(CLASSIFY, pictures, top_k=2)
    assert [p.label for p in remote] == [p.label for p in local]
    assert np.allclose([p.top[0][1] for p in remote], [p.top[0][1] for p in local], atol=1e-5)

    events = []
    heat = server.call(HEATMAPS, pictures[:2], None, sink=events.append)
    assert set(heat) == set(pictures[:2]) and [e.done for e in events] == [1, 2]
    picture, hmap = heat[pictures[0]]
    assert picture.shape == (40, 40, 3) and hmap.shape == (40, 40) and 0 <= hmap.min() <= hmap.max() <= 1

    looked = server.call(EXPLAIN, pictures[0], 1)
    assert looked["class_index"] == 1 and looked["input"].shape == (32, 32, 3) and looked["layers"]
    image, caption = server.call(LAYER_MAPS, looked["input"], looked["layers"][2].name)
    assert image.ndim == 3 and "feature maps" in caption


def test_cancel_stops_a_call_and_the_server_keeps_serving(server, pictures):
    token = CancelToken()

    def sink(e):
        if isinstance(e, ev.TaskProgress) and e.done == 1:
            token.cancel()

    with pytest.raises(Cancelled):
        server.call(HEATMAPS, pictures, None, sink=sink, cancel=token)
    assert len(server.call(CLASSIFY, pictures[:1], top_k=1)) == 1


def test_errors_keep_their_class_and_the_server_survives(server, tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not a picture")
    with pytest.raises(ImageReadError) as info:
        server.call(EXPLAIN, str(bad), None)
    assert info.value.hint
    assert server.alive


def test_a_missing_model_is_refused_at_once(tmp_path):
    with pytest.raises(RunError):
        open_model(tmp_path / "no_run_here")


def test_a_killed_server_says_so(trained_run, pictures):
    s = open_model(trained_run)
    s._proc.kill()
    s._proc.wait(5)
    with pytest.raises(RunError, match="The model process stopped unexpectedly"):
        s.call(CLASSIFY, pictures[:1], top_k=1)
    s.close()
