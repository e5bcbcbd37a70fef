"""The package's layers and the direction of their imports (explorer → experiments → core).

Read from the source with ``ast`` (every import, including those inside functions), so a
lazy import that crosses a layer the wrong way fails here too; the subprocess tests check what
importing a layer actually loads.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "stn_explore"
LAYERS = ("core", "experiments", "explorer")
#: what each layer may import from the project
ALLOWED = {"core": {"core"}, "experiments": {"core", "experiments", "top"},
           "explorer": {"core", "experiments", "explorer", "top"}}


def _module_name(path: Path, pkg: Path = PKG) -> str:
    rel = path.relative_to(pkg.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def project_imports(path: Path, pkg: Path = PKG) -> list[tuple[int, str]]:
    """``(line, absolute module)`` of every import of ``stn_explore`` in a file."""
    name = _module_name(path, pkg)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            targets = [mod] if node.module else [f"{mod}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            continue
        found += [(node.lineno, t) for t in targets if t == "stn_explore" or t.startswith("stn_explore.")]
    return found


def layer_of(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1 or parts[1] == "__version__":
        return "top"
    return parts[1] if parts[1] in LAYERS else "entry"


def test_every_module_belongs_to_a_layer_or_is_an_entry_point():
    top = sorted(p.name for p in PKG.glob("*.py"))
    # the package's __init__ and the four thin CLI entry points (python -m stn_explore.<job>)
    assert top == ["__init__.py", "colocalise.py", "data.py", "evaluate.py", "train.py"]
    for entry in ("colocalise", "data", "evaluate", "train"):
        assert len((PKG / f"{entry}.py").read_text().splitlines()) <= 10, f"{entry}.py is not a thin entry point"


@pytest.mark.parametrize("layer", LAYERS)
def test_imports_point_one_way(layer):
    bad = []
    for path in sorted((PKG / layer).rglob("*.py")):
        for line, mod in project_imports(path):
            if layer_of(mod) not in ALLOWED[layer]:
                bad.append(f"{path.relative_to(PKG.parent)}:{line} imports {mod}")
    assert not bad, "imports against the layering (explorer → experiments → core):\n" + "\n".join(bad)


def test_the_checker_sees_relative_and_lazy_imports(tmp_path):
    # the rule above can fail: a core module that imports the explorer, lazily, is caught
    pkg = tmp_path / "stn_explore"
    (pkg / "core").mkdir(parents=True)
    probe = pkg / "core" / "probe.py"
    probe.write_text("from . import sampling\n\ndef f():\n    from ..explorer import figures\n"
                     "    import stn_explore.experiments.models\n")
    assert [layer_of(m) for _, m in project_imports(probe, pkg)] == ["core", "explorer", "experiments"]


def test_nothing_in_the_package_imports_streamlit():
    offenders = [str(p.relative_to(PKG.parent)) for p in PKG.rglob("*.py")
                 if any(isinstance(n, (ast.Import, ast.ImportFrom))
                        and any((getattr(n, "module", None) or a.name).split(".")[0] == "streamlit"
                                for a in n.names)
                        for n in ast.walk(ast.parse(p.read_text())))]
    assert not offenders


def _loaded_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=PKG.parent).stdout
    return set(out.split())


def test_core_needs_only_torch():
    # importing the core adds no top-level package beyond what `import torch` itself loads
    before = {m.split(".")[0] for m in _loaded_after("import torch")}
    after = {m.split(".")[0] for m in _loaded_after("import torch, stn_explore.core")}
    assert after - before == {"stn_explore"}
    project = {m for m in _loaded_after("import stn_explore.core") if m.startswith("stn_explore")}
    assert all(m == "stn_explore" or m.startswith("stn_explore.core") for m in project), project


def test_top_level_api_is_the_core():
    mods = _loaded_after("import stn_explore as stn; stn.SpatialTransformer, stn.warp, stn.affine_grid")
    assert not any(m.startswith(("stn_explore.experiments", "stn_explore.explorer")) for m in mods)
