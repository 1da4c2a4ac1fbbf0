"""Seeded, deterministic generator of Stripe-shaped objects (API version 2024-06-20).

Objects validate against ``components.schemas.<type>`` of spec3.json (checked by test_simulator.py with all
fields the spec does not list forbidden). Cross references are consistent: every ``customer`` is an existing
customer id, every price belongs to an existing product, subscription invoices point at their subscription and
its customer. Seeded objects are created between 2022-01-01 and 2024-06-01, long before any realistic simulator
clock, so their creation events are past Stripe's 30-day retention and ``/v1/events`` starts empty.

The first objects of each type cycle through every status (and the special cases: refunded, partially refunded,
disputed and JPY charges; invoices with 0, 10, 11 and 40 lines; products without default price), so even the
``tiny`` size covers them; the rest are drawn at random with realistic weights.
"""

from __future__ import annotations

import gc
import random
import string
from typing import Dict, List, Optional

RESOURCES = ("customers", "charges", "subscriptions", "invoices", "products", "payouts")

# Named sizes; "large" is 200,000 objects per mode.
SIZES: Dict[str, Dict[str, int]] = {
    "tiny": {"customers": 5, "charges": 12, "subscriptions": 8, "invoices": 6, "products": 4, "payouts": 5},
    "small": {"customers": 30, "charges": 60, "subscriptions": 25, "invoices": 25, "products": 12, "payouts": 20},
    "medium": {"customers": 1000, "charges": 3000, "subscriptions": 600, "invoices": 800, "products": 100,
               "payouts": 500},
    "large": {"customers": 40000, "charges": 80000, "subscriptions": 20000, "invoices": 30000, "products": 5000,
              "payouts": 25000},
}

T_START = 1640995200  # 2022-01-01T00:00:00Z
T_END = 1717200000  # 2024-06-01T00:00:00Z

ID_PREFIX = {
    "customers": "cus", "charges": "ch", "subscriptions": "sub", "invoices": "in", "products": "prod",
    "payouts": "po", "prices": "price", "lines": "il", "events": "evt", "subscription_items": "si",
}
OBJECT_NAME = {
    "customers": "customer", "charges": "charge", "subscriptions": "subscription", "invoices": "invoice",
    "products": "product", "payouts": "payout", "prices": "price", "events": "event",
}

CURRENCIES = ("usd", "usd", "usd", "eur", "gbp", "jpy", "cad")
ZERO_DECIMAL = frozenset({"jpy", "krw", "vnd", "clp"})
SUBSCRIPTION_STATUSES = ("active", "canceled", "trialing", "past_due", "unpaid", "incomplete",
                         "incomplete_expired", "paused")
SUBSCRIPTION_WEIGHTS = (55, 20, 8, 5, 3, 3, 3, 3)
INVOICE_STATUSES = ("paid", "open", "draft", "void", "uncollectible")
INVOICE_WEIGHTS = (70, 12, 8, 6, 4)
PAYOUT_STATUSES = ("paid", "pending", "in_transit", "failed", "canceled")
PAYOUT_WEIGHTS = (80, 6, 8, 4, 2)
# (status, refund kind, disputed, currency override) cycled first so every size has each case.
CHARGE_CASES = (
    ("succeeded", None, False, None), ("pending", None, False, None), ("failed", None, False, None),
    ("succeeded", "full", False, None), ("succeeded", "partial", False, None), ("succeeded", None, True, None),
    ("succeeded", None, False, "jpy"), ("succeeded", "full", False, "jpy"),
)
INVOICE_LINE_CASES = (0, 1, 10, 11, 40, 3)

FIRST_NAMES = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Margaret", "Dennis",
               "Hedy", "Linus", "Radia", "Tim", "Yukihiro", "Guido", "Sophie", "Niklaus", "Karen", "Leslie")
LAST_NAMES = ("Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson", "Hamilton",
              "Ritchie", "Lamarr", "Torvalds", "Perlman", "Berners-Lee", "Matsumoto", "van Rossum", "Wilson",
              "Wirth", "Sparck Jones", "Lamport")
CITIES = (("Paris", "FR", "75011", None), ("Lyon", "FR", "69002", None), ("Berlin", "DE", "10115", None),
          ("London", "GB", "EC1A 1BB", None), ("New York", "US", "10001", "NY"),
          ("San Francisco", "US", "94107", "CA"), ("Tokyo", "JP", "100-0001", "Tokyo"),
          ("Toronto", "CA", "M5H 2N2", "ON"), ("Austin", "US", "73301", "TX"))
STREETS = ("Rue de la Roquette", "Main Street", "Hauptstrasse", "Baker Street", "Market Street", "Queen Street")
PRODUCT_WORDS = ("Analytics", "Storage", "Seats", "Support", "Compute", "Backup", "Insights", "Pipelines",
                 "Connectors", "Dashboards", "Alerts", "Archive")
PRODUCT_TIERS = ("Starter", "Team", "Business", "Enterprise", "Add-on", "Legacy")
PLANS = ("free", "starter", "pro", "enterprise")
SEGMENTS = ("smb", "mid_market", "enterprise")

_ALNUM = string.ascii_letters + string.digits
# byte -> alphanumeric character, so a random id body is one randbytes() call plus a translate().
_BYTE_TO_ALNUM = bytes(ord(_ALNUM[b % 62]) for b in range(256))


def random_alnum(rng: random.Random, k: int) -> str:
    return rng.randbytes(k).translate(_BYTE_TO_ALNUM).decode()


def _minor(rng: random.Random, currency: str, low_major: float, high_major: float) -> int:
    """An amount in minor units: integer, and for zero-decimal currencies a whole number of yen."""
    if currency in ZERO_DECIMAL:
        return int(rng.uniform(low_major, high_major) * 100)  # e.g. 10..500 USD-ish -> 1000..50000 JPY
    return int(rng.uniform(low_major, high_major) * 100) // 100 * 100 + rng.choice((0, 0, 0, 50, 99))


class IdMaker:
    """Stripe-looking ids (``ch_3Mm...``): prefix, a random body, and a per-mode account fragment."""

    def __init__(self, rng: random.Random, livemode: bool):
        self._rng = rng
        self._fragment = "SimLv" if livemode else "SimTs"
        self._seen: set = set()

    def new(self, kind: str) -> str:
        prefix = ID_PREFIX.get(kind, kind)
        while True:
            raw = random_alnum(self._rng, 19)
            body, tail = raw[:9], raw[9:]
            short = prefix in ("cus", "prod")
            ident = f"{prefix}_{body}{tail[:5]}" if short else f"{prefix}_1{body}{self._fragment}{tail}"
            if ident not in self._seen:
                self._seen.add(ident)
                return ident


class ObjectFactory:
    """Builds one realistic object at a time; used by the bulk generator and by ``StripeSimulator.create``.

    ``lookup`` gives the factory existing objects to reference: ``lookup(kind) -> list`` of objects for
    "customers", "prices" (recurring ones are used by subscriptions) and "subscriptions".
    """

    def __init__(self, rng: random.Random, livemode: bool, ids: Optional[IdMaker] = None):
        self.rng = rng
        self.livemode = livemode
        self.ids = ids or IdMaker(rng, livemode)
        self.bank_account = "ba_1" + random_alnum(rng, 23)  # payouts all go to the account's bank account

    # ---- small pieces -------------------------------------------------------------------------------------
    def _address(self) -> dict:
        city, country, postal, state = self.rng.choice(CITIES)
        return {"city": city, "country": country, "line1": f"{self.rng.randint(1, 250)} {self.rng.choice(STREETS)}",
                "line2": self.rng.choice((None, None, "Suite 4", "Apt 12")), "postal_code": postal, "state": state}

    def _person(self):
        first, last = self.rng.choice(FIRST_NAMES), self.rng.choice(LAST_NAMES)
        email = f"{first}.{last}".lower().replace(" ", "").replace("-", "") + f"{self.rng.randint(1, 999)}@example.com"
        return f"{first} {last}", email

    def _suffix(self, n: int = 24) -> str:
        return random_alnum(self.rng, n)

    # ---- prices and products ------------------------------------------------------------------------------
    def price(self, product_id: str, created: int, currency: Optional[str] = None, recurring: bool = True,
              active: bool = True) -> dict:
        currency = currency or self.rng.choice(CURRENCIES)
        unit = _minor(self.rng, currency, 5, 400)
        interval = self.rng.choice(("month", "month", "month", "year")) if recurring else None
        return {
            "id": self.ids.new("prices"), "object": "price", "active": active, "billing_scheme": "per_unit",
            "created": created, "currency": currency, "custom_unit_amount": None, "livemode": self.livemode,
            "lookup_key": None, "metadata": {}, "nickname": None, "product": product_id,
            "recurring": ({"aggregate_usage": None, "interval": interval, "interval_count": 1, "meter": None,
                           "usage_type": "licensed"} if recurring else None),
            "tax_behavior": "unspecified", "tiers_mode": None, "transform_quantity": None,
            "type": "recurring" if recurring else "one_time", "unit_amount": unit, "unit_amount_decimal": str(unit),
        }

    def product(self, created: int, active: bool = True, with_price: bool = True, prices: Optional[list] = None,
                currency: Optional[str] = None) -> dict:
        """A product; its prices are appended to ``prices`` (default_price is the first one)."""
        pid = self.ids.new("products")
        product_prices = []
        if with_price:
            n = self.rng.choice((1, 1, 2))
            for k in range(n):
                product_prices.append(self.price(pid, created + k, currency=currency if k == 0 else None,
                                                 recurring=self.rng.random() < 0.85, active=active))
        if prices is not None:
            prices.extend(product_prices)
        name = f"{self.rng.choice(PRODUCT_WORDS)} {self.rng.choice(PRODUCT_TIERS)}"
        return {
            "id": pid, "object": "product", "active": active, "created": created,
            "default_price": product_prices[0]["id"] if product_prices else None,
            "description": self.rng.choice((None, f"{name} plan for growing teams.")), "images": [],
            "livemode": self.livemode, "marketing_features": [],
            "metadata": {"tier": name.split()[-1].lower()} if self.rng.random() < 0.5 else {},
            "name": name, "package_dimensions": None, "shippable": None, "statement_descriptor": None,
            "tax_code": None, "unit_label": None,
            "updated": created + self.rng.choice((0, 0, 3600, 86400 * 30)), "url": None,
        }

    # ---- customers ----------------------------------------------------------------------------------------
    def customer(self, created: int) -> dict:
        name, email = self._person()
        rng = self.rng
        metadata = {}
        if rng.random() < 0.7:
            metadata["crm_id"] = f"crm-{rng.randint(10000, 99999)}"
        if rng.random() < 0.5:
            metadata["segment"] = rng.choice(SEGMENTS)
        address = self._address() if rng.random() < 0.8 else None
        return {
            "id": self.ids.new("customers"), "object": "customer", "address": address,
            "balance": rng.choice((0, 0, 0, 0, -500, 1200)), "created": created,
            "currency": rng.choice((None, "usd", "eur")), "default_source": None,
            "delinquent": rng.random() < 0.05, "description": rng.choice((None, None, "Imported from legacy CRM")),
            "discount": None, "email": email,
            "invoice_prefix": "".join(rng.choices(string.ascii_uppercase + string.digits, k=8)),
            "invoice_settings": {"custom_fields": None, "default_payment_method": None, "footer": None,
                                 "rendering_options": None},
            "livemode": self.livemode, "metadata": metadata, "name": name,
            "next_invoice_sequence": rng.randint(1, 40),
            "phone": rng.choice((None, "+33 6 {:02d} {:02d} {:02d} {:02d}".format(*(b % 100 for b in rng.randbytes(4))))),
            "preferred_locales": rng.choice(([], ["en"], ["fr-FR"])),
            "shipping": ({"address": address, "name": name, "phone": None} if address and rng.random() < 0.3 else None),
            "tax_exempt": "none", "test_clock": None,
        }

    # ---- charges ------------------------------------------------------------------------------------------
    def charge(self, created: int, customer: Optional[dict], case: Optional[tuple] = None) -> dict:
        rng = self.rng
        if case is None:
            r = rng.random()
            status = "succeeded" if r < 0.86 else ("failed" if r < 0.96 else "pending")
            refund = None
            if status == "succeeded":
                r2 = rng.random()
                refund = "full" if r2 < 0.06 else ("partial" if r2 < 0.09 else None)
            disputed = status == "succeeded" and rng.random() < 0.01
            currency = rng.choice(CURRENCIES)
        else:
            status, refund, disputed, currency = case
            currency = currency or rng.choice(CURRENCIES)
        amount = _minor(rng, currency, 5, 900)
        if amount <= 0:
            amount = 100
        paid = status == "succeeded"
        captured = status != "failed"
        amount_captured = amount if captured else 0
        amount_refunded = amount if refund == "full" else (amount // 3 if refund == "partial" else 0)
        name = customer["name"] if customer else self._person()[0]
        email = customer["email"] if customer else None
        brand, last4 = rng.choice((("visa", "4242"), ("mastercard", "4444"), ("amex", "8431"), ("visa", "1881")))
        outcome = {
            "network_status": "declined_by_network" if status == "failed" else "approved_by_network",
            "reason": "generic_decline" if status == "failed" else None,
            "risk_level": rng.choice(("normal", "normal", "elevated")), "risk_score": rng.randint(0, 80),
            "seller_message": "The bank did not return any further details with this decline." if status == "failed"
            else "Payment complete.",
            "type": "issuer_declined" if status == "failed" else "authorized",
        }
        cid = self.ids.new("charges")
        body = cid[3:]  # like Stripe, a charge's payment intent and balance transaction share its id body
        return {
            "id": cid, "object": "charge", "amount": amount, "amount_captured": amount_captured,
            "amount_refunded": amount_refunded, "application": None, "application_fee": None,
            "application_fee_amount": None,
            "balance_transaction": None if status == "failed" else "txn_" + body,
            "billing_details": {"address": customer["address"] if customer else None, "email": email,
                                "name": name, "phone": None},
            "calculated_statement_descriptor": "ONTOLOGIE SIM", "captured": captured, "created": created,
            "currency": currency, "customer": customer["id"] if customer else None,
            "description": rng.choice((None, "Subscription payment", "One-off order")), "disputed": disputed,
            "failure_balance_transaction": None,
            "failure_code": "card_declined" if status == "failed" else None,
            "failure_message": "Your card was declined." if status == "failed" else None,
            "fraud_details": {}, "invoice": None, "livemode": self.livemode,
            "metadata": {"order_id": str(rng.randint(100000, 999999))} if rng.random() < 0.4 else {},
            "on_behalf_of": None, "outcome": outcome, "paid": paid, "payment_intent": "pi_" + body,
            "payment_method": "pm_" + body,
            "payment_method_details": {"card": {"brand": brand, "country": "US", "exp_month": rng.randint(1, 12),
                                                "exp_year": rng.randint(2025, 2031), "funding": "credit",
                                                "last4": last4, "network": brand if brand != "amex" else "amex"},
                                       "type": "card"},
            "receipt_email": email, "receipt_number": None,
            "receipt_url": f"https://pay.stripe.com/receipts/payment/{body}" if paid else None,
            "refunded": refund == "full", "review": None, "shipping": None, "source_transfer": None,
            "statement_descriptor": None, "statement_descriptor_suffix": None, "status": status,
            "transfer_data": None, "transfer_group": None,
        }

    # ---- subscriptions ------------------------------------------------------------------------------------
    def subscription(self, created: int, customer: dict, prices: List[dict], status: Optional[str] = None) -> dict:
        rng = self.rng
        status = status or rng.choices(SUBSCRIPTION_STATUSES, SUBSCRIPTION_WEIGHTS)[0]
        sid = self.ids.new("subscriptions")
        currency = prices[0]["currency"]
        items = []
        for price in prices:
            items.append({"id": self.ids.new("subscription_items"), "object": "subscription_item",
                          "billing_thresholds": None, "created": created + 1, "discounts": [], "metadata": {},
                          "price": dict(price), "quantity": rng.choice((1, 1, 1, 2, 5, 10)), "subscription": sid,
                          "tax_rates": []})
        interval = prices[0]["recurring"]["interval"] if prices[0].get("recurring") else "month"
        period = 86400 * (365 if interval == "year" else 30)
        trial = status == "trialing" or (status != "incomplete" and rng.random() < 0.2)
        trial_start = created if trial else None
        trial_end = created + 14 * 86400 if trial else None
        start = trial_end if status == "trialing" else created
        cps = start + period * rng.randint(0, 6) if status != "trialing" else created
        cpe = cps + (14 * 86400 if status == "trialing" else period)
        canceled_at = ended_at = None
        cancellation = {"comment": None, "feedback": None, "reason": None}
        if status in ("canceled", "incomplete_expired"):
            canceled_at = ended_at = cps + rng.randint(0, period)
            cancellation["reason"] = "cancellation_requested" if status == "canceled" else "payment_failed"
            if status == "canceled" and rng.random() < 0.5:
                cancellation["feedback"] = rng.choice(("too_expensive", "switched_service", "unused"))
        return {
            "id": sid, "object": "subscription", "application": None, "application_fee_percent": None,
            "automatic_tax": {"enabled": False, "liability": None}, "billing_cycle_anchor": start,
            "billing_cycle_anchor_config": None, "billing_thresholds": None, "cancel_at": None,
            "cancel_at_period_end": status == "active" and rng.random() < 0.05, "canceled_at": canceled_at,
            "cancellation_details": cancellation,
            "collection_method": rng.choice(("charge_automatically",) * 4 + ("send_invoice",)),
            "created": created, "currency": currency, "current_period_end": cpe, "current_period_start": cps,
            "customer": customer["id"], "days_until_due": None, "default_payment_method": None,
            "default_source": None, "default_tax_rates": [], "description": None, "discount": None,
            "discounts": [], "ended_at": ended_at,
            "invoice_settings": {"account_tax_ids": None, "issuer": {"type": "self"}},
            "items": {"object": "list", "data": items, "has_more": False,
                      "url": f"/v1/subscription_items?subscription={sid}"},
            "latest_invoice": None, "livemode": self.livemode,
            "metadata": {"plan": rng.choice(PLANS)} if rng.random() < 0.6 else {},
            "next_pending_invoice_item_invoice": None, "on_behalf_of": None,
            "pause_collection": ({"behavior": "void", "resumes_at": None} if status == "paused" else None),
            "payment_settings": {"payment_method_options": None, "payment_method_types": None,
                                 "save_default_payment_method": "off"},
            "pending_invoice_item_interval": None, "pending_setup_intent": None, "pending_update": None,
            "schedule": None, "start_date": created, "status": status, "test_clock": None, "transfer_data": None,
            "trial_end": trial_end,
            "trial_settings": {"end_behavior": {"missing_payment_method": "create_invoice"}},
            "trial_start": trial_start,
        }

    # ---- invoices -----------------------------------------------------------------------------------------
    def invoice(self, created: int, customer: dict, subscription: Optional[dict], prices: List[dict],
                line_count: int, status: Optional[str] = None):
        """Returns ``(invoice, lines)``: the invoice embeds the first 10 lines, ``lines`` is the full list."""
        rng = self.rng
        status = status or rng.choices(INVOICE_STATUSES, INVOICE_WEIGHTS)[0]
        iid = self.ids.new("invoices")
        currency = subscription["currency"] if subscription else prices[0]["currency"]
        period_start = created - (30 * 86400 if subscription else 0)
        lines = []
        for k in range(line_count):
            sub_item = None
            if subscription and k < len(subscription["items"]["data"]):
                sub_item = subscription["items"]["data"][k]
                price, quantity, kind = sub_item["price"], sub_item["quantity"], "subscription"
            else:
                price = rng.choice(prices)
                quantity, kind = rng.randint(1, 3), "invoiceitem"
            unit = price["unit_amount"] if price["currency"] == currency else _minor(rng, currency, 1, 50)
            amount = unit * quantity
            line = {
                "id": self.ids.new("lines"), "object": "line_item", "amount": amount, "amount_excluding_tax": amount,
                "currency": currency, "description": f"{quantity} x {price['product']}", "discount_amounts": [],
                "discountable": True, "discounts": [], "invoice": iid, "livemode": self.livemode, "metadata": {},
                "period": {"end": created, "start": period_start}, "price": dict(price), "proration": False,
                "proration_details": {"credited_items": None}, "quantity": quantity,
                "subscription": subscription["id"] if subscription else None, "tax_amounts": [], "tax_rates": [],
                "type": kind, "unit_amount_excluding_tax": str(unit),
            }
            if sub_item is not None:
                line["subscription_item"] = sub_item["id"]
            else:
                line["invoice_item"] = "ii_" + line["id"][3:]
            lines.append(line)
        total = sum(line["amount"] for line in lines)
        paid = status == "paid"
        finalized = None if status == "draft" else created + 3600
        number = None if status == "draft" else f"{customer['invoice_prefix']}-{rng.randint(1, 9999):04d}"
        base_url = f"https://invoice.stripe.com/i/acct_1SimOntologie0001/{'live' if self.livemode else 'test'}_{iid[3:]}"
        invoice = {
            "id": iid, "object": "invoice", "account_country": "FR", "account_name": "Ontologie Sim Shop",
            "account_tax_ids": None, "amount_due": total, "amount_paid": total if paid else 0,
            "amount_remaining": 0 if paid or status == "void" else total, "amount_shipping": 0,
            "application": None, "application_fee_amount": None, "attempt_count": 1 if status != "draft" else 0,
            "attempted": status not in ("draft",), "auto_advance": status in ("draft", "open"),
            "automatic_tax": {"enabled": False, "liability": None, "status": None},
            "billing_reason": "subscription_cycle" if subscription else "manual", "charge": None,
            "collection_method": subscription["collection_method"] if subscription else "send_invoice",
            "created": created, "currency": currency, "custom_fields": None, "customer": customer["id"],
            "customer_address": customer["address"], "customer_email": customer["email"],
            "customer_name": customer["name"], "customer_phone": customer["phone"], "customer_shipping": None,
            "customer_tax_exempt": "none", "customer_tax_ids": [], "default_payment_method": None,
            "default_source": None, "default_tax_rates": [], "description": None, "discount": None,
            "discounts": [], "due_date": None if subscription else created + 30 * 86400,
            "effective_at": finalized, "ending_balance": None if status == "draft" else 0, "footer": None,
            "from_invoice": None, "hosted_invoice_url": None if status == "draft" else base_url,
            "invoice_pdf": None if status == "draft" else base_url + "/pdf", "issuer": {"type": "self"},
            "last_finalization_error": None, "latest_revision": None,
            "lines": {"object": "list", "data": lines[:10], "has_more": len(lines) > 10,
                      "url": f"/v1/invoices/{iid}/lines"},
            "livemode": self.livemode, "metadata": {}, "next_payment_attempt": None, "number": number,
            "on_behalf_of": None, "paid": paid, "paid_out_of_band": False, "payment_intent": None,
            "payment_settings": {"default_mandate": None, "payment_method_options": None,
                                 "payment_method_types": None},
            "period_end": created, "period_start": period_start, "post_payment_credit_notes_amount": 0,
            "pre_payment_credit_notes_amount": 0, "quote": None, "receipt_number": None, "rendering": None,
            "shipping_cost": None, "shipping_details": None, "starting_balance": 0, "statement_descriptor": None,
            "status": status,
            "status_transitions": {"finalized_at": finalized,
                                   "marked_uncollectible_at": created + 86400 * 20 if status == "uncollectible" else None,
                                   "paid_at": created + 7200 if paid else None,
                                   "voided_at": created + 86400 if status == "void" else None},
            "subscription": subscription["id"] if subscription else None,
            "subscription_details": {"metadata": dict(subscription["metadata"])} if subscription else None,
            "subtotal": total, "subtotal_excluding_tax": total, "tax": None, "test_clock": None, "total": total,
            "total_discount_amounts": [], "total_excluding_tax": total, "total_tax_amounts": [],
            "transfer_data": None, "webhooks_delivered_at": created + 10 if status != "draft" else None,
        }
        return invoice, lines

    # ---- payouts ------------------------------------------------------------------------------------------
    def payout(self, created: int, status: Optional[str] = None) -> dict:
        rng = self.rng
        status = status or rng.choices(PAYOUT_STATUSES, PAYOUT_WEIGHTS)[0]
        pid = self.ids.new("payouts")
        currency = rng.choice(("usd", "usd", "eur", "jpy"))
        amount = _minor(rng, currency, 50, 20000)
        return {
            "id": pid, "object": "payout", "amount": amount, "application_fee": None,
            "application_fee_amount": None, "arrival_date": created + 86400 * rng.randint(1, 3),
            "automatic": rng.random() < 0.9, "balance_transaction": "txn_" + pid[3:], "created": created,
            "currency": currency, "description": "STRIPE PAYOUT",
            "destination": self.bank_account, "failure_balance_transaction":
                "txn_f" + pid[4:] if status == "failed" else None,
            "failure_code": "account_closed" if status == "failed" else None,
            "failure_message": "The bank account has been closed." if status == "failed" else None,
            "livemode": self.livemode, "metadata": {}, "method": "standard", "original_payout": None,
            "reconciliation_status": "completed" if status == "paid" else (
                "in_progress" if status in ("pending", "in_transit") else "not_applicable"),
            "reversed_by": None, "source_type": "card", "statement_descriptor": None, "status": status,
            "type": "bank_account",
        }


class Dataset:
    """All objects of one mode: ``objects[resource]`` (lists, generation order), ``prices`` by id and
    ``invoice_lines`` by invoice id (the full line lists)."""

    def __init__(self, livemode: bool, factory: ObjectFactory):
        self.livemode = livemode
        self.factory = factory
        self.objects: Dict[str, List[dict]] = {r: [] for r in RESOURCES}
        self.prices: Dict[str, dict] = {}
        self.invoice_lines: Dict[str, List[dict]] = {}

    @staticmethod
    def resolve_counts(size: Optional[str] = None, counts: Optional[Dict[str, int]] = None) -> Dict[str, int]:
        if size is not None and size not in SIZES:
            raise ValueError(f"size must be one of {sorted(SIZES)}, not {size!r}")
        resolved = dict(SIZES[size or "small"])
        for name, n in (counts or {}).items():
            if name not in RESOURCES:
                raise ValueError(f"unknown resource {name!r}; known: {RESOURCES}")
            resolved[name] = int(n)
        return resolved

    @classmethod
    def generate(cls, seed: int = 0, size: Optional[str] = None, counts: Optional[Dict[str, int]] = None,
                 livemode: bool = False) -> "Dataset":
        """Same seed, size/counts and mode -> identical objects. Live and test datasets differ (ids, livemode)."""
        was_enabled = gc.isenabled()
        gc.disable()  # millions of young dicts: the cyclic collector would re-scan them all, for nothing
        try:
            return cls._generate(seed, cls.resolve_counts(size, counts), livemode)
        finally:
            if was_enabled:
                gc.enable()

    @classmethod
    def _generate(cls, seed: int, n: Dict[str, int], livemode: bool) -> "Dataset":
        rng = random.Random(f"stripe-simulator/{seed}/{'live' if livemode else 'test'}")
        ds = cls(livemode, ObjectFactory(rng, livemode))
        f = ds.factory
        span = T_END - T_START

        def times(count: int, lo: int, hi: int) -> List[int]:
            # Sorted so parents precede children in generation; ~3% share the previous second (ties).
            out = sorted(rng.randint(lo, hi) for _ in range(count))
            for i in range(1, count):
                if rng.random() < 0.03:
                    out[i] = out[i - 1]
            return out

        price_list: List[dict] = []
        for i, t in enumerate(times(n["products"], T_START, T_START + span // 2)):
            active = i % 4 != 1 if i < 8 else rng.random() < 0.8
            with_price = i != 2 if i < 8 else rng.random() < 0.95
            currency = "jpy" if i == 3 else None
            ds.objects["products"].append(f.product(t, active=active, with_price=with_price, prices=price_list,
                                                    currency=currency))
        for p in price_list:
            ds.prices[p["id"]] = p
        recurring = [p for p in price_list if p["type"] == "recurring"] or price_list
        if not recurring and (n["subscriptions"] or n["invoices"]):
            extra = f.product(T_START, prices=price_list)
            ds.objects["products"].append(extra)
            for p in price_list:
                ds.prices[p["id"]] = p
            recurring = price_list
        customers = ds.objects["customers"]
        for t in times(n["customers"], T_START, T_END - span // 10):
            customers.append(f.customer(t))
        if not customers and (n["charges"] or n["subscriptions"] or n["invoices"]):
            raise ValueError("charges, subscriptions and invoices need at least one customer")

        def after(parent_created: int) -> int:
            return rng.randint(parent_created, T_END)

        by_currency: Dict[str, List[dict]] = {}
        for p in recurring:
            by_currency.setdefault(p["currency"], []).append(p)
        for i in range(n["subscriptions"]):
            cust = rng.choice(customers)
            first = rng.choice(recurring)
            chosen = [first]
            if rng.random() < 0.15:
                second = rng.choice(by_currency[first["currency"]])
                if second is not first:
                    chosen.append(second)
            created = after(max(cust["created"], max(p["created"] for p in chosen)))
            status = SUBSCRIPTION_STATUSES[i] if i < len(SUBSCRIPTION_STATUSES) else None
            ds.objects["subscriptions"].append(f.subscription(created, cust, chosen, status=status))
        by_customer = {c["id"]: c for c in customers}
        subs = ds.objects["subscriptions"]
        latest: Dict[str, dict] = {}
        for i in range(n["invoices"]):
            if i < len(INVOICE_LINE_CASES):
                line_count = INVOICE_LINE_CASES[i]
            else:
                r = rng.random()
                line_count = rng.randint(1, 3) if r < 0.7 else (rng.randint(4, 10) if r < 0.9 else rng.randint(11, 40))
            sub = rng.choice(subs) if subs and rng.random() < 0.7 else None
            cust = by_customer[sub["customer"]] if sub else rng.choice(customers)
            created = after(sub["created"] if sub else cust["created"])
            status = INVOICE_STATUSES[i] if i < len(INVOICE_STATUSES) else None
            inv, lines = f.invoice(created, cust, sub, price_list, line_count, status=status)
            ds.objects["invoices"].append(inv)
            ds.invoice_lines[inv["id"]] = lines
            if sub and (sub["id"] not in latest or latest[sub["id"]]["created"] <= created):
                latest[sub["id"]] = inv
        for sub in subs:
            if sub["id"] in latest:
                sub["latest_invoice"] = latest[sub["id"]]["id"]
        for i in range(n["charges"]):
            cust = rng.choice(customers) if rng.random() < 0.95 or i < len(CHARGE_CASES) else None
            created = after(cust["created"]) if cust else rng.randint(T_START, T_END)
            case = CHARGE_CASES[i] if i < len(CHARGE_CASES) else None
            ds.objects["charges"].append(f.charge(created, cust, case=case))
        for i, t in enumerate(times(n["payouts"], T_START, T_END)):
            status = PAYOUT_STATUSES[i] if i < len(PAYOUT_STATUSES) else None
            ds.objects["payouts"].append(f.payout(t, status=status))
        return ds
