"""Engine jobs in a child process: events relayed in order, results, cancel, errors, and a child that dies."""

from __future__ import annotations

import os
import threading

import pytest

from cnn_studio import events as ev
from cnn_studio.cancel import Cancelled, CancelToken
from cnn_studio.child_process import event_from_json, event_to_json, run_in_child
from cnn_studio.errors import DatasetError, RunError


def test_events_survive_the_round_trip():
    for e in (ev.EpochEnded("head", 2, 5, {"loss": 0.5, "val_loss": float("nan")}, 1.5, 300.0),
              ev.BatchEnded("fine_tune", 0, 3, 10, {"loss": 1.25}), ev.TrainStarted("/r", "vgg16", 3, 10, 100, 20),
              ev.CheckpointSaved("/r/best.keras", "best", 1, "val_loss", 0.25)):
        import json

        back = event_from_json(json.loads(event_to_json(e)))
        assert type(back) is type(e)
        assert back == e or (isinstance(e, ev.EpochEnded) and back.logs["loss"] == 0.5)
    unknown = event_from_json({"event": "NoSuchEvent", "data": {"x": 1}})
    assert isinstance(unknown, ev.LogMessage)


def test_events_in_order_and_the_result(tmp_path):
    seen = []
    result = run_in_child("selftest", {"n": 4, "print": True}, sink=seen.append, log_path=tmp_path / "c.log")
    assert [e.done for e in seen] == [1, 2, 3, 4] and all(isinstance(e, ev.TaskProgress) for e in seen)
    assert result["done"] == 4 and result["pid"] != os.getpid()  # it really ran elsewhere
    assert "a library writing to stdout" in (tmp_path / "c.log").read_text()  # moved off the protocol


def test_cancel_stops_the_child_promptly():
    token = CancelToken()
    seen = []

    def sink(e):
        seen.append(e)
        if e.done == 2:
            threading.Timer(0.05, token.cancel).start()

    with pytest.raises(Cancelled):
        run_in_child("selftest", {"n": 200, "sleep": 0.05}, sink=sink, cancel=token)
    assert 2 <= len(seen) < 50


def test_studio_errors_keep_their_class_message_and_hint():
    with pytest.raises(DatasetError) as info:
        run_in_child("selftest", {"fail": "studio"})
    assert info.value.message == "The folder has one class." and info.value.hint == "Add a second class folder."


def test_a_bug_becomes_a_run_error_with_the_traceback():
    with pytest.raises(RunError) as info:
        run_in_child("selftest", {"fail": "bug"})
    assert "ZeroDivisionError" in str(info.value) and "Traceback" in info.value.hint


def test_a_child_that_dies_says_so_and_what_to_do(tmp_path):
    with pytest.raises(RunError) as info:
        run_in_child("selftest", {"fail": "die"}, log_path=tmp_path / "dead.log")
    assert "stopped unexpectedly" in info.value.message and "code 9" in info.value.message
    assert "Continue training" in info.value.hint and str(tmp_path / "dead.log") in info.value.hint


def test_unknown_job_is_refused():
    with pytest.raises(ValueError):
        run_in_child("format_disk", {})


def test_child_stops_by_itself_when_the_app_goes_away():
    """The app quit (or crashed) mid-job: end of input cancels, the child stops early and exits 0."""
    import json
    import subprocess
    import sys
    import time

    proc = subprocess.Popen([sys.executable, "-m", "cnn_studio.child_process"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    proc.stdin.write(json.dumps({"job": "selftest", "payload": {"n": 400, "sleep": 0.05}}) + "\n")
    proc.stdin.flush()
    assert '"TaskProgress"' in proc.stdout.readline()
    t0 = time.monotonic()
    proc.stdin.close()
    proc.stdout.close()
    assert proc.wait(timeout=15) == 0
    assert time.monotonic() - t0 < 10  # far less than the 20 s the job would take


def test_the_in_process_switch_runs_the_same_job_here(monkeypatch):
    from cnn_studio.child_process import IN_PROCESS_ENV, run_job

    monkeypatch.setenv(IN_PROCESS_ENV, "1")
    events = []
    result = run_job("selftest", {"n": 2}, sink=events.append)
    assert result["pid"] == os.getpid() and [e.done for e in events] == [1, 2]
    with pytest.raises(DatasetError):
        run_job("selftest", {"fail": "studio"})
    monkeypatch.delenv(IN_PROCESS_ENV)
    assert run_job("selftest", {"n": 1})["pid"] != os.getpid()
