"""The PyAirbyte example syncs from the simulator and its finance report matches the simulator's own data.

PyAirbyte (PyPI `airbyte`, the `pyairbyte` extra) pins packages older than the connector's environment holds
(rich<14, cryptography<47), so it lives in its own virtualenv, `.cache/pyairbyte-venv`, created and filled
from the extra's requirement on first use (from PyPI) and reused after. The example runs with that
interpreter; the connector it drives is this environment's `source-stripe-ontologie` console script (or the
checkout's module when there is none, or with CONNECTOR_FROM_SOURCE=1), as for every end-to-end test.

Expected numbers are computed here from `sim.objects(...)`, independently of the example's code (its own
currency table, Decimal division instead of Fraction rounding), after adding the cases the seeded data lacks:
quarterly, weekly, daily and metered prices, a three-decimal currency, partial refunds in JPY.
"""
from __future__ import annotations

import fcntl
import importlib.util
import json
import os
import subprocess
import sys
import tomllib
from collections import defaultdict
from datetime import datetime, timezone
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from fractions import Fraction
from pathlib import Path
from typing import Dict, List

import pytest
import requests

from integration_tests.connector_cli import REPO, connector_command, simulator_config
from integration_tests.stripe_simulator import StripeSimulator, keys

EXAMPLE = REPO / "examples" / "pyairbyte_finance_report.py"
VENV = REPO / ".cache" / "pyairbyte-venv"
INSTALL_TIMEOUT = 1200
SYNC_TIMEOUT = 600
# Minor-unit digits of every currency the test data holds (the example keeps Stripe's full lists).
DIGITS = {"usd": 2, "eur": 2, "gbp": 2, "cad": 2, "jpy": 0, "kwd": 3}
MRR_STATUSES = {"active", "trialing", "past_due"}


# ---- the PyAirbyte interpreter ------------------------------------------------------------------------------
def pyairbyte_requirements() -> List[str]:
    with open(REPO / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]["optional-dependencies"]["pyairbyte"]


def ensure_pyairbyte_python() -> Path:
    """The interpreter of `.cache/pyairbyte-venv`, created and filled with the extra's requirements if needed.

    Idempotent: a stamp file records the requirements installed; a lock keeps two sessions from building it
    at once. Skips the calling test, with pip's last words, when PyAirbyte cannot be installed.
    """
    requirements = pyairbyte_requirements()
    python = VENV / "bin" / "python"
    stamp = VENV / ".installed-requirements"
    VENV.parent.mkdir(parents=True, exist_ok=True)
    with open(VENV.parent / "pyairbyte-venv.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if python.exists() and stamp.exists() and stamp.read_text() == "\n".join(requirements):
            return python
        steps = []
        if not python.exists():
            steps.append([getattr(sys, "_base_executable", sys.executable), "-m", "venv", str(VENV)])
        steps.append([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *requirements])
        for step in steps:
            done = subprocess.run(step, capture_output=True, text=True, timeout=INSTALL_TIMEOUT)
            if done.returncode != 0:
                tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-5:])
                pytest.skip(f"cannot install PyAirbyte ({' '.join(requirements)}) into {VENV}: {tail}")
        stamp.write_text("\n".join(requirements))
        return python


def connector_executable(directory: Path) -> str:
    """The connector as one executable path, which is what PyAirbyte's `local_executable` takes."""
    command = connector_command()
    if len(command) == 1:
        return command[0]
    wrapper = directory / "source-stripe-ontologie"
    wrapper.write_text(f'#!/bin/sh\nPYTHONPATH="{REPO}${{PYTHONPATH:+:$PYTHONPATH}}" exec '
                       + " ".join(f'"{part}"' for part in command) + ' "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)


# ---- the cases the seeded data lacks ------------------------------------------------------------------------
def recurring_price(currency: str, unit_amount, interval: str, interval_count: int = 1,
                    usage_type: str = "licensed") -> dict:
    return {"id": f"price_test_{currency}_{interval}{interval_count}_{usage_type}", "object": "price",
            "currency": currency, "type": "recurring", "billing_scheme": "per_unit",
            "unit_amount": unit_amount, "unit_amount_decimal": None if unit_amount is None else str(unit_amount),
            "recurring": {"interval": interval, "interval_count": interval_count, "usage_type": usage_type,
                          "aggregate_usage": None, "meter": None}}


def subscription_items(subscription_id: str, *priced: tuple) -> dict:
    return {"object": "list", "has_more": False, "url": f"/v1/subscription_items?subscription={subscription_id}",
            "data": [{"id": f"si_test_{n}", "object": "subscription_item", "price": price, "quantity": quantity,
                      "subscription": subscription_id} for n, (price, quantity) in enumerate(priced)]}


def add_edge_cases(sim: StripeSimulator, created: int) -> None:
    def subscription(status: str, currency: str, *priced: tuple) -> None:
        sub = sim.create("subscriptions", mode="test", created=created, status=status, currency=currency)
        sim.update("subscriptions", sub["id"], mode="test", items=subscription_items(sub["id"], *priced))

    subscription("active", "jpy", (recurring_price("jpy", 10000, "month", 3), 1))  # quarterly yen: 3333.33...
    subscription("trialing", "eur", (recurring_price("eur", 999, "week", 2), 3))
    subscription("past_due", "usd", (recurring_price("usd", 101, "day"), 1),
                 (recurring_price("usd", None, "month", usage_type="metered"), 1))
    subscription("canceled", "usd", (recurring_price("usd", 50000, "month"), 1))  # not in MRR
    subscription("active", "kwd", (recurring_price("kwd", 12340, "year"), 1))
    for currency, amount, refunded in (("kwd", 12340, 2210), ("jpy", 5000, 1234), ("jpy", 777, 0)):
        sim.create("charges", mode="test", created=created, status="succeeded", paid=True, currency=currency,
                   amount=amount, amount_captured=amount, amount_refunded=refunded, refunded=refunded == amount)


# ---- what the report should say, from the simulator's objects -----------------------------------------------
def major(minor: int, currency: str) -> str:
    """Major units written with exactly the currency's minor-unit digits (USD 5.00, JPY 5, KWD 5.000)."""
    digits = DIGITS[currency]
    return str((Decimal(minor) / (Decimal(10) ** digits)).quantize(Decimal(1).scaleb(-digits)))


def expected_revenue(charges: List[dict]) -> List[dict]:
    rows: Dict[tuple, Dict[str, int]] = defaultdict(lambda: {"gross": 0, "refunded": 0, "charges": 0})
    for c in charges:
        if c["status"] == "succeeded":
            row = rows[(datetime.fromtimestamp(c["created"], timezone.utc).strftime("%Y-%m"), c["currency"])]
            row["gross"] += c["amount"]
            row["refunded"] += c["amount_refunded"]
            row["charges"] += 1
    return [{"month": month, "currency": cur, "gross": major(r["gross"], cur), "refunded": major(r["refunded"], cur),
             "net": major(r["gross"] - r["refunded"], cur), "charges": r["charges"]}
            for (month, cur), r in sorted(rows.items())]


def expected_mrr(subscriptions: List[dict]) -> List[dict]:
    per_month = {"month": Fraction(1), "year": Fraction(1, 12), "week": Fraction(52, 12), "day": Fraction(365, 12)}
    totals: Dict[str, Fraction] = defaultdict(Fraction)
    counts: Dict[str, int] = defaultdict(int)
    unpriced: Dict[str, int] = defaultdict(int)
    for s in subscriptions:
        if s["status"] not in MRR_STATUSES:
            continue
        counts[s["currency"]] += 1
        for item in s["items"]["data"]:
            price, recurring = item["price"], item["price"]["recurring"]
            if recurring["usage_type"] == "metered":
                unpriced[s["currency"]] += 1
                continue
            totals[s["currency"]] += (price["unit_amount"] * item["quantity"] * per_month[recurring["interval"]]
                                      / recurring["interval_count"])
    rows = []
    for cur in sorted(counts):
        with localcontext() as ctx:
            ctx.prec = 50
            minor = (Decimal(totals[cur].numerator) / Decimal(totals[cur].denominator)).quantize(
                Decimal(1), rounding=ROUND_HALF_EVEN)
        rows.append({"currency": cur, "mrr": major(int(minor), cur), "subscriptions": counts[cur],
                     "items_without_fixed_amount": unpriced[cur]})
    return rows


def expected_payouts(payouts: List[dict]) -> List[dict]:
    rows: Dict[tuple, Dict[str, int]] = defaultdict(lambda: {"count": 0, "amount": 0})
    for p in payouts:
        rows[(p["status"], p["currency"])]["count"] += 1
        rows[(p["status"], p["currency"])]["amount"] += p["amount"]
    return [{"status": status, "currency": cur, "count": r["count"], "amount": major(r["amount"], cur)}
            for (status, cur), r in sorted(rows.items())]


def reconciled_transactions(sim: StripeSimulator) -> Dict[str, List[dict]]:
    """Each reconciled automatic payout's balance transactions, as Stripe's `?payout=` lists them."""
    out = {}
    for p in sim.objects("payouts", mode="test"):
        if p["automatic"] and p["reconciliation_status"] == "completed":
            body = requests.get(f"{sim.url}/v1/balance_transactions", params={"payout": p["id"], "limit": 100},
                                headers={"Authorization": f"Bearer {keys.TEST_KEY}"}, timeout=10).json()
            assert body["has_more"] is False
            out[p["id"]] = body["data"]
    return out


def expected_reconciliation(sim: StripeSimulator) -> List[dict]:
    payouts = {p["id"]: p for p in sim.objects("payouts", mode="test")}
    rows = []
    for payout_id, transactions in sorted(reconciled_transactions(sim).items(),
                                          key=lambda item: (payouts[item[0]]["created"], item[0])):
        payout, cur = payouts[payout_id], payouts[payout_id]["currency"]
        moved = [t for t in transactions if t["type"] != "payout"]
        by = defaultdict(int)
        for t in moved:
            by[{"charge": "gross", "refund": "refunds", "dispute": "disputes"}.get(t["reporting_category"],
                                                                                  "other")] += t["amount"]
        fees, net = sum(t["fee"] for t in moved), sum(t["net"] for t in moved)
        rows.append({"payout": payout_id, "currency": cur, "transactions": len(moved), "gross": major(by["gross"], cur),
                     "refunds": major(by["refunds"], cur), "disputes": major(by["disputes"], cur),
                     "other": major(by["other"], cur), "fees": major(fees, cur), "net": major(net, cur),
                     "amount": major(payout["amount"], cur), "matches": net == payout["amount"]})
    return rows


# ---- one example run for the module ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def example_run(tmp_path_factory):
    """The simulator (seed 7, small, plus edge cases), and the example's stdout and JSON report from syncing it."""
    python = ensure_pyairbyte_python()
    workdir = tmp_path_factory.mktemp("pyairbyte")
    sim = StripeSimulator(seed=7, size="small")
    sim.start()
    try:
        add_edge_cases(sim, created=1717000000)  # 2024-05-29
        config = workdir / "config.json"
        config.write_text(json.dumps(simulator_config(sim.url, keys.TEST_KEY)))
        report = workdir / "report.json"
        done = subprocess.run(
            [str(python), str(EXAMPLE), "--config", str(config), "--connector", connector_executable(workdir),
             "--json", str(report)],
            cwd=workdir, capture_output=True, text=True, timeout=SYNC_TIMEOUT,
            env={**os.environ, "AIRBYTE_OFFLINE_MODE": "1", "DO_NOT_TRACK": "1"},
        )
        assert done.returncode == 0, f"example failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        yield {"sim": sim, "stdout": done.stdout, "report": json.loads(report.read_text()), "workdir": workdir}
    finally:
        sim.stop()


def test_example_syncs_every_record_into_the_default_duckdb_cache(example_run):
    sim, report = example_run["sim"], example_run["report"]
    assert {k: v for k, v in report["records"].items() if k != "payout_balance_transactions"} == {
        name: len(sim.objects(name, mode="test")) for name in ("charges", "subscriptions", "payouts")}
    assert report["records"]["payout_balance_transactions"] == sum(map(len, reconciled_transactions(sim).values()))
    assert (example_run["workdir"] / ".cache" / "default_cache" / "default_cache.duckdb").is_file()


def test_revenue_by_month_is_succeeded_charges_minus_refunds_per_currency(example_run):
    charges = example_run["sim"].objects("charges", mode="test")
    assert example_run["report"]["revenue_by_month"] == expected_revenue(charges)


def test_mrr_normalises_intervals_per_currency_from_active_trialing_and_past_due(example_run):
    subscriptions = example_run["sim"].objects("subscriptions", mode="test")
    assert example_run["report"]["mrr"] == expected_mrr(subscriptions)


def test_payouts_are_counted_and_summed_by_status_and_currency(example_run):
    payouts = example_run["sim"].objects("payouts", mode="test")
    assert example_run["report"]["payouts_by_status"] == expected_payouts(payouts)


def test_every_reconciled_payout_adds_up_to_its_amount_per_currency_exactly(example_run):
    expected = expected_reconciliation(example_run["sim"])
    assert expected and all(row["matches"] for row in expected)
    assert example_run["report"]["payout_reconciliation"] == expected
    assert f"{len(expected)} of {len(expected)} reconciled automatic payouts add up" in example_run["stdout"]


def test_printed_report_shows_yen_whole_and_dinars_to_three_decimals(example_run):
    stdout = example_run["stdout"]
    mrr = {row["currency"]: row["mrr"] for row in example_run["report"]["mrr"]}
    assert "." not in mrr["jpy"] and len(mrr["kwd"].split(".")[1]) == 3
    assert any(line.startswith("JPY") and f"{Decimal(mrr['jpy']):,}" in line for line in stdout.splitlines())
    assert any(line.startswith("KWD") and f"{Decimal(mrr['kwd']):,}" in line for line in stdout.splitlines())
    assert "Could not determine" not in stdout  # PyAirbyte's own chatter goes to stderr


# ---- the example's money helpers, without PyAirbyte --------------------------------------------------------
def load_example():
    spec = importlib.util.spec_from_file_location("pyairbyte_finance_report", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while being defined
    spec.loader.exec_module(module)
    return module


def test_minor_units_convert_exactly_for_zero_two_and_three_decimal_currencies():
    example = load_example()
    assert str(example.to_major(123456, "JPY")) == "123456"
    assert str(example.to_major(123456, "usd")) == "1234.56"
    assert str(example.to_major(123450, "kwd")) == "123.450"
    assert str(example.to_major(5, "eur")) == "0.05"


def test_weekly_price_normalises_to_a_month_without_float_error():
    example = load_example()
    item = {"price": recurring_price("usd", 1200, "week"), "quantity": 1}
    assert example.item_monthly_minor(item) == Fraction(1200 * 52, 12)  # exactly 5200 cents
    assert str(example.to_major(example.item_monthly_minor(item), "usd")) == "52.00"


def test_reconciliation_from_the_simulators_records_without_pyairbyte():
    example = load_example()
    with StripeSimulator(seed=7, size="small") as sim:
        payouts = sim.objects("payouts", mode="test")
        records = [{**t, "payout": payout_id} for payout_id, ts in reconciled_transactions(sim).items() for t in ts]
        rows = example.payout_reconciliation(payouts, records)
        expected = expected_reconciliation(sim)

    assert [{"payout": r.payout, "currency": r.currency, "transactions": r.transactions, "gross": str(r.gross),
             "refunds": str(r.refunds), "disputes": str(r.disputes), "other": str(r.other), "fees": str(r.fees),
             "net": str(r.net), "amount": str(r.amount), "matches": r.matches} for r in rows] == expected
    assert rows and all(r.matches for r in rows)
    assert {r.currency for r in rows} >= {"usd", "jpy"}  # exact per currency, yen without decimals
    assert all("." not in str(r.net) for r in rows if r.currency == "jpy")
