"""README's Layout table names every package directory and top-level directory of the tree, and all it names exists."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _layout_paths() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]
    return [m.group(1).rstrip("/") for m in re.finditer(r"^\| `([^`]+)` \|", section, re.M)]


def _tracked_dirs() -> set[str]:
    """Directories holding files of the repository (git's list when there is one, else the work tree)."""
    try:
        files = subprocess.run(["git", "-C", str(ROOT), "ls-files"], capture_output=True, text=True, check=True).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        files = [str(p.relative_to(ROOT)) for p in ROOT.rglob("*") if p.is_file() and not any(part.startswith(".") for part in p.relative_to(ROOT).parts)]
    return {str(Path(f).parent) for f in files} | {str(p) for f in files for p in Path(f).parents} - {"."}


def test_every_listed_path_exists():
    paths = _layout_paths()
    assert len(paths) > 10
    assert [p for p in paths if not (ROOT / p).exists()] == []


def test_every_package_directory_and_top_level_directory_is_listed():
    listed = set(_layout_paths())
    dirs = {d for d in _tracked_dirs() if not d.startswith(".")}
    packages = {d for d in dirs if d.count("/") == 1 and d.split("/")[0] in ("pandajedi_wf", "pandajedi_wf_dev")}
    top_level = {d for d in dirs if "/" not in d} - {"pandajedi_wf", "pandajedi_wf_dev"}
    assert packages - listed == set()
    assert top_level - {p.split("/")[0] for p in listed} == set()
