"""RunLayout is the one place a run folder's file names are written; every other module asks it."""

from __future__ import annotations

import re
from pathlib import Path

from cnn_studio.core.paths import RunLayout

ROOT = Path(__file__).resolve().parents[2]

# Every file and folder name RunLayout hands out, as written in paths.py.
NAMES = ("config.json", "split.json", "labels.txt", "best.keras", "last.keras", "history.csv", "state.json",
         "metrics.json", "robustness.json", "accuracy.png")
ALTERNATIVES = "|".join(re.escape(n) for n in NAMES)
LITERAL = re.compile(rf"""["']({ALTERNATIVES})["']""")

# Modules another change is rewriting at the same time; each still spells a run-folder name itself.
PENDING: set[str] = set()


def test_layout_names_every_file(tmp_path):
    layout = RunLayout(tmp_path)
    named = {p.name for p in (layout.config, layout.split, layout.labels, layout.best_model, layout.last_model,
                              layout.history, layout.state, layout.metrics, layout.robustness,
                              layout.robustness_plot)}
    assert named == set(NAMES)
    assert layout.models == (layout.best_model, layout.last_model)
    assert layout.robustness_plot.parent == layout.robustness_dir
    assert {layout.tensorboard.name, layout.feature_cache.name, layout.exports.name} == {"tb", "cache", "export"}
    assert not layout.is_run()
    layout.config.write_text("{}", encoding="utf-8")
    assert layout.is_run()


def test_no_module_spells_a_run_folder_file_name():
    offenders = []
    for folder in ("cnn_studio", "ui"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel in ("cnn_studio/core/paths.py", *PENDING):
                continue
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if LITERAL.search(line):
                    offenders.append(f"{rel}:{n}: {line.strip()}")
    assert not offenders, "use paths.RunLayout instead:\n" + "\n".join(offenders)
