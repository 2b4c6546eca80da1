"""The doctor's report (:mod:`cnn_studio.computer.doctor`): one :class:`Check` per thing looked at, and :class:`DoctorReport`.

Each check module (:mod:`~cnn_studio.computer.gpu_check`, :mod:`~cnn_studio.computer.qt_check`,
:mod:`~cnn_studio.computer.storage_check`, the versions in :mod:`~cnn_studio.computer.doctor`) gives checks of this form.
"""

from __future__ import annotations

import platform
import sys
from dataclasses import asdict, dataclass, field

from cnn_studio import __version__

OK, WARNING, PROBLEM, INFO = "ok", "warning", "problem", "info"


@dataclass(frozen=True)
class Check:
    """One thing looked at: ``status`` is ok / info / warning / problem; ``fix`` says what to do when not ok."""

    name: str
    status: str
    detail: str
    fix: str = ""


@dataclass
class DoctorReport:
    """Every check, plus the plain facts a bug report needs (versions, devices, folders)."""

    checks: list[Check] = field(default_factory=list)
    facts: dict[str, object] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when nothing the app needs is broken (warnings allowed)."""
        return not any(c.status == PROBLEM for c in self.checks)

    def to_dict(self) -> dict[str, object]:
        return {"ok": self.ok, "facts": self.facts, "checks": [asdict(c) for c in self.checks]}

    @classmethod
    def from_dict(cls, d: dict) -> DoctorReport:
        return cls([Check(**c) for c in d.get("checks", [])], dict(d.get("facts", {})))

    def to_text(self) -> str:
        marks = {OK: "ok  ", INFO: "info", WARNING: "WARN", PROBLEM: "FAIL"}
        lines = [f"CNN Studio {self.facts.get('cnn_studio', __version__)} on "
                 f"{self.facts.get('platform', platform.platform())}"]
        for c in self.checks:
            lines.append(f"[{marks.get(c.status, c.status)}] {c.name}: {c.detail}")
            if c.fix:
                lines.append(f"       what to do: {c.fix}")
        lines.append("Everything CNN Studio needs works." if self.ok
                     else "Something CNN Studio needs does not work: see FAIL above.")
        return "\n".join(lines)


def install_fix(pip_command: str) -> str:
    """What to do about a missing or broken package: ``pip_command``, or in the desktop download (which
    has no pip and carries its own packages) getting the download again."""
    if getattr(sys, "frozen", False):
        return ("download CNN Studio again and unpack it into a new folder: this copy is damaged or "
                "incomplete (your runs and settings are kept: they live outside the app's folder)")
    return pip_command
