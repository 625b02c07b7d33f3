"""Sessions over GraphQL: create, read, list, rename, archive, wallet, state, delete."""

from __future__ import annotations

from tests.conftest import GraphQLClient, new_id, new_wallet

SESSION_FIELDS = """
  id app title titleSource publicKey userState state metadata model
  isArchived isProcessing version createdAt updatedAt lastActiveAt expiresAt
"""

CREATE = f"""
mutation($id: ID, $publicKey: String, $title: String, $metadata: JSON) {{
  createSession(id: $id, publicKey: $publicKey, title: $title, metadata: $metadata) {{
    {SESSION_FIELDS}
  }}
}}"""

GET = f"query($id: ID!) {{ session(id: $id) {{ {SESSION_FIELDS} threads {{ id isPrimary }} }} }}"

LIST = """
query($publicKey: String, $archived: Boolean, $first: Int!, $after: String) {
  sessions(publicKey: $publicKey, archived: $archived, first: $first, after: $after) {
    edges { cursor node { id title isArchived } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}"""


async def test_create_with_client_id_then_read_back(gql: GraphQLClient) -> None:
    session_id = new_id()
    created = (await gql.data(CREATE, id=session_id))["createSession"]
    assert created["id"] == session_id
    assert created["app"] == "default"
    assert created["title"] == "New chat"
    assert created["titleSource"] == "DEFAULT"
    assert created["isArchived"] is False
    assert created["isProcessing"] is False
    assert created["userState"] is None
    assert created["metadata"] == {}
    assert created["expiresAt"] is None  # the default app keeps sessions forever

    read = (await gql.data(GET, id=session_id))["session"]
    assert read["id"] == session_id
    assert read["threads"] == [{"id": session_id, "isPrimary": True}]


async def test_create_without_id_generates_one(gql: GraphQLClient) -> None:
    created = (await gql.data(CREATE))["createSession"]
    assert len(created["id"]) == 36


async def test_create_is_idempotent_for_the_same_id(gql: GraphQLClient) -> None:
    session_id = new_id()
    first = (await gql.data(CREATE, id=session_id, title="Original"))["createSession"]
    again = (await gql.data(CREATE, id=session_id, title="Ignored"))["createSession"]
    assert again["title"] == "Original"
    assert again["createdAt"] == first["createdAt"]


async def test_unknown_session_reads_as_null(gql: GraphQLClient) -> None:
    assert (await gql.data(GET, id=new_id()))["session"] is None


async def test_rename_sets_a_user_title_trimmed(gql: GraphQLClient) -> None:
    session_id = new_id()
    await gql.data(CREATE, id=session_id)
    renamed = await gql.data(
        "mutation($id: ID!, $t: String!) { renameSession(id: $id, title: $t) "
        "{ title titleSource version } }",
        id=session_id,
        t="  ETH price check  ",
    )
    assert renamed["renameSession"]["title"] == "ETH price check"
    assert renamed["renameSession"]["titleSource"] == "USER"
    assert renamed["renameSession"]["version"] == 2


async def test_archive_and_unarchive(gql: GraphQLClient) -> None:
    session_id = new_id()
    await gql.data(CREATE, id=session_id)
    archived = await gql.data(
        "mutation($id: ID!) { archiveSession(id: $id) { isArchived } }", id=session_id
    )
    assert archived["archiveSession"]["isArchived"] is True
    restored = await gql.data(
        "mutation($id: ID!) { unarchiveSession(id: $id) { isArchived } }", id=session_id
    )
    assert restored["unarchiveSession"]["isArchived"] is False


async def test_bind_wallet_normalizes_and_lists_case_insensitively(gql: GraphQLClient) -> None:
    wallet = new_wallet()
    session_id = new_id()
    await gql.data(CREATE, id=session_id)
    bound = await gql.data(
        "mutation($id: ID!, $k: String) { bindWallet(sessionId: $id, publicKey: $k) "
        "{ publicKey } }",
        id=session_id,
        k=wallet.upper().replace("0X", "0x"),
    )
    assert bound["bindWallet"]["publicKey"] == wallet.lower()
    listed = await gql.data(LIST, publicKey=wallet.lower().replace("0x", "0x"), first=10)
    assert [e["node"]["id"] for e in listed["sessions"]["edges"]] == [session_id]

    unbound = await gql.data(
        "mutation($id: ID!) { bindWallet(sessionId: $id, publicKey: null) { publicKey } }",
        id=session_id,
    )
    assert unbound["bindWallet"]["publicKey"] is None
    assert (await gql.data(LIST, publicKey=wallet, first=10))["sessions"]["edges"] == []


async def test_user_state_and_metadata(gql: GraphQLClient) -> None:
    session_id = new_id()
    await gql.data(CREATE, id=session_id, metadata={"client": "web"})
    state = {"connection": {"is_connected": True}, "evm": {"address": new_wallet(), "chain_id": 1}}
    updated = await gql.data(
        "mutation($id: ID!, $s: JSON) { updateUserState(sessionId: $id, userState: $s) "
        "{ userState } }",
        id=session_id,
        s=state,
    )
    assert updated["updateUserState"]["userState"] == state

    merged = await gql.data(
        "mutation($id: ID!, $m: JSON!) { updateMetadata(sessionId: $id, metadata: $m, "
        "merge: true) { metadata } }",
        id=session_id,
        m={"theme": "dark"},
    )
    assert merged["updateMetadata"]["metadata"] == {"client": "web", "theme": "dark"}
    replaced = await gql.data(
        "mutation($id: ID!, $m: JSON!) { updateMetadata(sessionId: $id, metadata: $m) "
        "{ metadata } }",
        id=session_id,
        m={"only": 1},
    )
    assert replaced["updateMetadata"]["metadata"] == {"only": 1}
    read = (await gql.data(GET, id=session_id))["session"]
    assert read["userState"] == state
    assert read["metadata"] == {"only": 1}


async def test_list_is_newest_activity_first_and_pages_by_cursor(gql: GraphQLClient) -> None:
    wallet = new_wallet()
    ids = [new_id() for _ in range(5)]
    for session_id in ids:
        await gql.data(CREATE, id=session_id, publicKey=wallet)
    # Touching the oldest makes it the most recently active.
    await gql.data(
        'mutation($id: ID!) { renameSession(id: $id, title: "touched") { id } }', id=ids[0]
    )
    expected = [ids[0], *reversed(ids[1:])]

    seen: list[str] = []
    after = None
    pages = 0
    while True:
        page = (await gql.data(LIST, publicKey=wallet, first=2, after=after))["sessions"]
        seen += [edge["node"]["id"] for edge in page["edges"]]
        assert page["pageInfo"]["hasPreviousPage"] is (after is not None)
        pages += 1
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == expected
    assert pages == 3


async def test_list_filters_by_archived(gql: GraphQLClient) -> None:
    wallet = new_wallet()
    kept, archived = new_id(), new_id()
    for session_id in (kept, archived):
        await gql.data(CREATE, id=session_id, publicKey=wallet)
    await gql.data("mutation($id: ID!) { archiveSession(id: $id) { id } }", id=archived)

    def ids(result: dict[str, object]) -> set[str]:
        return {e["node"]["id"] for e in result["sessions"]["edges"]}  # type: ignore[index]

    assert ids(await gql.data(LIST, publicKey=wallet, archived=True, first=10)) == {archived}
    assert ids(await gql.data(LIST, publicKey=wallet, archived=False, first=10)) == {kept}
    assert ids(await gql.data(LIST, publicKey=wallet, first=10)) == {kept, archived}


async def test_delete_removes_the_session_and_its_threads(gql: GraphQLClient) -> None:
    session_id = new_id()
    await gql.data(CREATE, id=session_id)
    extra = await gql.data("mutation($s: ID!) { createThread(sessionId: $s) { id } }", s=session_id)
    thread_id = extra["createThread"]["id"]
    deleted = await gql.data(
        "mutation($id: ID!) { deleteSession(id: $id) { id deleted } }", id=session_id
    )
    assert deleted["deleteSession"] == {"id": session_id, "deleted": True}
    assert (await gql.data(GET, id=session_id))["session"] is None
    gone = await gql.data("query($id: ID!) { thread(id: $id) { id } }", id=thread_id)
    assert gone["thread"] is None
    again = await gql.error("mutation($id: ID!) { deleteSession(id: $id) { id } }", id=session_id)
    assert again["extensions"]["code"] == "NOT_FOUND"


async def test_apps_and_models_for_the_default_app(gql: GraphQLClient) -> None:
    data = await gql.data("{ apps { name displayName models } models }")
    assert data["apps"] == [{"name": "default", "displayName": "Default", "models": ["builtin"]}]
    assert data["models"] == ["builtin"]
