"""What the Classify step says about its answers: the caption under each thumbnail and its tooltip (a
study's says how its answer was made), the answers re-judged for another "not sure" threshold, and the
status line that counts them."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from cnn_studio.data.records import slice_name
from cnn_studio.evaluation.calibration import uncertain


def describe_study(sp) -> str:
    """The tooltip lines of a study's answer: how it was made and the slices that drove it."""
    if sp.error:
        return ""
    how = {"mean": "the average", "max": "the highest"}.get(sp.aggregate, sp.aggregate)
    lines = [f"One answer for the whole study: {how} of its {sp.slices} slices' probabilities."]
    if sp.top_slices:
        drove = ", ".join(f"{slice_name(k)} ({p:.0%})" for k, p in sp.top_slices)
        lines.append(f"The slices that drove it most: {drove}.")
    if sp.unreadable_slices:
        lines.append(f"{sp.unreadable_slices} slice(s) could not be read and were left out.")
    return "\n".join(lines)


def caption(prediction, study=None) -> tuple[str, str]:
    """(short caption under the thumbnail, full tooltip); ``study``: the StudyPrediction when it is a study."""
    short, tip = _caption(prediction)
    if study is not None and not prediction.error:
        n = study.slices
        short = short.replace("\n", f"\n{n} slices · ", 1) if "\n" in short else f"{short}\n{n} slices"
        tip = f"{tip}\n{describe_study(study)}"
    return short, tip


def _caption(prediction) -> tuple[str, str]:
    name = Path(prediction.path).name
    if prediction.error:
        return f"⚠ {name}\ncannot be read", f"{prediction.path}\nCould not read this file: {prediction.error}"
    lines = [f"{label} {p:.0%}" for label, p in prediction.top]
    if getattr(prediction, "uncertain", False):
        return (f"uncertain ({lines[0]})\n" + " · ".join(lines[1:]),
                f"{prediction.path}\nNot sure: the best answer is below the 'not sure' threshold.\n" + "\n".join(lines))
    return f"{lines[0]}\n" + " · ".join(lines[1:]), f"{prediction.path}\n" + "\n".join(lines)


def with_threshold(prediction, threshold: float | None):
    """``prediction`` with ``uncertain`` recomputed for a new "not sure" threshold (no model needed)."""

    if prediction.error or not prediction.top:
        return prediction
    return replace(prediction, uncertain=uncertain(float(prediction.top[0][1]), threshold))


def status_text(predictions: dict, studies: dict, threshold: float | None) -> str:
    """The line above the results: how many images and studies were classified, how many answers are
    uncertain (below ``threshold``) and how many files could not be read."""
    errors = sum(1 for p in predictions.values() if p.error)
    unsure = sum(1 for p in predictions.values() if getattr(p, "uncertain", False))
    done = len(predictions) - errors
    n_studies = sum(1 for p, pred in predictions.items() if p in studies and not pred.error)
    images = done - n_studies
    parts = ([f"{images} image{'' if images == 1 else 's'}"] if images or not n_studies else []) + (
        [f"{n_studies} stud{'y' if n_studies == 1 else 'ies'} (one answer each)"] if n_studies else [])
    text = " and ".join(parts) + " classified"
    if unsure:
        text += f" ({unsure} uncertain: below {threshold:.0%})"
    if errors:
        text += f"; {errors} file{'' if errors == 1 else 's'} could not be read as images (hover for why)"
    return text + "."
