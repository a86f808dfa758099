"""The originating system of a demand record, from its systemUserId (BR-007)."""

from __future__ import annotations

from demand_assets.records.errors import RecordError


def system_from_user_id(system_user_id: str | None, path: str = "systemUserId") -> dict | None:
    """`<id>.<databaseId>.<memberId>` -> `{id, databaseId, memberId}`; None when absent."""
    if system_user_id is None:
        return None
    parts = system_user_id.split(".")
    if len(parts) != 3 or not all(parts):
        raise RecordError(
            path, f"expected <id>.<databaseId>.<memberId>, got {system_user_id!r:.60}"
        )
    return {"id": parts[0], "databaseId": parts[1], "memberId": parts[2]}
