"""Reading trusted documents from files, for `server.py documents load`.

- A `.graphql` file (or a directory of them): each operation in it, with the
  fragments it uses, becomes one trusted document in canonical form
  (schema/trusted.py); its hash is the SHA-256 of that text.
- A `.json` manifest: `{"<sha256>": "<document>", ...}`, or Apollo's persisted-query
  manifest (`{"format": "apollo-persisted-query-manifest", "operations": [{"id",
  "body", ...}]}`). Each hash must be the SHA-256 of its document, as the clients
  that send it computed it; each operation in the document is trusted too.

Every document must parse within the token limit and validate against the schema
with Confab's rules: a document the server would refuse is refused here, naming the
file and the operation.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from graphql import GraphQLError, parse, specified_rules
from runtime.trusted_documents import DocumentEntry
from schema.build import ConfabSchema
from schema.trusted import operations, sha256_hex

APOLLO_MANIFEST = "apollo-persisted-query-manifest"


class DocumentsError(ValueError):
    """A file or document that cannot be trusted; the message names it."""


def load_paths(paths: list[Path], schema: ConfabSchema) -> list[DocumentEntry]:
    entries: dict[str, DocumentEntry] = {}
    for path in _files(paths):
        found = _manifest(path, schema) if path.suffix == ".json" else _graphql(path, schema)
        for entry in found:
            entries.setdefault(entry.hash, entry)
    return list(entries.values())


def _files(paths: list[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            files = sorted(path.glob("*.graphql"))
            if not files:
                raise DocumentsError(f"{path}: no .graphql files in this directory")
            yield from files
        elif path.is_file():
            yield path
        else:
            raise DocumentsError(f"{path}: no such file or directory")


def _graphql(path: Path, schema: ConfabSchema) -> list[DocumentEntry]:
    try:
        document = parse(path.read_text(encoding="utf-8"))
    except GraphQLError as exc:
        raise DocumentsError(f"{path}: {exc.message}") from None
    entries = []
    for operation, text, identity in operations(document):
        name = operation.name.value if operation.name else None
        _check(text, schema, f"{path}: operation {name or '(anonymous)'}")
        entries.append(DocumentEntry(sha256_hex(text), identity, name, text, str(path)))
    if not entries:
        raise DocumentsError(f"{path}: no operations in this file")
    return entries


def _manifest(path: Path, schema: ConfabSchema) -> list[DocumentEntry]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise DocumentsError(f"{path}: not a JSON manifest: {exc}") from None
    if isinstance(data, dict) and data.get("format") == APOLLO_MANIFEST:
        items = [(op.get("id"), op.get("body")) for op in data.get("operations") or []]
    elif isinstance(data, dict):
        items = list(data.items())
    else:
        raise DocumentsError(f"{path}: a manifest is an object {{hash: document}}")
    entries = []
    for digest, body in items:
        where = f"{path}: {digest}"
        if not isinstance(digest, str) or not isinstance(body, str):
            raise DocumentsError(f"{where}: each entry maps a hash to a document text")
        if sha256_hex(body) != digest.lower():
            raise DocumentsError(f"{where}: the hash is not the SHA-256 of its document")
        _check(body, schema, where)
        document = parse(body)
        found = list(operations(document))
        if not found:
            raise DocumentsError(f"{where}: the document has no operation")
        for operation, text, identity in found:
            name = operation.name.value if operation.name else None
            entries.append(DocumentEntry(sha256_hex(text), identity, name, text, str(path)))
        # The manifest's own hash names the document as its clients send it.
        first, _, identity = found[0]
        name = first.name.value if first.name else None
        entries.append(DocumentEntry(digest.lower(), identity, name, body, str(path)))
    return entries


def _check(text: str, schema: ConfabSchema, where: str) -> None:
    documents = schema.documents
    try:
        prepared = documents.parsed(text)
    except GraphQLError as exc:
        raise DocumentsError(f"{where}: {exc.message}") from None
    errors = documents.errors(prepared, schema._schema, specified_rules)
    if errors:
        raise DocumentsError(f"{where}: {'; '.join(error.message for error in errors)}")
