"""What the app says about co-localisation runs: a run's summary sentence and the per-digit
table beside the paper's Table 5.

Part of the co-localisation experiment: see :mod:`stn_explore.experiments.colocalisation`.
"""

from __future__ import annotations

from .runs import PAPER_CLEAN, PAPER_NOISY_RANGE, attempts_note


def run_summary(run: dict) -> str:
    """One paragraph (markdown) on a run as returned by :func:`runs.run_view`: how far it got,
    its held-out accuracy, what it was trained on, and the attempts it was kept from."""
    f, d = run["final"], run["data"]
    source = f" ({d['train_source']})" if d.get("train_source") else ""
    if f is None:
        # while training, accuracy is measured on the first n_eval held-out images only (as many as
        # there are, if fewer); a finished run is scored on all of them
        n_held = d.get("n_held_out", run["config"]["n_eval"])
        n_tracked = min(run["config"]["n_eval"], n_held)
        return (f"Stopped after {run['iteration']} of {run['config']['iterations']} iterations — the last "
                f"recorded accuracy is {run['recording']['accuracy'][-1]:.0f}% of the first {n_tracked} of the "
                f"{n_held} held-out boxes (a finished run is scored on all {n_held}).")
    return (f"After {run['iteration']} iterations: **{f['accuracy']:.1f}%** of {f['n']} held-out boxes have "
            f"IoU > 0.5 with the ground truth (mean IoU {f['mean_iou']:.2f}). Trained on the "
            f"{d['n_train_digits']} training digits of class {run['config']['digit']}{source}."
            + attempts_note(run.get("attempts")))


def paper_table(rows: list[dict]) -> list[dict]:
    """One row per digit: our clean / noisy accuracy (from :func:`runs.collect_runs` rows; None
    where not trained) beside the paper's."""
    by = {(r["digit"], r["variant"]): r for r in rows}
    out = []
    for d in range(10):
        c, n = by.get((d, "clean")), by.get((d, "noisy"))
        out.append({"digit": d, "clean, ours": c["accuracy"] if c else None, "clean, paper": PAPER_CLEAN,
                    "noisy, ours": n["accuracy"] if n else None,
                    "noisy, paper": "{:.0f}–{:.0f} (range over digits)".format(*PAPER_NOISY_RANGE)})
    return out
