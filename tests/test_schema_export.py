"""graphql/schema.graphql is generated from the code; this fails when they drift."""

from __future__ import annotations

from pathlib import Path

from resolvers import confab_schema
from settings import Settings

SCHEMA_FILE = Path(__file__).resolve().parent.parent / "graphql" / "schema.graphql"


def test_exported_schema_matches_the_code() -> None:
    current = confab_schema(Settings()).as_str() + "\n"
    assert SCHEMA_FILE.read_text(encoding="utf-8") == current, (
        "graphql/schema.graphql is stale: run `python server.py export-schema`"
    )


def test_graphql_dir_is_not_a_python_package() -> None:
    assert not (SCHEMA_FILE.parent / "__init__.py").exists()


def test_example_operations_are_valid_against_the_schema() -> None:
    from graphql import parse, validate

    schema = confab_schema(Settings())._schema
    operations = sorted((SCHEMA_FILE.parent / "operations").glob("*.graphql"))
    assert operations
    for path in operations:
        errors = validate(schema, parse(path.read_text(encoding="utf-8")))
        assert not errors, f"{path.name}: {errors}"
