"""The Oracle and the Postgres DDL describe the same schema.

Both DDL sets are parsed by sqlfluff (the parser of tests/test_ddl_oracle_parse.py), reduced to a
catalog read off the parse trees (tables, columns with normalized types, nullability and defaults,
keys, checks, indexes, sequences, views, grants) and compared. Types are mapped to one vocabulary:

    Oracle                     Postgres            normalized
    NUMBER(1..4)               SMALLINT            smallint
    NUMBER(5..9)               INTEGER             integer
    NUMBER(10..20)             BIGINT              bigint   (BIGINT's 9.2e18 bounds both in practice)
    VARCHAR2(n)                VARCHAR(n)          varchar(n)
    CLOB CHECK (c IS JSON)     JSONB               json
    TIMESTAMP                  TIMESTAMP           timestamp
    BINARY_DOUBLE              DOUBLE PRECISION    double

Anything else is refused, so a new type forces a decision here rather than a silent mismatch.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pandajedi_wf import schema_files

HERE = Path(__file__).resolve().parent


def _parser_module():
    """tests/test_ddl_oracle_parse.py, the module pytest already imported if it did (shared parse cache)."""
    path = HERE / "test_ddl_oracle_parse.py"
    for module in list(sys.modules.values()):
        if getattr(module, "__file__", None) and Path(module.__file__).resolve() == path:
            return module
    spec = importlib.util.spec_from_file_location("pandajedi_wf_ddl_parser", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


ddl_parser = _parser_module()

OUR_SCHEMA = {"oracle": "atlas_panda", "postgres": "doma_panda"}
IDDS_SCHEMA = {"oracle": "atlas_idds", "postgres": "doma_idds"}
PANDA_GRANTEE = {"oracle": "atlas_panda", "postgres": "panda"}

# FIELD_GUIDE §4: objects upstream PanDA already ships.
UPSTREAM_NAMES = {
    "workflows", "workflow_steps", "workflow_data", "workflow_id_seq", "workflow_step_id_seq",
    "workflow_data_id_seq", "data_carousel_requests", "data_carousel_relations",
    "jedi_data_carousel_request_id_seq",
}
UPSTREAM_PREFIXES = ("data_carousel_", "workflow_")
OUR_PREFIXES = ("jedi_wf_", "jedi_dc_", "jedi_idds_")
ORACLE_MAX_IDENTIFIER = 30  # Oracle before 12.2, and the PanDA DBAs' habit

# The names the rest of the code base uses (taskbuffer SQL); renaming one is a breaking change.
EXPECTED_TABLES = {
    "jedi_wf_schema_version", "jedi_wf_workflows", "jedi_wf_steps", "jedi_wf_data", "jedi_wf_commands",
    "jedi_wf_transitions", "jedi_wf_agent_heartbeats", "jedi_dc_requests", "jedi_dc_relations", "jedi_dc_prestages",
    "jedi_dc_tape_stats",
}
# Workflow ids come from upstream's workflow_id_seq (one id space with the PanDA server's pchain_native ids).
EXPECTED_SEQUENCES = {
    "jedi_wf_step_id_seq", "jedi_wf_data_id_seq", "jedi_wf_command_id_seq", "jedi_wf_transition_id_seq",
    "jedi_dc_request_id_seq",
}
WORKFLOW_ID_SOURCE = ("workflow_id_seq", "jedi_wf_workflows", "workflow_id")  # (upstream sequence, our table, column)
EXPECTED_VIEWS = {
    "jedi_idds_requests_v", "jedi_idds_transforms_v", "jedi_idds_processings_v", "jedi_idds_collections_v",
    "jedi_idds_contents_v",
}


class UnsupportedDDL(ValueError):
    """DDL this catalog does not know how to compare; the message says where."""


# --- types --------------------------------------------------------------------------------------

def oracle_type(name: str, args: list[int], where: str) -> str:
    if name == "NUMBER" and len(args) in (1, 2) and (len(args) == 1 or args[1] == 0):
        precision = args[0]
        for bound, kind in ((4, "smallint"), (9, "integer"), (20, "bigint")):
            if precision <= bound:
                return kind
    simple = {"VARCHAR2": "varchar", "CHAR": "char"}
    if name in simple and len(args) == 1:
        return f"{simple[name]}({args[0]})"
    if name in ("TIMESTAMP", "TIMESTAMP(6)") and args in ([], [6]):
        return "timestamp"
    if name in ("CLOB", "BINARY_DOUBLE") and not args:
        return {"CLOB": "clob", "BINARY_DOUBLE": "double"}[name]
    raise UnsupportedDDL(f"{where}: Oracle type {name}{tuple(args) if args else ''} has no agreed Postgres twin")


def postgres_type(name: str, args: list[int], where: str) -> str:
    fixed = {"SMALLINT": "smallint", "INTEGER": "integer", "INT": "integer", "BIGINT": "bigint",
             "JSONB": "json", "DOUBLE PRECISION": "double", "TEXT": "text"}
    if name in fixed and not args:
        return fixed[name]
    if name in ("VARCHAR", "CHARACTER VARYING") and len(args) == 1:
        return f"varchar({args[0]})"
    if name == "CHAR" and len(args) == 1:
        return f"char({args[0]})"
    if name in ("TIMESTAMP", "TIMESTAMP WITHOUT TIME ZONE") and args in ([], [6]):
        return "timestamp"
    raise UnsupportedDDL(f"{where}: Postgres type {name}{tuple(args) if args else ''} has no agreed Oracle twin")


TYPE_MAPPERS = {"oracle": oracle_type, "postgres": postgres_type}


# --- catalog --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Column:
    type: str
    nullable: bool
    default: str | None


@dataclass
class Table:
    columns: dict[str, Column] = field(default_factory=dict)
    primary_key: tuple[str, tuple[str, ...]] | None = None
    unique: dict[str, tuple[str, ...]] = field(default_factory=dict)
    foreign_keys: dict[str, tuple[tuple[str, ...], str, tuple[str, ...]]] = field(default_factory=dict)
    checks: dict[str, str] = field(default_factory=dict)
    free_space: int | None = None  # % of each block kept free: Postgres 100 - fillfactor, Oracle PCTFREE (None: default)


@dataclass(frozen=True)
class Index:
    table: str
    unique: bool
    columns: tuple[str, ...]
    where: str | None


@dataclass(frozen=True)
class View:
    columns: tuple[str, ...]
    source: tuple[str, str]
    selected: tuple[str, ...]


@dataclass
class Catalog:
    backend: str
    schemas: set[str] = field(default_factory=set)
    tables: dict[str, Table] = field(default_factory=dict)
    indexes: dict[str, Index] = field(default_factory=dict)
    sequences: dict[str, tuple[int, int]] = field(default_factory=dict)
    views: dict[str, View] = field(default_factory=dict)
    grants: set[tuple[str, str, str]] = field(default_factory=set)
    rows: dict[str, list[tuple[str, ...]]] = field(default_factory=dict)

    def names(self) -> set[str]:
        """Every name this DDL creates: tables, columns, constraints, indexes, sequences, views."""
        found = set(self.tables) | set(self.indexes) | set(self.sequences) | set(self.views)
        for table in self.tables.values():
            found |= set(table.columns) | set(table.unique) | set(table.foreign_keys) | set(table.checks)
            if table.primary_key:
                found.add(table.primary_key[0])
        return found


def _identifier(segment) -> str:
    raw = segment.raw
    if raw.startswith('"'):
        return raw.strip('"')
    return raw.lower()


def _qualified(reference) -> tuple[str | None, str]:
    parts = [_identifier(s) for s in reference.segments if s.is_type("naked_identifier", "quoted_identifier")]
    return (parts[0], parts[1]) if len(parts) == 2 else (None, parts[0])


def _child(segment, *types):
    return next((s for s in segment.segments if s.is_type(*types)), None)


def _children(segment, *types):
    return [s for s in segment.segments if s.is_type(*types)]


def _keywords(segment) -> list[str]:
    return [s.raw.upper() for s in segment.segments if s.is_type("keyword")]


def _column_list(bracketed) -> tuple[str, ...]:
    return tuple(_identifier(_child(c, "naked_identifier", "quoted_identifier"))
                 for c in bracketed.recursive_crawl("column_reference", recurse_into=False))


def _literal(segment) -> str:
    """A quoted literal's text, else '<expression>' (computed values differ between dialects)."""
    code = [s for s in segment.raw_segments if s.is_code]
    return code[0].raw if len(code) == 1 and code[0].is_type("quoted_literal") else "<expression>"


def expression_text(segment) -> str:
    """An expression as comparable text: code tokens only, identifiers and keywords lower case."""
    tokens = []
    for raw in segment.raw_segments:
        if raw.is_type("whitespace", "newline", "comment", "indent", "dedent") or raw.is_meta:
            continue
        tokens.append(raw.raw if raw.is_type("quoted_literal") else raw.raw.lower())
    return " ".join(tokens)


class CatalogBuilder:
    """Reads one backend's parse trees into a Catalog; refuses what it does not understand."""

    def __init__(self, backend: str):
        self.catalog = Catalog(backend)
        self.backend = backend

    def add_file(self, path: Path) -> None:
        tree = ddl_parser.parse_file(path, self.backend)
        for statement in ddl_parser.statements(tree):
            handler = getattr(self, "_" + statement.get_type(), None)
            if handler is None:
                raise UnsupportedDDL(f"{path.name}: no catalog rule for {statement.get_type()}")
            handler(statement, path.name)

    def _name(self, reference) -> str:
        schema, name = _qualified(reference)
        if schema is not None:
            self.catalog.schemas.add(schema)
        return name

    def _create_table_statement(self, statement, where):
        name = self._name(_child(statement, "table_reference"))
        body = _child(statement, "bracketed")
        if body is None:  # CREATE TABLE ... PARTITION OF parent DEFAULT
            return
        table = self.catalog.tables.setdefault(name, Table())
        json_checked = set()
        for item in body.segments:
            if item.is_type("column_definition"):
                json_checked |= self._column(table, item, f"{where}: {name}")
            elif item.is_type("table_constraint"):
                self._table_constraint(table, item, f"{where}: {name}")
        table.free_space = _free_space(statement)
        for column in json_checked:
            if table.columns[column].type != "clob":
                raise UnsupportedDDL(f"{where}: {name}.{column}: IS JSON check on a non-CLOB column")
            table.columns[column] = Column("json", table.columns[column].nullable, table.columns[column].default)

    def _column(self, table: Table, definition, where) -> set[str]:
        """A column definition (CREATE TABLE, Oracle's ALTER TABLE ... ADD (...)) or PostgreSQL's
        ``ADD COLUMN`` action, whose name sits in a column reference."""
        name = _child(definition, "naked_identifier", "quoted_identifier") or _child(_child(definition, "column_reference"), "naked_identifier", "quoted_identifier")
        column = _identifier(name)
        data_type = _child(definition, "data_type")
        args = [int(n.raw) for n in data_type.recursive_crawl("numeric_literal")]
        type_name = " ".join(re.sub(r"\(.*\)", " ", data_type.raw).upper().split())
        kind = TYPE_MAPPERS[self.backend](type_name, args, f"{where}.{column}")
        nullable, default, json_checked = True, None, set()
        for constraint in _children(definition, "column_constraint_segment"):
            words = _keywords(constraint)
            if words[:2] == ["NOT", "NULL"]:
                nullable = False
            elif words[:1] == ["DEFAULT"]:
                default = expression_text(constraint)[len("default "):]
            elif words[:1] == ["CHECK"]:
                check = expression_text(_child(constraint, "bracketed"))
                if check not in (f"( {column} is json )", f"( {column} is json ( strict ) )"):
                    raise UnsupportedDDL(f"{where}.{column}: inline CHECK other than IS JSON: {check}")
                json_checked.add(column)
            else:
                raise UnsupportedDDL(f"{where}.{column}: no catalog rule for {constraint.raw!r}")
        if column in table.columns:
            raise UnsupportedDDL(f"{where}: column {column} defined twice")
        table.columns[column] = Column(kind, nullable, default)
        return json_checked

    def _table_constraint(self, table: Table, constraint, where):
        name = _identifier(_child(_child(constraint, "object_reference"), "naked_identifier", "quoted_identifier"))
        words = _keywords(constraint)
        brackets = _children(constraint, "bracketed")
        if "PRIMARY" in words:
            table.primary_key = (name, _column_list(brackets[0]))
        elif "UNIQUE" in words:
            table.unique[name] = _column_list(brackets[0])
        elif "FOREIGN" in words:
            target = self._name(_child(constraint, "table_reference"))
            table.foreign_keys[name] = (_column_list(brackets[0]), target, _column_list(brackets[1]))
        elif "CHECK" in words:
            table.checks[name] = expression_text(brackets[0])
        else:
            raise UnsupportedDDL(f"{where}: no catalog rule for constraint {constraint.raw!r}")

    def _create_index_statement(self, statement, where):
        name = self._name(_child(statement, "index_reference"))
        table = self._name(_child(statement, "table_reference"))
        columns, conditions = [], set()
        for element in _child(statement, "bracketed").segments:
            if not element.is_type("index_element", "index_column_definition"):
                continue
            case = next(iter(element.recursive_crawl("case_expression")), None)
            if case is None:
                columns.append(_identifier(next(element.recursive_crawl("naked_identifier"))))
                continue
            # Oracle's partial index: CASE WHEN <condition> THEN <column> END, one WHEN, no ELSE.
            whens = _children(case, "when_clause")
            if len(whens) != 1 or _child(case, "else_clause") is not None:
                raise UnsupportedDDL(f"{where}: {name}: only CASE WHEN cond THEN column END is understood")
            condition, value = _children(whens[0], "expression")
            columns.append(_identifier(next(value.recursive_crawl("naked_identifier"))))
            conditions.add(expression_text(condition))
        where_clause = _child(statement, "expression")  # Postgres: ... WHERE <expression>
        if where_clause is not None:
            conditions.add(expression_text(where_clause))
        if len(conditions) > 1:
            raise UnsupportedDDL(f"{where}: {name}: index elements with different conditions")
        self.catalog.indexes[name] = Index(table, "UNIQUE" in _keywords(statement), tuple(columns),
                                           conditions.pop() if conditions else None)

    def _create_sequence_statement(self, statement, where):
        name = self._name(_child(statement, "sequence_reference"))
        options = {}
        for option in _children(statement, "create_sequence_options_segment"):
            words = _keywords(option)
            number = _child(option, "numeric_literal")
            if words[:1] in (["START"], ["INCREMENT"]):
                options[words[0]] = int(number.raw)
        self.catalog.sequences[name] = (options.get("START", 1), options.get("INCREMENT", 1))

    def _create_view_statement(self, statement, where):
        name = self._name(_child(statement, "table_reference"))
        columns = _column_list(_child(statement, "bracketed"))
        select = _child(statement, "select_statement")
        selected = tuple(_identifier(_child(_child(e, "column_reference"), "naked_identifier"))
                         for e in select.recursive_crawl("select_clause_element"))
        sources = [_qualified(t) for t in _child(select, "from_clause").recursive_crawl("table_reference")]
        self.catalog.schemas |= {schema for schema, _ in sources if schema}
        if len(sources) != 1 or len(columns) != len(selected):
            raise UnsupportedDDL(f"{where}: {name}: expected one source table and one name per selected column")
        self.catalog.views[name] = View(columns, sources[0], selected)

    def _access_statement(self, statement, where):
        grant = _child(statement, "grant_statement")
        if grant is None:
            raise UnsupportedDDL(f"{where}: only GRANT is expected")
        privileges = tuple(p.raw.lower() for p in grant.recursive_crawl("access_permission"))
        grantee = _identifier(next(_child(grant, "access_target").recursive_crawl("naked_identifier")))
        scope = _child(grant, "access_object") or grant
        is_schema = "SCHEMA" in _keywords(scope)
        for reference in _children(scope, "object_reference"):
            schema, name = _qualified(reference)
            target = f"schema {name}" if is_schema else f"{schema}.{name}"
            for privilege in privileges:
                self.catalog.grants.add((privilege, target, grantee))

    def _insert_statement(self, statement, where):
        table = self._name(_child(statement, "table_reference"))
        row = _child(_child(statement, "values_clause"), "bracketed")
        values = tuple(_literal(v) for v in row.segments
                       if v.is_code and not v.is_type("start_bracket", "end_bracket", "comma"))
        self.catalog.rows.setdefault(table, []).append(values)

    def _transaction_statement(self, statement, where):
        if statement.raw.upper() != "COMMIT":
            raise UnsupportedDDL(f"{where}: only COMMIT is expected, not {statement.raw!r}")


def _free_space(statement) -> int | None:
    """The block free space a CREATE/ALTER TABLE asks for: ``WITH (fillfactor = n)`` or ``SET (fillfactor = n)``
    (Postgres, 100 - n) or ``PCTFREE n`` (Oracle, n); anything else in those clauses is refused."""
    raw = " ".join(" ".join(s.raw.split()) for s in statement.segments if s.is_type("relation_options", "oracle_physical_attributes",
                                                                                  "alter_table_action_segment", "parameter", "numeric_literal"))
    if not raw:
        return None
    match = re.fullmatch(r"(?:SET )?\(fillfactor = (\d+)\)|PCTFREE (\d+)", raw, flags=re.IGNORECASE)
    if match is None:
        raise UnsupportedDDL(f"table storage option not understood: {raw!r}")
    return 100 - int(match.group(1)) if match.group(1) else int(match.group(2))


def _added_columns(statement, backend: str, where: str) -> dict[str, Column]:
    """The columns an ``ALTER TABLE ... ADD`` adds: PostgreSQL ``ADD COLUMN c type ...`` actions, Oracle
    ``ADD (c type ..., ...)``; {} for any other ALTER TABLE."""
    scratch = Table()
    builder = CatalogBuilder(backend)
    if backend == "postgres":
        for action in _children(statement, "alter_table_action_segment"):
            if _keywords(action)[:1] == ["ADD"]:
                if builder._column(scratch, action, where):
                    raise UnsupportedDDL(f"{where}: IS JSON check on an added column")
    else:
        for clause in _children(statement, "alter_table_column_clauses"):
            if _keywords(clause)[:1] == ["ADD"]:
                for definition in clause.recursive_crawl("column_definition"):
                    for column in builder._column(scratch, definition, where):  # CLOB CHECK (c IS JSON) is json
                        scratch.columns[column] = Column("json", scratch.columns[column].nullable, scratch.columns[column].default)
    return scratch.columns


def build_catalog(backend: str, files: list[Path]) -> Catalog:
    builder = CatalogBuilder(backend)
    for path in files:
        builder.add_file(path)
    return builder.catalog


def catalog_from_text(backend: str, sql: str) -> Catalog:
    """A catalog of SQL text (for the tests that prove the comparison catches differences)."""
    builder = CatalogBuilder(backend)
    tree = ddl_parser.parse_sql(sql, backend)
    for statement in ddl_parser.statements(tree):
        getattr(builder, "_" + statement.get_type())(statement, "<text>")
    return builder.catalog


def differences(oracle: Catalog, postgres: Catalog) -> list[str]:
    """Every way the two catalogs disagree, as readable lines (empty when they describe one schema)."""
    found = []

    def compare(what, left, right):
        if left != right:
            found.append(f"{what}: oracle {left!r} != postgres {right!r}")

    compare("tables", sorted(oracle.tables), sorted(postgres.tables))
    for name in sorted(set(oracle.tables) & set(postgres.tables)):
        ora, pg = oracle.tables[name], postgres.tables[name]
        compare(f"{name} column order", list(ora.columns), list(pg.columns))
        for column in sorted(set(ora.columns) & set(pg.columns)):
            compare(f"{name}.{column}", ora.columns[column], pg.columns[column])
        compare(f"{name} primary key", ora.primary_key, pg.primary_key)
        compare(f"{name} unique keys", ora.unique, pg.unique)
        compare(f"{name} foreign keys", ora.foreign_keys, pg.foreign_keys)
        compare(f"{name} checks", ora.checks, pg.checks)
        compare(f"{name} free space", ora.free_space, pg.free_space)
    for what, left, right in (
        ("index", oracle.indexes, postgres.indexes),
        ("sequence", oracle.sequences, postgres.sequences),
        ("view", {n: (v.columns, v.source[1], v.selected) for n, v in oracle.views.items()},
         {n: (v.columns, v.source[1], v.selected) for n, v in postgres.views.items()}),
    ):
        compare(f"{what} names", sorted(left), sorted(right))
        for name in sorted(set(left) & set(right)):
            compare(f"{what} {name}", left[name], right[name])
    compare("version rows", oracle.rows, postgres.rows)
    return found


# --- fixtures ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def catalogs() -> dict[str, Catalog]:
    return {b: build_catalog(b, schema_files.install_files(b)) for b in ("oracle", "postgres")}


@pytest.fixture(scope="module")
def grant_catalogs() -> dict[str, Catalog]:
    return {b: build_catalog(b, schema_files.grant_files(b)) for b in ("oracle", "postgres")}


# --- the two DDL sets agree ------------------------------------------------------------------

def test_oracle_and_postgres_describe_the_same_schema(catalogs):
    assert differences(catalogs["oracle"], catalogs["postgres"]) == []


@pytest.mark.parametrize("backend", ["oracle", "postgres"])
def test_expected_objects_exist(catalogs, backend):
    catalog = catalogs[backend]
    assert set(catalog.tables) == EXPECTED_TABLES
    assert set(catalog.sequences) == EXPECTED_SEQUENCES
    assert set(catalog.views) == EXPECTED_VIEWS
    assert catalog.rows == {"jedi_wf_schema_version": [("'pandajedi_wf'", "'1.4.0'", "<expression>")]}


@pytest.mark.parametrize("backend", ["oracle", "postgres"])
def test_objects_live_in_our_schema_and_views_read_idds(catalogs, backend):
    catalog = catalogs[backend]
    assert catalog.schemas == {OUR_SCHEMA[backend], IDDS_SCHEMA[backend]}
    assert {v.source[0] for v in catalog.views.values()} == {IDDS_SCHEMA[backend]}


@pytest.mark.parametrize("backend", ["oracle", "postgres"])
def test_every_table_has_a_primary_key_and_indexed_foreign_keys(catalogs, backend):
    """Oracle locks the whole child table on a parent delete when the FK columns lead no index."""
    catalog = catalogs[backend]
    for name, table in catalog.tables.items():
        assert table.primary_key, f"{name} has no primary key"
        leading = [table.primary_key[1], *table.unique.values()]
        leading += [i.columns for i in catalog.indexes.values() if i.table == name and i.where is None]
        for fk, (columns, _, _) in table.foreign_keys.items():
            assert any(key[:len(columns)] == columns for key in leading), f"{name}.{fk}: {columns} not indexed"


def test_transition_history_has_no_foreign_key(catalogs):
    assert catalogs["oracle"].tables["jedi_wf_transitions"].foreign_keys == {}


def test_one_live_staging_request_per_dataset(catalogs):
    """The partial unique index covers exactly the non-final states of the carousel lifecycle."""
    from pandajedi_wf.carousel.lifecycle import STAGING_REQUEST

    live = set(STAGING_REQUEST.states) - STAGING_REQUEST.final
    for catalog in catalogs.values():
        index = catalog.indexes["jedi_dc_requests_active_uk"]
        assert (index.table, index.unique, index.columns) == ("jedi_dc_requests", True, ("dataset",))
        match = re.fullmatch(r"status in \( (.*) \)", index.where)
        assert match, index.where
        assert {v.strip("'") for v in match.group(1).split(" , ")} == live


def test_step_task_names_are_unique(catalogs):
    for catalog in catalogs.values():
        steps = catalog.tables["jedi_wf_steps"]
        assert ("task_name",) in steps.unique.values()
        assert ("workflow_id", "node_key") in steps.unique.values()


# --- names ----------------------------------------------------------------------------------

@pytest.mark.parametrize("backend", ["oracle", "postgres"])
def test_no_name_collides_with_upstream(catalogs, backend):
    names = catalogs[backend].names()
    assert not names & UPSTREAM_NAMES
    created = set(catalogs[backend].tables) | set(catalogs[backend].sequences) | set(catalogs[backend].views)
    assert not [n for n in created if n.startswith(UPSTREAM_PREFIXES)]
    assert all(n.startswith(OUR_PREFIXES) for n in created | set(catalogs[backend].indexes))


def test_no_name_collides_with_installed_upstream_code(catalogs):
    """Scan the installed upstream PanDA/JEDI sources for the schema objects they name."""
    pandaserver = importlib.util.find_spec("pandaserver")
    pandajedi = importlib.util.find_spec("pandajedi")
    if pandaserver is None or pandajedi is None:
        pytest.skip("upstream PanDA/JEDI not installed")
    pattern = re.compile(r"(?:ATLAS_PANDA|schemaJEDI\}|schemaPANDA\}|schemaDEFT\})\.([A-Za-z_][A-Za-z0-9_]*)")
    upstream = set()
    for spec in (pandaserver, pandajedi):
        for source in Path(spec.origin).parent.rglob("*.py"):
            upstream |= {m.lower() for m in pattern.findall(source.read_text(errors="replace"))}
    assert "jedi_tasks" in upstream and "data_carousel_requests" in upstream  # the scan works
    assert not catalogs["postgres"].names() & upstream


def test_oracle_names_fit_30_characters(catalogs):
    long_names = sorted(n for n in catalogs["oracle"].names() if len(n) > ORACLE_MAX_IDENTIFIER)
    assert long_names == []


# --- grants and views over iDDS ---------------------------------------------------------------

def test_grants_cover_exactly_the_view_sources(catalogs, grant_catalogs):
    for backend in ("oracle", "postgres"):
        sources = {f"{s}.{t}" for s, t in (v.source for v in catalogs[backend].views.values())}
        granted = {(p, t) for p, t, g in grant_catalogs[backend].grants if g == PANDA_GRANTEE[backend]}
        assert {t for p, t in granted if p == "select"} == sources
        assert {p for p, t in granted} <= {"select", "usage"}, "read access only"
    assert ("usage", "schema doma_idds", "panda") in grant_catalogs["postgres"].grants


def test_views_read_columns_that_the_idds_tables_have(catalogs):
    idds = build_catalog("postgres", [ddl_parser.IDDS_TEST_SCHEMA])
    assert "contents" in idds.tables and idds.tables["contents"].primary_key[1] == ("content_id", "request_id")
    for name, view in catalogs["postgres"].views.items():
        table = idds.tables[view.source[1]]
        missing = [c for c in view.selected if c not in table.columns]
        assert missing == [], f"{name} reads {missing} absent from doma_idds.{view.source[1]}"
        assert len(table.columns) > len(view.selected), f"{name} should not mirror the whole table"


# --- the comparison itself catches differences ---------------------------------------------------

ORACLE_SAMPLE = """
CREATE TABLE ATLAS_PANDA.JEDI_WF_X (
    x_id NUMBER(11) NOT NULL,
    name VARCHAR2(256),
    body CLOB CHECK (body IS JSON),
    n NUMBER(9) DEFAULT 0 NOT NULL,
    CONSTRAINT JEDI_WF_X_PK PRIMARY KEY (x_id)
);
CREATE INDEX ATLAS_PANDA.JEDI_WF_X_NAME_IDX ON ATLAS_PANDA.JEDI_WF_X (name);
"""
POSTGRES_SAMPLE = """
CREATE TABLE doma_panda.jedi_wf_x (
    x_id BIGINT NOT NULL,
    name VARCHAR(256),
    body JSONB,
    n INTEGER DEFAULT 0 NOT NULL,
    CONSTRAINT jedi_wf_x_pk PRIMARY KEY (x_id)
);
CREATE INDEX jedi_wf_x_name_idx ON doma_panda.jedi_wf_x (name);
"""


def test_samples_agree():
    assert differences(catalog_from_text("oracle", ORACLE_SAMPLE), catalog_from_text("postgres", POSTGRES_SAMPLE)) == []


@pytest.mark.parametrize("old,new,expected", [
    ("name VARCHAR(256)", "name VARCHAR(255)", "jedi_wf_x.name"),
    ("body JSONB", "body TEXT", "jedi_wf_x.body"),
    ("n INTEGER DEFAULT 0 NOT NULL", "n INTEGER DEFAULT 1 NOT NULL", "jedi_wf_x.n"),
    ("n INTEGER DEFAULT 0 NOT NULL", "n INTEGER DEFAULT 0", "jedi_wf_x.n"),
    ("n INTEGER DEFAULT", "n BIGINT DEFAULT", "jedi_wf_x.n"),
    ("(name);", "(name, n);", "index jedi_wf_x_name_idx"),
    ("jedi_wf_x_name_idx ON", "jedi_wf_x_n_idx ON", "index names"),
    ("jedi_wf_x_pk PRIMARY KEY (x_id)", "jedi_wf_x_pk PRIMARY KEY (x_id, n)", "primary key"),
    ("    body JSONB,\n", "", "column order"),
])
def test_a_difference_is_reported(old, new, expected):
    assert old in POSTGRES_SAMPLE
    found = differences(catalog_from_text("oracle", ORACLE_SAMPLE),
                        catalog_from_text("postgres", POSTGRES_SAMPLE.replace(old, new)))
    assert any(expected in line for line in found), found


def test_clob_without_json_check_is_not_json():
    plain = catalog_from_text("oracle", ORACLE_SAMPLE.replace("CLOB CHECK (body IS JSON)", "CLOB"))
    assert plain.tables["jedi_wf_x"].columns["body"].type == "clob"


@pytest.mark.parametrize("backend,sql,message", [
    ("oracle", "CREATE TABLE ATLAS_PANDA.T (a NUMBER);", r"t\.a: Oracle type NUMBER has no agreed"),
    ("oracle", "CREATE TABLE ATLAS_PANDA.T (a NUMBER(38));", r"Oracle type NUMBER\(38,\)"),
    ("oracle", "CREATE TABLE ATLAS_PANDA.T (a DATE);", "Oracle type DATE"),
    ("postgres", "CREATE TABLE doma_panda.t (a JSON);", "Postgres type JSON has no agreed"),
    ("postgres", "CREATE TABLE doma_panda.t (a TIMESTAMPTZ);", "Postgres type TIMESTAMPTZ"),
    ("oracle", "CREATE TABLE ATLAS_PANDA.T (a VARCHAR2(8) CHECK (a IS NOT NULL));", "inline CHECK other than IS JSON"),
])
def test_unknown_ddl_is_refused(backend, sql, message):
    with pytest.raises(UnsupportedDDL, match=message):
        catalog_from_text(backend, sql)


# --- upgrades ------------------------------------------------------------------------------------

# the commit of main that shipped each released schema (its install files are the base its upgrade starts from)
SHIPPED = {"1.0.0": "7363f293c1a3cd0c3b3f8bb0ceb5696f2338a93d"}


@dataclass
class UpgradeActions:
    dropped_indexes: list[str] = field(default_factory=list)
    free_space: dict[str, int | None] = field(default_factory=dict)
    dropped_sequences: list[str] = field(default_factory=list)
    # (sequence, table, column): the sequence is moved so that its next value is above every table.column
    advanced_sequences: list[tuple[str, str, str]] = field(default_factory=list)
    version: tuple[str, str] | None = None  # (from, to) of the JEDI_WF_SCHEMA_VERSION row
    added_columns: dict[tuple[str, str], Column] = field(default_factory=dict)  # (table, column) -> its definition
    backfilled: list[tuple[str, str]] = field(default_factory=list)  # (table, column) an UPDATE fills after adding it
    created: list[tuple[str, str]] = field(default_factory=list)  # (statement kind, name) of tables, indexes, sequences
    # the CREATE statements themselves, replayed onto a catalog (parse trees differ between the dialects)
    create_statements: list = field(default_factory=list, compare=False, repr=False)


# inside the Oracle block that advances a sequence: these statements and nothing else
_SEQUENCE_BLOCK_STATEMENTS = {"select_statement", "assignment_segment_statement", "if_then_statement",
                              "execute_immediate_statement", "function"}


def sequence_advance(statement, backend: str, where: str) -> tuple[str, str, str]:
    """(sequence, table, column) of a step that moves a sequence above MAX(column) of a table: PostgreSQL
    ``SELECT setval('s', GREATEST(nextval('s'), (SELECT COALESCE(MAX(c), 0) + 1 FROM t)), false)``, Oracle a PL/SQL
    block that draws ``s.NEXTVAL`` and changes only ``s`` (EXECUTE IMMEDIATE 'ALTER SEQUENCE s INCREMENT BY ...').
    The sequence must be in our schema (upstream's sequences live there too), and one sequence and one MAX only."""
    sequences = set()
    if backend == "postgres":
        functions = {f: [] for f in ("setval", "nextval")}
        for function in statement.recursive_crawl("function"):
            name = _child(function, "function_name").raw.lower()
            if name in functions:
                first = next(function.recursive_crawl("quoted_literal"))
                functions[name].append(first.raw.strip("'").lower())
        top = [e.raw.split("(")[0].lower() for e in _child(statement, "select_clause").segments
               if e.is_type("select_clause_element")]
        if top != ["setval"] or len(functions["setval"]) != 1 or not functions["nextval"]:
            raise UnsupportedDDL(f"{where}: a SELECT in an upgrade must be one setval(...) that draws nextval")
        sequences = {tuple(s.split(".")) for names in functions.values() for s in names}
    else:
        inner = {s.segments[0].get_type() for s in statement.recursive_crawl("statement") if s is not statement}
        if not inner <= _SEQUENCE_BLOCK_STATEMENTS:
            raise UnsupportedDDL(f"{where}: PL/SQL block holds {sorted(inner - _SEQUENCE_BLOCK_STATEMENTS)}")
        for reference in statement.recursive_crawl("column_reference"):
            parts = [_identifier(s) for s in reference.segments if s.is_type("naked_identifier")]
            if parts[-1] in ("nextval", "currval"):
                sequences.add(tuple(parts[:-1]))
        for execute in statement.recursive_crawl("execute_immediate_statement"):
            text = next(execute.recursive_crawl("quoted_literal")).raw.strip("'")
            match = re.fullmatch(r"ALTER SEQUENCE (\w+)\.(\w+) INCREMENT BY ", text, flags=re.IGNORECASE)
            if match is None:
                raise UnsupportedDDL(f"{where}: EXECUTE IMMEDIATE other than ALTER SEQUENCE ... INCREMENT BY: {text!r}")
            sequences.add((match.group(1).lower(), match.group(2).lower()))
    if len(sequences) != 1 or len(next(iter(sequences))) != 2:
        raise UnsupportedDDL(f"{where}: expected one schema-qualified sequence, found {sorted(sequences)}")
    ((schema, sequence),) = sequences
    if schema != OUR_SCHEMA[backend]:
        raise UnsupportedDDL(f"{where}: sequence {schema}.{sequence} outside {OUR_SCHEMA[backend]}")
    def has_max(select):
        return any(_child(f, "function_name").raw.upper() == "MAX" for f in select.recursive_crawl("function"))

    # the innermost SELECT around MAX (PostgreSQL's setval SELECT holds it in a scalar subquery)
    maxima = [s for s in statement.recursive_crawl("select_statement") if has_max(s)
              and not any(has_max(n) for n in s.recursive_crawl("select_statement", allow_self=False))]
    if len(maxima) != 1:
        raise UnsupportedDDL(f"{where}: expected one SELECT of a MAX(column), found {len(maxima)}")
    maximum = next(f for f in maxima[0].recursive_crawl("function") if _child(f, "function_name").raw.upper() == "MAX")
    column = _identifier(next(next(maximum.recursive_crawl("column_reference")).recursive_crawl("naked_identifier")))
    tables = [_qualified(r) for r in _child(maxima[0], "from_clause").recursive_crawl("table_reference")]
    if len(tables) != 1 or tables[0][0] != OUR_SCHEMA[backend]:
        raise UnsupportedDDL(f"{where}: MAX({column}) must read one table of {OUR_SCHEMA[backend]}, not {tables}")
    return sequence, tables[0][1], column


# existing data an upgrade may rewrite, each with why (any other UPDATE but the version row's is refused)
DATA_FIXES = {
    ("jedi_wf_workflows", "check_after"): "1.3.0: ended workflows leave the processor's due index (NULL)",
}


def upgrade_actions(backend: str, path: Path) -> UpgradeActions:
    """What an upgrade script does, read off its parse tree; a statement of a kind not listed is refused, so a
    new kind of upgrade step forces this reader (and the twin comparison) to learn it."""
    found = UpgradeActions()
    for statement in ddl_parser.statements(ddl_parser.parse_file(path, backend)):
        kind = statement.get_type()
        if kind == "drop_index_statement":
            found.dropped_indexes.append(_qualified(_child(statement, "index_reference"))[1])
        elif kind == "drop_sequence_statement":
            found.dropped_sequences.append(_qualified(_child(statement, "sequence_reference"))[1])
        elif (backend, kind) in (("oracle", "begin_end_block"), ("postgres", "select_statement")):
            found.advanced_sequences.append(sequence_advance(statement, backend, path.name))
        elif kind == "alter_table_statement":
            table = _qualified(_child(statement, "table_reference"))[1]
            added = _added_columns(statement, backend, f"{path.name}: {table}")
            if added:
                found.added_columns.update({(table, c): d for c, d in added.items()})
            else:
                found.free_space[table] = _free_space(statement)
        elif kind == "update_statement":
            table = _qualified(_child(statement, "table_reference"))[1]
            if table == "jedi_wf_schema_version":
                to = re.search(r"version\s*=\s*'([\d.]+)'", _child(statement, "set_clause_list").raw)
                source = re.search(r"version\s*=\s*'([\d.]+)'", _child(statement, "where_clause").raw)
                found.version = (source.group(1) if source else None, to.group(1) if to else None)
            else:  # a backfill of a column this script adds, or one of the data fixes listed with their reason
                for clause in _child(statement, "set_clause_list").recursive_crawl("set_clause", recurse_into=False):
                    column = _identifier(_child(_child(clause, "column_reference"), "naked_identifier"))
                    if (table, column) not in found.added_columns and (table, column) not in DATA_FIXES:
                        raise UnsupportedDDL(f"{path.name}: UPDATE of {table}.{column}, which this script does not add")
                    found.backfilled.append((table, column))
        elif kind in ("create_table_statement", "create_index_statement", "create_sequence_statement"):
            reference = _child(statement, "table_reference", "index_reference", "sequence_reference")
            found.created.append((kind, _qualified(reference)[1]))
            found.create_statements.append(statement)
        elif kind != "transaction_statement" or statement.raw.upper() != "COMMIT":
            raise UnsupportedDDL(f"{path.name}: no upgrade rule for {kind}")
    return found


@pytest.mark.parametrize("backend", ["oracle", "postgres"])
def test_upgrades_chain_from_the_first_release_to_the_fresh_install(backend):
    """1.0.0 -> ... -> the version a fresh install writes, each script named for the row it moves."""
    chain = schema_files.upgrade_files(backend)
    assert chain and chain[0][0] == "1.0.0"
    for (_, to, _), (source, _, _) in zip(chain, chain[1:]):
        assert to == source
    assert chain[-1][1] == schema_files.schema_version(backend) == "1.4.0"
    for source, to, path in chain:
        assert upgrade_actions(backend, path).version == (source, to), path.name


def test_oracle_and_postgres_upgrades_do_the_same():
    oracle, postgres = (schema_files.upgrade_files(b) for b in ("oracle", "postgres"))
    assert [(f, t) for f, t, _ in oracle] == [(f, t) for f, t, _ in postgres]
    for (_, _, ora), (_, _, pg) in zip(oracle, postgres):
        assert upgrade_actions("oracle", ora) == upgrade_actions("postgres", pg), ora.name


def _shipped_install_files(version: str, backend: str) -> dict[str, str] | None:
    """The install files of a released schema, from the commit that shipped it (then in ``sql/<backend>/`` at the
    repository root; None without that history)."""
    import subprocess

    repo = HERE.parent
    try:
        names = subprocess.run(["git", "-C", str(repo), "ls-tree", "--name-only", f"{SHIPPED[version]}:sql/{backend}/"],
                               capture_output=True, text=True, check=True).stdout.split()
        return {name: subprocess.run(["git", "-C", str(repo), "show", f"{SHIPPED[version]}:sql/{backend}/{name}"],
                                     capture_output=True, text=True, check=True).stdout
                for name in names if re.fullmatch(r"\d\d_[a-z0-9_]+\.sql", name)}
    except (OSError, subprocess.CalledProcessError):
        return None


@pytest.mark.parametrize("backend", ["oracle", "postgres"])
def test_the_first_release_plus_its_upgrades_is_the_fresh_install(backend):
    """The 1.0.0 install files as shipped, with every upgrade's actions applied, give the fresh install's catalog."""
    shipped = _shipped_install_files("1.0.0", backend)
    if shipped is None:
        pytest.skip(f"git history with commit {SHIPPED['1.0.0']} (schema 1.0.0 as shipped) is not available")
    builder = CatalogBuilder(backend)
    for name in sorted(shipped):
        for statement in ddl_parser.statements(ddl_parser.parse_sql(shipped[name], backend)):
            getattr(builder, "_" + statement.get_type())(statement, name)
    upgraded = builder.catalog
    for _, to, path in schema_files.upgrade_files(backend):
        actions = upgrade_actions(backend, path)
        for index in actions.dropped_indexes:
            del upgraded.indexes[index]
        for table, free in actions.free_space.items():
            upgraded.tables[table].free_space = free
        for sequence in actions.dropped_sequences:
            del upgraded.sequences[sequence]
        for (table, column), definition in actions.added_columns.items():
            assert column not in upgraded.tables[table].columns, f"{table}.{column} added twice"
            upgraded.tables[table].columns[column] = definition
        for statement in actions.create_statements:
            getattr(builder, "_" + statement.get_type())(statement, path.name)
        for sequence, table, column in actions.advanced_sequences:  # upstream's sequence, past our ids
            assert sequence in UPSTREAM_NAMES and sequence not in upgraded.sequences, sequence
            assert column in upgraded.tables[table].columns, f"{table}.{column}"
        rows = upgraded.rows["jedi_wf_schema_version"]
        upgraded.rows["jedi_wf_schema_version"] = [(c, f"'{to}'", t) for c, _, t in rows]
    fresh = build_catalog(backend, schema_files.install_files(backend))
    for name in sorted(set(fresh.tables) | set(upgraded.tables)):
        assert fresh.tables.get(name) == upgraded.tables.get(name), name
    assert fresh.indexes == upgraded.indexes
    assert fresh.sequences == upgraded.sequences
    assert fresh.views == upgraded.views
    assert fresh.rows == upgraded.rows


@pytest.mark.parametrize("backend", ["oracle", "postgres"])
def test_upgrade_to_1_2_0_moves_workflow_ids_to_upstreams_sequence(backend):
    """Upstream's workflow_id_seq goes past every id in jedi_wf_workflows, and our own workflow id sequence goes."""
    path = next(p for f, t, p in schema_files.upgrade_files(backend) if (f, t) == ("1.1.0", "1.2.0"))
    actions = upgrade_actions(backend, path)
    assert actions.advanced_sequences == [WORKFLOW_ID_SOURCE]
    assert actions.dropped_sequences == ["jedi_wf_workflow_id_seq"]


@pytest.mark.parametrize("backend", ["oracle", "postgres"])
def test_upgrade_to_1_3_0_adds_and_backfills_the_automatic_retry_count(backend):
    path = next(p for f, t, p in schema_files.upgrade_files(backend) if (f, t) == ("1.2.0", "1.3.0"))
    actions = upgrade_actions(backend, path)
    assert actions.added_columns == {("jedi_wf_steps", "auto_retries"): Column("integer", False, "0")}
    assert actions.backfilled == [("jedi_wf_steps", "auto_retries"), ("jedi_wf_workflows", "check_after")]
    assert actions.dropped_indexes == ["jedi_wf_workflows_status_idx"]
    assert actions.created == [("create_index_statement", "jedi_wf_workflows_due_idx")]


@pytest.mark.parametrize("backend", ["oracle", "postgres"])
def test_upgrade_to_1_4_0_adds_the_pre_stage_table_and_the_need_by_of_a_request(backend):
    path = next(p for f, t, p in schema_files.upgrade_files(backend) if (f, t) == ("1.3.0", "1.4.0"))
    actions = upgrade_actions(backend, path)
    assert actions.added_columns == {("jedi_dc_requests", "need_by_time"): Column("timestamp", True, None)}
    assert actions.backfilled == [] and actions.dropped_indexes == []
    assert actions.created == [("create_table_statement", "jedi_dc_prestages"),
                               ("create_index_statement", "jedi_dc_prestages_request_idx"),
                               ("create_index_statement", "jedi_dc_prestages_taken_idx")]


@pytest.mark.parametrize("backend,sql", [
    ("postgres", "UPDATE doma_panda.jedi_wf_steps SET status = 'failed';"),
    ("oracle", "UPDATE ATLAS_PANDA.JEDI_WF_STEPS SET status = 'failed';"),
    ("postgres", "UPDATE doma_panda.jedi_wf_workflows SET status = 'failed';"),
])
def test_an_upgrade_may_only_backfill_what_it_adds(tmp_path, backend, sql):
    path = tmp_path / "1.2.0_to_1.3.0.sql"
    path.write_text(sql + "\n")
    with pytest.raises(UnsupportedDDL, match="does not add"):
        upgrade_actions(backend, path)


SEQUENCE_STEPS = {
    "postgres": "SELECT setval('doma_panda.workflow_id_seq', GREATEST(nextval('doma_panda.workflow_id_seq'), "
                "(SELECT COALESCE(MAX(workflow_id), 0) + 1 FROM doma_panda.jedi_wf_workflows)), false);",
    "oracle": "DECLARE\n    v_max NUMBER;\n    v_next NUMBER;\nBEGIN\n"
              "    SELECT NVL(MAX(workflow_id), 0) INTO v_max FROM ATLAS_PANDA.JEDI_WF_WORKFLOWS;\n"
              "    v_next := ATLAS_PANDA.WORKFLOW_ID_SEQ.NEXTVAL;\n"
              "    EXECUTE IMMEDIATE 'ALTER SEQUENCE ATLAS_PANDA.WORKFLOW_ID_SEQ INCREMENT BY ' || TO_CHAR(v_max);\n"
              "END;\n/\n",
}


@pytest.mark.parametrize("backend,old,new,message", [
    ("postgres", None, None, None),
    ("oracle", None, None, None),
    ("postgres", "nextval('doma_panda.workflow_id_seq')", "nextval('doma_panda.other_seq')", "one schema-qualified"),
    ("postgres", "setval('doma_panda.workflow_id_seq', ", "setval('workflow_id_seq', ", "one schema-qualified"),
    ("postgres", "FROM doma_panda.jedi_wf_workflows", "FROM doma_idds.requests", "must read one table of doma_panda"),
    ("postgres", "SELECT setval(", "SELECT 1, setval(", "one setval"),
    ("oracle", "ALTER SEQUENCE ATLAS_PANDA.WORKFLOW_ID_SEQ", "ALTER SEQUENCE ATLAS_PANDA.JEDI_WF_STEP_ID_SEQ",
     "one schema-qualified"),
    ("oracle", "'ALTER SEQUENCE ATLAS_PANDA.WORKFLOW_ID_SEQ INCREMENT BY '", "'DROP TABLE ATLAS_PANDA.X'",
     "EXECUTE IMMEDIATE other than"),
    ("oracle", "    v_next := ", "    DELETE FROM ATLAS_PANDA.JEDI_WF_WORKFLOWS;\n    v_next := ", "block holds"),
    ("oracle", "ATLAS_PANDA.WORKFLOW_ID_SEQ.NEXTVAL", "ATLAS_IDDS.WORKFLOW_ID_SEQ.NEXTVAL", "one schema-qualified"),
])
def test_sequence_steps_are_read_or_refused(backend, old, new, message):
    """The reader of a sequence step returns what it moves, and refuses a step that touches anything else."""
    sql = SEQUENCE_STEPS[backend]
    if old is None:
        statement, = ddl_parser.statements(ddl_parser.parse_sql(sql, backend))
        assert sequence_advance(statement, backend, "<text>") == WORKFLOW_ID_SOURCE
        return
    assert old in sql
    statement, = ddl_parser.statements(ddl_parser.parse_sql(sql.replace(old, new), backend))
    with pytest.raises(UnsupportedDDL, match=message):
        sequence_advance(statement, backend, "<text>")
