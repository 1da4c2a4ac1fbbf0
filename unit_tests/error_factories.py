"""Small factories for Stripe's error answers (shapes as in ../shared/docs/stripe-api-facts.md)."""
from __future__ import annotations

from typing import Any, Optional

from unit_tests.factories import FACTS


def stripe_error(message: str, code: Optional[str] = None, param: Optional[str] = None,
                 type_: str = "invalid_request_error") -> dict[str, Any]:
    error: dict[str, Any] = {"type": type_, "message": message}
    if code:
        error["code"] = code
    if param:
        error["param"] = param
    return {"error": error}


def forbidden_body(key: str, resource: str) -> dict[str, Any]:
    """Stripe's 403 for a restricted key without Read on `resource` (a stream, or events), naming the permission."""
    facts = FACTS.stream(resource) or FACTS.events
    return stripe_error(
        f"The provided key '{key[:8]}***{key[-4:]}' does not have the required permissions for this endpoint on "
        f"account 'acct_1Test'. Having the '{facts.permission.name}' permission would allow this request "
        f"to continue.")


def vanished_cursor_body(object_id: str) -> dict[str, Any]:
    return stripe_error(f"No such object: '{object_id}'", code="resource_missing", param="starting_after")
