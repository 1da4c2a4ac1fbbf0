"""The money trail: balance transactions and the finance objects around them (issue #13).

Built from the seeded charges, invoices, prices and payouts of ``data.py`` (which this module reads and, for
payouts, completes), so every object references existing ones:

- every succeeded charge has a ``charge`` balance transaction with Stripe's fee (2.9% + 30 minor units; 3.6% for
  zero-decimal currencies) in ``fee_details``, and a payment intent; a refunded charge has its refund and a
  ``refund`` transaction; a disputed one its dispute and an ``adjustment`` transaction (amount withdrawn plus the
  15.00 dispute fee); some charges carry an application fee (``application_fee`` transaction, fee refunds
  ``application_fee_refund``) or a transfer to a connected account (``transfer``, reversals ``transfer_refund``);
- a transaction is ``pending`` until ``available_on`` (two days after it, at midnight UTC), then ``available``
  (``StripeSimulator.settle_balance`` flips the ones due by the simulator clock);
- an automatic payout pays out the available balance of its period: the transactions of its currency that became
  available since the previous payout and were not paid out yet; its amount is their ``net`` sum and its own
  ``payout`` transaction is ``-amount``. So, for ``GET /v1/balance_transactions?payout=po_...`` (its transactions,
  its own included), the ``net`` of the list sums to 0, and without its own transaction to the payout's amount.
  A payout that would pay nothing becomes a manual one (Stripe answers 400 to ``?payout=`` for those);
- ``reconciliation_status`` is ``completed`` for paid automatic payouts, ``in_progress`` before, and
  ``not_applicable`` for manual, failed and canceled ones; a payout updated to ``paid`` completes its
  reconciliation and records ``payout.reconciliation_completed``;
- credit notes (one with 40 lines, beyond the 10 embedded), invoice items (those of the invoices' ``invoiceitem``
  lines, plus pending ones; they have ``date``, not ``created``), prices (every price, active or not), coupons.

Objects validate against the spec's schemas (test_simulator.py). The simulator serves each resource's list, one
object by id and the embedded lists (``/v1/credit_notes/{id}/lines``, ``/v1/application_fees/{id}/refunds``,
``/v1/transfers/{id}/reversals``).
"""

from __future__ import annotations

import random
from typing import Callable, Dict, Iterable, List, Optional

from .data import ZERO_DECIMAL, random_alnum

RESOURCES = ("balance_transactions", "refunds", "disputes", "payment_intents", "credit_notes", "invoiceitems",
             "prices", "coupons", "application_fees", "transfers")
OBJECT_NAME = {"balance_transactions": "balance_transaction", "refunds": "refund", "disputes": "dispute",
               "payment_intents": "payment_intent", "credit_notes": "credit_note", "invoiceitems": "invoiceitem",
               "prices": "price", "coupons": "coupon", "application_fees": "application_fee",
               "transfers": "transfer"}
# The resource's event prefix (``<prefix>.updated``, ``<prefix>.deleted``, ``<prefix>.created``).
EVENT_PREFIX = {"balance_transactions": "balance_transaction", "refunds": "refund", "disputes": "charge.dispute",
                "payment_intents": "payment_intent", "credit_notes": "credit_note", "invoiceitems": "invoiceitem",
                "prices": "price", "coupons": "coupon", "application_fees": "application_fee",
                "transfers": "transfer"}
TIME_FIELD = {"invoiceitems": "date"}  # the field a list's `created` filter reads


def created_of(resource: str) -> Callable[[dict], int]:
    """What a `created` filter of the resource's list compares (invoice items: `date`)."""
    field = TIME_FIELD.get(resource, "created")
    return lambda obj: obj[field]
DELETABLE = ("invoiceitems", "prices", "coupons")
# parent resource -> the embedded list served at /v1/<parent>/<id>/<name>
SUB_LISTS = {"credit_notes": "lines", "application_fees": "refunds", "transfers": "reversals"}
# Spec paths of the GET by id, for the allowed query parameters.
BY_ID_SPEC_PATHS = {"balance_transactions": "/v1/balance_transactions/{id}", "refunds": "/v1/refunds/{refund}",
                    "disputes": "/v1/disputes/{dispute}", "payment_intents": "/v1/payment_intents/{intent}",
                    "credit_notes": "/v1/credit_notes/{id}", "invoiceitems": "/v1/invoiceitems/{invoiceitem}",
                    "prices": "/v1/prices/{price}", "coupons": "/v1/coupons/{coupon}",
                    "application_fees": "/v1/application_fees/{id}", "transfers": "/v1/transfers/{transfer}"}
SUB_LIST_SPEC_PATHS = {"credit_notes": "/v1/credit_notes/{credit_note}/lines",
                       "application_fees": "/v1/application_fees/{id}/refunds",
                       "transfers": "/v1/transfers/{id}/reversals"}
DAY = 86_400
DISPUTE_FEE = 1500
CONNECTED_ACCOUNT = "acct_1SimConnected0001"
APPLICATION = "ca_SimOntologiePlatform0001"


def available_on(created: int) -> int:
    """Two days later, at the next midnight UTC (Stripe's standard 2-day rolling schedule)."""
    return (created + 2 * DAY) // DAY * DAY + DAY


def stripe_fee(amount: int, currency: str) -> int:
    if currency in ZERO_DECIMAL:
        return (amount * 36 + 999) // 1000
    return (amount * 29 + 999) // 1000 + 30


class MoneyTrail:
    """Makes the money-trail objects of one mode; holds what the simulator needs beyond the lists."""

    def __init__(self, rng: random.Random, livemode: bool, new_id: Callable[[str], str],
                 clock: Callable[[], float] = lambda: 0):
        self.rng = rng
        self.livemode = livemode
        self.new_id = new_id
        self.clock = clock
        self.objects: Dict[str, List[dict]] = {r: [] for r in RESOURCES}
        self.sub_lists: Dict[str, List[dict]] = {}  # "/v1/<parent>/<id>/<name>" -> every item
        self.payout_transactions: Dict[str, List[str]] = {}  # automatic payout id -> its transaction ids
        self.paid_out: set = set()  # transaction ids some payout paid

    # ---- balance transactions ---------------------------------------------------------------------------
    def transaction(self, txn_id: str, created: int, amount: int, currency: str, type_: str, category: str,
                    source: Optional[str], fee: int = 0, fee_description: str = "Stripe processing fees",
                    description: Optional[str] = None, available: Optional[int] = None) -> dict:
        when = available_on(created) if available is None else available
        txn = {
            "id": txn_id, "object": "balance_transaction", "amount": amount, "available_on": when,
            "created": created, "currency": currency, "description": description, "exchange_rate": None,
            "fee": fee, "fee_details": ([{"amount": fee, "application": None, "currency": currency,
                                          "description": fee_description, "type": "stripe_fee"}] if fee else []),
            "net": amount - fee, "reporting_category": category, "source": source,
            "status": "available" if when <= self.clock() else "pending", "type": type_,
        }
        self.objects["balance_transactions"].append(txn)
        return txn

    # ---- per charge ---------------------------------------------------------------------------------------
    def for_charge(self, charge: dict, index: int) -> None:
        """The charge's payment intent, balance transaction, refund, dispute, application fee and transfer."""
        self.objects["payment_intents"].append(self.payment_intent(charge))
        if charge["status"] != "succeeded":
            charge["balance_transaction"] = None  # a pending or failed charge has moved no money yet
            return
        if not charge["balance_transaction"]:
            charge["balance_transaction"] = "txn_" + charge["id"][3:]
        fee = stripe_fee(charge["amount"], charge["currency"])
        self.transaction(charge["balance_transaction"], charge["created"], charge["amount"], charge["currency"],
                         "charge", "charge", charge["id"], fee=fee, description=charge["description"])
        if charge["amount_refunded"]:
            self.objects["refunds"].append(self.refund(charge))
        if charge["disputed"]:
            self.objects["disputes"].append(self.dispute(charge))
        if index % 7 == 3:
            self.objects["application_fees"].append(self.application_fee(charge, refunds=12 if index == 3 else
                                                                          self.rng.choice((0, 0, 1))))
        if index % 9 == 4:
            self.objects["transfers"].append(self.transfer(charge, reversals=11 if index == 4 else
                                                           self.rng.choice((0, 0, 1))))

    def payment_intent(self, charge: dict) -> dict:
        status = {"succeeded": "succeeded", "pending": "processing"}.get(charge["status"], "requires_payment_method")
        pid = charge["payment_intent"]
        return {
            "id": pid, "object": "payment_intent", "amount": charge["amount"], "amount_capturable": 0,
            "amount_received": charge["amount"] if status == "succeeded" else 0, "application": None,
            "application_fee_amount": None, "automatic_payment_methods": None, "canceled_at": None,
            "cancellation_reason": None, "capture_method": "automatic",
            "client_secret": f"{pid}_secret_{random_alnum(self.rng, 24)}", "confirmation_method": "automatic",
            "created": charge["created"], "currency": charge["currency"], "customer": charge["customer"],
            "description": charge["description"], "invoice": None,
            "last_payment_error": None, "latest_charge": charge["id"], "livemode": self.livemode, "metadata": {},
            "next_action": None, "on_behalf_of": None, "payment_method": charge["payment_method"],
            "payment_method_configuration_details": None, "payment_method_options": None,
            "payment_method_types": ["card"], "processing": None, "receipt_email": charge["receipt_email"],
            "review": None, "setup_future_usage": None, "shipping": None, "statement_descriptor": None,
            "statement_descriptor_suffix": None, "status": status, "transfer_data": None, "transfer_group": None,
        }

    def refund(self, charge: dict, amount: Optional[int] = None, created: Optional[int] = None) -> dict:
        rid = self.new_id("re")
        amount = charge["amount_refunded"] if amount is None else amount
        created = created or charge["created"] + self.rng.randint(3600, 20 * DAY)
        txn = self.transaction("txn_" + rid[3:], created, -amount, charge["currency"], "refund", "refund", rid)
        return {
            "id": rid, "object": "refund", "amount": amount, "balance_transaction": txn["id"],
            "charge": charge["id"], "created": created, "currency": charge["currency"],
            "metadata": {}, "payment_intent": charge["payment_intent"], "reason": "requested_by_customer",
            "receipt_number": None, "source_transfer_reversal": None, "status": "succeeded",
            "transfer_reversal": None,
        }

    def dispute(self, charge: dict) -> dict:
        did = self.new_id("dp")
        created = charge["created"] + self.rng.randint(DAY, 30 * DAY)
        txn = self.transaction("txn_" + did[3:], created, -charge["amount"], charge["currency"], "adjustment",
                               "dispute", did, fee=DISPUTE_FEE, fee_description="Dispute fee",
                               description=f"Chargeback withdrawal for {charge['id']}")
        evidence = {name: None for name in (
            "access_activity_log", "billing_address", "cancellation_policy", "cancellation_policy_disclosure",
            "cancellation_rebuttal", "customer_communication", "customer_email_address", "customer_name",
            "customer_purchase_ip", "customer_signature", "duplicate_charge_documentation",
            "duplicate_charge_explanation", "duplicate_charge_id", "product_description", "receipt",
            "refund_policy", "refund_policy_disclosure", "refund_refusal_explanation", "service_date",
            "service_documentation", "shipping_address", "shipping_carrier", "shipping_date",
            "shipping_documentation", "shipping_tracking_number", "uncategorized_file", "uncategorized_text")}
        return {
            "id": did, "object": "dispute", "amount": charge["amount"], "balance_transactions": [dict(txn)],
            "charge": charge["id"], "created": created, "currency": charge["currency"], "evidence": evidence,
            "evidence_details": {"due_by": created + 21 * DAY, "has_evidence": False, "past_due": False,
                                 "submission_count": 0},
            "is_charge_refundable": False, "livemode": self.livemode, "metadata": {},
            "payment_intent": charge["payment_intent"], "reason": "fraudulent", "status": "needs_response",
        }

    def application_fee(self, charge: dict, refunds: int) -> dict:
        fid = self.new_id("fee")
        amount = max(charge["amount"] // 20, 1)
        each = max(amount // (2 * max(refunds, 1)), 1)
        txn = self.transaction("txn_" + fid[4:], charge["created"], amount, charge["currency"], "application_fee",
                               "platform_earning", fid)
        items = []
        for k in range(refunds):
            frid = self.new_id("fr")
            created = charge["created"] + (k + 1) * 3600
            refund_txn = self.transaction("txn_" + frid[3:], created, -each, charge["currency"],
                                          "application_fee_refund", "platform_earning_refund", frid)
            items.append({"id": frid, "object": "fee_refund", "amount": each, "balance_transaction": refund_txn["id"],
                          "created": created, "currency": charge["currency"], "fee": fid, "metadata": {}})
        items.reverse()  # newest first, like every Stripe list
        url = f"/v1/application_fees/{fid}/refunds"
        self.sub_lists[url] = items
        refunded = each * refunds
        return {
            "id": fid, "object": "application_fee", "account": CONNECTED_ACCOUNT, "amount": amount,
            "amount_refunded": refunded, "application": APPLICATION, "balance_transaction": txn["id"],
            "charge": charge["id"], "created": charge["created"], "currency": charge["currency"],
            "fee_source": {"charge": charge["id"], "type": "charge"}, "livemode": self.livemode,
            "originating_transaction": None, "refunded": refunded >= amount,
            "refunds": {"object": "list", "data": items[:10], "has_more": len(items) > 10, "url": url},
        }

    def transfer(self, charge: dict, reversals: int) -> dict:
        tid = self.new_id("tr")
        amount = charge["amount"] * 7 // 10
        each = max(amount // (2 * max(reversals, 1)), 1)
        created = charge["created"] + 60
        txn = self.transaction("txn_" + tid[3:], created, -amount, charge["currency"], "transfer", "transfer", tid)
        items = []
        for k in range(reversals):
            rid = self.new_id("trr")
            when = created + (k + 1) * 3600
            rtxn = self.transaction("txn_" + rid[4:], when, each, charge["currency"], "transfer_refund",
                                    "transfer_reversal", rid)
            items.append({"id": rid, "object": "transfer_reversal", "amount": each, "balance_transaction": rtxn["id"],
                          "created": when, "currency": charge["currency"], "destination_payment_refund": None,
                          "metadata": {}, "source_refund": None, "transfer": tid})
        items.reverse()
        url = f"/v1/transfers/{tid}/reversals"
        self.sub_lists[url] = items
        return {
            "id": tid, "object": "transfer", "amount": amount, "amount_reversed": each * reversals,
            "balance_transaction": txn["id"], "created": created, "currency": charge["currency"],
            "description": None, "destination": CONNECTED_ACCOUNT, "destination_payment": "py_" + tid[3:],
            "livemode": self.livemode, "metadata": {},
            "reversals": {"object": "list", "data": items[:10], "has_more": len(items) > 10, "url": url},
            "reversed": False, "source_transaction": charge["id"], "source_type": "card", "transfer_group": None,
        }

    # ---- billing objects ----------------------------------------------------------------------------------
    def credit_note(self, invoice: dict, lines: List[dict], customer: dict, number: int) -> dict:
        cid = self.new_id("cn")
        items = []
        for line in lines:
            items.append({
                "id": self.new_id("cnli"), "object": "credit_note_line_item", "amount": line["amount"],
                "amount_excluding_tax": line["amount"], "description": line["description"], "discount_amount": 0,
                "discount_amounts": [], "invoice_line_item": line["id"], "livemode": self.livemode,
                "quantity": line["quantity"], "tax_amounts": [], "tax_rates": [], "type": "invoice_line_item",
                "unit_amount": line["amount"] // max(line["quantity"], 1),
                "unit_amount_decimal": str(line["amount"] // max(line["quantity"], 1)),
                "unit_amount_excluding_tax": str(line["amount"] // max(line["quantity"], 1)),
            })
        total = sum(item["amount"] for item in items)
        created = invoice["created"] + 5 * DAY
        url = f"/v1/credit_notes/{cid}/lines"
        self.sub_lists[url] = items
        return {
            "id": cid, "object": "credit_note", "amount": total, "amount_shipping": 0, "created": created,
            "currency": invoice["currency"], "customer": invoice["customer"], "customer_balance_transaction": None,
            "discount_amount": 0, "discount_amounts": [], "effective_at": created, "invoice": invoice["id"],
            "lines": {"object": "list", "data": items[:10], "has_more": len(items) > 10, "url": url},
            "livemode": self.livemode, "memo": None, "metadata": {},
            "number": f"{customer['invoice_prefix']}-CN-{number:02d}", "out_of_band_amount": None,
            "pdf": f"https://pay.stripe.com/credit_notes/acct_1SimOntologie0001/{cid[3:]}/pdf",
            "reason": "order_change", "refund": None, "shipping_cost": None, "status": "issued", "subtotal": total,
            "subtotal_excluding_tax": total, "tax_amounts": [], "total": total, "total_excluding_tax": total,
            "type": "post_payment" if invoice["status"] == "paid" else "pre_payment", "voided_at": None,
        }

    def invoice_item(self, item_id: str, customer: str, date: int, price: dict, quantity: int,
                     invoice: Optional[str], currency: Optional[str] = None, unit: Optional[int] = None) -> dict:
        unit = price["unit_amount"] if unit is None else unit
        return {
            "id": item_id, "object": "invoiceitem", "amount": unit * quantity, "currency": currency or price["currency"],
            "customer": customer, "date": date, "description": f"{quantity} x {price['product']}",
            "discountable": True, "discounts": [], "invoice": invoice, "livemode": self.livemode, "metadata": {},
            "period": {"end": date, "start": date}, "price": dict(price), "proration": False, "quantity": quantity,
            "subscription": None, "tax_rates": [], "test_clock": None,
            "unit_amount": unit, "unit_amount_decimal": str(unit),
        }

    def coupon(self, created: int) -> dict:
        rng = self.rng
        percent = rng.random() < 0.6
        duration = rng.choice(("once", "forever", "repeating"))
        currency = None if percent else rng.choice(("usd", "eur"))
        return {
            "id": random_alnum(rng, 8), "object": "coupon", "amount_off": None if percent else rng.choice((500, 1000)),
            "created": created, "currency": currency, "duration": duration,
            "duration_in_months": 3 if duration == "repeating" else None, "livemode": self.livemode,
            "max_redemptions": rng.choice((None, 100)), "metadata": {},
            "name": rng.choice(("Launch", "Partner", "Winback", None)), "percent_off": float(rng.choice((10, 20, 50)))
            if percent else None, "redeem_by": None, "times_redeemed": rng.randint(0, 40), "valid": True,
        }

    # ---- payouts ------------------------------------------------------------------------------------------
    def pay_out(self, payout: dict, currency: Optional[str] = None,
                balance: Optional["UnpaidBalance"] = None) -> None:
        """Gives a payout its balance transaction(s); an automatic one pays the available, unpaid balance of
        `currency`, by default the currency with the most of it (or becomes manual when nothing is available).
        `balance` is that balance when the caller keeps it (the bulk build); else it is gathered here."""
        if payout["automatic"] and payout["status"] in ("paid", "pending", "in_transit"):
            if balance is None:
                balance = UnpaidBalance()
                for txn in self.objects["balance_transactions"]:
                    if txn["id"] not in self.paid_out and txn["available_on"] <= payout["created"]:
                        balance.add(txn)
            best = balance.best(currency)
            if best is not None:
                paid = balance.take(best)
                payout["currency"], payout["amount"] = best, sum(t["net"] for t in paid)
                ids = [t["id"] for t in paid]
                self.paid_out.update(ids)
                own = self._payout_transaction(payout)
                self.payout_transactions[payout["id"]] = ids + [own["id"]]
                payout["reconciliation_status"] = "completed" if payout["status"] == "paid" else "in_progress"
                return
            payout["automatic"] = False
        payout["reconciliation_status"] = "not_applicable"
        self._payout_transaction(payout)
        if payout["status"] == "failed" and payout.get("failure_balance_transaction"):
            self.transaction(payout["failure_balance_transaction"], payout["created"] + DAY, payout["amount"],
                             payout["currency"], "payout_failure", "payout_reversal", payout["id"],
                             available=payout["created"] + DAY)

    def _payout_transaction(self, payout: dict) -> dict:
        if not payout["balance_transaction"]:
            payout["balance_transaction"] = "txn_" + payout["id"][3:]
        return self.transaction(payout["balance_transaction"], payout["created"], -payout["amount"],
                                payout["currency"], "payout", "payout", payout["id"], available=payout["created"],
                                description="STRIPE PAYOUT")


class UnpaidBalance:
    """The available balance no payout has paid yet, per currency, with running sums (a large dataset has tens of
    thousands of payouts and transactions)."""

    def __init__(self) -> None:
        self._transactions: Dict[str, List[dict]] = {}
        self._sums: Dict[str, int] = {}

    def add(self, txn: dict) -> None:
        if txn["type"] == "payout" or txn["status"] != "available":
            return
        self._transactions.setdefault(txn["currency"], []).append(txn)
        self._sums[txn["currency"]] = self._sums.get(txn["currency"], 0) + txn["net"]

    def best(self, currency: Optional[str] = None) -> Optional[str]:
        """`currency`, or the currency with the largest positive balance; None when it is not positive."""
        sums = {c: v for c, v in self._sums.items() if currency in (None, c) and v > 0}
        return max(sums, key=lambda c: (sums[c], c), default=None)

    def take(self, currency: str) -> List[dict]:
        self._sums.pop(currency, None)
        return self._transactions.pop(currency, [])


def build(dataset, clock: Callable[[], float]) -> MoneyTrail:
    """The money trail of a generated dataset (deterministic: its own rng, seeded from the dataset's)."""
    factory = dataset.factory
    trail = MoneyTrail(random.Random(f"money-trail/{'live' if dataset.livemode else 'test'}"),
                       dataset.livemode, lambda prefix: factory.ids.new(prefix), clock)
    succeeded = 0
    for charge in sorted(dataset.objects["charges"], key=lambda c: (c["created"], c["id"])):
        trail.for_charge(charge, succeeded)
        succeeded += charge["status"] == "succeeded"
    customers = {c["id"]: c for c in dataset.objects["customers"]}
    numbers: Dict[str, int] = {}
    creditable = [i for i in dataset.objects["invoices"] if i["status"] in ("paid", "open")]  # Stripe's rule
    longest = max(creditable, key=lambda i: len(dataset.invoice_lines.get(i["id"], [])), default={}).get("id")
    for index, invoice in enumerate(dataset.objects["invoices"]):
        lines = dataset.invoice_lines.get(invoice["id"], [])
        for line in lines:
            if line.get("invoice_item"):
                trail.objects["invoiceitems"].append(trail.invoice_item(
                    line["invoice_item"], invoice["customer"], invoice["created"] - 60, line["price"],
                    line["quantity"], invoice["id"], currency=line["currency"],
                    unit=line["amount"] // max(line["quantity"], 1)))
        if lines and invoice["status"] in ("paid", "open") and (index % 3 == 0 or invoice["id"] == longest):
            numbers[invoice["customer"]] = numbers.get(invoice["customer"], 0) + 1
            trail.objects["credit_notes"].append(trail.credit_note(invoice, lines, customers[invoice["customer"]],
                                                                   numbers[invoice["customer"]]))
    prices = list(dataset.prices.values())
    for k, customer in enumerate(dataset.objects["customers"][::4]):  # pending items: on no invoice yet
        if prices:
            trail.objects["invoiceitems"].append(trail.invoice_item(
                "ii_" + factory.ids.new("lines")[3:], customer["id"], customer["created"] + DAY, prices[k % len(prices)],
                1 + k % 3, None))
    trail.objects["prices"] = prices
    first = min((c["created"] for c in dataset.objects["customers"]), default=1640995200)
    customer_count = len(dataset.objects["customers"])  # an empty account (no customers) has no coupons either
    for k in range(max(3, customer_count // 8) if customer_count else 0):
        trail.objects["coupons"].append(trail.coupon(first + k * 7 * DAY + trail.rng.randint(0, DAY)))
    balance = UnpaidBalance()
    due = sorted(trail.objects["balance_transactions"], key=lambda t: (t["available_on"], t["created"], t["id"]))
    next_due = 0
    for payout in sorted(dataset.objects["payouts"], key=lambda p: (p["created"], p["id"])):
        while next_due < len(due) and due[next_due]["available_on"] <= payout["created"]:
            balance.add(due[next_due])
            next_due += 1
        trail.pay_out(payout, balance=balance)
    return trail


def sub_list_url(path_parts: List[str]) -> Optional[str]:
    """``/v1/<parent>/<id>/<name>`` of a served embedded list, else None."""
    if len(path_parts) == 4 and SUB_LISTS.get(path_parts[1]) == path_parts[3]:
        return "/" + "/".join(path_parts)
    return None


def predicate(endpoint: str, params: dict, trail: MoneyTrail, lookup: Callable[[str, str], Optional[dict]],
              error: Callable[..., Exception]) -> Optional[Callable[[dict], bool]]:
    """The money-trail lists' own filters: ``payout`` (automatic payouts only, like Stripe), ``type``, ``source``,
    ``currency``, ``charge``, ``invoice``, ``pending``, ``product``."""
    checks: List[Callable[[dict], bool]] = []
    if endpoint == "balance_transactions" and params.get("payout"):
        payout_id = params["payout"]
        payout = lookup("payouts", payout_id)
        if payout is None:
            raise error(404, f"No such payout: '{payout_id}'", code="resource_missing", param="payout")
        if not payout.get("automatic"):
            raise error(400, "Balance transaction history can only be filtered on automatic transfers, not manual.")
        ids = frozenset(trail.payout_transactions.get(payout_id, ()))
        checks.append(lambda o: o["id"] in ids)
    for name in ("type", "source", "currency", "charge", "invoice", "product"):
        value = params.get(name)
        if value not in (None, ""):
            checks.append(lambda o, n=name, v=value: o.get(n) == v)
    if endpoint == "invoiceitems" and params.get("pending") in ("true", "false"):
        wanted = params["pending"] == "true"
        checks.append(lambda o: (o.get("invoice") is None) is wanted)
    if not checks:
        return None
    return lambda o: all(check(o) for check in checks)


def combine(*predicates: Optional[Callable[[dict], bool]]) -> Optional[Callable[[dict], bool]]:
    present = [p for p in predicates if p is not None]
    if not present:
        return None
    if len(present) == 1:
        return present[0]
    return lambda o: all(p(o) for p in present)


def settle(transactions: Iterable, until: int) -> int:
    """Flips the pending transactions due by ``until`` to available; returns how many (records, for their cache)."""
    flipped = 0
    for record in transactions:
        txn = record.obj
        if txn["status"] == "pending" and txn["available_on"] <= until:
            txn["status"] = "available"
            record.invalidate()
            flipped += 1
    return flipped
