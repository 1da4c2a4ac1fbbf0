"""``StripeSimulator``: the datasets of both modes, the /v1 list API, the control API and the HTTP server."""

from __future__ import annotations

import base64
import copy
import functools
import gc
import json
import random
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, List, Optional
from urllib.parse import parse_qsl, urlsplit

from . import keys as keys_module
from . import money_trail
from .behaviour import Faults, Latency, PageHooks, RateLimiter, RateLimits, Stats
from .data import OBJECT_NAME, RESOURCES, Dataset
from .generic import GENERIC_COUNTS, GenericCatalog, GenericObjects
from .listing import ApiError, build_predicate, expansions, half_open, page_args, parse_query, range_bounds
from .spec import API_VERSION, event_types, query_parameters
from .store import Collection, Record, dumps, list_body

EVENT_RETENTION_SECONDS = 30 * 86400
MODES = ("test", "live")
EVENT_PREFIX = {"customers": "customer", "charges": "charge", "subscriptions": "customer.subscription",
                "invoices": "invoice", "products": "product", "payouts": "payout", **money_trail.EVENT_PREFIX}
SERVED = RESOURCES + money_trail.RESOURCES  # the six, then the money trail (money_trail.py)
OBJECT_NAME = {**OBJECT_NAME, **money_trail.OBJECT_NAME}


class _Collections(dict):
    """Resource -> Collection; a generic resource's collection is generated the first time it is asked for."""

    def __init__(self, generic: Callable[[str], GenericObjects]):
        super().__init__()
        self.generic_objects: Dict[str, GenericObjects] = {}
        self._make_generic = generic

    def __missing__(self, resource: str) -> Collection:
        objects = self.generic_objects[resource] = self._make_generic(resource)  # KeyError when unknown
        self[resource] = objects.collection
        return objects.collection


class ModeState:
    """Everything one mode (test or live) holds: collections per resource plus events, prices, invoice lines.

    The six realistic resources come from ``dataset``; any other served resource from ``generic`` on first use."""

    def __init__(self, dataset: Dataset, generic: Callable[[str], GenericObjects],
                 clock: Callable[[], float] = time.time):
        self.livemode = dataset.livemode
        self.factory = dataset.factory
        self.trail = money_trail.build(dataset, clock)  # completes the seeded payouts: before they are served
        self.collections: Dict[str, Collection] = _Collections(generic)
        self.collections.update({r: Collection(dataset.objects[r]) for r in RESOURCES})
        for resource in money_trail.RESOURCES:  # realistic, linked money-trail objects before generic ones
            self.collections[resource] = Collection(self.trail.objects[resource],
                                                    created_of=money_trail.created_of(resource))
        self.collections["events"] = Collection()
        self.prices: Dict[str, Record] = dict(self.collections["prices"].by_id)
        self.lines: Dict[str, List[Record]] = {iid: [Record(l) for l in ls]
                                               for iid, ls in dataset.invoice_lines.items()}
        self.deleted: Dict[str, Dict[str, dict]] = {r: {} for r in SERVED}
        self.account: Optional[str] = None  # the connected account this data belongs to (None: the platform)

    def lookup(self, resource: str, obj_id: str) -> Optional[dict]:
        if resource == "prices":
            rec = self.prices.get(obj_id)
            return rec.obj if rec else None
        rec = self.collections[resource].by_id.get(obj_id)
        if rec is not None:
            return rec.obj
        gone = self.deleted.get(resource, {}).get(obj_id)  # (only the six: lookups serve their expansions)
        if gone is not None:
            return {"id": obj_id, "object": OBJECT_NAME[resource], "deleted": True}
        return None


@dataclass
class ConnectedAccount:
    """A connected account of the platform: its ``account`` object, the counts of its own dataset, and whether
    it revoked the platform's access (its requests then answer 403 ``account_invalid``)."""

    obj: dict
    counts: Dict[str, int]
    revoked: bool = False


class StripeSimulator:
    """A local Stripe API: the six realistic list endpoints, events, invoice lines and every other list endpoint
    of the OpenAPI extract with generated objects (``generic.py``). See the package docstring."""

    def __init__(self, seed: int = 7, size: Optional[str] = None, counts: Optional[Dict[str, int]] = None,
                 rate_limits: Optional[RateLimits] = None, latency: Optional[Latency] = None,
                 clock: Callable[[], float] = time.time, preload: Iterable[str] = MODES, port: int = 0):
        self.seed = seed
        self.size = size
        self.catalog = GenericCatalog.load()
        counts = dict(counts or {})
        generic_counts = {name: int(counts.pop(name)) for name in list(counts) if name in self.catalog}
        unknown = set(counts) - set(RESOURCES)
        if unknown:
            raise ValueError(f"unknown resources {sorted(unknown)}; known: {RESOURCES} and {sorted(self.catalog.resources)}")
        self.counts = Dataset.resolve_counts(size, counts)
        self.generic_count = GENERIC_COUNTS[size or "small"]
        self.generic_counts = generic_counts  # per generic resource; others get generic_count
        self.unknown_event_types: set = set()  # recorded event types Stripe's event enum does not list
        self.rate_limits = rate_limits
        self.latency = latency or Latency()
        self.clock = clock
        self.keys = keys_module.KeyRegistry.default()
        self.faults = Faults(seed)
        self.hooks = PageHooks()
        self.stats = Stats()
        self.port = port
        self._preload = tuple(preload)
        self._states: Dict[object, ModeState] = {}  # mode (the platform), or (mode, connected account id)
        self._accounts: Dict[str, ConnectedAccount] = {}  # Stripe Connect: the platform's connected accounts
        self._account_ids = random.Random(f"accounts/{seed}")
        self._state_lock = threading.Lock()
        self._lock = threading.RLock()  # guards collections against concurrent mutation while paging
        self._limiter = RateLimiter(rate_limits) if rate_limits else None
        self._latency_rng = random.Random(f"latency/{seed}")
        self._request_ids = random.Random(f"requests/{seed}")
        self._params = query_parameters()
        for name, generic in self.catalog.resources.items():
            self._params[name] = generic.query
            if generic.by_id_query is not None:
                self._params[f"{name}_by_id"] = generic.by_id_query
        self._server: Optional[ThreadingHTTPServer] = None
        self._thread: Optional[threading.Thread] = None
        self.startup_seconds: Dict[str, float] = {}

    # ---- lifecycle ----------------------------------------------------------------------------------------
    def start(self) -> "StripeSimulator":
        for mode in self._preload:
            self._state(mode)
        server = _Server(("127.0.0.1", self.port), _Handler)
        server.simulator = self
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="stripe-simulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "StripeSimulator":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("simulator not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def rate_limits_enabled(self) -> bool:
        return self._limiter is not None

    def set_rate_limits(self, rate_limits: Optional[RateLimits]) -> None:
        """Switch rate limiting on (with these budgets) or off (None) while running."""
        self.rate_limits = rate_limits
        self._limiter = RateLimiter(rate_limits) if rate_limits else None

    def add_key(self, key: str, mode: Optional[str] = None, resources: Optional[Iterable[str]] = None,
                revoked: bool = False) -> keys_module.KeyInfo:
        """Register a key; ``resources`` None = read everything, else the set readable (others -> 403)."""
        return self.keys.add(key, mode=mode, resources=resources, revoked=revoked,
                             known=set(keys_module.PERMISSIONS) | set(self.catalog.resources))

    def _state(self, mode: str, account: Optional[str] = None) -> ModeState:
        """The data of one mode of the platform (``account`` None, or an id not connected), or of a connected
        account (its own dataset, generated on first use from the seed and its id)."""
        if mode not in MODES:
            raise ValueError(f"mode must be 'test' or 'live', not {mode!r}")
        connected = self._accounts.get(account) if account else None
        key = mode if connected is None else (mode, account)
        state = self._states.get(key)
        if state is None:
            with self._state_lock:
                state = self._states.get(key)
                if state is None:
                    started = time.perf_counter()
                    was_enabled = gc.isenabled()
                    gc.disable()
                    seed = self.seed if connected is None else f"{self.seed}/{account}"
                    counts = self.counts if connected is None else connected.counts
                    try:
                        dataset = Dataset.generate(seed=seed, counts=counts, livemode=mode == "live")
                        empty = connected is not None and not any(counts.values())  # an empty account: nothing
                        state = ModeState(dataset, self._generic_maker(mode == "live", seed, empty),
                                          lambda: self.clock())
                        state.account = None if connected is None else account
                    finally:
                        if was_enabled:
                            gc.enable()
                    if sum(self.counts.values()) >= 50_000:
                        gc.freeze()  # keep the collector from re-scanning a big, long-lived heap while serving
                    if connected is None:
                        self.startup_seconds[mode] = time.perf_counter() - started
                    self._states[key] = state
        return state

    def _generic_maker(self, livemode: bool, seed=None, empty: bool = False) -> Callable[[str], GenericObjects]:
        def make(resource: str) -> GenericObjects:
            count = 0 if empty else self.generic_counts.get(resource, self.generic_count)
            return GenericObjects(self.catalog[resource], self.seed if seed is None else seed, livemode, count)
        return make

    def object_name(self, resource: str) -> str:
        """``customers`` -> ``customer``, ``tax_rates`` -> ``tax_rate``, ``treasury/transactions`` ->
        ``treasury.transaction`` (the ``object`` field, and the stem of event types)."""
        return OBJECT_NAME[resource] if resource in OBJECT_NAME else self.catalog[resource].object_name

    def permission(self, resource: str) -> str:
        """The ``rak_*_read`` permission a 403 names: keys.py's table for the six, the generic rule otherwise."""
        return keys_module.PERMISSIONS.get(resource) or self.catalog[resource].permission

    def _event_prefix(self, resource: str) -> str:
        return EVENT_PREFIX.get(resource) or self.object_name(resource)

    # ---- Stripe Connect: connected accounts ------------------------------------------------------------------
    @property
    def platform_account_id(self) -> str:
        """The platform's own account id (``GET /v1/account`` without ``Stripe-Account``)."""
        return keys_module.ACCOUNT_ID

    def connect_account(self, account_id: Optional[str] = None, size: Optional[str] = None,
                        counts: Optional[Dict[str, int]] = None, created: Optional[int] = None) -> str:
        """Connect an account to the platform; returns its id. Its data is its own dataset (``size`` as for the
        simulator, ``"empty"`` for none, or ``counts``), generated on first use from the seed and the id, in both
        modes; it is listed by ``GET /v1/accounts`` and read with ``Stripe-Account: <id>``."""
        if size == "empty":
            resolved = {name: 0 for name in RESOURCES}
        else:
            resolved = Dataset.resolve_counts(size or ("tiny" if counts is None else None), counts)
        if account_id is None:
            account_id = "acct_1" + "".join(self._account_ids.choices(
                "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", k=15))
        if account_id in self._accounts or account_id == self.platform_account_id:
            raise ValueError(f"account {account_id} already exists")
        obj = {"id": account_id, "object": "account", "type": "standard", "country": "US",
               "default_currency": "usd", "charges_enabled": True, "payouts_enabled": True,
               "details_submitted": True, "email": f"owner@{account_id.lower()}.example.com",
               "created": int(self.clock() if created is None else created)}
        with self._state_lock:
            self._accounts[account_id] = ConnectedAccount(obj, resolved)
        return account_id

    def revoke_account(self, account_id: str) -> None:
        """The account disconnects the platform: its requests answer 403 ``account_invalid`` from now on."""
        self._accounts[account_id].revoked = True

    def remove_account(self, account_id: str) -> None:
        """The account leaves the platform (deleted, or its connection removed): ``GET /v1/accounts`` no longer lists
        it."""
        with self._lock:
            del self._accounts[account_id]

    def connected_accounts(self) -> List[str]:
        """The connected accounts' ids, newest first (as ``GET /v1/accounts`` lists them), revoked ones included."""
        return [a.obj["id"] for a in self._accounts_newest_first()]

    def _accounts_newest_first(self) -> List[ConnectedAccount]:
        with self._state_lock:
            accounts = list(self._accounts.values())
        order = {a.obj["id"]: n for n, a in enumerate(accounts)}
        return sorted(accounts, key=lambda a: (a.obj["created"], order[a.obj["id"]]), reverse=True)

    def _connect_route(self, path: str, query: str, info, acting: Optional[str]) -> Optional[tuple]:
        """``GET /v1/account`` and ``GET /v1/accounts[/<id>]``; None for any other path."""
        parts = path.strip("/").split("/")
        if parts == ["v1", "account"]:
            connected = self._accounts.get(acting) if acting else None
            obj = connected.obj if connected else {"id": info.account, "object": "account", "type": "standard",
                                                   "country": "US", "default_currency": "usd",
                                                   "charges_enabled": True, "payouts_enabled": True}
            return 200, dumps(obj), {}, info.mode, 1
        if len(parts) < 2 or parts[1] != "accounts" or len(parts) > 3:
            return None
        if not info.can_read("accounts"):
            raise ApiError(403, f"The provided key '{keys_module.redact_forbidden(info.key)}' does not have the "
                                f"required permissions for this endpoint on account '{acting or info.account}'. "
                                f"Having the '{self.permission('accounts')}' permission would allow this request to "
                                f"continue.")
        if len(parts) == 3:
            connected = self._accounts.get(parts[2])
            if connected is None:
                raise ApiError(404, f"No such account: '{parts[2]}'", code="resource_missing", param="account")
            return 200, dumps(connected.obj), {}, info.mode, 1
        params = parse_query(query, self._params["accounts"])
        limit, after, before = page_args(params)
        listed = [] if acting and acting in self._accounts else self._accounts_newest_first()
        start = 0
        if after:
            ids = [a.obj["id"] for a in listed]
            if after not in ids:
                raise ApiError(400, f"No such account: '{after}'", code="resource_missing", param="starting_after")
            start = ids.index(after) + 1
        page = listed[start:start + limit]
        body = {"object": "list", "url": "/v1/accounts", "has_more": start + limit < len(listed),
                "data": [a.obj for a in page]}
        return 200, dumps(body), {}, info.mode, len(page)

    # ---- reading (tests assert exact sync against these) --------------------------------------------------
    def objects(self, resource: str, mode: str = "test", account: Optional[str] = None) -> List[dict]:
        """All current objects of a resource, newest first, exactly as the API renders them (of a connected
        account when ``account`` names one)."""
        state = self._state(mode, account)
        with self._lock:
            payloads = [r.json for r in state.collections[resource].newest_first()]
        return [json.loads(p) for p in payloads]

    def get(self, resource: str, obj_id: str, mode: str = "test", account: Optional[str] = None) -> dict:
        state = self._state(mode, account)
        with self._lock:
            rec = state.collections[resource].by_id.get(obj_id)
            if rec is None:
                raise KeyError(f"no {resource} {obj_id} in {mode} mode")
            return json.loads(rec.json)

    def invoice_lines(self, invoice_id: str, mode: str = "test", account: Optional[str] = None) -> List[dict]:
        """The full line list of an invoice (the invoice itself embeds only the first 10)."""
        state = self._state(mode, account)
        with self._lock:
            return [json.loads(r.json) for r in state.lines[invoice_id]]

    def sub_list_items(self, url: str, mode: str = "test", account: Optional[str] = None) -> List[dict]:
        """Every item of an embedded money-trail list (``/v1/transfers/{id}/reversals``...), newest first."""
        state = self._state(mode, account)
        with self._lock:
            return json.loads(dumps(state.trail.sub_lists.get(url, [])))

    def paid_out_by(self, payout_id: str, mode: str = "test", account: Optional[str] = None) -> List[dict]:
        """The balance transactions an automatic payout paid out, its own included (what
        ``GET /v1/balance_transactions?payout=<id>`` lists); empty for a manual payout."""
        state = self._state(mode, account)
        with self._lock:
            ids = list(state.trail.payout_transactions.get(payout_id, []))
            return [json.loads(state.collections["balance_transactions"].by_id[i].json) for i in ids]

    def events(self, mode: str = "test", types: Optional[Iterable[str]] = None,
               account: Optional[str] = None) -> List[dict]:
        """Retained events (30 days against ``clock``), newest first."""
        wanted = set(types) if types else None
        cutoff = int(self.clock()) - EVENT_RETENTION_SECONDS
        return [e for e in self.objects("events", mode, account)
                if e["created"] >= cutoff and (wanted is None or e["type"] in wanted)]

    def reset_stats(self) -> None:
        self.stats.reset()

    # ---- control API: create / update / delete, each recording Stripe's event ----------------------------
    def create(self, resource: str, mode: str = "test", created: Optional[int] = None,
               line_count: Optional[int] = None, account: Optional[str] = None, **fields) -> dict:
        """Create an object with a chosen ``created`` (default: clock now) and field overrides.

        Records ``<type>.created`` (charges: ``charge.succeeded|pending|failed``) dated at ``created``.
        Invoices take ``line_count`` (default 2) and embed the first 10 lines.
        """
        self._check_resource(resource)
        state = self._state(mode, account)
        created = int(self.clock() if created is None else created)
        if resource in self.catalog and resource not in SERVED:
            return self._create_generic(state, resource, created, fields)
        with self._lock:
            obj, lines, prices = self._build(state, resource, created, line_count, fields)
            for key, value in fields.items():
                obj[key] = value
            obj["created"] = created
            obj["livemode"] = state.livemode
            for p in prices:
                state.prices[p["id"]] = Record(p)
            if lines is not None:
                state.lines[obj["id"]] = [Record(l) for l in lines]
            if resource in ("charges", "payouts"):
                self._money_trail_of(state, resource, obj, fields.get("currency"))
            state.collections[resource].add(obj)
            if resource == "charges":
                event_type = f"charge.{obj['status']}"
            else:
                event_type = f"{EVENT_PREFIX[resource]}.created"
            self._record_event(state, event_type, obj, created=created)
            return copy.deepcopy(obj)

    def _money_trail_of(self, state: ModeState, resource: str, obj: dict, currency: Optional[str]) -> None:
        """A new charge's balance transaction, payment intent, refund and dispute; a new payout's transactions."""
        trail = state.trail
        before = {r: len(trail.objects[r]) for r in money_trail.RESOURCES}
        if resource == "charges":
            trail.for_charge(obj, index=1)  # index 1: no application fee or transfer
        else:
            trail.pay_out(obj, currency)
        for r in money_trail.RESOURCES:
            for new in trail.objects[r][before[r]:]:
                state.collections[r].add(new)

    def settle_balance(self, mode: str = "test", until: Optional[int] = None) -> int:
        """Flip the pending balance transactions due by ``until`` (default: the clock) to ``available``, as Stripe
        does without any event; returns how many."""
        state = self._state(mode)
        with self._lock:
            return money_trail.settle(state.collections["balance_transactions"].records,
                                      int(self.clock() if until is None else until))
    def _create_generic(self, state: ModeState, resource: str, created: int, fields: dict) -> dict:
        """A generated object of a generic resource with ``fields`` overriding; records ``<object>.created``."""
        with self._lock:
            collection = state.collections[resource]
            obj = state.collections.generic_objects[resource].new(created, **fields)
            if "livemode" in obj:
                obj["livemode"] = state.livemode
            collection.add(obj)
            self._record_event(state, f"{self.object_name(resource)}.created", obj, created=created)
            return copy.deepcopy(obj)

    def _build(self, state: ModeState, resource: str, created: int, line_count: Optional[int], fields: dict):
        f = state.factory
        rng = f.rng
        customers = state.collections["customers"]

        def customer_for() -> dict:
            wanted = fields.get("customer")
            if isinstance(wanted, str):
                rec = customers.by_id.get(wanted)
                if rec is None:
                    raise KeyError(f"no customer {wanted} in {'live' if state.livemode else 'test'} mode")
                return rec.obj
            if not customers.records:
                raise ValueError("create a customer first")
            return rng.choice(customers.records).obj

        if resource == "customers":
            return f.customer(created), None, []
        if resource == "charges":
            return f.charge(created, customer_for()), None, []
        if resource == "payouts":
            return f.payout(created, status=fields.get("status")), None, []
        if resource == "products":
            prices: List[dict] = []
            product = f.product(created, active=fields.get("active", True), prices=prices)
            return product, None, prices
        recurring = [r.obj for r in state.prices.values() if r.obj["type"] == "recurring"]
        if not recurring:
            raise ValueError("no recurring price to subscribe to; create a product first")
        if resource == "subscriptions":
            return f.subscription(created, customer_for(), [rng.choice(recurring)],
                                  status=fields.get("status")), None, []
        if resource == "invoices":
            sub = None
            if isinstance(fields.get("subscription"), str):
                sub_rec = state.collections["subscriptions"].by_id.get(fields["subscription"])
                sub = sub_rec.obj if sub_rec else None
            cust = customer_for() if sub is None else customers.by_id[sub["customer"]].obj
            invoice, lines = f.invoice(created, cust, sub, recurring, 2 if line_count is None else line_count,
                                       status=fields.get("status"))
            return invoice, lines, []
        raise ValueError(resource)

    def update(self, resource: str, obj_id: str, mode: str = "test", event_type: Optional[str] = None,
               account: Optional[str] = None, **fields) -> dict:
        """Change fields; records the matching event with ``data.previous_attributes`` (changed keys only),
        dated ``clock()``: ``charge.refunded``, ``customer.subscription.deleted`` (status -> canceled),
        ``invoice.paid``, ``payout.paid|failed|canceled``, otherwise ``<type>.updated``."""
        self._check_resource(resource)
        state = self._state(mode, account)
        with self._lock:
            coll = state.collections[resource]
            rec = coll.by_id.get(obj_id)
            if rec is None:
                raise KeyError(f"no {resource} {obj_id} in {mode} mode")
            obj = rec.obj
            if resource == "products" and "updated" not in fields:
                fields["updated"] = int(self.clock())
            previous = {k: copy.deepcopy(obj.get(k)) for k, v in fields.items() if obj.get(k) != v}
            if "created" in fields and fields["created"] != obj.get("created"):
                coll.remove(obj_id)
                obj.update(fields)
                coll.add(obj)
            else:
                obj.update(fields)
                rec.invalidate()
            if event_type is None:
                event_type = self._update_event_type(resource, previous, obj, self._event_prefix(resource))
            self._record_event(state, event_type, obj, previous=previous)
            if (resource == "payouts" and obj.get("automatic") and obj["status"] == "paid"
                    and obj.get("reconciliation_status") == "in_progress"):
                obj["reconciliation_status"] = "completed"  # its transactions are final: Stripe says so
                rec.invalidate()
                self._record_event(state, "payout.reconciliation_completed", obj,
                                   previous={"reconciliation_status": "in_progress"})
            return copy.deepcopy(obj)

    @staticmethod
    def _update_event_type(resource: str, previous: dict, obj: dict, prefix: str) -> str:
        status_changed = "status" in previous
        if resource == "charges" and (("refunded" in previous and obj["refunded"])
                                      or obj["amount_refunded"] > (previous.get("amount_refunded") or 0)
                                      and "amount_refunded" in previous):
            return "charge.refunded"
        if resource == "subscriptions" and status_changed and obj["status"] == "canceled":
            return "customer.subscription.deleted"
        if resource == "invoices" and status_changed:
            named = {"paid": "invoice.paid", "void": "invoice.voided", "open": "invoice.finalized",
                     "uncollectible": "invoice.marked_uncollectible"}
            if obj["status"] in named:
                return named[obj["status"]]
        if resource == "payouts" and status_changed and obj["status"] in ("paid", "failed", "canceled"):
            return f"payout.{obj['status']}"
        return f"{prefix}.updated"

    def delete(self, resource: str, obj_id: str, mode: str = "test", account: Optional[str] = None) -> dict:
        """Remove an object from its list and record ``<type>.deleted`` (subscriptions:
        ``customer.subscription.deleted``). Stripe cannot delete charges or payouts, nor can the simulator."""
        self._check_resource(resource)
        if resource in SERVED and resource not in RESOURCES + money_trail.DELETABLE or resource in ("charges",
                                                                                                  "payouts"):
            raise ValueError(f"Stripe has no way to delete {resource}")
        state = self._state(mode, account)
        with self._lock:
            rec = state.collections[resource].remove(obj_id)
            state.deleted.setdefault(resource, {})[obj_id] = rec.obj
            self._record_event(state, f"{self._event_prefix(resource)}.deleted", rec.obj)
            return copy.deepcopy(rec.obj)

    def record_event(self, event_type: str, data_object: dict, mode: str = "test", created: Optional[int] = None,
                     listed_last: bool = False, account: Optional[str] = None) -> dict:
        """Record an event as is, without changing any object: events about related objects (a
        ``customer.discount.deleted`` naming its customer, a ``price.updated`` naming its product) or dated at a
        chosen second. Within a second Stripe's order is not guaranteed: by default the new event is listed first
        (newest), with ``listed_last=True`` after the events already in that second."""
        state = self._state(mode, account)
        with self._lock:
            return copy.deepcopy(self._record_event(state, event_type, data_object, created=created,
                                                    listed_last=listed_last))

    def _record_event(self, state: ModeState, event_type: str, obj: dict, previous: Optional[dict] = None,
                      created: Optional[int] = None, listed_last: bool = False) -> dict:
        if event_type not in _known_event_types():
            self.unknown_event_types.add(event_type)  # still recorded: a client must ignore what it did not ask for
        data = {"object": json.loads(dumps(obj))}
        if previous is not None:
            data["previous_attributes"] = previous
        event = {
            "id": state.factory.ids.new("events"), "object": "event", "api_version": API_VERSION,
            "created": int(self.clock() if created is None else created), "data": data,
            "livemode": state.livemode, "pending_webhooks": 0,
            "request": {"id": self._request_id(), "idempotency_key": None}, "type": event_type,
        }
        if state.account:
            event["account"] = state.account  # Stripe names the connected account on its events
        state.collections["events"].add(event, listed_last=listed_last)
        return event

    def _check_resource(self, resource: str) -> None:
        if resource not in SERVED and resource not in self.catalog:
            raise ValueError(f"unknown resource {resource!r}; known: {RESOURCES} and the generic ones "
                             f"(sim.catalog.resources)")

    def _request_id(self) -> str:
        return "req_" + "".join(self._request_ids.choices("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", k=14))

    # ---- the /v1 API --------------------------------------------------------------------------------------
    def handle_v1(self, path: str, query: str, headers) -> tuple:
        """Answer one GET; returns ``(status, body bytes, extra headers, mode, records)``."""
        key = self._authenticate(headers)
        info = self.keys.get(key)
        mode = info.mode
        acting = headers.get("Stripe-Account") or None
        connected = self._accounts.get(acting) if acting else None
        if connected is not None and connected.revoked:
            raise ApiError(403, f"The provided key '{keys_module.redact_forbidden(key)}' does not have access to "
                                f"account '{acting}' (or that account does not exist). Application access may have "
                                f"been revoked.", code="account_invalid")
        answered = self._connect_route(path, query, info, acting)
        if answered is not None:
            return answered
        parts = path.strip("/").split("/")
        obj_id = None
        sub_list = money_trail.sub_list_url(parts)
        if len(parts) == 2 and parts[1] in SERVED + ("events",):
            endpoint, resource, invoice_id = parts[1], parts[1], None
        elif len(parts) == 4 and parts[1] == "invoices" and parts[3] == "lines":
            endpoint, resource, invoice_id = "invoice_lines", "invoices", parts[2]
        elif sub_list is not None:
            endpoint, resource, invoice_id = f"{parts[1]}_sub_list", parts[1], None
        elif len(parts) == 3 and parts[1] in SERVED and parts[2]:
            endpoint, resource, invoice_id, obj_id = f"{parts[1]}_by_id", parts[1], None, parts[2]
        else:
            routed = self.catalog.route(path)
            if routed is None:
                raise ApiError(404, f"Unrecognized request URL (GET: {path}). Please see https://stripe.com/docs "
                                    f"or we can help at https://support.stripe.com/.")
            resource, obj_id, invoice_id = routed[0].name, routed[1], None
            endpoint = resource if obj_id is None else f"{resource}_by_id"
        account = headers.get("Stripe-Account") or info.account
        if not info.can_read(resource) or self.faults.is_forbidden(resource, key):
            raise ApiError(403, f"The provided key '{keys_module.redact_forbidden(key)}' does not have the required "
                                f"permissions for this endpoint on account '{account}'. Having the "
                                f"'{self.permission(resource)}' permission would allow this request to "
                                f"continue.")
        limiter = self._limiter
        if limiter is not None and not limiter.admit(account, mode, endpoint):
            raise self._rate_limit_error(limiter.limits.should_retry)
        params = parse_query(query, self._params[endpoint])
        created = range_bounds(params if "created" in self._params[endpoint] else {}, "created")
        injected = self.faults.injected_status(endpoint, mode, half_open(created))
        if injected is not None:
            status, kind = injected
            if kind == "429":
                raise self._rate_limit_error(self.faults.should_retry)
            raise ApiError(status, "An unknown error occurred", type_="api_error")
        limit, after, before = page_args(params)
        state = self._state(mode, acting)
        if endpoint == "invoice_lines":
            body, extra, count, ids, has_more = self._lines_page(state, invoice_id, limit, after, before)
            self.hooks.fire(endpoint, ids, has_more, {**params, "invoice": invoice_id})
            return 200, body, extra, mode, count
        if sub_list is not None:
            body, count = self._sub_list_page(state, resource, parts[2], sub_list, limit, after)
            return 200, body, {}, mode, count
        if obj_id is not None:
            return 200, self._object_by_id(state, resource, obj_id, params), {}, mode, 1
        predicate = build_predicate(endpoint, params)
        if endpoint in money_trail.RESOURCES:
            predicate = money_trail.combine(predicate, money_trail.predicate(endpoint, params, state.trail,
                                                                             state.lookup, ApiError))
        expand = expansions(endpoint, params)
        if endpoint == "events":
            cutoff = int(self.clock()) - EVENT_RETENTION_SECONDS
            created["gte"] = cutoff if created["gte"] is None else max(created["gte"], cutoff)
        url = f"/v1/{endpoint}"
        with self._lock:
            coll = state.collections[endpoint]
            lo, hi = coll.window(**created)
            after_i = before_i = None
            cursor = after or before
            if cursor:
                idx = coll.index_of(cursor)
                if idx is None or not (lo <= idx < hi) or (predicate and not predicate(coll.records[idx].obj)):
                    param = "starting_after" if after else "ending_before"
                    raise ApiError(400, f"No such {self._cursor_noun(endpoint)}: '{cursor}'",
                                   code="resource_missing", param=param)
                if after:
                    after_i = idx
                else:
                    before_i = idx
            records, has_more = coll.page(lo, hi, limit, predicate, after_i, before_i)
            if expand:
                encoded = []
                for rec in records:
                    obj = dict(rec.obj)
                    for field, target in expand:
                        if isinstance(obj.get(field), str):
                            obj[field] = state.lookup(target, obj[field])
                    encoded.append(dumps(obj))
            else:
                encoded = [r.json for r in records]
        self.hooks.fire(endpoint, [r.obj["id"] for r in records], has_more, params)
        return 200, list_body(url, records, has_more, encoded), {}, mode, len(records)

    def _object_by_id(self, state: ModeState, resource: str, obj_id: str, params: dict) -> bytes:
        """``GET /v1/<resource>/<id>``: the object as its list renders it (expand ``<field>``, not ``data.<field>``).

        A deleted customer answers Stripe's ``{"id", "object": "customer", "deleted": true}``; any other deleted or
        unknown id answers 404 ``resource_missing``."""
        expand = expansions(resource, params, prefix="data.")
        with self._lock:
            rec = state.collections[resource].by_id.get(obj_id)
            if rec is None:
                if resource == "customers" and obj_id in state.deleted[resource]:
                    return dumps({"id": obj_id, "object": OBJECT_NAME[resource], "deleted": True})
                raise ApiError(404, f"No such {self.object_name(resource)}: '{obj_id}'", code="resource_missing",
                               param="id")
            if not expand:
                return rec.json
            obj = dict(rec.obj)
            for field, target in expand:
                if isinstance(obj.get(field), str):
                    obj[field] = state.lookup(target, obj[field])
            return dumps(obj)

    def _sub_list_page(self, state: ModeState, resource: str, parent_id: str, url: str, limit: int,
                       after: Optional[str]) -> tuple:
        """An embedded list beyond its first 10 items (``/v1/transfers/{id}/reversals``...), newest first."""
        with self._lock:
            if parent_id not in state.collections[resource].by_id:
                raise ApiError(404, f"No such {OBJECT_NAME[resource]}: '{parent_id}'", code="resource_missing",
                               param="id")
            items = state.trail.sub_lists.get(url, [])
            start = 0
            if after:
                ids = [item["id"] for item in items]
                if after not in ids:
                    raise ApiError(400, f"No such object: '{after}'", code="resource_missing", param="starting_after")
                start = ids.index(after) + 1
            page = items[start:start + limit]
            encoded = [dumps(item) for item in page]
        return list_body(url, [], start + limit < len(items), encoded), len(page)
    def _cursor_noun(self, endpoint: str) -> str:
        if endpoint in self.catalog:
            return self.object_name(endpoint)
        return OBJECT_NAME.get(endpoint, "object")

    def _lines_page(self, state: ModeState, invoice_id: str, limit: int,
                    after: Optional[str], before: Optional[str]) -> tuple:
        with self._lock:
            if invoice_id not in state.collections["invoices"].by_id:
                raise ApiError(404, f"No such invoice: '{invoice_id}'", code="resource_missing", param="invoice")
            lines = state.lines.get(invoice_id, [])
            start, stop = 0, len(lines)
            if after or before:
                cursor = after or before
                idx = next((i for i, r in enumerate(lines) if r.obj["id"] == cursor), None)
                if idx is None:
                    raise ApiError(400, f"No such line item: '{cursor}'", code="resource_missing",
                                   param="starting_after" if after else "ending_before")
                if after:
                    start = idx + 1
                else:
                    stop = idx
                    start = max(0, stop - limit)
            page = lines[start:start + limit] if not before else lines[start:stop]
            has_more = (start + limit < len(lines)) if not before else start > 0
            encoded = [r.json for r in page]
        return (list_body(f"/v1/invoices/{invoice_id}/lines", page, has_more, encoded), {}, len(page),
                [r.obj["id"] for r in page], has_more)

    @staticmethod
    def _rate_limit_error(should_retry: Optional[bool]) -> ApiError:
        headers = {}
        if should_retry is not None:
            headers["Stripe-Should-Retry"] = "true" if should_retry else "false"
        return ApiError(429, "Request rate limit exceeded. You can learn more about rate limits here "
                             "https://stripe.com/docs/rate-limits.", code="rate_limit", headers=headers)

    def _authenticate(self, headers) -> str:
        auth = headers.get("Authorization")
        if not auth:
            raise ApiError(401, keys_module.MISSING_KEY_MESSAGE)
        scheme, _, credential = auth.strip().partition(" ")
        credential = credential.strip()
        if scheme.lower() == "basic":
            try:
                credential = base64.b64decode(credential).decode().split(":", 1)[0]
            except Exception:
                credential = ""
        elif scheme.lower() != "bearer":
            raise ApiError(401, keys_module.MISSING_KEY_MESSAGE)
        info = self.keys.get(credential)
        if info is None or info.revoked:
            raise ApiError(401, f"Invalid API Key provided: {keys_module.redact_invalid(credential)}")
        if info.publishable:
            raise ApiError(keys_module.PUBLISHABLE_STATUS, keys_module.PUBLISHABLE_MESSAGE)
        return credential

    # ---- the /_sim control API over HTTP ------------------------------------------------------------------
    def handle_control(self, method: str, path: str, query: str, body: bytes) -> tuple:
        """JSON control API; see the package docstring for the routes."""
        args = dict(parse_qsl(query))
        payload = json.loads(body) if body else {}
        if not isinstance(payload, dict):
            raise ApiError(400, "JSON object expected")
        mode = payload.pop("mode", None) or args.get("mode", "test")
        parts = path.strip("/").split("/")[1:]
        try:
            if method == "GET" and parts == ["stats"]:
                return 200, self.stats.as_dict(with_log=args.get("log", "true") != "false")
            if method == "POST" and parts == ["reset_stats"]:
                self.reset_stats()
                return 200, {"ok": True}
            if method == "GET" and len(parts) >= 2 and parts[0] == "objects":
                return 200, {"data": self.objects("/".join(parts[1:]), mode)}
            if method == "GET" and parts == ["events"]:
                return 200, {"data": self.events(mode)}
            if method == "POST" and parts == ["clock"]:
                now = float(payload["now"])
                self.clock = lambda: now
                return 200, {"now": now}
            if method == "POST" and parts == ["rate_limits"]:
                self.set_rate_limits(RateLimits(**payload["rate_limits"]) if payload.get("rate_limits") else None)
                return 200, {"enabled": self.rate_limits_enabled}
            if method == "POST" and parts == ["keys"]:
                info = self.add_key(payload["key"], mode=payload.get("mode_of_key"), resources=payload.get("resources"),
                                    revoked=payload.get("revoked", False))
                return 200, {"key": keys_module.redact_log(info.key), "mode": info.mode}
            if parts and parts[0] == "faults":
                if method == "DELETE":
                    self.faults.clear()
                    return 200, {"ok": True}
                if method == "POST" and len(parts) == 2:
                    getattr(self.faults, _FAULT_METHODS[parts[1]])(**payload)
                    return 200, {"ok": True}
            if method == "POST" and parts == ["settle_balance"]:
                return 200, {"settled": self.settle_balance(mode, payload.get("until"))}
            whole, (head, _, obj_id) = "/".join(parts), "/".join(parts).rpartition("/")
            if (whole in RESOURCES or whole in self.catalog) and method == "POST":
                return 200, self.create(whole, mode=mode, **payload)
            if head in RESOURCES or head in self.catalog:
                if method == "POST":
                    return 200, self.update(head, obj_id, mode=mode, **payload)
                if method == "DELETE":
                    return 200, self.delete(head, obj_id, mode=mode)
        except KeyError as exc:
            raise ApiError(404, f"Not found: {exc}")
        except (TypeError, ValueError) as exc:
            raise ApiError(400, str(exc))
        raise ApiError(404, f"Unknown control route {method} {path}")


_FAULT_METHODS = {name: name for name in ("error_rate", "drop_rate", "drop_next", "burst_429", "fail_next",
                                          "fail_resource", "forbid")}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    allow_reuse_address = True
    simulator: StripeSimulator


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self):
        super().setup()
        # Headers and body go out in one write; without TCP_NODELAY, Nagle plus the client's delayed ACK would
        # still add ~40 ms to any response split across segments.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format, *args):  # keep test output clean; the simulator keeps its own request log
        pass

    def date_time_string(self, timestamp=None):
        """The ``Date`` header tells the simulator's clock, as Stripe's tells Stripe's (event retention runs on it)."""
        return super().date_time_string(self.server.simulator.clock() if timestamp is None else timestamp)

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        sim = self.server.simulator
        split = urlsplit(self.path)
        path, query = split.path, split.query
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if path.startswith("/_sim/"):
            try:
                status, payload = sim.handle_control(method, path, query, body)
                self._send(status, json.dumps(payload).encode(), {})
            except ApiError as err:
                self._send(err.status, dumps(err.body()), err.headers)
            return
        sim.stats.started()
        entry = {"time": time.time(), "method": method, "path": path, "query": query,
                 "params": parse_qsl(query, keep_blank_values=True), "headers": _redacted_headers(self.headers),
                 "endpoint": _endpoint_name(path), "status": None, "mode": None}
        records = 0
        finished = False
        try:
            if sim.faults.should_drop():
                entry["duration_ms"] = round((time.time() - entry["time"]) * 1000, 3)
                sim.stats.finished(entry)  # logged before the socket closes, so a client sees it at once
                finished = True
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return
            delay = sim.latency.delay_seconds(sim._latency_rng)
            if delay > 0:
                time.sleep(delay)
            try:
                if method != "GET":
                    raise ApiError(405, f"Unrecognized request URL ({method}: {path}). The simulator serves GET "
                                        f"only.")
                status, payload, headers, mode, records = sim.handle_v1(path, query, self.headers)
                entry["mode"] = mode
            except ApiError as err:
                status, payload, headers = err.status, dumps(err.body()), err.headers
            except Exception as exc:  # a simulator bug must still look like a Stripe 500, not a hang
                entry["error"] = repr(exc)
                status, headers = 500, {}
                payload = dumps({"error": {"type": "api_error", "message": "Simulator internal error"}})
            entry["status"] = status
            entry["duration_ms"] = round((time.time() - entry["time"]) * 1000, 3)
            sim.stats.finished(entry, records)  # before writing: the log is complete when the client reads
            finished = True
            self._send(status, payload, headers, sim)
        finally:
            if not finished:
                entry["duration_ms"] = round((time.time() - entry["time"]) * 1000, 3)
                entry["status"] = entry["status"] or 500
                sim.stats.finished(entry, records)

    def _send(self, status: int, payload: bytes, headers: dict, sim: Optional[StripeSimulator] = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        if sim is not None:
            self.send_header("Request-Id", sim._request_id())
            self.send_header("Stripe-Version", self.headers.get("Stripe-Version") or API_VERSION)
        for name, value in headers.items():
            self.send_header(name, value)
        self._headers_buffer.append(b"\r\n")
        self.wfile.write(b"".join(self._headers_buffer) + payload)
        self._headers_buffer = []


def _redacted_headers(headers) -> Dict[str, str]:
    out = {}
    for name, value in headers.items():
        out[name] = keys_module.redact_log(value) if name.lower() == "authorization" else value
    return out


def _endpoint_name(path: str) -> str:
    parts = path.strip("/").split("/")
    if len(parts) == 4 and parts[:2] == ["v1", "invoices"] and parts[3] == "lines":
        return "/v1/invoices/{invoice}/lines"
    if len(parts) == 4 and money_trail.sub_list_url(parts) is not None:
        return f"/v1/{parts[1]}/{{id}}/{parts[3]}"
    if len(parts) == 3 and parts[0] == "v1" and parts[1] in SERVED:
        return f"/v1/{parts[1]}/{{id}}"
    if len(parts) == 2 and (parts[1] in RESOURCES or parts[1] == "events"):
        return path
    routed = GenericCatalog.load().route(path)
    if routed is not None and routed[1] is not None:
        return f"{routed[0].url}/{{id}}"
    return path


@functools.lru_cache(maxsize=1)
def _known_event_types() -> frozenset:
    return frozenset(event_types())
