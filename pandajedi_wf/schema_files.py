"""Where our DDL lives and in which order it is installed.

The DDL ships inside the package, as package data: ``pandajedi_wf/sql/<backend>/`` (read with
``importlib.resources``), with ``sql/README.md`` beside it. The install order is the lexical order of
the ``NN_name.sql`` files there: the harness, the tests and operators (psql -f / sqlplus @) all read
it from here so that there is one order, not three. Grants on the iDDS tables sit apart in
``sql/<backend>/grants/`` because another account runs them (the iDDS owner), and they must run before
the iDDS views file. Upgrade scripts are in ``sql/<backend>/upgrades/``.

``python -m pandajedi_wf.schema_files`` prints the installed ``sql/`` directory (README.md in it);
``python -m pandajedi_wf.schema_files postgres|oracle`` the files in the order to run them.
"""

from __future__ import annotations

import re
import sys
from importlib import resources
from pathlib import Path

SQL_ROOT = resources.files(__package__) / "sql"
if not isinstance(SQL_ROOT, Path):  # pip installs files; psql -f and sqlplus @ need them, not a zip member
    raise ImportError(f"pandajedi_wf's DDL is not on the file system: {SQL_ROOT!r}")
BACKENDS = ("postgres", "oracle")

# Installed by the PanDA schema owner, in this order (the number fixes it).
_INSTALL_NAME = re.compile(r"^\d\d_[a-z0-9_]+\.sql$")
# The one file that reads the iDDS schema: it needs grants/ to have run first.
IDDS_VIEWS_FILE = "80_jedi_idds_views.sql"


def _backend_dir(backend: str) -> Path:
    if backend not in BACKENDS:
        raise ValueError(f"unknown DDL backend {backend!r}: expected one of {', '.join(BACKENDS)}")
    return SQL_ROOT / backend


def install_files(backend: str, with_idds_views: bool = True) -> list[Path]:
    """Our DDL for ``backend`` in install order (``NN_name.sql``, lexical).

    With ``with_idds_views=False`` the iDDS views are left out, for a database that has no iDDS
    schema. Raises if the directory holds a ``.sql`` file that breaks the naming convention, so a
    misnamed file is never silently skipped.
    """
    directory = _backend_dir(backend)
    files = sorted(p for p in directory.glob("*.sql"))
    misnamed = [p.name for p in files if not _INSTALL_NAME.match(p.name)]
    if misnamed:
        raise ValueError(f"{directory}: files not named NN_name.sql: {', '.join(misnamed)}")
    if not files:
        raise FileNotFoundError(f"{directory}: no DDL files found")
    if not with_idds_views:
        files = [p for p in files if p.name != IDDS_VIEWS_FILE]
    return files


def grant_files(backend: str) -> list[Path]:
    """Grants the iDDS schema owner runs so that the PanDA account can read iDDS tables."""
    files = sorted((_backend_dir(backend) / "grants").glob("*.sql"))
    if not files:
        raise FileNotFoundError(f"{_backend_dir(backend) / 'grants'}: no grant files found")
    return files


def postgres_files(with_idds_views: bool = True) -> list[Path]:
    """Postgres DDL for schema doma_panda, in install order; run as the doma_panda owner.

    The last-but-one file creates views over doma_idds: run :func:`postgres_grant_files` as the
    doma_idds owner before it (or pass ``with_idds_views=False``).
    """
    return install_files("postgres", with_idds_views)


def postgres_grant_files() -> list[Path]:
    """Postgres grants to run as the owner of doma_idds (role ``idds``) before the views."""
    return grant_files("postgres")


def oracle_files(with_idds_views: bool = True) -> list[Path]:
    """Oracle DDL for schema ATLAS_PANDA, in install order (sqlplus @file, as ATLAS_PANDA)."""
    return install_files("oracle", with_idds_views)


def oracle_grant_files() -> list[Path]:
    """Oracle grants to run as ATLAS_IDDS before the views."""
    return grant_files("oracle")


_UPGRADE_NAME = re.compile(r"^(\d+\.\d+\.\d+)_to_(\d+\.\d+\.\d+)\.sql$")


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def upgrade_files(backend: str) -> list[tuple[str, str, Path]]:
    """``(from, to, path)`` of each upgrade script in ``sql/<backend>/upgrades/``, oldest first.

    An operator runs, in this order, the scripts from the version in the installed JEDI_WF_SCHEMA_VERSION row on.
    A misnamed file is refused rather than skipped, like ``install_files``.
    """
    directory = _backend_dir(backend) / "upgrades"
    found = []
    for path in sorted(directory.glob("*.sql")):
        match = _UPGRADE_NAME.match(path.name)
        if match is None:
            raise ValueError(f"{directory}: {path.name} is not named <from>_to_<to>.sql (versions as 1.2.3)")
        found.append((match.group(1), match.group(2), path))
    return sorted(found, key=lambda item: _version_key(item[0]))


def schema_version(backend: str) -> str:
    """The version a fresh install of ``sql/<backend>/`` writes into JEDI_WF_SCHEMA_VERSION."""
    text = (_backend_dir(backend) / "90_jedi_wf_schema_version.sql").read_text()
    match = re.search(r"VALUES \('pandajedi_wf', '(\d+\.\d+\.\d+)'", text)
    if match is None:
        raise ValueError(f"{backend}: no pandajedi_wf version row in 90_jedi_wf_schema_version.sql")
    return match.group(1)


def main(argv: list[str] | None = None) -> int:
    """Print the ``sql/`` directory, or with a backend the files in the order to run them and as whom."""
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print(SQL_ROOT)
        return 0
    if len(args) != 1 or args[0] not in BACKENDS:
        print(f"usage: python -m pandajedi_wf.schema_files [{'|'.join(BACKENDS)}]", file=sys.stderr)
        return 2
    backend = args[0]
    owners = {"postgres": ("the doma_idds owner (role idds)", "the doma_panda owner (role panda)"),
              "oracle": ("ATLAS_IDDS", "ATLAS_PANDA")}[backend]
    print(f"# as {owners[0]}")
    for path in grant_files(backend):
        print(path)
    print(f"# as {owners[1]}, in this order")
    for path in install_files(backend):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
