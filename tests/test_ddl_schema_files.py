"""pandajedi_wf.schema_files: the one install order used by the harness, the demo and operators, from the package data."""

from __future__ import annotations

import pytest

from pandajedi_wf import schema_files


def test_postgres_install_order():
    names = [p.name for p in schema_files.postgres_files()]
    assert names == sorted(names)
    assert names[0] == "10_jedi_wf_workflows.sql" and names[-1] == "90_jedi_wf_schema_version.sql"
    assert schema_files.IDDS_VIEWS_FILE in names
    assert schema_files.IDDS_VIEWS_FILE not in [p.name for p in schema_files.postgres_files(with_idds_views=False)]


def test_backends_have_twin_files():
    assert [p.name for p in schema_files.oracle_files()] == [p.name for p in schema_files.postgres_files()]
    assert [p.name for p in schema_files.oracle_grant_files()] == [p.name for p in schema_files.postgres_grant_files()]


def test_grants_are_apart_from_the_install_files():
    grants = schema_files.postgres_grant_files()
    assert grants and all(p.parent.name == "grants" for p in grants)
    assert not set(grants) & set(schema_files.postgres_files())


def test_grant_file_says_who_runs_it():
    for path in schema_files.postgres_grant_files() + schema_files.oracle_grant_files():
        assert "WHO RUNS IT" in path.read_text()


def test_misnamed_file_is_refused(tmp_path, monkeypatch):
    (tmp_path / "postgres").mkdir()
    (tmp_path / "postgres" / "10_tables.sql").write_text("SELECT 1;")
    (tmp_path / "postgres" / "extra_views.sql").write_text("SELECT 1;")
    monkeypatch.setattr(schema_files, "SQL_ROOT", tmp_path)
    with pytest.raises(ValueError, match=r"not named NN_name\.sql: extra_views\.sql"):
        schema_files.postgres_files()


def test_empty_directory_is_refused(tmp_path, monkeypatch):
    (tmp_path / "oracle" / "grants").mkdir(parents=True)
    monkeypatch.setattr(schema_files, "SQL_ROOT", tmp_path)
    with pytest.raises(FileNotFoundError, match="no DDL files"):
        schema_files.oracle_files()
    with pytest.raises(FileNotFoundError, match="no grant files"):
        schema_files.oracle_grant_files()


def test_unknown_backend_is_refused():
    with pytest.raises(ValueError, match="unknown DDL backend 'mysql'"):
        schema_files.install_files("mysql")
