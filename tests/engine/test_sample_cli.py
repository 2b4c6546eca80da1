"""`cnn-studio sample`: the folder of each sample, a generated one made once and then reused."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from cnn_studio.data.sample import generated_sample_path, sample_dataset_path


def _sample(kind: str | None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cnn_studio", "sample", *([kind] if kind else [])],
                          capture_output=True, text=True, timeout=120)


def test_sample_prints_the_bundled_digits_and_makes_the_volumes_once():
    digits = _sample(None)
    assert digits.returncode == 0 and Path(digits.stdout.strip()) == sample_dataset_path()

    first = _sample("volumes")
    assert first.returncode == 0, first.stderr
    made = Path(first.stdout.strip())
    assert made == generated_sample_path("volumes")
    assert sorted(p.name for p in made.iterdir() if p.is_dir()) == ["healthy", "lesion"]
    niftis = sorted(made.rglob("*.nii.gz"))
    assert len(niftis) == 32
    stamp = niftis[0].stat().st_mtime_ns
    again = _sample("volumes")
    assert again.returncode == 0 and Path(again.stdout.strip()) == made
    assert niftis[0].stat().st_mtime_ns == stamp  # reused, not made again

    bad = _sample("photos")
    assert bad.returncode == 2 and "invalid choice" in bad.stderr
