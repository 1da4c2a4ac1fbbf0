"""Every other list endpoint of Stripe's API, served with valid objects generated from its component schema.

The six resources the connector ships (``data.py``) have linked, realistic data. Any other list endpoint of the
OpenAPI extract (``/v1/tax_rates``, ``/v1/coupons``, ``/v1/treasury/financial_accounts``...) is a
``GenericResource``: its objects come from ``SchemaObjectFactory``, which walks the component schema, so a new
stream can be tried against the simulator before anyone writes realistic data for it. Generic objects are
deterministic per seed, mode and resource, generated on first use (the simulator's start-up and speed do not
change), and valid against their schema: every property present, enums honoured, nullable fields sometimes null,
expandable references as id strings, nested lists empty.

Served: the list endpoints without a path parameter (nested lists such as ``/v1/customers/{customer}/tax_ids``
need a parent and are not served; invoice lines keep their realistic implementation), minus the six, events and
``/v1/invoices/upcoming/lines`` (a preview whose URL the invoice-lines route owns).
"""

from __future__ import annotations

import functools
import random
import string
from dataclasses import dataclass
from typing import Dict, Optional

from .data import RESOURCES, T_END, T_START
from .money_trail import RESOURCES as MONEY_TRAIL
from .spec import components, list_endpoints
from .store import Collection

# Objects per generic resource and mode, per named size (``counts={"tax_rates": 40}`` overrides).
GENERIC_COUNTS = {"tiny": 4, "small": 12, "medium": 50, "large": 100}
# The six and the money trail (money_trail.py) are realistic, linked objects: they take precedence.
NOT_GENERIC = (frozenset(f"/v1/{r}" for r in RESOURCES + MONEY_TRAIL)
               | {"/v1/events", "/v1/invoices/upcoming/lines"})

# Stripe's id prefixes for common objects; any other object gets the initials of its name (``_fallback_prefix``).
ID_PREFIXES = {
    "account": "acct", "application_fee": "fee", "apple_pay_domain": "apwc", "balance_transaction": "txn",
    "billing.meter": "mtr", "checkout.session": "cs", "coupon": "co", "credit_note": "cn", "dispute": "dp",
    "file": "file", "file_link": "link", "invoiceitem": "ii", "issuing.card": "ic", "issuing.cardholder": "ich",
    "issuing.authorization": "iauth", "issuing.transaction": "ipi", "payment_intent": "pi",
    "payment_link": "plink", "payment_method": "pm", "plan": "plan", "price": "price", "promotion_code": "promo",
    "quote": "qt", "refund": "re", "review": "prv", "setup_attempt": "setatt", "setup_intent": "seti",
    "shipping_rate": "shr", "subscription_item": "si", "subscription_schedule": "sub_sched", "tax_code": "txcd",
    "tax_id": "txi", "tax_rate": "txr", "test_helpers.test_clock": "clock", "topup": "tu", "transfer": "tr",
    "treasury.financial_account": "fa", "treasury.transaction": "trxn", "webhook_endpoint": "we",
    "customer": "cus", "charge": "ch", "invoice": "in", "product": "prod", "payout": "po", "subscription": "sub",
    "event": "evt", "line_item": "il", "source": "src", "mandate": "mandate", "bank_account": "ba", "card": "card",
}
MAX_DEPTH = 4  # below this many nested components, optional branches (nullable, arrays, anyOf) stay shallow
_ALNUM = string.ascii_letters + string.digits
WORDS = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliett")


def _fallback_prefix(object_name: str) -> str:
    words = object_name.replace(".", "_").split("_")
    return "".join(w[0] for w in words) if len(words) > 1 else object_name[:4]


def id_prefix(object_name: str) -> str:
    return ID_PREFIXES.get(object_name) or _fallback_prefix(object_name)


@dataclass(frozen=True)
class GenericResource:
    """One served list endpoint: ``name`` is its URL after ``/v1/`` (``tax_rates``, ``treasury/transactions``)."""

    name: str
    component: str
    object_name: str
    query: frozenset
    by_id_query: Optional[frozenset]
    has_created: bool
    has_livemode: bool

    @property
    def url(self) -> str:
        return f"/v1/{self.name}"

    @property
    def permission(self) -> str:
        """The restricted-key permission Stripe names in a 403: ``rak_<object>_read`` (dots as underscores)."""
        return f"rak_{self.object_name.replace('.', '_')}_read"


class GenericCatalog:
    """The served generic resources, by name, and how a ``/v1/...`` path maps onto them."""

    def __init__(self, resources: Dict[str, GenericResource]):
        self.resources = resources

    @classmethod
    @functools.lru_cache(maxsize=1)
    def load(cls) -> "GenericCatalog":
        schemas = components()
        resources = {}
        for path, endpoint in list_endpoints().items():
            if endpoint["path_parameters"] or path in NOT_GENERIC or len(endpoint["components"]) != 1:
                continue
            component = endpoint["components"][0]
            properties = schemas[component].get("properties", {})
            object_enum = properties.get("object", {}).get("enum") or [component]
            by_id = endpoint["by_id"]
            name = path[len("/v1/"):]
            resources[name] = GenericResource(
                name=name, component=component, object_name=object_enum[0], query=frozenset(endpoint["query"]),
                by_id_query=None if by_id is None else frozenset(by_id["query"]),
                has_created="created" in properties, has_livemode="livemode" in properties)
        return cls(resources)

    def __contains__(self, name: str) -> bool:
        return name in self.resources

    def __getitem__(self, name: str) -> GenericResource:
        return self.resources[name]

    def route(self, path: str):
        """``/v1/tax_rates`` -> (resource, None); ``/v1/tax_rates/txr_1`` -> (resource, "txr_1"); else None."""
        rest = path.strip("/")[len("v1/"):] if path.strip("/").startswith("v1/") else None
        if not rest:
            return None
        if rest in self.resources:
            return self.resources[rest], None
        head, _, tail = rest.rpartition("/")
        resource = self.resources.get(head)
        if resource is not None and tail and resource.by_id_query is not None:
            return resource, tail
        return None


class SchemaObjectFactory:
    """Builds objects that validate against a component schema, from one seeded random generator.

    ``build`` makes one top-level object: its id carries the object's prefix, ``object`` its name, ``created``
    (when the schema has one) and ``livemode`` are set by the caller's arguments. Everything below follows the
    schema: every property (only the required ones deep down), enums, nullable fields
    null about a third of the time, expandable references as id strings, nested lists as empty list envelopes.
    """

    def __init__(self, resource: GenericResource, rng: random.Random, livemode: bool):
        self.resource = resource
        self.rng = rng
        self.livemode = livemode
        self.schemas = components()

    def new_id(self, object_name: Optional[str] = None) -> str:
        body = "".join(self.rng.choices(_ALNUM, k=24))
        return f"{id_prefix(object_name or self.resource.object_name)}_{body}"

    def build(self, created: Optional[int] = None) -> dict:
        obj = self._object(self.schemas[self.resource.component], depth=0, name=self.resource.name)
        obj["id"] = self.new_id()
        obj["object"] = self.resource.object_name
        for field, value in obj.items():  # a nested list's URL names its parent, as Stripe's do
            if isinstance(value, dict) and value.get("object") == "list" and value["url"] == self._nested_url(field):
                value["url"] = f"{self.resource.url}/{obj['id']}/{field}"
        if self.resource.has_created:
            obj["created"] = int(self.rng.randint(T_START, T_END) if created is None else created)
        if self.resource.has_livemode:
            obj["livemode"] = self.livemode
        return obj

    def _value(self, schema: dict, depth: int, name: str):
        if "$ref" in schema:
            return self._value(self.schemas[schema["$ref"].rsplit("/", 1)[-1]], depth + 1, name)
        if schema.get("nullable") and (depth >= MAX_DEPTH or self.rng.random() < 0.3):
            return None
        if "anyOf" in schema:
            return self._any_of(schema, depth, name)
        if "enum" in schema:
            return self.rng.choice(schema["enum"])
        kind = schema.get("type")
        if kind == "string":
            return self._string(schema, name)
        if kind == "integer":
            if schema.get("format") == "unix-time":
                return self.rng.randint(T_START, T_END)
            return self.rng.randint(0, 10_000)
        if kind == "number":
            return round(self.rng.uniform(0, 100), 2)
        if kind == "boolean":
            return self.rng.random() < 0.5
        if kind == "array":
            if depth >= MAX_DEPTH - 2:
                return []
            return [self._value(schema.get("items", {}), depth + 1, name) for _ in range(self.rng.randint(0, 2))]
        if kind == "object" or "properties" in schema or "additionalProperties" in schema:
            return self._object(schema, depth, name)
        return {}  # untyped: any value is valid

    def _any_of(self, schema: dict, depth: int, name: str):
        options = schema["anyOf"]
        if "x-expansionResources" in schema:  # an expandable reference: Stripe sends the id string
            target = schema["x-expansionResources"]["oneOf"][0]["$ref"].rsplit("/", 1)[-1]
            target_enum = self.schemas[target].get("properties", {}).get("object", {}).get("enum") or [target]
            return self.new_id(target_enum[0])
        if depth >= MAX_DEPTH:  # prefer an option that does not nest further
            flat = [o for o in options if "$ref" not in o and o.get("type") != "object"]
            options = flat or options
        return self._value(self.rng.choice(options), depth, name)

    def _string(self, schema: dict, name: str) -> str:
        if schema.get("format") == "decimal":
            return f"{self.rng.randint(0, 9999)}.{self.rng.randint(0, 99):02d}"
        if name == "currency":
            value = self.rng.choice(("usd", "eur", "gbp"))
        elif name in ("country", "default_currency_country"):
            value = self.rng.choice(("US", "FR", "GB"))
        elif name == "id":
            value = self.new_id()
        else:
            value = f"{name}_{self.rng.choice(WORDS)}_{self.rng.randint(1, 999)}"
        return value[: schema.get("maxLength", len(value))]

    def _nested_url(self, name: str) -> str:
        return f"{self.resource.url}/{name}"

    def _object(self, schema: dict, depth: int, name: str) -> dict:
        properties = schema.get("properties", {})
        if {"object", "data", "has_more", "url"} <= set(properties):  # a nested list: empty
            url = properties["url"].get("pattern", self._nested_url(name))
            return {"object": "list", "data": [], "has_more": False, "url": url.lstrip("^").replace("[^/]+", "x")}
        if not properties:
            extra = schema.get("additionalProperties")
            if isinstance(extra, dict) and extra.get("type") == "string" and self.rng.random() < 0.3:
                return {"source": "simulator"}
            return {}
        # Stripe sends every property, required or not (nullable ones as null); deep down, only the required ones.
        required = set(schema.get("required", properties))
        return {field: self._value(prop, depth, field) for field, prop in properties.items()
                if depth < MAX_DEPTH or field in required}


class GenericObjects:
    """One generic resource in one mode: its collection, the factory for objects created later, and the creation
    times of objects whose schema has no ``created`` (kept outside the object so that it stays valid)."""

    def __init__(self, resource: GenericResource, seed: int, livemode: bool, count: int):
        self.resource = resource
        rng = random.Random(f"stripe-simulator/{seed}/{'live' if livemode else 'test'}/{resource.name}")
        self.factory = SchemaObjectFactory(resource, rng, livemode)
        self.times: Dict[str, int] = {}
        span = max((T_END - T_START) // max(count, 1), 1)
        initial = [self.new(T_START + i * span + rng.randrange(span)) for i in range(count)]
        self.collection = Collection(initial, created_of=None if resource.has_created else self._time)

    def _time(self, obj: dict) -> int:
        return self.times.get(obj["id"], 0)

    def new(self, created: int, **fields) -> dict:
        """A new object created at ``created`` with ``fields`` overriding generated values (not yet stored)."""
        obj = self.factory.build(created)
        obj.update(fields)
        self.times[obj["id"]] = created
        return obj
