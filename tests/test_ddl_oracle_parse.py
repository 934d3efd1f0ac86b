"""Every DDL file parses with a real SQL parser: sqlfluff's oracle and postgres dialects.

No Oracle server can run here, so the parser is the compiler check of the Oracle DDL. sqlfluff's
oracle dialect (4.5) lacks four things Oracle 19c accepts and our SQL uses; ``_oracle_dialect``
adds exactly these and nothing else:

* ``IS [NOT] JSON [(STRICT|LAX)]`` conditions, for ``CLOB CHECK (col IS JSON)``;
* expressions in a CREATE INDEX column list (function-based indexes);
* DEFINITION, which sqlfluff lists as reserved but Oracle does not (a column is named so);
* PARAMETERS, likewise (a column of upstream's ``workflows`` table, which our intake reads: the runtime statements
  of tests/test_taskbuffer_sql_contract.py are parsed with this dialect too).

The tests at the bottom prove the check still catches breakage, including inside the additions.
This module is also the parser used by tests/test_ddl_equivalence.py.

Upgrade scripts may hold more: the stock dialect parses a PL/SQL anonymous block (``begin_end_block``, its
statements included) and the sqlplus ``/`` that runs it, so an Oracle upgrade's block is parsed like the rest.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import pytest
from sqlfluff.core import FluffConfig, Linter
from sqlfluff.core.dialects import load_raw_dialect
from sqlfluff.core.parser import BaseSegment, Bracketed, OneOf, Ref, Sequence

from pandajedi_wf import schema_files
from pandajedi_wf_dev.devdb.dev_environment import IDDS_TEST_SCHEMA  # the iDDS-shaped schema the tests create

REPO = Path(__file__).resolve().parents[1]
SQLFLUFF_DIALECT = {"oracle": "oracle", "postgres": "postgres"}


class DDLParseError(AssertionError):
    """SQL that sqlfluff could not parse, with the line and the text it stopped at."""


class _IndexColumnOrExpression(BaseSegment):
    """A CREATE INDEX element: a column, or an expression (Oracle function-based index)."""

    type = "index_column_definition"
    match_grammar = Sequence(
        OneOf(Ref("SingleIdentifierGrammar"), Ref("ExpressionSegment")),
        OneOf("ASC", "DESC", optional=True),
    )


def _oracle_dialect():
    base = load_raw_dialect("oracle")
    dialect = base.copy_as("oracle_pandajedi_wf")
    dialect.sets("reserved_keywords").difference_update(["DEFINITION", "PARAMETERS"])
    dialect.sets("unreserved_keywords").update(["DEFINITION", "PARAMETERS", "STRICT", "LAX"])
    dialect.replace(
        IsClauseGrammar=OneOf(
            base.get_grammar("IsClauseGrammar"),
            Sequence("JSON", Bracketed(OneOf("STRICT", "LAX"), optional=True)),
        ),
        IndexColumnDefinitionSegment=_IndexColumnOrExpression,
    )
    return dialect.expand()


@lru_cache(maxsize=None)
def linter(backend: str) -> Linter:
    if backend not in SQLFLUFF_DIALECT:
        raise ValueError(f"unknown backend {backend!r}")
    config = FluffConfig(overrides={"dialect": SQLFLUFF_DIALECT[backend]})
    if backend == "oracle":
        # parse_string keeps this object; parse_path would reload the stock dialect from config.
        config._configs["core"]["dialect_obj"] = _oracle_dialect()
    return Linter(config=config)


def _parse(sql: str, backend: str) -> tuple[BaseSegment | None, list[str]]:
    parsed = linter(backend).parse_string(sql)
    problems = [f"line {v.line_no}: {v.desc()}" for v in parsed.violations]
    tree = parsed.parsed_variants[0].tree if parsed.parsed_variants else None
    if tree is None:
        return None, problems or ["no parse tree"]
    for segment in tree.recursive_crawl("unparsable"):
        text = " ".join(segment.raw.split())[:120]
        problems.append(f"line {segment.pos_marker.line_no}: unparsable {text!r}")
    return tree, problems


def parse_problems(sql: str, backend: str) -> list[str]:
    """Everything sqlfluff could not parse in ``sql``, as 'line N: text' strings (empty if clean)."""
    return _parse(sql, backend)[1]


def parse_sql(sql: str, backend: str, source: str = "<string>") -> BaseSegment:
    """The sqlfluff parse tree of ``sql``; raises DDLParseError naming ``source`` if any part fails."""
    tree, problems = _parse(sql, backend)
    if problems:
        raise DDLParseError(f"{source} ({backend}): " + "; ".join(problems))
    return tree


@lru_cache(maxsize=None)
def parse_file(path: Path, backend: str) -> BaseSegment:
    source = path.relative_to(REPO) if path.is_relative_to(REPO) else path
    return parse_sql(path.read_text(), backend, str(source))


def statements(tree: BaseSegment) -> list[BaseSegment]:
    """The top-level statements of a parsed file (the child of each ``statement`` wrapper)."""
    return [s.segments[0] for s in tree.recursive_crawl("statement", recurse_into=False)]


def ddl_files(backend: str) -> list[Path]:
    files = schema_files.install_files(backend) + schema_files.grant_files(backend)
    return files + ([IDDS_TEST_SCHEMA] if backend == "postgres" else [])


def _ids(files: list[Path]) -> list[str]:
    return [str(p.relative_to(REPO)) for p in files]


# --- every file parses -----------------------------------------------------------------------

@pytest.mark.parametrize("path", ddl_files("oracle"), ids=_ids(ddl_files("oracle")))
def test_oracle_file_parses(path):
    assert statements(parse_file(path, "oracle"))


@pytest.mark.parametrize("path", ddl_files("postgres"), ids=_ids(ddl_files("postgres")))
def test_postgres_file_parses(path):
    assert statements(parse_file(path, "postgres"))


# --- only the statements an install script should hold, runnable by sqlplus / psql / psycopg2 --

ALLOWED_STATEMENTS = {
    "oracle": {"create_table_statement", "create_sequence_statement", "create_index_statement",
               "create_view_statement", "insert_statement", "access_statement", "transaction_statement"},
    "postgres": {"create_table_statement", "create_sequence_statement", "create_index_statement",
                 "create_view_statement", "insert_statement", "access_statement"},
}


@pytest.mark.parametrize("backend", ["oracle", "postgres"])
def test_files_hold_only_install_statements(backend):
    for path in ddl_files(backend):
        kinds = {s.get_type() for s in statements(parse_file(path, backend))}
        assert kinds <= ALLOWED_STATEMENTS[backend], f"{path.name}: unexpected {kinds - ALLOWED_STATEMENTS[backend]}"


@pytest.mark.parametrize("backend", ["oracle", "postgres"])
def test_every_statement_is_terminated(backend):
    """sqlplus runs a statement only at its ';'. psql and psycopg2 need them between statements."""
    for path in ddl_files(backend):
        tree = parse_file(path, backend)
        n_statements = len(statements(tree))
        n_terminators = len(list(tree.recursive_crawl("statement_terminator")))
        assert n_terminators == n_statements, f"{path.name}: {n_statements} statements, {n_terminators} ';'"


def test_oracle_inserts_are_committed():
    """DDL commits by itself in Oracle, an INSERT does not: sqlplus would leave the row uncommitted."""
    for path in ddl_files("oracle"):
        kinds = [(s.get_type(), s.raw.upper()) for s in statements(parse_file(path, "oracle"))]
        assert all(raw == "COMMIT" for kind, raw in kinds if kind == "transaction_statement"), path.name
        if any(kind == "insert_statement" for kind, _ in kinds):
            assert kinds[-1] == ("transaction_statement", "COMMIT"), f"{path.name}: INSERT without a final COMMIT"


def test_oracle_files_are_sqlplus_safe():
    """sqlplus ends a statement at a blank line (SQLBLANKLINES OFF), prompts on '&', and may
    take a ';' ending a comment line as the end of a statement."""
    for path in ddl_files("oracle") + [path for _, _, path in schema_files.upgrade_files("oracle")]:
        for statement in statements(parse_file(path, "oracle")):
            assert not re.search(r"\n[ \t]*\n", statement.raw), f"{path.name}: blank line inside {statement.raw[:60]!r}"
        text = path.read_text()
        assert "&" not in text, f"{path.name}: '&' would prompt for a substitution variable"
        for n, line in enumerate(text.splitlines(), 1):
            if line.lstrip().startswith("--"):
                assert ";" not in line, f"{path.name}:{n}: ';' inside a comment"


def test_postgres_files_have_no_psql_meta_commands():
    """psycopg2 runs each file as one string: no backslash commands, no transaction control."""
    for path in ddl_files("postgres"):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            assert not line.lstrip().startswith("\\"), f"{path.name}:{n}: psql meta-command"


# --- the check catches breakage --------------------------------------------------------------

GOOD_AND_BROKEN = {
    "oracle": [
        ("CREATE TABLE ATLAS_PANDA.T (a NUMBER(11) NOT NULL, b CLOB CHECK (b IS JSON));",
         "CREATE TABLE ATLAS_PANDA.T (a NUMBER(11) NOT NULL b CLOB CHECK (b IS JSON));"),
        ("CREATE TABLE ATLAS_PANDA.T (b CLOB CHECK (b IS JSON));",
         "CREATE TABLE ATLAS_PANDA.T (b CLOB CHECK (b IS JSONB));"),
        ("CREATE TABLE ATLAS_PANDA.T (b CLOB CHECK (b IS NOT JSON (STRICT)));",
         "CREATE TABLE ATLAS_PANDA.T (b CLOB CHECK (b IS JSON (STRICTLY)));"),
        ("CREATE UNIQUE INDEX ATLAS_PANDA.I ON ATLAS_PANDA.T (CASE WHEN s IN ('a', 'b') THEN d END);",
         "CREATE UNIQUE INDEX ATLAS_PANDA.I ON ATLAS_PANDA.T (CASE WHEN s IN ('a', 'b') THEN d);"),
        ("CREATE INDEX ATLAS_PANDA.I ON ATLAS_PANDA.T (a, b);",
         "CREATE INDEX ATLAS_PANDA.I ON ATLAS_PANDA.T (a b c);"),
        ("CREATE SEQUENCE ATLAS_PANDA.S START WITH 1 INCREMENT BY 1 CACHE 100 NOCYCLE;",
         "CREATE SEQUENCE ATLAS_PANDA.S START 1 INCREMENT 1 CACHE;"),
        ("GRANT SELECT ON ATLAS_IDDS.REQUESTS TO ATLAS_PANDA;",
         "GRANT SELECT ATLAS_IDDS.REQUESTS TO ATLAS_PANDA;"),
        ("CREATE OR REPLACE VIEW ATLAS_PANDA.V (a, b) AS SELECT a, b FROM ATLAS_IDDS.T;",
         "CREATE OR REPLACE VIEW ATLAS_PANDA.V (a, b AS SELECT a, b FROM ATLAS_IDDS.T;"),
    ],
    "postgres": [
        ("CREATE TABLE doma_panda.t (a BIGINT NOT NULL, b JSONB);",
         "CREATE TABLE doma_panda.t (a BIGINT NOT NULL, b JSONB;"),
        ("CREATE UNIQUE INDEX i ON doma_panda.t (d) WHERE s IN ('a', 'b');",
         "CREATE UNIQUE INDEX i ON doma_panda.t (d) WHERE s IN ('a', 'b';"),
        ("GRANT USAGE ON SCHEMA doma_idds TO panda;",
         "GRANT USAGE ON SCHEMA TO panda;"),
        ("CREATE TABLE doma_idds.c_default PARTITION OF doma_idds.c DEFAULT;",
         "CREATE TABLE doma_idds.c_default PARTITION doma_idds.c DEFAULT;"),
    ],
}


@pytest.mark.parametrize("backend,good,broken",
                         [(b, g, x) for b, pairs in GOOD_AND_BROKEN.items() for g, x in pairs])
def test_broken_statement_is_caught(backend, good, broken):
    assert parse_problems(good, backend) == []
    problems = parse_problems(broken, backend)
    assert problems
    with pytest.raises(DDLParseError, match=r"line 1"):
        parse_sql(broken, backend)


def test_broken_line_is_located_in_a_long_file():
    text = (schema_files.SQL_ROOT / "oracle" / "10_jedi_wf_workflows.sql").read_text()
    broken = text.replace("name                 VARCHAR2(256),", "name                 VARCHAR2(256)", 1)
    assert broken != text
    problems = parse_problems(broken, "oracle")
    assert problems and any("unparsable" in p for p in problems)


def test_unknown_backend_is_refused():
    with pytest.raises(ValueError, match="unknown backend 'mysql'"):
        parse_problems("SELECT 1;", "mysql")


# --- upgrade scripts ---------------------------------------------------------------------------

# What an upgrade step may be: DDL, the version row's UPDATE (and its COMMIT on Oracle), and moving a sequence,
# which Oracle does in a PL/SQL block and PostgreSQL with SELECT setval(...). What each does is read and compared
# by tests/test_ddl_equivalence.py (upgrade_actions), which refuses anything else inside them.
UPGRADE_STATEMENTS = {
    "oracle": {"drop_index_statement", "alter_table_statement", "drop_sequence_statement", "update_statement",
               "transaction_statement", "begin_end_block", "create_index_statement", "create_table_statement"},
    "postgres": {"drop_index_statement", "alter_table_statement", "drop_sequence_statement", "update_statement",
                 "select_statement", "create_index_statement", "create_table_statement"},
}


def top_level_terminators(tree: BaseSegment) -> list[BaseSegment]:
    """The ';' ending top-level statements (not those inside a PL/SQL block, which end its own statements)."""
    return list(tree.recursive_crawl("statement_terminator", no_recursive_seg_type="begin_end_block"))


def plsql_blocks_without_slash(tree: BaseSegment) -> list[str]:
    """PL/SQL blocks not followed by a '/' line: sqlplus would read the statements after them into the block."""
    missing = []
    for batch in tree.recursive_crawl("batch", recurse_into=False):
        code = [s for s in batch.segments if s.is_code]
        for n, segment in enumerate(code):
            if segment.is_type("statement") and segment.segments[0].is_type("begin_end_block"):
                following = [s.get_type() for s in code[n + 1:n + 3]]
                if following != ["statement_terminator", "slash_buffer_executor"]:
                    missing.append(f"line {segment.pos_marker.line_no}: {' '.join(segment.raw.split())[:40]!r}")
    return missing


@pytest.mark.parametrize("backend", ["oracle", "postgres"])
def test_upgrade_scripts_parse_and_every_statement_is_terminated(backend):
    for _, _, path in schema_files.upgrade_files(backend):
        tree = parse_file(path, backend)
        kinds = [s.get_type() for s in statements(tree)]
        assert kinds and set(kinds) <= UPGRADE_STATEMENTS[backend], f"{path.name}: {kinds}"
        assert len(top_level_terminators(tree)) == len(kinds), path.name
        assert plsql_blocks_without_slash(tree) == [], path.name
        if backend == "oracle":  # the version row's UPDATE is committed (DDL commits itself, DML does not)
            assert kinds[-1] == "transaction_statement", path.name


ORACLE_BLOCK = """DECLARE
    v_n NUMBER;
BEGIN
    SELECT NVL(MAX(x_id), 0) INTO v_n FROM ATLAS_PANDA.T;
    IF v_n > 0 THEN
        EXECUTE IMMEDIATE 'ALTER SEQUENCE ATLAS_PANDA.S INCREMENT BY ' || TO_CHAR(v_n);
    END IF;
END;
/
DROP SEQUENCE ATLAS_PANDA.S2;
"""


@pytest.mark.parametrize("old,new", [
    ("v_n NUMBER;", "v_n NUMBER"),
    ("    END IF;\n", ""),
    ("INTO v_n FROM", "INTO v_n FROM FROM"),
])
def test_broken_plsql_block_is_caught(old, new):
    assert parse_problems(ORACLE_BLOCK, "oracle") == []
    assert old in ORACLE_BLOCK
    assert parse_problems(ORACLE_BLOCK.replace(old, new), "oracle")


def test_plsql_block_without_slash_is_caught():
    tree = parse_sql(ORACLE_BLOCK, "oracle")
    assert plsql_blocks_without_slash(tree) == [] and len(top_level_terminators(tree)) == len(statements(tree)) == 2
    assert plsql_blocks_without_slash(parse_sql(ORACLE_BLOCK.replace("END;\n/\n", "END;\n"), "oracle"))


def test_misnamed_upgrade_script_is_refused(tmp_path, monkeypatch):
    (tmp_path / "postgres" / "upgrades").mkdir(parents=True)
    (tmp_path / "postgres" / "upgrades" / "to_1.2.sql").write_text("SELECT 1;")
    monkeypatch.setattr(schema_files, "SQL_ROOT", tmp_path)
    with pytest.raises(ValueError, match="not named <from>_to_<to>.sql"):
        schema_files.upgrade_files("postgres")
