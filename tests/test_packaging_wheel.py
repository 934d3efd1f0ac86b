"""The wheel that ``pip install pandajedi_wf`` puts into a PanDA server: what is in it, what it asks pip for, and that
it works installed alone in a clean virtualenv.

The wheel is built offline (``pip wheel --no-deps --no-build-isolation`` with the .venv's setuptools, pinned in
constraints/dev.txt) from a copy of the work tree, so the build's ``build/`` and ``*.egg-info`` never land in it.
"""

from __future__ import annotations

import ast
import email.parser
import json
import os
import shutil
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from pandajedi_wf import schema_files

ROOT = Path(__file__).resolve().parents[1]
# what a checkout holds besides the sources: never copied into the build tree
_NOT_SOURCES = shutil.ignore_patterns(".git", ".venv*", "build", "dist", "*.egg-info", "__pycache__", "*.pyc", ".hypothesis", ".pytest_cache")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("wheel")
    src = work / "src"
    shutil.copytree(ROOT, src, ignore=_NOT_SOURCES, symlinks=True)
    run = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "--wheel-dir", str(work / "dist"), str(src)],
        capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    (path,) = (work / "dist").glob("pandajedi_wf-*.whl")
    return path


def _names(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as zf:
        return zf.namelist()


def _dist_info(wheel: Path, name: str) -> str:
    with zipfile.ZipFile(wheel) as zf:
        (member,) = [n for n in zf.namelist() if n.endswith(f".dist-info/{name}")]
        return zf.read(member).decode()


def _requirements(wheel: Path) -> tuple[list[Requirement], dict[str, list[Requirement]]]:
    """(what pip installs with the package, what each extra adds)."""
    found = [Requirement(r) for r in email.parser.Parser().parsestr(_dist_info(wheel, "METADATA")).get_all("Requires-Dist") or []]
    base = [r for r in found if r.marker is None]
    extras: dict[str, list[Requirement]] = {}
    for r in found:
        if r.marker is not None:
            extra = str(r.marker).split("==")[1].strip().strip("\"'")
            extras.setdefault(extra, []).append(r)
    return base, extras


def _imported_top_levels(wheel: Path) -> set[str]:
    """Every top-level module an import statement of the wheel's code names, ours and the standard library's left out."""
    found = set()
    with zipfile.ZipFile(wheel) as zf:
        for name in zf.namelist():
            if not name.endswith(".py"):
                continue
            for node in ast.walk(ast.parse(zf.read(name), name)):
                if isinstance(node, ast.Import):
                    found.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    found.add(node.module.split(".")[0])
    return {m for m in found if m != "pandajedi_wf" and m not in sys.stdlib_module_names}


def test_the_wheel_holds_the_package_and_its_ddl_and_nothing_of_the_dev_harness(wheel):
    names = _names(wheel)
    sources = {str(p.relative_to(ROOT)) for p in (ROOT / "pandajedi_wf").rglob("*.py") if "__pycache__" not in p.parts}
    assert sources <= set(names), sorted(sources - set(names))
    # every DDL, grant and upgrade script and the schema README, where importlib.resources finds them once installed
    ddl = {f"pandajedi_wf/sql/{p.relative_to(schema_files.SQL_ROOT)}" for p in schema_files.SQL_ROOT.rglob("*") if p.is_file()}
    assert {"pandajedi_wf/sql/README.md", "pandajedi_wf/sql/postgres/upgrades/1.1.0_to_1.2.0.sql", "pandajedi_wf/sql/oracle/grants/idds_read_access.sql"} <= ddl
    assert ddl <= set(names), sorted(ddl - set(names))
    for backend in schema_files.BACKENDS:
        wanted = schema_files.install_files(backend) + schema_files.grant_files(backend) + [p for _, _, p in schema_files.upgrade_files(backend)]
        assert {f"pandajedi_wf/sql/{p.relative_to(schema_files.SQL_ROOT)}" for p in wanted} <= set(names)
    # the dev harness, the simulators, the demo, tests and benchmarks stay out
    leaked = [n for n in names if n.split("/")[0] not in ("pandajedi_wf",) and ".dist-info/" not in n]
    assert leaked == []
    assert not [n for n in names if any(part in n for part in ("devdb", "simulators", "demo", "pandajedi_wf_dev", "tests/", "benchmarks/"))]
    assert _dist_info(wheel, "top_level.txt").split() == ["pandajedi_wf"]
    entry_points = _dist_info(wheel, "entry_points.txt")
    assert "pandajedi-wf = pandajedi_wf.cli.main:main" in entry_points and "demo" not in entry_points


def test_requires_dist_is_what_the_code_imports_as_ranges(wheel):
    base, extras = _requirements(wheel)
    by_module = metadata.packages_distributions()  # import name -> distributions providing it, in this .venv
    declared = {canonicalize_name(r.name) for r in base}
    optional = {canonicalize_name(r.name) for r in extras.get("oracle", [])}
    imported = _imported_top_levels(wheel)
    assert imported, "no third-party import found: the scan is broken"
    unmet = {m: by_module.get(m) for m in imported if not {canonicalize_name(d) for d in by_module.get(m, [])} & (declared | optional)}
    assert unmet == {}, f"imported but not required: {unmet}"
    providers = {canonicalize_name(d) for m in imported for d in by_module.get(m, [])}
    assert declared <= providers, f"required but never imported: {sorted(declared - providers)}"
    assert optional == {"oracledb"}  # the Oracle backend only: pip install pandajedi_wf[oracle]
    for r in base + extras["oracle"]:
        operators = {spec.operator for spec in r.specifier}
        assert ">=" in operators and "<" in operators and "==" not in operators, f"{r}: a range, not a pin nor open-ended"
        tested = metadata.version(r.name)
        assert r.specifier.contains(tested), f"{r} does not admit {r.name} {tested}, the version the tests run with"


def _clean_env(pythonpath: list[str] = ()) -> dict[str, str]:
    """This process's environment (PANDA_HOME for upstream's config) without the harness's PYTHONPATH: the repository
    root on it would show pip and Python the source tree's pandajedi_wf (and its egg-info) instead of the wheel's."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return env | ({"PYTHONPATH": os.pathsep.join(pythonpath)} if pythonpath else {})


def _fresh_venv(tmp_path: Path, wheel: Path) -> Path:
    venv = tmp_path / "fresh"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120, env=_clean_env())  # no system site
    python = venv / "bin" / "python"
    run = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", str(wheel)],
                         capture_output=True, text=True, timeout=300, env=_clean_env(), cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return python


_PROBE = r"""
import importlib, json, pkgutil, sys
import pandajedi_wf, pandajedi_wf.schema_files as schema_files

out = {"package": pandajedi_wf.__file__, "imported": [], "missing": {}, "broken": {}}
for info in pkgutil.walk_packages(pandajedi_wf.__path__, "pandajedi_wf."):
    if info.name.endswith("__main__"):
        continue
    try:
        importlib.import_module(info.name)
        out["imported"].append(info.name)
    except ModuleNotFoundError as exc:
        out["missing"][info.name] = exc.name
    except Exception as exc:
        out["broken"][info.name] = repr(exc)
files = {b: [str(p) for p in schema_files.install_files(b) + schema_files.grant_files(b)] + [str(p) for _, _, p in schema_files.upgrade_files(b)]
         for b in schema_files.BACKENDS}
out["ddl"] = {b: [(p, open(p).read(40)) for p in paths] for b, paths in files.items()}
out["dev_loaded"] = sorted(m for m in sys.modules if m.startswith("pandajedi_wf_dev"))
print(json.dumps(out))
"""


def _probe(python: Path, tmp_path: Path, pythonpath: list[str]) -> dict:
    run = subprocess.run([str(python), "-c", _PROBE], cwd=tmp_path, env=_clean_env(pythonpath), capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_installed_alone_in_a_clean_venv_it_imports_only_what_it_declares(wheel, tmp_path):
    """Without its dependencies every module imports or stops at a declared one; with upstream beside it (this
    .venv's site-packages on PYTHONPATH, the wheel's own copy first on the path for pandajedi_wf) the JEDI plugins
    import from the installed files, and the DDL is read from there with importlib.resources."""
    from pandajedi_wf_dev.devdb.panda_home import upstream_paths

    python = _fresh_venv(tmp_path, wheel)
    site_packages = str(next((python.parent.parent / "lib").glob("python3*/site-packages")))
    base, _ = _requirements(wheel)
    by_module = metadata.packages_distributions()
    declared = {canonicalize_name(r.name) for r in base} | {"oracledb"}
    declared_modules = {m for m, dists in by_module.items() if {canonicalize_name(d) for d in dists} & declared}

    alone = _probe(python, tmp_path, [])
    assert alone["package"].startswith(site_packages)
    assert alone["broken"] == {} and alone["dev_loaded"] == []
    assert set(alone["missing"].values()) <= declared_modules, alone["missing"]
    assert {"pandajedi_wf.core.lifecycle", "pandajedi_wf.carousel.admission", "pandajedi_wf.control.plan", "pandajedi_wf.taskbuffer.connection",
            "pandajedi_wf.schema_files"} <= set(alone["imported"])  # the pure core and the lazy-importing modules need nothing
    for backend, files in alone["ddl"].items():
        assert files and all(path.startswith(site_packages) and text for path, text in files), backend

    with_upstream = _probe(python, tmp_path, upstream_paths() + [p for p in sys.path if p.endswith("site-packages")])
    assert with_upstream["package"].startswith(site_packages)
    assert with_upstream["broken"] == {} and with_upstream["dev_loaded"] == []
    assert {"pandajedi_wf.jedi_agents.workflow_watchdog", "pandajedi_wf.jedi_agents.carousel_watchdog"} <= set(with_upstream["imported"])
    assert set(with_upstream["missing"].values()) <= {"oracledb"} | declared_modules, with_upstream["missing"]
