"""The model card's Results lines for the evaluation: its figures, how sure they are (95% intervals),
calibration, the per-study figures of a volume run, and a suspected shortcut."""

from __future__ import annotations

from typing import Any

from cnn_studio.evaluation.intervals import describe
from cnn_studio.evaluation.studies import study_figures
from cnn_studio.explain.occlusion import pixel_box


def metrics_lines(m: dict[str, Any], input_size: int) -> list[str]:
    """The Results section's lines for the evaluation summary ``m`` (the card's ``metrics``)."""
    L = [f"On {m.get('n_images')} {m.get('subset')} images: accuracy {m.get('accuracy', 0):.4f}, "
         f"macro F1 {m.get('macro_f1', 0):.4f}"
         + (f", macro ROC AUC {m['macro_roc_auc']:.4f}" if m.get("macro_roc_auc") is not None else "")]
    L += per_class_lines(m)
    chance = m.get("chance") or {}
    if chance.get("verdict") in ("not_better", "unproven"):
        L += ["", f"**Warning:** {chance['message']} {chance.get('hint', '')}".rstrip()]
    L += calibration_lines(m.get("calibration") or {})
    L += study_lines(m.get("study") or {})
    return L + shortcut_lines(m.get("shortcuts") or {}, input_size)


def per_class_lines(m: dict[str, Any]) -> list[str]:
    """The per-class table: with 95% intervals when the evaluation has them, else plain figures."""
    iv = m.get("intervals") or {}
    if not iv:
        return (["", "| class | precision | recall | F1 | support |", "|---|---|---|---|---|"]
                + [f"| {r['name']} | {r['precision']:.3f} | {r['recall']:.3f} | {r['f1']:.3f} | {r['support']} |"
                   for r in m.get("per_class", [])])
    rule = iv.get("rule") or (f"a figure needs {iv.get('min_images')} images, an AUC "
                              f"{iv.get('min_auc_per_side')} of the class and of the rest")
    L = ["", f"How sure these numbers are (95% intervals; {rule}):", "",
         f"- accuracy: {describe(iv.get('accuracy'))}",
         f"- macro ROC AUC: {describe((iv.get('roc_auc') or {}).get('macro'))}"]
    L += ["", "| class | precision | recall | F1 | ROC AUC | support |", "|---|---|---|---|---|---|"]
    for r in m.get("per_class", []):
        est = (iv.get("per_class") or {}).get(r["name"], {})
        auc = (iv.get("roc_auc") or {}).get(r["name"])
        L.append(f"| {r['name']} | {describe(est.get('precision'))} | {describe(est.get('recall'))} | "
                 f"{describe(est.get('f1'))} | {describe(auc)} | {r['support']} |")
    return L


def calibration_lines(cal: dict[str, Any]) -> list[str]:
    """The calibration lines: the test ECE, the temperature built in, and the fit on the validation images."""
    if not cal:
        return []
    t = cal.get("temperature", 1.0)
    L = ["", f"Calibration: expected calibration error {cal['ece']:.3f} on these images"
         + (f" (without temperature scaling {cal['ece_uncalibrated']:.3f}); temperature T = {t:.3g} "
            "is built into the model (its last layer's weights are divided by T)" if t != 1.0 else
            " (no temperature scaling)") + "."]
    fit = cal.get("fitted_on_validation") or {}
    if fit:
        L.append(f"On the {fit.get('n_images')} validation images: ECE {fit.get('ece_before', 0):.3f} "
                 f"before, {fit.get('ece_after', 0):.3f} after"
                 + (f" ({fit['reason']})" if fit.get("reason") else "") + ".")
    return L


def study_lines(st: dict[str, Any]) -> list[str]:
    """The per-study figures of a volume run (and their chance warning); [] for pictures."""
    if not st.get("count"):
        return []
    L = ["", f"Per study ({st.get('aggregate', 'mean')} of its slices' probabilities), on {st['count']} "
         f"studies: " + study_figures(st) + "."]
    if (st.get("chance") or {}).get("verdict") in ("not_better", "unproven"):
        L += ["", f"**Warning (per study):** {st['chance']['message']} {st['chance'].get('hint', '')}".rstrip()]
    return L


def shortcut_lines(sc: dict[str, Any], input_size: int, shown: int = 5) -> list[str]:
    """The card's lines for a suspected shortcut: the finding, the region's box, the images it changed."""
    if not sc.get("suspected"):
        return []
    lines = ["", f"**Shortcut warning:** {sc['message']}"]
    affected = [a["key"] for a in sc.get("affected") or ()]
    if sc.get("box"):
        x0, y0, x1, y1 = pixel_box(tuple(sc["box"]), input_size)
        lines.append(f"Region checked: the {sc.get('region')}, x {x0}–{x1} and y {y0}–{y1} px of the "
                     f"{input_size}×{input_size} model input (resize policy {sc.get('resize', 'stretch')}).")
    if affected:
        more = f" and {len(affected) - shown} more (all in model_card.json)" if len(affected) > shown else ""
        lines.append(f"Validation images whose answer it changed ({len(affected)}): "
                     + ", ".join(f"`{k}`" for k in affected[:shown]) + more + ".")
    elif sc.get("examples"):
        lines.append("Examples: " + ", ".join(f"`{e}`" for e in sc["examples"][:3]))
    return lines
