"""The library installs on its own: pyproject's [project] table (dependencies, the app extra,
console commands, package data), a wheel with exactly the package and its data, the import,
the spatial transformer and the CLIs working without the app's packages, and checkpoint
defaults that do not depend on the current directory."""

from __future__ import annotations

import importlib
import os
import re
import shutil
import subprocess
import sys
import textwrap
import tomllib
import zipfile
from pathlib import Path

import pytest

from stn_explore.experiments import checkpoint as ckpt_mod
from stn_explore.experiments import colocalisation as C
from stn_explore.experiments import evaluate, results, train

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
LIBRARY_DEPENDENCIES = {"torch", "numpy", "pillow", "tqdm", "filelock"}
APP_EXTRA = {"streamlit", "plotly"}
COMMANDS = {"stn-train": "train", "stn-evaluate": "evaluate", "stn-data": "data",
            "stn-colocalise": "colocalise"}
# Installed by requirements-dev.txt but not a dependency of the library.
NOT_LIBRARY = ("streamlit", "plotly", "mlxtend", "scipy", "kornia", "playwright", "pytest")


def requirement_name(req: str) -> str:
    return re.match(r"[A-Za-z0-9_.-]+", req).group(0).lower()


# ----------------------------------------------------------------------------- metadata
def test_project_lists_exactly_the_library_dependencies_and_an_app_extra():
    project = PYPROJECT["project"]
    assert project["name"] == "stn-explore" and project["requires-python"]
    assert project["description"] and project["license"]
    assert {requirement_name(r) for r in project["dependencies"]} == LIBRARY_DEPENDENCIES
    assert {requirement_name(r) for r in project["optional-dependencies"]["app"]} == APP_EXTRA


def test_torch_is_pinned_exactly_as_in_requirements_txt():
    pins = [line.strip() for line in (ROOT / "requirements.txt").read_text().splitlines()
            if line.strip().startswith("torch")]
    assert len(pins) == 1 and re.fullmatch(r"torch==[0-9.]+", pins[0])
    assert pins[0] in PYPROJECT["project"]["dependencies"]


def test_requirements_txt_still_installs_the_library_and_the_app():
    listed = {requirement_name(line) for line in (ROOT / "requirements.txt").read_text().splitlines()
              if line.strip() and not line.lstrip().startswith("#")}
    missing = (LIBRARY_DEPENDENCIES - {"filelock"} | APP_EXTRA) - listed  # filelock comes with torch
    assert not missing, f"requirements.txt lacks {missing}"


def test_each_console_command_points_at_a_cli_main():
    scripts = PYPROJECT["project"]["scripts"]
    assert scripts == {cmd: f"stn_explore.experiments.{mod}:main" for cmd, mod in COMMANDS.items()}
    for target in scripts.values():
        module, func = target.split(":")
        assert callable(getattr(importlib.import_module(module), func))


def test_version_comes_from_the_package():
    import stn_explore

    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "stn_explore.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", stn_explore.__version__)


@pytest.mark.slow
def test_wheel_holds_the_package_with_its_data_files_and_nothing_else(tmp_path):
    """Builds a wheel from a copy of the package (no network, nothing written to the tree),
    with a data-only folder, a data file and a leftover bytecode cache added to the copy."""
    src = tmp_path / "src"
    shutil.copytree(ROOT / "stn_explore", src / "stn_explore")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    (src / "stn_explore/experiments/mnist_files").mkdir()
    (src / "stn_explore/experiments/mnist_files/t10k-labels-idx1-ubyte.gz").write_bytes(b"\x1f\x8b")
    (src / "stn_explore/experiments/NOTES.md").write_text("notes")
    (src / "stn_explore/__pycache__").mkdir(exist_ok=True)
    (src / "stn_explore/__pycache__/stale.cpython-311.pyc").write_bytes(b"")
    out = tmp_path / "dist"
    build = f"from setuptools import build_meta; build_meta.build_wheel({str(out)!r})"
    subprocess.run([sys.executable, "-c", build], cwd=src, check=True, capture_output=True, timeout=120)
    (wheel,) = out.glob("stn_explore-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {n for n in names if not n.startswith("stn_explore-")}
    expected = {p.relative_to(src).as_posix() for p in (src / "stn_explore").rglob("*")
                if p.is_file() and "__pycache__" not in p.parts}
    assert shipped == expected
    entry_points = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt")))
    entry_points = entry_points.decode()
    for cmd, mod in COMMANDS.items():
        assert f"{cmd} = stn_explore.experiments.{mod}:main" in entry_points


# ----------------------------------------------------------------------------- without the app
WITHOUT_APP = textwrap.dedent("""
    import sys

    BLOCKED = {blocked!r}

    class Blocker:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {{name!r}} (blocked: not a library dependency)")
            return None

    sys.meta_path.insert(0, Blocker())
    sys.path.insert(0, {root!r})
    try:
        import streamlit  # noqa: F401
    except ModuleNotFoundError:
        pass
    else:
        raise SystemExit("the blocker let streamlit through")

    import torch

    import stn_explore
    import stn_explore.experiments.colocalisation
    from stn_explore import colocalise, data, evaluate, train  # the python -m entry points
    from stn_explore.experiments import colocalise as c, data as d, evaluate as e, train as t
    from stn_explore.experiments.checkpoint import default_checkpoint_dir

    st = stn_explore.SpatialTransformer(1, (28, 28), "affine")
    v = st(torch.rand(2, 1, 28, 28))
    assert v.shape == (2, 1, 28, 28), v.shape
    v.sum().backward()

    for cli in (t, e, d, c):
        try:
            cli.main(["--help"])
        except SystemExit as exc:
            assert exc.code == 0, (cli.__name__, exc.code)
        else:
            raise AssertionError(f"{{cli.__name__}} --help did not exit")

    leaked = sorted({{m.split(".")[0] for m in sys.modules}} & BLOCKED)
    assert not leaked, leaked
    print("checkpoints:", default_checkpoint_dir())
    print("ok")
""")


def test_library_imports_and_runs_its_layer_and_clis_without_the_app_packages(tmp_path):
    script = WITHOUT_APP.format(blocked=set(NOT_LIBRARY), root=str(ROOT))
    env = {k: v for k, v in os.environ.items() if k not in ("STN_CHECKPOINT_DIR", "STN_DATA_DIR")}
    res = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.rstrip().endswith("ok")
    # run from elsewhere, a source checkout still finds its own checkpoints/ folder
    assert f"checkpoints: {ROOT / 'checkpoints'}" in res.stdout


# ----------------------------------------------------------------------------- checkpoint folder
@pytest.fixture
def no_env(monkeypatch):
    monkeypatch.delenv("STN_CHECKPOINT_DIR", raising=False)


def test_checkpoint_dir_is_the_variable_when_set(monkeypatch, tmp_path):
    monkeypatch.setenv("STN_CHECKPOINT_DIR", str(tmp_path / "ck"))
    assert ckpt_mod.default_checkpoint_dir() == tmp_path / "ck"


def test_checkpoint_dir_is_the_checkouts_folder_from_any_directory(no_env, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert ckpt_mod.default_checkpoint_dir() == ROOT / "checkpoints"


def test_installed_checkpoint_dir_is_the_current_directorys(no_env, monkeypatch, tmp_path):
    site = tmp_path / "site-packages"
    monkeypatch.setattr(ckpt_mod, "__file__", str(site / "stn_explore/experiments/checkpoint.py"))
    assert ckpt_mod.default_checkpoint_dir() == Path("checkpoints")
    (site / "checkpoints").mkdir(parents=True)  # a checkpoints/ beside the package is used
    assert ckpt_mod.default_checkpoint_dir() == site / "checkpoints"


def test_cli_defaults_and_runs_folder_follow_the_checkpoint_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("STN_CHECKPOINT_DIR", str(tmp_path))
    cfg = train.TrainConfig(task="rts", model="st-cnn", transform="affine")
    assert train.default_out(cfg) == tmp_path / "rts_st-cnn_affine.pt"
    asked = []
    monkeypatch.setattr(C, "collect_runs", lambda folder=None: asked.append(folder) or [])
    assert results.collect_results()["results"] == [] and asked == [tmp_path]  # one folder for both
    assert evaluate.main(["--table", "--readme", ""]) == 0
    assert (tmp_path / "results.json").is_file() and (tmp_path / "results.md").is_file()
    monkeypatch.setattr(C.runs, "RUNS_FOLDER", None)  # None: the default, read at each call
    assert C.runs.runs_folder() == tmp_path
    assert C.run_path(3, 0) == tmp_path / "coloc_3_clean.pt"
    monkeypatch.setattr(C.runs, "RUNS_FOLDER", str(tmp_path / "elsewhere"))  # what the page tests do
    assert C.run_path(3, 0) == tmp_path / "elsewhere" / "coloc_3_clean.pt"
    assert C.collect_runs() == []
