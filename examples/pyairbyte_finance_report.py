"""Finance report from Stripe, synced with PyAirbyte through this connector into a local DuckDB cache.

What it prints, per currency (amounts are never added across currencies):
- revenue by month: succeeded charges (gross), minus what was refunded on them, net; each charge counts in
  the UTC month it was created, refunds included (the charges stream carries `amount_refunded`, not the
  refund dates), disputes are not subtracted;
- MRR: items of active, trialing and past_due subscriptions, unit amount x quantity, normalised to one month
  by the price's interval and interval_count (a year is 12 months, a week 12/52 of a month, a day
  12/365 of a month), summed exactly and rounded half-even to the currency's minor unit; metered and
  tiered prices have no fixed amount and are counted apart;
- payouts: count and amount by status;
- payout reconciliation: per reconciled automatic payout, from its balance transactions (the
  `payout_balance_transactions` stream): gross charges, refunds, disputes (withdrawals and reinstatements), other
  movements (application fees, transfers...), Stripe's fees, and net, checked against the payout's amount. Sign
  convention (Stripe's reconciliation guide): the payout's own `payout` transaction is -amount and is left out; the
  net of the others is what the payout paid, so `net == amount` for every reconciled payout.

Stripe amounts are integers in the currency's minor unit; they become major units with `Decimal`, using
Stripe's zero-decimal (JPY, KRW, ...) and three-decimal (KWD, BHD, ...) currency lists, so nothing is
rounded or turned into a float.

Run it with PyAirbyte installed (the `pyairbyte` extra: `pip install "source-stripe-ontologie[pyairbyte]"`,
or `pip install airbyte` in a separate virtualenv: PyAirbyte pins versions that can clash with the
connector's own environment) and this connector's console script:

    python examples/pyairbyte_finance_report.py --config config.json
    python examples/pyairbyte_finance_report.py --config config.json --connector /path/to/source-stripe-ontologie
    python examples/pyairbyte_finance_report.py --simulator        # source checkout only: a local fake Stripe

`--json report.json` also writes the report with amounts as decimal strings. PyAirbyte runs the connector as
a local executable and keeps the records in its default DuckDB cache, `.cache/default_cache/` under the
current directory (or `AIRBYTE_PROJECT_DIR`). The connector is not in Airbyte's registry, so registry
look-ups and PyAirbyte's telemetry are switched off (`AIRBYTE_OFFLINE_MODE=1`) unless the environment says
otherwise.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

CONNECTOR_NAME = "source-stripe-ontologie"
STREAMS = ("charges", "subscriptions", "payouts", "payout_balance_transactions")
MRR_STATUSES = frozenset({"active", "trialing", "past_due"})

# Stripe's currency lists (https://docs.stripe.com/currencies): every other currency has two decimals.
ZERO_DECIMAL_CURRENCIES = frozenset({
    "bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf",
})
THREE_DECIMAL_CURRENCIES = frozenset({"bhd", "jod", "kwd", "omr", "tnd"})
# Months per interval, as fractions so a weekly or daily price normalises without rounding.
MONTHS_PER_INTERVAL = {"month": Fraction(1), "year": Fraction(12), "week": Fraction(12, 52), "day": Fraction(12, 365)}


# ---- money -------------------------------------------------------------------------------------------------
def minor_unit_exponent(currency: str) -> int:
    """How many decimals the currency's minor unit has in Stripe amounts (JPY 0, USD 2, KWD 3)."""
    currency = currency.lower()
    if currency in ZERO_DECIMAL_CURRENCIES:
        return 0
    if currency in THREE_DECIMAL_CURRENCIES:
        return 3
    return 2


def to_major(amount_minor: int | Fraction, currency: str) -> Decimal:
    """An amount in minor units as an exact Decimal in major units (1234 USD -> 12.34, 1234 JPY -> 1234).

    A fraction of a minor unit (only MRR produces one) is rounded half-even to the minor unit.
    """
    exponent = minor_unit_exponent(currency)
    if isinstance(amount_minor, Fraction):
        amount_minor = round(amount_minor)  # Fraction.__round__ rounds half to even
    return Decimal(int(amount_minor)).scaleb(-exponent)


def utc_day(epoch_seconds: int) -> str:
    return datetime.fromtimestamp(int(epoch_seconds), tz=timezone.utc).strftime("%Y-%m-%d")


def utc_month(epoch_seconds: int) -> str:
    return datetime.fromtimestamp(int(epoch_seconds), tz=timezone.utc).strftime("%Y-%m")


# ---- the three parts of the report -------------------------------------------------------------------------
@dataclass
class MonthRevenue:
    month: str
    currency: str
    gross: Decimal
    refunded: Decimal
    net: Decimal
    charges: int


def revenue_by_month(charges: Iterable[Mapping[str, Any]]) -> List[MonthRevenue]:
    """Succeeded charges per (UTC month of creation, currency): gross, refunded, net, in major units."""
    gross: Dict[Tuple[str, str], int] = defaultdict(int)
    refunded: Dict[Tuple[str, str], int] = defaultdict(int)
    counts: Dict[Tuple[str, str], int] = defaultdict(int)
    for charge in charges:
        if charge.get("status") != "succeeded":
            continue
        key = (utc_month(charge["created"]), charge["currency"].lower())
        gross[key] += int(charge["amount"])
        refunded[key] += int(charge.get("amount_refunded") or 0)
        counts[key] += 1
    return [
        MonthRevenue(month, currency, to_major(gross[(month, currency)], currency),
                     to_major(refunded[(month, currency)], currency),
                     to_major(gross[(month, currency)] - refunded[(month, currency)], currency),
                     counts[(month, currency)])
        for month, currency in sorted(gross)
    ]


@dataclass
class CurrencyMrr:
    currency: str
    mrr: Decimal
    subscriptions: int
    items_without_fixed_amount: int


def item_monthly_minor(item: Mapping[str, Any]) -> Optional[Fraction]:
    """One subscription item's amount per month in minor units, or None for metered or tiered prices."""
    price = item.get("price") or {}
    recurring = price.get("recurring") or {}
    if recurring.get("usage_type") == "metered":
        return None
    if price.get("unit_amount") is not None:
        unit = Fraction(int(price["unit_amount"]))
    elif price.get("unit_amount_decimal") is not None:
        unit = Fraction(str(price["unit_amount_decimal"]))  # a decimal string: exact
    else:
        return None
    quantity = item.get("quantity")
    months = MONTHS_PER_INTERVAL[recurring.get("interval") or "month"] * int(recurring.get("interval_count") or 1)
    return unit * (1 if quantity is None else int(quantity)) / months


def monthly_recurring_revenue(subscriptions: Iterable[Mapping[str, Any]]) -> List[CurrencyMrr]:
    """MRR per currency from active, trialing and past_due subscriptions (see the module docstring)."""
    totals: Dict[str, Fraction] = defaultdict(Fraction)
    counted: Dict[str, int] = defaultdict(int)
    unpriced: Dict[str, int] = defaultdict(int)
    for subscription in subscriptions:
        if subscription.get("status") not in MRR_STATUSES:
            continue
        currency = subscription["currency"].lower()
        counted[currency] += 1
        for item in (subscription.get("items") or {}).get("data") or []:
            monthly = item_monthly_minor(item)
            item_currency = ((item.get("price") or {}).get("currency") or currency).lower()
            if monthly is None:
                unpriced[item_currency] += 1
            else:
                totals[item_currency] += monthly
    currencies = sorted(set(counted) | set(totals))
    return [CurrencyMrr(c, to_major(totals[c], c), counted[c], unpriced[c]) for c in currencies]


@dataclass
class PayoutGroup:
    status: str
    currency: str
    count: int
    amount: Decimal


def payouts_by_status(payouts: Iterable[Mapping[str, Any]]) -> List[PayoutGroup]:
    """Payout count and amount (major units) per (status, currency)."""
    amounts: Dict[Tuple[str, str], int] = defaultdict(int)
    counts: Dict[Tuple[str, str], int] = defaultdict(int)
    for payout in payouts:
        key = (payout["status"], payout["currency"].lower())
        amounts[key] += int(payout["amount"])
        counts[key] += 1
    return [PayoutGroup(status, currency, counts[(status, currency)], to_major(amounts[(status, currency)], currency))
            for status, currency in sorted(amounts)]


@dataclass
class PayoutReconciliation:
    payout: str
    currency: str
    arrival_date: int
    transactions: int
    gross: Decimal  # charges (reporting category `charge`)
    refunds: Decimal  # `refund`: negative
    disputes: Decimal  # `dispute` (withdrawn, negative) and `dispute_reversal` (reinstated)
    other: Decimal  # every other movement: application fees, transfers, adjustments...
    fees: Decimal  # Stripe's fees on all of them (positive: what Stripe kept)
    net: Decimal  # gross + refunds + disputes + other - fees: what the payout paid
    amount: Decimal  # the payout's amount

    @property
    def matches(self) -> bool:
        return self.net == self.amount


REFUND_CATEGORIES = frozenset({"refund", "refund_failure"})
DISPUTE_CATEGORIES = frozenset({"dispute", "dispute_reversal"})


def payout_reconciliation(payouts: Iterable[Mapping[str, Any]],
                          transactions: Iterable[Mapping[str, Any]]) -> List[PayoutReconciliation]:
    """One row per payout that has transactions in `payout_balance_transactions` (reconciled automatic payouts)."""
    by_payout: Dict[str, List[Mapping[str, Any]]] = defaultdict(list)
    for transaction in transactions:
        by_payout[transaction["payout"]].append(transaction)
    rows = []
    for payout in sorted(payouts, key=lambda p: (p["created"], p["id"])):
        movements = [t for t in by_payout.get(payout["id"], []) if t["type"] != "payout"]
        if payout["id"] not in by_payout:
            continue
        sums = defaultdict(int)
        for t in movements:
            category = t.get("reporting_category")
            kind = ("gross" if category == "charge" else "refunds" if category in REFUND_CATEGORIES
                    else "disputes" if category in DISPUTE_CATEGORIES else "other")
            sums[kind] += int(t["amount"])
            sums["fees"] += int(t["fee"])
            sums["net"] += int(t["net"])
        currency = payout["currency"].lower()
        rows.append(PayoutReconciliation(
            payout["id"], currency, int(payout["arrival_date"]), len(movements),
            *(to_major(sums[k], currency) for k in ("gross", "refunds", "disputes", "other", "fees", "net")),
            to_major(int(payout["amount"]), currency)))
    return rows


@dataclass
class FinanceReport:
    revenue: List[MonthRevenue]
    mrr: List[CurrencyMrr]
    payouts: List[PayoutGroup]
    reconciliation: List[PayoutReconciliation]
    records: Dict[str, int]

    @classmethod
    def from_records(cls, records: Mapping[str, List[Mapping[str, Any]]]) -> "FinanceReport":
        return cls(revenue_by_month(records["charges"]), monthly_recurring_revenue(records["subscriptions"]),
                   payouts_by_status(records["payouts"]),
                   payout_reconciliation(records["payouts"], records.get("payout_balance_transactions") or []),
                   {name: len(rows) for name, rows in records.items()})

    def to_json(self) -> Dict[str, Any]:
        """The report with every amount as a decimal string (exact, in major units)."""
        return {
            "records": self.records,
            "revenue_by_month": [
                {"month": r.month, "currency": r.currency, "gross": str(r.gross), "refunded": str(r.refunded),
                 "net": str(r.net), "charges": r.charges} for r in self.revenue],
            "mrr": [{"currency": m.currency, "mrr": str(m.mrr), "subscriptions": m.subscriptions,
                     "items_without_fixed_amount": m.items_without_fixed_amount} for m in self.mrr],
            "payouts_by_status": [{"status": p.status, "currency": p.currency, "count": p.count,
                                   "amount": str(p.amount)} for p in self.payouts],
            "payout_reconciliation": [
                {"payout": r.payout, "currency": r.currency, "transactions": r.transactions, "gross": str(r.gross),
                 "refunds": str(r.refunds), "disputes": str(r.disputes), "other": str(r.other), "fees": str(r.fees),
                 "net": str(r.net), "amount": str(r.amount), "matches": r.matches} for r in self.reconciliation],
        }

    def to_text(self) -> str:
        lines = ["Synced records: " + ", ".join(f"{name} {count}" for name, count in self.records.items()), ""]
        lines += ["Revenue by month (succeeded charges net of their refunds; UTC month the charge was created)",
                  f"{'month':<8} {'currency':<8} {'charges':>7} {'gross':>16} {'refunded':>16} {'net':>16}"]
        lines += [f"{r.month:<8} {r.currency.upper():<8} {r.charges:>7} {r.gross:>16,} {r.refunded:>16,} {r.net:>16,}"
                  for r in self.revenue]
        lines += ["", "MRR (active, trialing and past_due subscriptions, normalised to one month)",
                  f"{'currency':<8} {'subscriptions':>13} {'mrr':>16} {'not priced':>10}"]
        lines += [f"{m.currency.upper():<8} {m.subscriptions:>13} {m.mrr:>16,} {m.items_without_fixed_amount:>10}"
                  for m in self.mrr]
        lines += ["", "Payouts by status", f"{'status':<12} {'currency':<8} {'count':>5} {'amount':>16}"]
        lines += [f"{p.status:<12} {p.currency.upper():<8} {p.count:>5} {p.amount:>16,}" for p in self.payouts]
        matched = sum(r.matches for r in self.reconciliation)
        lines += ["", f"Payout reconciliation ({matched} of {len(self.reconciliation)} reconciled automatic payouts "
                      f"add up: net of their balance transactions = payout amount)",
                  f"{'payout':<30} {'arrival':<10} {'currency':<8} {'gross':>14} {'refunds':>14} {'disputes':>12} "
                  f"{'other':>12} {'fees':>12} {'net':>14} {'amount':>14}  ok"]
        lines += [f"{r.payout:<30} {utc_day(r.arrival_date):<10} {r.currency.upper():<8} {r.gross:>14,} "
                  f"{r.refunds:>14,} {r.disputes:>12,} {r.other:>12,} {r.fees:>12,} {r.net:>14,} {r.amount:>14,}  "
                  f"{'yes' if r.matches else 'NO'}" for r in self.reconciliation]
        return "\n".join(lines)


# ---- syncing with PyAirbyte --------------------------------------------------------------------------------
def sync_with_pyairbyte(config: Mapping[str, Any], connector: str) -> Dict[str, List[Dict[str, Any]]]:
    """Run the connector under PyAirbyte into its default DuckDB cache; return the cached records per stream."""
    os.environ.setdefault("AIRBYTE_OFFLINE_MODE", "1")  # not in Airbyte's registry; also disables telemetry
    import airbyte as ab  # the optional `pyairbyte` extra

    # PyAirbyte prints progress and schema notes on stdout; keep stdout for the report.
    with contextlib.redirect_stdout(sys.stderr):
        source = ab.get_source(CONNECTOR_NAME, config=dict(config), local_executable=connector,
                               streams=list(STREAMS))
        source.check()
        result = source.read(cache=ab.get_default_cache())
        return {name: [dict(row) for row in result[name]] for name in STREAMS}


def find_connector(explicit: Optional[str]) -> str:
    if explicit:
        return explicit
    beside_python = Path(sys.executable).parent / CONNECTOR_NAME
    found = shutil.which(CONNECTOR_NAME) or (str(beside_python) if beside_python.exists() else None)
    if not found:
        raise SystemExit(f"{CONNECTOR_NAME} is not on PATH: install the connector or pass --connector PATH")
    return found


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--config", type=Path, help="the connector's config file (JSON)")
    source.add_argument("--simulator", action="store_true",
                        help="sync from a local Stripe simulator (seeded test data; source checkout only)")
    parser.add_argument("--connector", help=f"path of the {CONNECTOR_NAME} executable (default: from PATH)")
    parser.add_argument("--json", type=Path, help="also write the report as JSON to this file")
    args = parser.parse_args(argv)

    connector = find_connector(args.connector)
    simulator = None
    if args.simulator:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from integration_tests.stripe_simulator import StripeSimulator, keys

        simulator = StripeSimulator(seed=7, size="small").start()
        config: Dict[str, Any] = {"client_secret": keys.TEST_KEY, "api_base_url": simulator.url}
    else:
        config = json.loads(args.config.read_text())
    try:
        report = FinanceReport.from_records(sync_with_pyairbyte(config, connector))
    finally:
        if simulator is not None:
            simulator.stop()
    print(report.to_text())
    if args.json:
        args.json.write_text(json.dumps(report.to_json(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
