"""The failure-mode lab of /learning: a tiny ST-CNN trained live on a small cluttered set, with
the choices that decide whether a spatial transformer learns anything.

Convention: see CONVENTIONS.md (images ``(B, C, H, W)`` in [0, 1]; θ maps normalised output
coordinates to normalised input coordinates, ``align_corners=False``).

The task is the paper's cluttered MNIST, shrunk so that a run fits in about 30 s on a CPU
(:data:`LAB_TASK`: a 28×28 digit somewhere on a 40×40 canvas with 4 pieces of clutter). The
model is :class:`~stn_explore.experiments.models.STClassifier` with small layers
(:func:`lab_model_args`). The toggles (:class:`LabConfig`) are the four choices that STN users
report as deciding success or failure: identity initialisation of the regression layer, the
localisation network's learning rate, the transformer's output size (a smaller output than the
input is the only pressure to zoom in) and whether the localisation net sees a 2×-pooled input.

What a run records (:func:`train_lab`), every ``record_every`` iterations: the sampling region
of a few fixed images (their trajectory), the share of the sampling grid that falls outside U
(with zero padding those points give zero output *and zero gradient*) and the spread of the
sampling regions across images (:func:`collapse_report`; below
:data:`~stn_explore.experiments.diagnostics.COLLAPSE_SPREAD` the transformer does the same thing
to every image: collapsed). ``python -m stn_explore.explorer.learning_lab`` trains every
preset (:data:`PRESETS`) and writes what it measured to :data:`OUTCOMES_PATH`, the table the
page shows; nothing on the page is typed in by hand. Live runs on a background thread, for the
page, are :mod:`stn_explore.explorer.learning_live`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..core.sampling import outside_fraction
from ..experiments import distortions as D
from ..experiments.diagnostics import COLLAPSE_SPREAD, region_corners, region_stats
from ..experiments.models import ModelArgs, STClassifier, build_model
from .learning import optimiser_update

__all__ = ["LAB_TASK", "LabConfig", "PRESETS", "RECIPE", "OUTCOMES_PATH", "LabData", "lab_model_args",
           "lab_model", "lab_data", "LabAdam", "lab_optimizer", "collapse_report", "probe", "train_lab",
           "verdict", "outcome", "measure_presets", "load_outcomes", "outcomes_table",
           "outcomes_summary", "measured_for", "main"]

#: the lab's task: the cluttered recipe on a 40×40 canvas with 4 pieces of 6×6 clutter
LAB_TASK = D.ClutterConfig(canvas=40, n_clutter=4, patch=6)
#: where ``python -m stn_explore.explorer.learning_lab`` writes the presets' measured outcomes
OUTCOMES_PATH = Path(__file__).with_name("learning_outcomes.json")
#: ST output sides offered on the page (the canvas side, 40, is "no zoom pressure")
OUT_SIZES = (12, 16, 20, 28, 40)
#: localisation learning-rate multipliers offered on the page
LOC_LR_SCALES = (0.01, 0.1, 1.0, 10.0)


@dataclass(frozen=True)
class LabConfig:
    """One lab run. The first four fields are the page's toggles; the rest fix the run."""

    #: start the regression layer at θ = identity (zero weights, identity bias), as the paper;
    #: off: PyTorch's default init, so θ starts as a small random matrix (a region near a dot)
    identity_init: bool = True
    #: the localisation network's learning rate is ``lr × loc_lr_scale``
    loc_lr_scale: float = 0.1
    #: side of the transformer's output V; the canvas side (40) leaves no pressure to zoom in
    st_out: int = 16
    #: the localisation network sees the input 2×-max-pooled
    loc_downsample: bool = True
    #: Adam's learning rate of the classifier
    lr: float = 1e-3
    iterations: int = 1000
    batch_size: int = 64
    #: record the regions, the gauges and the losses every this many iterations
    record_every: int = 25
    #: images in the fixed evaluation set (regions, spread, outside share and error)
    n_eval: int = 300
    #: fixed images whose sampling region is followed over the run
    n_panel: int = 4
    seed: int = 0
    #: torch threads of the training thread (torch.set_num_threads is per thread with OpenMP).
    #: One: on a busy 2-core machine two threads made a step 25× slower (385 vs 14 ms)
    threads: int = 1

    def check(self) -> "LabConfig":
        if self.st_out < 4 or self.st_out > LAB_TASK.canvas:
            raise ValueError(f"st_out must be in [4, {LAB_TASK.canvas}], got {self.st_out}")
        if not (self.loc_lr_scale > 0 and self.lr > 0):
            raise ValueError(f"learning rates must be positive, got lr={self.lr}, loc_lr_scale={self.loc_lr_scale}")
        for name in ("iterations", "batch_size", "record_every", "n_eval", "n_panel"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be ≥ 1, got {getattr(self, name)}")
        return self

    def toggles(self) -> dict:
        return {k: getattr(self, k) for k in ("identity_init", "loc_lr_scale", "st_out", "loc_downsample")}


#: the recipe that works, and one preset per failure STN users keep reporting
RECIPE = LabConfig()
PRESETS: dict[str, LabConfig] = {
    "working recipe": RECIPE,
    "no identity init": replace(RECIPE, identity_init=False),
    "localisation lr ×10": replace(RECIPE, loc_lr_scale=10.0),
    "localisation lr ×0.01": replace(RECIPE, loc_lr_scale=0.01),
    "no zoom pressure": replace(RECIPE, st_out=LAB_TASK.canvas),
    "full-size localisation input": replace(RECIPE, loc_downsample=False),
}
#: what each preset is meant to show (the measured outcome is in OUTCOMES_PATH)
PRESET_NOTES = {
    "working recipe": "identity init, localisation lr ×0.1, output 16×16 (zoom pressure), pooled localisation input",
    "no identity init": "θ starts as a small random matrix: a region near a dot that sees almost no ink",
    "localisation lr ×10": "the localisation net's steps are 100× the recipe's: θ can jump far from the digit",
    "localisation lr ×0.01": "the localisation net's steps are 10× smaller than the recipe's: θ hardly moves",
    "no zoom pressure": "V as large as U (40×40): nothing forces the transformer to zoom in (how our first "
                        "cluttered ST-CNN ended at one fixed zoomed-out view)",
    "full-size localisation input": "the localisation net reads the 40×40 input instead of a 20×20 pooled one",
}


def lab_model_args(cfg: LabConfig) -> ModelArgs:
    """A small ST-CNN: localisation conv 8, 16 (5×5) → FC 32 → 6; classifier conv 16 (5×5),
    32 (3×3) → FC 10, on the transformer's ``st_out × st_out`` output."""
    s = LAB_TASK.canvas
    return ModelArgs(name="st-cnn", input_size=(s, s), transform="affine", cnn_channels=(16, 32),
                     cnn_kernels=(5, 3), loc_conv_channels=(8, 16), loc_conv_hidden=32,
                     st_out_size=(cfg.st_out, cfg.st_out), loc_pool=2 if cfg.loc_downsample else 1)


def lab_model(cfg: LabConfig, gen: torch.Generator | None = None) -> STClassifier:
    """The lab's model, its weights drawn from ``gen`` (default: seeded with ``cfg.seed``)."""
    gen = gen if gen is not None else torch.Generator().manual_seed(cfg.seed)
    model = build_model(lab_model_args(cfg))
    with torch.no_grad():  # draw every weight from gen (nn's default init uses the global stream)
        for m in model.modules():
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
                bound = 1 / math.sqrt(m.weight[0].numel())
                m.weight.uniform_(-bound, bound, generator=gen)
                m.bias.uniform_(-bound, bound, generator=gen)
    if cfg.identity_init:
        for st in model.transformers:
            st.reset_to_identity()
    return model


@dataclass
class LabData:
    """What a lab run trains and is measured on (uint8 images, as :mod:`distortions` makes them)."""

    pool_images: np.ndarray   # training digits (28×28) that fresh batches are drawn from
    pool_labels: np.ndarray
    eval_set: dict            # generate()'s arrays: images (N, 40, 40), labels, boxes, …
    source: str

    @property
    def panel(self) -> np.ndarray:
        return self.eval_set["images"]


def lab_data(train_digits, test_digits, n_eval: int = 300, seed: int = 0) -> LabData:
    """Training pool from ``train_digits`` and a fixed evaluation set of ``n_eval`` cluttered
    images from ``test_digits`` (:class:`~stn_explore.experiments.mnist.Digits`)."""
    ev = D.make_fixed_set("cluttered", test_digits.images, test_digits.labels, n_eval, seed + 7, LAB_TASK)
    return LabData(train_digits.images, train_digits.labels, ev,
                   f"{len(train_digits)} training digits; evaluated on {n_eval} cluttered test digits")


def collapse_report(corners: np.ndarray) -> dict:
    """Does a transformer do the same thing to every image? For sampling-region corners
    ``(N, 4, 2)`` (:func:`~stn_explore.experiments.diagnostics.region_corners`): ``spread``,
    the corners' standard deviation across images (mean over corners and axes, normalised
    units), ``collapsed`` (spread below ``COLLAPSE_SPREAD``) and ``mean_size`` (1 = the whole
    input; :func:`~stn_explore.experiments.diagnostics.region_stats`)."""
    c = np.asarray(corners, np.float64)
    if c.ndim != 3 or c.shape[1:] != (4, 2) or len(c) < 2:
        raise ValueError(f"corners must have shape (N ≥ 2, 4, 2), got {c.shape}")
    spread = float(c.std(0).mean())
    return {"spread": spread, "collapsed": spread < COLLAPSE_SPREAD,
            "mean_size": float(region_stats(c)["size"].mean())}


def _centre_r(corners: np.ndarray, boxes: np.ndarray) -> float:
    """Mean over x and y of the correlation between region centres and digit centres."""
    centre = corners.mean(1)
    box_centre = np.stack(((boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2), 1)   # pixels
    digit = (box_centre * 2 + 1) / LAB_TASK.canvas - 1                                               # normalised
    rs = []
    for i in range(2):
        a, b = centre[:, i], digit[:, i]
        if a.std() > 1e-9 and b.std() > 1e-9:
            rs.append(float(np.corrcoef(a, b)[0, 1]))
    return float(np.mean(rs)) if rs else float("nan")


def probe(model: STClassifier, data: LabData, n_panel: int) -> dict:
    """The gauges on the fixed evaluation set: ``error`` (%), ``outside`` (share of sample
    points outside U), the :func:`collapse_report`, ``centre_r`` (region centre vs digit centre)
    and the ``panel`` regions' corners ``(n_panel, 4, 2)``."""
    model.eval()
    x = D.to_batch(data.eval_set["images"])
    with torch.no_grad():
        logits, aux = model(x, return_aux=True)
    model.train()
    theta = aux["params"][0]
    corners = region_corners("affine", theta)
    err = float((logits.argmax(1).numpy() != data.eval_set["labels"]).mean() * 100)
    return {"error": err, "outside": float(outside_fraction(aux["grid"][0]).mean()),
            **collapse_report(corners), "centre_r": _centre_r(corners, data.eval_set["boxes"]),
            "panel": corners[:n_panel].astype(np.float32), "theta_panel": theta[:n_panel].numpy().copy(),
            "v_panel": aux["v"][0][:n_panel, 0].numpy().copy()}


class LabAdam:
    """Adam over parameter groups ``[(params, lr), …]``: torch.optim.Adam's update (β = (0.9,
    0.999), ε = 1e-8), written out in :func:`~stn_explore.explorer.learning.optimiser_update`
    (torch.optim's first use imports torch._dynamo — 5 s here, a frozen first Start)."""

    def __init__(self, groups):
        self.groups = [(list(params), float(lr)) for params, lr in groups]
        self.state: dict = {}

    def zero_grad(self) -> None:
        for params, _ in self.groups:
            for p in params:
                p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        for params, lr in self.groups:
            for p in params:
                if p.grad is not None:
                    p.sub_(optimiser_update("adam", p.grad, self.state.setdefault(p, {}), lr))


def lab_optimizer(model: STClassifier, cfg: LabConfig) -> LabAdam:
    """Adam with the classifier at ``lr`` and the transformer at ``lr × loc_lr_scale``."""
    return LabAdam([(model.head_parameters(), cfg.lr), (model.localisation_parameters(), cfg.lr * cfg.loc_lr_scale)])


def verdict(rec: dict) -> str:
    """One line on a probe: collapsed, lost outside the image, or following the digit."""
    if rec["outside"] > 0.5:
        return f"lost: {rec['outside']:.0%} of the grid outside U (zero padding, zero gradient there)"
    if rec["collapsed"]:
        return (f"collapsed: one fixed view for every image (spread {rec['spread']:.3f}, "
                f"region size {rec['mean_size']:.2f})")
    r = rec["centre_r"]
    if not math.isnan(r) and r >= 0.5:
        return f"follows the digit (centre r {r:.2f}, region size {rec['mean_size']:.2f})"
    return f"varies but does not follow the digit (centre r {r:.2f}, region size {rec['mean_size']:.2f})"


def train_lab(cfg: LabConfig, data: LabData, *, on_record=None, should_stop=None) -> dict:
    """Train the lab model for ``cfg.iterations`` Adam steps on fresh cluttered batches (drawn
    from a generator seeded with ``cfg.seed``) and return the history: ``iteration``, ``loss``
    (training loss, mean since the last record), the probe's ``error``, ``outside``, ``spread``,
    ``collapsed``, ``mean_size``, ``centre_r`` per record, ``panel`` corners ``(R, P, 4, 2)``,
    the last ``theta_panel`` / ``v_panel``, ``verdict``, ``seconds``, ``stopped``.

    ``on_record(history)`` gets the history so far after every record; ``should_stop()`` is
    checked before every iteration (a stop takes effect within one step)."""
    cfg.check()
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    try:
        return _train(cfg, data, on_record, should_stop)
    finally:
        torch.set_num_threads(threads)


def _train(cfg: LabConfig, data: LabData, on_record, should_stop) -> dict:
    gen = torch.Generator().manual_seed(cfg.seed)
    model = lab_model(cfg, gen)
    opt = lab_optimizer(model, cfg)
    hist: dict = {"config": asdict(cfg), "iteration": [], "loss": [], "error": [], "outside": [], "spread": [],
                  "collapsed": [], "mean_size": [], "centre_r": [], "panel": [], "stopped": False,
                  "nonfinite": False}
    t0 = time.perf_counter()
    running, seen = 0.0, 0

    def record(it: int) -> None:
        p = probe(model, data, cfg.n_panel)
        hist["iteration"].append(it)
        hist["loss"].append(running / seen if seen else float("nan"))
        for k in ("error", "outside", "spread", "collapsed", "mean_size", "centre_r"):
            hist[k].append(p[k])
        hist["panel"].append(p["panel"])
        hist["theta_panel"], hist["v_panel"] = p["theta_panel"], p["v_panel"]
        hist["verdict"] = verdict(p)
        hist["seconds"] = time.perf_counter() - t0
        if on_record is not None:
            on_record(hist)

    record(0)
    model.train()
    done = 0
    for it in range(1, cfg.iterations + 1):
        if should_stop is not None and should_stop():
            hist["stopped"] = True
            break
        p = D.sample_params("cluttered", cfg.batch_size, gen, LAB_TASK, pool=len(data.pool_images))
        x = D.to_batch(D.apply("cluttered", data.pool_images, p, LAB_TASK))
        y = torch.from_numpy(D.labels_for("cluttered", data.pool_labels, p))
        loss = F.cross_entropy(model(x), y)
        if not torch.isfinite(loss):
            hist["nonfinite"] = True  # θ has left every finite value: nothing more to learn
            break
        opt.zero_grad()
        loss.backward()
        opt.step()
        running, seen, done = running + loss.item(), seen + 1, it
        if it % cfg.record_every == 0 or it == cfg.iterations:
            record(it)
            running, seen = 0.0, 0
    if hist["iteration"][-1] != done:
        record(done)
    hist["panel"] = np.stack(hist["panel"])
    hist["seconds"] = time.perf_counter() - t0
    return hist


def outcome(rec: dict) -> str:
    """The kind of end a probe shows: ``"lost"``, ``"collapsed"``, ``"follows the digit"`` or
    ``"does not follow"`` (the same tests, in the same order, as :func:`verdict`)."""
    if rec["outside"] > 0.5:
        return "lost"
    if rec["collapsed"]:
        return "collapsed"
    r = rec["centre_r"]
    return "follows the digit" if not math.isnan(r) and r >= 0.5 else "does not follow"


# ----------------------------------------------------------------------------- measured outcomes
def measure_presets(train_digits, test_digits, seeds=(0, 1, 2), presets: dict | None = None,
                    log=print) -> dict:
    """Train every preset once per seed, exactly as the page's live run does, and return the
    outcomes (the content of :data:`OUTCOMES_PATH`): per preset its toggles and, per seed, the
    final probe (``error``, ``outside``, ``spread``, ``collapsed``, ``mean_size``,
    ``centre_r``), the :func:`outcome` and :func:`verdict`, the error at the first record after
    10% of the run (how fast it starts) and the seconds it took on this machine."""
    presets = PRESETS if presets is None else presets
    data = lab_data(train_digits, test_digits, RECIPE.n_eval)
    out = {"command": "python -m stn_explore.explorer.learning_lab --seeds " + " ".join(map(str, seeds)),
           "task": asdict(LAB_TASK), "data": data.source,
           "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}",
           "measured": time.strftime("%Y-%m-%d"), "presets": {}}
    for name, cfg in presets.items():
        runs = []
        for seed in seeds:
            h = train_lab(replace(cfg, seed=seed), data)
            last = {k: h[k][-1] for k in ("error", "outside", "spread", "collapsed", "mean_size", "centre_r")}
            early = next(i for i, it in enumerate(h["iteration"]) if it >= cfg.iterations // 10)
            runs.append({"seed": seed, "iterations": h["iteration"][-1], "seconds": round(h["seconds"], 1),
                         "final": {k: (bool(v) if k == "collapsed" else round(float(v), 4)) for k, v in last.items()},
                         "early_error": round(h["error"][early], 2), "early_iteration": h["iteration"][early],
                         "outcome": outcome(last), "verdict": h["verdict"]})
            log(f"{name}, seed {seed}: {h['verdict']}; error {last['error']:.1f}% after {h['iteration'][-1]} "
                f"iterations ({h['seconds']:.0f} s)")
        out["presets"][name] = {"config": asdict(cfg), "runs": runs}
    return out


def load_outcomes(path: str | os.PathLike = OUTCOMES_PATH) -> dict | None:
    """The measured outcomes (None if the file is missing), each preset marked ``stale`` when
    its recorded config differs from :data:`PRESETS` (then the command must be run again)."""
    path = Path(path)
    if not path.is_file():
        return None
    d = json.loads(path.read_text())
    for name, entry in d["presets"].items():
        entry["stale"] = name not in PRESETS or entry["config"] != asdict(PRESETS[name])
    return d


def outcomes_table(outcomes: dict) -> list[dict]:
    """One row per measured preset (for a table): its toggles, how its seeds ended, the median
    final error and its range, the median error early in the run, and the median seconds."""
    rows = []
    for name, entry in outcomes["presets"].items():
        cfg, runs = entry["config"], entry["runs"]
        kinds: dict[str, list[int]] = {}
        for r in runs:
            kinds.setdefault(r["outcome"], []).append(r["seed"])
        ends = "; ".join(f"{k} (seed{'s' if len(v) > 1 else ''} {', '.join(map(str, v))})" for k, v in kinds.items())
        err = [r["final"]["error"] for r in runs]
        rows.append({
            "preset": name + (" (stale: run the command again)" if entry.get("stale") else ""),
            "identity init": "on" if cfg["identity_init"] else "off",
            "loc. lr": f"×{cfg['loc_lr_scale']:g}", "ST output": f"{cfg['st_out']}×{cfg['st_out']}",
            "loc. input": "pooled 2×" if cfg["loc_downsample"] else "full size",
            "how the seeds ended": ends,
            "error % (median, range)": f"{np.median(err):.1f} ({min(err):.1f}–{max(err):.1f})",
            f"error % at {runs[0]['early_iteration']}": f"{np.median([r['early_error'] for r in runs]):.1f}",
            "outside U": f"{np.median([r['final']['outside'] for r in runs]):.0%}",
            "region size": f"{np.median([r['final']['mean_size'] for r in runs]):.2f}",
            "seconds": f"{np.median([r['seconds'] for r in runs]):.0f}",
        })
    return rows


def outcomes_summary(outcomes: dict) -> str:
    """One sentence from the measured outcomes: which presets failed in some seed, and how."""
    failed, fine = [], []
    for name, entry in outcomes["presets"].items():
        ends = [r["outcome"] for r in entry["runs"]]
        bad = [e for e in ends if e != "follows the digit"]
        if bad:
            kinds = ", ".join(f"{k} in {bad.count(k)} of {len(ends)}" for k in dict.fromkeys(bad))
            failed.append(f"{name} ({kinds})")
        else:
            fine.append(name)
    text = ("Failed in at least one seed: " + "; ".join(failed) + ". ") if failed else "No preset failed. "
    return text + ("Followed the digit in every seed: " + ", ".join(fine) + "." if fine else "")


def measured_for(outcomes: dict | None, cfg: LabConfig) -> tuple[str, dict] | None:
    """``(preset name, run)`` of the measured run with exactly this config (seed included), or None."""
    if not outcomes:
        return None
    want = asdict(replace(cfg, seed=0))
    for name, entry in outcomes["presets"].items():
        if entry["config"] == want:
            for r in entry["runs"]:
                if r["seed"] == cfg.seed:
                    return name, r
    return None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m stn_explore.explorer.learning_lab",
        description="Train every preset of /learning's failure-mode lab (as the page's live run does) and write "
                    "the measured outcomes that the page shows.")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--presets", nargs="+", choices=list(PRESETS), default=list(PRESETS))
    ap.add_argument("--out", default=str(OUTCOMES_PATH))
    args = ap.parse_args(argv)
    from ..experiments.mnist import load_digits

    res = measure_presets(load_digits("train"), load_digits("test"), tuple(args.seeds),
                          {k: PRESETS[k] for k in args.presets})
    out = Path(args.out)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(res, indent=1) + "\n")
    os.replace(tmp, out)  # atomic: the page never reads half a file
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
