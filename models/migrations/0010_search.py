"""Full-text search (runtime/search.py): the indexes each database keeps in step
with every insert, update and delete by itself, so no code path (the chat append,
an import, the janitor's cascading deletes) can forget them.

PostgreSQL: each session, thread and message carries its app's text search
configuration (`search_lang`, copied by triggers from `apps.search_language`);
messages have a generated `tsvector` of their text (weight A) and tool names (B),
and titles an expression index, all GIN.

SQLite: FTS5 tables of message text and tool names, and of titles, keyed by the
tables' rowids and kept by AFTER triggers (cascading deletes fire them too).
"""

from typing import Any

from tortoise import fields, migrations
from tortoise.migrations import operations as ops

# The tool names of a message row (`row` is `new`, `old` or a table alias): written
# once, because FTS5 must be told exactly the text it indexed to delete a row.
_SQLITE_TOOLS = (
    "trim(coalesce((SELECT group_concat(json_extract(value, '$.tool_name'), ' ') "
    "FROM json_each({row}.tool_calls)), '') || ' ' || "
    "coalesce((SELECT group_concat(json_extract(value, '$.tool_name'), ' ') "
    "FROM json_each({row}.tool_results)), ''))"
)
_SQLITE_TOKENIZER = "porter unicode61 remove_diacritics 2"


def _sqlite_titles(table: str) -> str:
    name = table.rstrip("s")
    return f"""
CREATE VIRTUAL TABLE {name}_search USING fts5(title, tokenize='{_SQLITE_TOKENIZER}');
INSERT INTO {name}_search(rowid, title) SELECT rowid, title FROM {table} WHERE title IS NOT NULL;
CREATE TRIGGER {name}_search_insert AFTER INSERT ON {table} WHEN new.title IS NOT NULL BEGIN
    INSERT INTO {name}_search(rowid, title) VALUES (new.rowid, new.title);
END;
CREATE TRIGGER {name}_search_delete AFTER DELETE ON {table} WHEN old.title IS NOT NULL BEGIN
    DELETE FROM {name}_search WHERE rowid = old.rowid;
END;
CREATE TRIGGER {name}_search_update AFTER UPDATE OF title ON {table}
WHEN old.title IS NOT new.title BEGIN
    DELETE FROM {name}_search WHERE rowid = old.rowid;
    INSERT INTO {name}_search(rowid, title) SELECT new.rowid, new.title WHERE new.title IS NOT NULL;
END;
"""


# The FTS5 tables hold their own copy of the text (not "external content"): a row
# is removed by its rowid alone, and snippets read the copy.
SQLITE_MESSAGES_INDEX = f"""
INSERT INTO message_search(rowid, content, tools)
    SELECT rowid, content, {_SQLITE_TOOLS.format(row="messages")} FROM messages;
"""
SQLITE = f"""
CREATE VIRTUAL TABLE message_search USING fts5(content, tools, tokenize='{_SQLITE_TOKENIZER}');
{SQLITE_MESSAGES_INDEX}
CREATE TRIGGER message_search_insert AFTER INSERT ON messages BEGIN
    INSERT INTO message_search(rowid, content, tools)
        VALUES (new.rowid, new.content, {_SQLITE_TOOLS.format(row="new")});
END;
CREATE TRIGGER message_search_delete AFTER DELETE ON messages BEGIN
    DELETE FROM message_search WHERE rowid = old.rowid;
END;
CREATE TRIGGER message_search_update AFTER UPDATE OF content, tool_calls, tool_results ON messages
BEGIN
    DELETE FROM message_search WHERE rowid = old.rowid;
    INSERT INTO message_search(rowid, content, tools)
        VALUES (new.rowid, new.content, {_SQLITE_TOOLS.format(row="new")});
END;
{_sqlite_titles("sessions")}
{_sqlite_titles("threads")}
"""

# `coalesce(search_lang, 'simple')`: a row inserted by a path no trigger saw still
# gets a vector. Generated columns and index expressions must be immutable:
# `to_tsvector(regconfig, text)` is, a text-to-regconfig cast is not (hence the
# regconfig columns).
POSTGRES_VECTOR = (
    "setweight(to_tsvector(coalesce(search_lang, 'simple'), content), 'A') || "
    "setweight(jsonb_to_tsvector(coalesce(search_lang, 'simple'), jsonb_path_query_array("
    "coalesce(tool_calls, '[]') || coalesce(tool_results, '[]'), '$[*].tool_name'), "
    "'[\"string\"]'), 'B')"
)
POSTGRES_TITLE_VECTOR = "to_tsvector(coalesce(search_lang, 'simple'), coalesce(title, ''))"

POSTGRES = f"""
ALTER TABLE sessions ADD COLUMN search_lang regconfig;
ALTER TABLE threads ADD COLUMN search_lang regconfig;
ALTER TABLE messages ADD COLUMN search_lang regconfig;
UPDATE sessions s SET search_lang = a.search_language::regconfig FROM apps a WHERE a.name = s.app_id;
UPDATE threads t SET search_lang = s.search_lang FROM sessions s WHERE s.id = t.session_id;
UPDATE messages m SET search_lang = s.search_lang FROM sessions s WHERE s.id = m.session_id;
ALTER TABLE messages ADD COLUMN search_vector tsvector GENERATED ALWAYS AS ({POSTGRES_VECTOR}) STORED;
CREATE INDEX messages_search ON messages USING gin (search_vector);
CREATE INDEX sessions_title_search ON sessions USING gin (({POSTGRES_TITLE_VECTOR}));
CREATE INDEX threads_title_search ON threads USING gin (({POSTGRES_TITLE_VECTOR}));

-- A session takes its app's language when created or claimed by another app, and
-- then passes it on to its threads and messages.
CREATE FUNCTION confab_session_search_lang() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.search_lang := (SELECT search_language::regconfig FROM apps WHERE name = NEW.app_id);
    RETURN NEW;
END $$;
CREATE TRIGGER sessions_search_lang BEFORE INSERT OR UPDATE OF app_id ON sessions
    FOR EACH ROW EXECUTE FUNCTION confab_session_search_lang();

CREATE FUNCTION confab_session_search_lang_moved() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE threads SET search_lang = NEW.search_lang WHERE session_id = NEW.id;
    UPDATE messages SET search_lang = NEW.search_lang WHERE session_id = NEW.id;
    RETURN NULL;
END $$;
CREATE TRIGGER sessions_search_lang_moved AFTER UPDATE OF app_id ON sessions
    FOR EACH ROW WHEN (OLD.search_lang IS DISTINCT FROM NEW.search_lang)
    EXECUTE FUNCTION confab_session_search_lang_moved();

-- The chat append sets it itself (runtime/store/postgres_sql.py); other inserts
-- take the session's.
CREATE FUNCTION confab_row_search_lang() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.search_lang := (SELECT search_lang FROM sessions WHERE id = NEW.session_id);
    RETURN NEW;
END $$;
CREATE TRIGGER threads_search_lang BEFORE INSERT ON threads
    FOR EACH ROW WHEN (NEW.search_lang IS NULL) EXECUTE FUNCTION confab_row_search_lang();
CREATE TRIGGER messages_search_lang BEFORE INSERT ON messages
    FOR EACH ROW WHEN (NEW.search_lang IS NULL) EXECUTE FUNCTION confab_row_search_lang();
"""


async def create_search_indexes(apps: Any, schema_editor: Any) -> None:
    client = schema_editor.client
    dialect = client.capabilities.dialect
    if dialect == "postgres":
        await client.execute_script(POSTGRES)
    elif dialect == "sqlite":
        await client.execute_script(SQLITE)
    else:
        raise RuntimeError(f"full-text search is built for PostgreSQL and SQLite, not {dialect}")


class Migration(migrations.Migration):
    dependencies = [("models", "0009_feedback")]

    initial = False

    operations = [
        ops.AddField(
            model_name="App",
            name="search_language",
            field=fields.CharField(max_length=32, default="english", db_default="english"),
        ),
        ops.RunPython(create_search_indexes),
    ]
