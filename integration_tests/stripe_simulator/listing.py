"""Query-string rules of Stripe's list endpoints: parameter names from the spec, limits, cursors, filters."""

from __future__ import annotations

import fnmatch
from typing import Callable, Dict, List, Optional, Tuple
from urllib.parse import parse_qsl

LIST_PARAMS = frozenset({"expand", "types", "ids"})  # deepObject arrays: expand[]=a, expand[0]=a
RANGE_PARAMS = frozenset({"created", "due_date", "arrival_date", "current_period_start", "current_period_end"})
RANGE_OPS = ("gt", "gte", "lt", "lte")
EQ_PARAMS = ("customer", "email", "collection_method", "subscription", "payment_intent", "transfer_group",
             "destination", "url", "test_clock")
SUBSCRIPTION_STATUSES = ("active", "past_due", "unpaid", "canceled", "incomplete", "incomplete_expired",
                         "trialing", "paused")
MAX_EVENT_TYPES = 20

# endpoint -> {expand path -> (field, resource to look it up in)}
EXPANSIONS = {
    "products": {"data.default_price": ("default_price", "prices")},
    "charges": {"data.customer": ("customer", "customers")},
    "subscriptions": {"data.customer": ("customer", "customers"),
                      "data.latest_invoice": ("latest_invoice", "invoices")},
    "invoices": {"data.customer": ("customer", "customers"), "data.subscription": ("subscription", "subscriptions")},
}


class ApiError(Exception):
    """An error answered in Stripe's envelope ``{"error": {...}}``."""

    def __init__(self, status: int, message: str, type_: str = "invalid_request_error", code: Optional[str] = None,
                 param: Optional[str] = None, headers: Optional[Dict[str, str]] = None):
        super().__init__(message)
        self.status, self.message, self.type, self.code, self.param = status, message, type_, code, param
        self.headers = headers or {}

    def body(self) -> dict:
        err = {"message": self.message, "type": self.type}
        if self.code:
            err["code"] = self.code
            err["doc_url"] = f"https://stripe.com/docs/error-codes/{self.code.replace('_', '-')}"
        if self.param:
            err["param"] = self.param
        return {"error": err}


def parse_query(query: str, allowed: frozenset) -> Dict[str, object]:
    """Parse Stripe's bracket syntax; unknown names -> 400 ``parameter_unknown`` (as Stripe answers)."""
    params: Dict[str, object] = {}
    for raw, value in parse_qsl(query, keep_blank_values=True):
        base, bracket, rest = raw.partition("[")
        if base not in allowed:
            raise ApiError(400, f"Received unknown parameter: {raw}", code="parameter_unknown", param=raw)
        if not bracket:
            if base in LIST_PARAMS:
                params.setdefault(base, []).append(value)
            else:
                params[base] = value
            continue
        sub = rest[:-1] if rest.endswith("]") else rest
        if base in LIST_PARAMS and (sub == "" or sub.isdigit()):
            params.setdefault(base, []).append(value)
        elif base in RANGE_PARAMS and sub in RANGE_OPS:
            current = params.get(base)
            if not isinstance(current, dict):
                current = params[base] = {}
            current[sub] = value
        elif base == "automatic_tax" and sub == "enabled":
            params[base] = {"enabled": value}
        else:
            raise ApiError(400, f"Received unknown parameter: {raw}", code="parameter_unknown", param=raw)
    return params


def _int(value, param: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ApiError(400, f"Invalid integer: {value}", code="parameter_invalid_integer", param=param)


def _bool(value, param: str) -> bool:
    if value in ("true", "false"):
        return value == "true"
    raise ApiError(400, f"Invalid boolean: {value}", code="parameter_invalid_boolean", param=param)


def range_bounds(params: dict, name: str) -> Dict[str, Optional[int]]:
    """``created=5`` or ``created[gte]=5`` -> dict(gt, gte, lt, lte) of ints (missing ones None)."""
    value = params.get(name)
    bounds = {op: None for op in RANGE_OPS}
    if value is None or value == "":
        return bounds
    if isinstance(value, dict):
        for op, v in value.items():
            bounds[op] = _int(v, f"{name}[{op}]")
    else:
        exact = _int(value, name)
        bounds["gte"] = bounds["lte"] = exact
    return bounds


def half_open(bounds: Dict[str, Optional[int]]) -> Tuple[Optional[int], Optional[int]]:
    """Bounds -> ``[lo, hi)`` in integer seconds (None = unbounded)."""
    los = [b for b in (bounds["gte"], None if bounds["gt"] is None else bounds["gt"] + 1) if b is not None]
    his = [b for b in (bounds["lt"], None if bounds["lte"] is None else bounds["lte"] + 1) if b is not None]
    return (max(los) if los else None), (min(his) if his else None)


def page_args(params: dict) -> Tuple[int, Optional[str], Optional[str]]:
    limit = 10
    if params.get("limit") not in (None, ""):
        limit = _int(params["limit"], "limit")
        if limit < 1:
            raise ApiError(400, "This value must be greater than or equal to 1.", code="parameter_invalid_integer",
                           param="limit")
        if limit > 100:
            raise ApiError(400, "This value must be less than or equal to 100.", code="parameter_invalid_integer",
                           param="limit")
    after = params.get("starting_after") or None
    before = params.get("ending_before") or None
    if after and before:
        raise ApiError(400, "You may only specify one of these parameters: ending_before, starting_after.",
                       param="ending_before")
    return limit, after, before


def build_predicate(endpoint: str, params: dict) -> Optional[Callable[[dict], bool]]:
    """Filters other than ``created`` (which the store answers with bisect); None when nothing to filter."""
    checks: List[Callable[[dict], bool]] = []
    for name in EQ_PARAMS:
        value = params.get(name)
        if value not in (None, ""):
            checks.append(lambda o, n=name, v=value: o.get(n) == v)
    for name in ("active", "shippable"):
        if params.get(name) not in (None, ""):
            wanted = _bool(params[name], name)
            checks.append(lambda o, n=name, w=wanted: o.get(n) is w)
    for name in RANGE_PARAMS - {"created"}:
        if params.get(name) not in (None, ""):
            lo, hi = half_open(range_bounds(params, name))
            checks.append(lambda o, n=name, lo=lo, hi=hi: o.get(n) is not None
                          and (lo is None or o[n] >= lo) and (hi is None or o[n] < hi))
    if params.get("ids"):
        ids = frozenset(params["ids"])
        checks.append(lambda o: o["id"] in ids)
    if params.get("price"):
        price = params["price"]
        checks.append(lambda o: any(i["price"]["id"] == price for i in o.get("items", {}).get("data", [])))
    tax = params.get("automatic_tax")
    if isinstance(tax, dict) and tax.get("enabled") not in (None, ""):
        enabled = _bool(tax["enabled"], "automatic_tax[enabled]")
        checks.append(lambda o: (o.get("automatic_tax") or {}).get("enabled") is enabled)
    status = params.get("status")
    if endpoint == "subscriptions":
        if status in (None, ""):
            checks.append(lambda o: o["status"] != "canceled")
        elif status == "all":
            pass
        elif status == "ended":
            checks.append(lambda o: o["status"] in ("canceled", "incomplete_expired"))
        elif status in SUBSCRIPTION_STATUSES:
            checks.append(lambda o: o["status"] == status)
        else:
            raise ApiError(400, "Invalid status: must be one of active, past_due, unpaid, canceled, incomplete, "
                                "incomplete_expired, trialing, all, ended, or paused", param="status")
    elif status not in (None, ""):
        checks.append(lambda o: o.get("status") == status)
    if endpoint == "events":
        if params.get("type") and params.get("types"):
            raise ApiError(400, "You may only specify one of these parameters: type, types.", param="types")
        if params.get("types"):
            types = params["types"]
            if len(types) > MAX_EVENT_TYPES:
                raise ApiError(400, f"You may pass at most {MAX_EVENT_TYPES} values for types.", param="types")
            wanted = frozenset(types)
            checks.append(lambda o: o["type"] in wanted)
        elif params.get("type"):
            pattern = params["type"]
            if "*" in pattern:
                checks.append(lambda o: fnmatch.fnmatchcase(o["type"], pattern))
            else:
                checks.append(lambda o: o["type"] == pattern)
    if not checks:
        return None
    if len(checks) == 1:
        return checks[0]
    return lambda o: all(check(o) for check in checks)


def expansions(endpoint: str, params: dict, prefix: str = "") -> List[Tuple[str, str]]:
    """``expand[]`` paths -> [(field, resource)]; unsupported paths -> 400 like Stripe's.

    A list expands ``data.<field>``; one object fetched by id expands ``<field>`` (``prefix="data."`` maps it)."""
    out = []
    for path in params.get("expand", []) or []:
        if path == "total_count":
            continue
        spec = EXPANSIONS.get(endpoint, {}).get(prefix + path)
        if spec is None:
            raise ApiError(400, f"This property cannot be expanded ({path}).", param="expand")
        out.append(spec)
    return out
