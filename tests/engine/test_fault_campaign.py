"""Issue 23's fault campaign (tools/fault_campaign.py), a fast part of it: the cases that need no
training and no Keras-made files, run against the real CLI in subprocesses on a copy of the
session's ``trained_run``. The whole campaign: ``python tools/fault_campaign.py`` (several minutes)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

TOOL = Path(__file__).resolve().parents[2] / "tools" / "fault_campaign.py"
FAST = ("config-deleted", "state-empty", "labels-cut", "history-first-row-cut", "manifest-long-row",
        "manifest-two-labels", "corrections-unmatched-exclusion", "predict-batch-size-0", "train-missing-path")


def _campaign():
    spec = importlib.util.spec_from_file_location("fault_campaign", TOOL)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


campaign = _campaign()


def test_the_fast_cases_are_cases_of_the_campaign_and_every_section_is_there():
    names = {c.name for c in campaign.CASES}
    assert set(FAST) <= names
    sections = {c.section for c in campaign.CASES if not c.skipped}
    assert {campaign.A, campaign.B, campaign.C, campaign.D, campaign.E} <= sections


@pytest.mark.slow
@pytest.mark.parametrize("name", FAST)
def test_campaign_case(name, trained_run, tmp_path):
    shared = campaign.Shared(tmp_path, run=trained_run, data=trained_run.parent / "data")
    case = next(c for c in campaign.CASES if c.name == name)
    outcome = campaign.run_case(case, shared, tmp_path)
    row = campaign.table([(case, outcome)])
    assert outcome.calls and not outcome.traceback, row
    assert not outcome.changed, row
    assert outcome.ok, row + "\n" + (tmp_path / "cases" / name / "calls.log").read_text(encoding="utf-8")
