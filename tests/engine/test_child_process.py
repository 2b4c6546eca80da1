"""The process boundary: engine functions by import name in a child — one-shot jobs and a long-lived server.

Events relayed in order, results as the engine's own objects, cancel, errors (class, message, hint),
a child that dies (named), a parent that goes away, the in-process switch, the frozen-app start.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import threading
import time

import pytest

from cnn_studio.core import child_process as cp
from cnn_studio.core import child_start as start
from cnn_studio.core import events as ev
from cnn_studio.core.cancel import Cancelled, CancelToken
from cnn_studio.core.child_process import IN_PROCESS_ENV, open_server, run_in_child, run_job
from cnn_studio.core.errors import DatasetError, RunError

SELFTEST = "cnn_studio.core.child_process:selftest"


def test_events_survive_the_round_trip():
    """Events cross as pickles of the events.py dataclasses: equal on the other side, nan included."""
    for e in (ev.EpochEnded("head", 2, 5, {"loss": 0.5, "val_loss": float("nan")}, 1.5, 300.0),
              ev.BatchEnded("fine_tune", 0, 3, 10, {"loss": 1.25}), ev.TrainStarted("/r", "vgg16", 3, 10, 100, 20),
              ev.CheckpointSaved("/r/best.keras", "best", 1, "val_loss", 0.25)):
        back = pickle.loads(pickle.dumps(e, protocol=pickle.HIGHEST_PROTOCOL))
        assert type(back) is type(e)
        assert back == e or (isinstance(e, ev.EpochEnded) and back.logs["loss"] == 0.5)


def test_events_in_order_and_the_result(tmp_path):
    seen = []
    result = run_in_child(SELFTEST, 4, print_line=True, sink=seen.append, log_path=tmp_path / "c.log")
    assert [e.done for e in seen] == [1, 2, 3, 4] and all(isinstance(e, ev.TaskProgress) for e in seen)
    assert result["done"] == 4 and result["pid"] != os.getpid()  # it really ran elsewhere
    assert "a library writing to stdout" in (tmp_path / "c.log").read_text()  # moved off the protocol


def test_a_one_shot_job_by_import_name_returns_the_engine_s_own_objects(tmp_path):
    """A real engine function by its name; its dataclass result crosses as itself, no converter."""
    from PIL import Image

    from cnn_studio.data.records import DatasetIndex

    for cls in ("cat", "dog"):
        (tmp_path / "data" / cls).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (8, 8), (i * 40, 0, 0)).save(tmp_path / "data" / cls / f"{i}.png")
    seen = []
    index = run_job("cnn_studio.data.index:scan", tmp_path / "data", sink=seen.append)
    assert isinstance(index, DatasetIndex) and tuple(index.class_names) == ("cat", "dog") and len(index.records) == 6
    assert any(isinstance(e, ev.ScanFinished) for e in seen)
    # a module-level function works as well as its name
    assert run_job(cp.selftest, 2)["pid"] != os.getpid()


def test_cancel_stops_the_child_promptly():
    token = CancelToken()
    seen = []

    def sink(e):
        seen.append(e)
        if e.done == 2:
            threading.Timer(0.05, token.cancel).start()

    with pytest.raises(Cancelled):
        run_in_child(SELFTEST, 200, sleep=0.05, sink=sink, cancel=token)
    assert 2 <= len(seen) < 50


def test_studio_errors_keep_their_class_message_and_hint():
    with pytest.raises(DatasetError) as info:
        run_in_child(SELFTEST, fail="studio")
    assert info.value.message == "The folder has one class." and info.value.hint == "Add a second class folder."


def test_a_bug_becomes_a_run_error_naming_the_job_and_the_log(tmp_path):
    with pytest.raises(RunError) as info:
        run_in_child(SELFTEST, fail="bug", label="export", log_path=tmp_path / "bug.log")
    assert "ZeroDivisionError" in str(info.value) and "Traceback" in info.value.hint
    assert info.value.message.startswith("The export process failed")
    assert str(tmp_path / "bug.log") in info.value.hint


def test_a_child_that_dies_says_so_and_what_to_do(tmp_path):
    with pytest.raises(RunError) as info:
        run_in_child(SELFTEST, fail="die", log_path=tmp_path / "dead.log")
    assert "stopped unexpectedly" in info.value.message and "code 9" in info.value.message
    assert "Continue training" in info.value.hint and str(tmp_path / "dead.log") in info.value.hint


@pytest.mark.parametrize("label", ["evaluation", "export", "training"])
def test_the_crash_message_names_the_job_that_crashed(label):
    with pytest.raises(RunError) as info:
        run_in_child(SELFTEST, fail="die", label=label)
    assert info.value.message.startswith(f"The {label} process stopped unexpectedly")
    others = {"evaluation", "export", "training"} - {label}
    assert not any(word in info.value.message for word in others)


def test_without_a_label_the_job_is_named_after_its_function():
    with pytest.raises(RunError, match="The selftest process stopped unexpectedly"):
        run_in_child(SELFTEST, fail="die")


def test_unknown_job_is_refused():
    with pytest.raises(ValueError):
        run_in_child("format_disk", {})
    with pytest.raises(ValueError):
        run_in_child(lambda sink, cancel: 1)  # a child cannot import a lambda
    with pytest.raises(RunError, match="no_such_function"):
        run_in_child("cnn_studio.core.child_process:no_such_function")


def test_child_stops_by_itself_when_the_app_goes_away():
    """The app quit (or crashed) mid-job: end of input cancels, the child stops early and exits 0."""
    proc = subprocess.Popen(start.child_command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, env=start.child_env())
    for msg in (("open", "selftest", None, (), {}, None), ("call", 1, SELFTEST, (400,), {"sleep": 0.05})):
        pickle.dump(msg, proc.stdin)
    proc.stdin.flush()
    assert pickle.load(proc.stdout)[0] == "ready"
    kind, call_id, event = pickle.load(proc.stdout)
    assert (kind, call_id) == ("event", 1) and isinstance(event, ev.TaskProgress)
    t0 = time.monotonic()
    proc.stdin.close()
    proc.stdout.close()
    assert proc.wait(timeout=15) == 0
    assert time.monotonic() - t0 < 10  # far less than the 20 s the job would take


def test_the_in_process_switch_runs_the_same_job_here(monkeypatch):
    monkeypatch.setenv(IN_PROCESS_ENV, "1")
    events = []
    result = run_job(SELFTEST, 2, sink=events.append)
    assert result["pid"] == os.getpid() and [e.done for e in events] == [1, 2]
    with pytest.raises(DatasetError):
        run_job(SELFTEST, fail="studio")
    server = open_server("cnn_studio.core.child_process:Counter", 5, label="counter", describe="builtins:repr")
    assert server.pid == os.getpid() and server.call("cnn_studio.core.child_process:Counter.add", 2) == 7
    server.close()
    monkeypatch.delenv(IN_PROCESS_ENV)
    assert run_job(SELFTEST, 1)["pid"] != os.getpid()


# ---------------------------------------------------------------------------- the server lifetime
def test_a_server_keeps_its_state_across_calls_and_relays_each_call_s_events(tmp_path):
    with open_server("cnn_studio.core.child_process:Counter", 10, label="counter", describe="builtins:repr",
                     log_path=tmp_path / "s.log") as server:
        assert server.pid != os.getpid() and server.alive
        assert server.info == "Counter(10)"  # describe(state), computed once in the child
        seen = []
        assert server.call("cnn_studio.core.child_process:Counter.add", 3, sink=seen.append) == 13
        assert server.call("cnn_studio.core.child_process:Counter.add", 4, steps=2, sink=seen.append) == 17
        assert [(e.done, e.total) for e in seen] == [(1, 1), (1, 2), (2, 2)]
    assert not server.alive  # close() ended the child


def test_a_server_survives_errors_and_cancels_and_names_itself_when_killed():
    server = open_server("cnn_studio.core.child_process:Counter", 0, label="counter")
    try:
        with pytest.raises(DatasetError) as info:
            server.call("cnn_studio.core.child_process:Counter.add", -1)
        assert info.value.hint == "Count up, not down."
        token = CancelToken()

        def sink(e):
            if e.done == 2:
                token.cancel()

        with pytest.raises(Cancelled):
            server.call("cnn_studio.core.child_process:Counter.add", 1, steps=500, sleep=0.02, sink=sink, cancel=token)
        assert server.call("cnn_studio.core.child_process:Counter.add", 5) == 5  # state untouched, still serving
        server._proc.kill()
        server._proc.wait(5)
        with pytest.raises(RunError, match="The counter process stopped unexpectedly"):
            server.call("cnn_studio.core.child_process:Counter.add", 1)
    finally:
        server.close()


def test_a_factory_that_fails_is_raised_from_the_constructor():
    with pytest.raises(DatasetError, match="Count up"):
        open_server("cnn_studio.core.child_process:Counter", -5, label="counter")


# ---------------------------------------------------------------------------- how children start
def test_children_start_through_the_program_s_own_entry_point(monkeypatch, tmp_path):
    """From a frozen app sys.executable is the app: the child is that program with the hidden flag."""
    assert start.child_command() == [sys.executable, "-c", start._ENTRY, start.CHILD_FLAG]
    app = tmp_path / "cnn-studio-frozen"  # stands in for a PyInstaller executable (no `-m` there)
    app.write_text(f"#!{sys.executable}\nimport sys\nfrom cnn_studio.cli import main\nsys.exit(main())\n")
    app.chmod(0o755)
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", str(app))
    assert start.child_command() == [str(app), start.CHILD_FLAG]
    seen = []
    assert run_in_child(SELFTEST, 2, sink=seen.append)["done"] == 2 and len(seen) == 2


def test_a_cnn_studio_folder_in_the_current_folder_does_not_stand_in_for_the_installed_program(tmp_path, monkeypatch):
    """README's install command runs in a source checkout, and the app is often started there: `python -m`
    put that folder first on sys.path, so the child imported the checkout's cnn_studio (no cnn_studio.ui,
    no cnn_studio.resources) and died without a word ("exited with code 0", an empty log). Children,
    workers and the doctor run the installed program whatever the current folder holds."""
    decoy = tmp_path / "cnn_studio"
    decoy.mkdir()
    (decoy / "__init__.py").write_text("raise SystemExit('the decoy package was imported')\n")
    (decoy / "__main__.py").write_text("raise SystemExit('the decoy package was imported')\n")
    monkeypatch.chdir(tmp_path)
    seen = []
    assert run_in_child(SELFTEST, 2, sink=seen.append, log_path=tmp_path / "c.log") is not None
    assert [e.done for e in seen] == [1, 2]
    proc = subprocess.run(start.program_command("backbones", "--json"), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "decoy" not in proc.stderr and '"small_cnn"' in proc.stdout


def test_a_request_the_child_cannot_read_is_an_error_with_its_reason_not_a_silent_exit(tmp_path):
    """A request that fails to unpickle in the child (here: a module it cannot import) ends with exit 1 and
    the reason in its log, not exit 0 and nothing (which the app could only report as "stopped unexpectedly")."""
    log = tmp_path / "child.log"
    request = pickle.dumps(("call", "job", os.path.join, (), {}, None))
    assert b"posixpath" in request
    bad = request.replace(b"posixpath", b"nomodulex")  # same length: the pickle stays well-formed
    with open(log, "wb") as err:
        proc = subprocess.run(start.child_command(), input=bad, stdout=subprocess.PIPE, stderr=err, timeout=120)
    assert proc.returncode == 1
    assert "nomodulex" in log.read_text()
