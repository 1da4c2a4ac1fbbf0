"""The Stripe simulator behaves like Stripe where the connector depends on it (stripe-api-facts.md, spec3.json)."""

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from integration_tests.stripe_simulator import Dataset, Latency, RateLimits, keys
from integration_tests.stripe_simulator.spec import schema_validator

REPO = Path(__file__).resolve().parents[1]
SCHEMA_OF = {"customers": "customer", "charges": "charge", "subscriptions": "subscription", "invoices": "invoice",
             "products": "product", "payouts": "payout"}


# ---- small factories ------------------------------------------------------------------------------------------
def client(key=keys.TEST_KEY, **headers):
    session = requests.Session()
    if key is not None:
        session.headers["Authorization"] = f"Bearer {key}"
    session.headers.update(headers)
    return session


def get(sim, path, key=keys.TEST_KEY, **params):
    return client(key).get(sim.url + path, params=params, timeout=10)


def page_through(sim, path, key=keys.TEST_KEY, limit=7, **params):
    """Every object of a list endpoint, following starting_after like a connector."""
    session, out, after = client(key), [], None
    while True:
        query = dict(params, limit=limit)
        if after:
            query["starting_after"] = after
        body = session.get(sim.url + path, params=query, timeout=10).json()
        out.extend(body["data"])
        if not body["has_more"]:
            return out
        after = body["data"][-1]["id"]


def ids(objects):
    return [o["id"] for o in objects]


def error_of(response):
    return response.json()["error"]


# ---- data -----------------------------------------------------------------------------------------------------
def assert_valid(schema_name, objects):
    validator = schema_validator(schema_name)
    problems = [f"{o.get('id')}: {'/'.join(map(str, e.absolute_path))}: {e.message[:120]}"
                for o in objects for e in validator.iter_errors(o)]
    assert not problems, problems[:5]


@pytest.mark.parametrize("livemode", [False, True])
def test_generated_objects_validate_against_the_spec_schemas_with_unknown_fields_forbidden(livemode):
    ds = Dataset.generate(seed=11, size="small", livemode=livemode)
    for resource, schema in SCHEMA_OF.items():
        assert ds.objects[resource], resource
        assert_valid(schema, ds.objects[resource])
    assert_valid("price", list(ds.prices.values()))
    assert_valid("line_item", [line for lines in ds.invoice_lines.values() for line in lines])


def test_schema_validation_rejects_a_field_the_spec_does_not_know():
    customer = Dataset.generate(seed=1, size="tiny").objects["customers"][0]
    assert not list(schema_validator("customer").iter_errors(customer))
    assert list(schema_validator("customer").iter_errors(dict(customer, shoe_size=42)))
    assert list(schema_validator("customer").iter_errors(dict(customer, created="yesterday")))


def test_objects_created_through_the_control_api_and_their_events_validate(stripe_simulator):
    sim = stripe_simulator
    made = {r: sim.create(r, created=int(time.time()) - 60) for r in SCHEMA_OF}
    for resource, schema in SCHEMA_OF.items():
        assert_valid(schema, [made[resource]])
    sim.update("payouts", made["payouts"]["id"], status="paid")
    sim.delete("customers", made["customers"]["id"])
    assert_valid("event", sim.events())


def test_dataset_covers_statuses_currencies_refunds_disputes_and_long_invoices():
    ds = Dataset.generate(seed=5, size="tiny")
    charges = ds.objects["charges"]
    assert {c["status"] for c in charges} == {"succeeded", "pending", "failed"}
    assert any(c["refunded"] and c["amount_refunded"] == c["amount"] for c in charges)
    assert any(not c["refunded"] and 0 < c["amount_refunded"] < c["amount"] for c in charges)
    assert any(c["disputed"] for c in charges)
    assert any(c["currency"] == "jpy" for c in charges)
    assert all(isinstance(c["amount"], int) for c in charges)
    assert {s["status"] for s in ds.objects["subscriptions"]} >= {"active", "canceled", "trialing", "past_due",
                                                                   "unpaid", "incomplete", "incomplete_expired",
                                                                   "paused"}
    assert all(s["items"]["data"] for s in ds.objects["subscriptions"])
    assert {p["status"] for p in ds.objects["payouts"]} == {"pending", "in_transit", "paid", "failed", "canceled"}
    assert {p["active"] for p in ds.objects["products"]} == {True, False}
    assert all(ds.prices[p["default_price"]]["product"] == p["id"] for p in ds.objects["products"]
               if p["default_price"])
    line_counts = {len(lines) for lines in ds.invoice_lines.values()}
    assert 0 in line_counts and max(line_counts) > 10


def test_cross_references_point_at_existing_objects():
    ds = Dataset.generate(seed=5, size="small")
    customers = {c["id"] for c in ds.objects["customers"]}
    subscriptions = {s["id"]: s for s in ds.objects["subscriptions"]}
    assert all(c["customer"] in customers for c in ds.objects["charges"] if c["customer"])
    assert all(s["customer"] in customers for s in subscriptions.values())
    assert all(i["price"]["id"] in ds.prices for s in subscriptions.values() for i in s["items"]["data"])
    for invoice in ds.objects["invoices"]:
        assert invoice["customer"] in customers
        if invoice["subscription"]:
            assert subscriptions[invoice["subscription"]]["customer"] == invoice["customer"]
        assert invoice["total"] == sum(line["amount"] for line in ds.invoice_lines[invoice["id"]])


def test_ids_look_like_stripe_ids_and_differ_between_modes():
    test, live = Dataset.generate(seed=2, size="tiny"), Dataset.generate(seed=2, size="tiny", livemode=True)
    prefixes = {"customers": "cus_", "charges": "ch_", "subscriptions": "sub_", "invoices": "in_",
                "products": "prod_", "payouts": "po_"}
    for resource, prefix in prefixes.items():
        assert all(o["id"].startswith(prefix) for o in test.objects[resource])
        assert not set(ids(test.objects[resource])) & set(ids(live.objects[resource]))
        assert {o["livemode"] for o in test.objects[resource]} == {False}
        assert {o["livemode"] for o in live.objects[resource]} == {True}
    assert all(line["id"].startswith("il_") for lines in test.invoice_lines.values() for line in lines)


def test_same_seed_generates_identical_data_and_another_seed_does_not():
    first, again = Dataset.generate(seed=42, size="small"), Dataset.generate(seed=42, size="small")
    assert json.dumps(first.objects, sort_keys=True) == json.dumps(again.objects, sort_keys=True)
    other = Dataset.generate(seed=43, size="small")
    assert ids(first.objects["charges"]) != ids(other.objects["charges"])


def test_counts_override_the_named_size():
    ds = Dataset.generate(seed=1, size="tiny", counts={"charges": 123})
    assert len(ds.objects["charges"]) == 123
    assert len(ds.objects["customers"]) == 5


# ---- paging -----------------------------------------------------------------------------------------------
def test_list_envelope_and_default_limit_of_10(stripe_simulator):
    body = get(stripe_simulator, "/v1/charges").json()
    assert set(body) == {"object", "url", "has_more", "data"}
    assert body["object"] == "list" and body["url"] == "/v1/charges" and body["has_more"] is True
    assert len(body["data"]) == 10


@pytest.mark.parametrize("resource", sorted(SCHEMA_OF))
def test_paging_with_starting_after_returns_every_object_newest_first(stripe_simulator, resource):
    listed = page_through(stripe_simulator, f"/v1/{resource}", **({"status": "all"} if resource == "subscriptions"
                                                                  else {}))
    expected = stripe_simulator.objects(resource)
    assert listed == expected
    created = [o["created"] for o in listed]
    assert created == sorted(created, reverse=True)


def test_objects_created_in_the_same_second_keep_one_stable_order(stripe_simulator):
    sim = stripe_simulator
    second = 1_700_000_000
    made = [sim.create("customers", created=second)["id"] for _ in range(5)]
    first_pass = [c["id"] for c in page_through(sim, "/v1/customers", limit=2, created=second)]
    second_pass = [c["id"] for c in page_through(sim, "/v1/customers", limit=3, created=second)]
    assert first_pass == second_pass == made[::-1]


@pytest.mark.parametrize("limit", ["0", "101", "-3", "ten"])
def test_limit_outside_1_to_100_is_rejected(stripe_simulator, limit):
    response = get(stripe_simulator, "/v1/customers", limit=limit)
    assert response.status_code == 400
    assert error_of(response)["param"] == "limit"


def test_limit_100_is_accepted(stripe_simulator):
    response = get(stripe_simulator, "/v1/charges", limit=100)
    assert response.status_code == 200 and len(response.json()["data"]) == 60


def test_starting_after_and_ending_before_together_are_rejected(stripe_simulator):
    some = stripe_simulator.objects("charges")[3]["id"]
    response = get(stripe_simulator, "/v1/charges", starting_after=some, ending_before=some)
    assert response.status_code == 400
    assert error_of(response)["type"] == "invalid_request_error"


def test_ending_before_returns_the_newer_neighbours_newest_first(stripe_simulator):
    all_ids = ids(stripe_simulator.objects("charges"))
    body = get(stripe_simulator, "/v1/charges", limit=5, ending_before=all_ids[12]).json()
    assert ids(body["data"]) == all_ids[7:12] and body["has_more"] is True
    body = get(stripe_simulator, "/v1/charges", limit=5, ending_before=all_ids[3]).json()
    assert ids(body["data"]) == all_ids[0:3] and body["has_more"] is False


def test_cursor_on_a_deleted_customer_is_resource_missing(stripe_simulator):
    victim = stripe_simulator.objects("customers")[4]["id"]
    stripe_simulator.delete("customers", victim)
    response = get(stripe_simulator, "/v1/customers", starting_after=victim)
    assert response.status_code == 400
    assert error_of(response)["code"] == "resource_missing"
    assert error_of(response)["param"] == "starting_after"


def test_cursor_on_a_subscription_that_left_the_default_filter_is_resource_missing(stripe_simulator):
    sub = next(s for s in stripe_simulator.objects("subscriptions") if s["status"] == "active")
    assert get(stripe_simulator, "/v1/subscriptions", starting_after=sub["id"]).status_code == 200
    stripe_simulator.update("subscriptions", sub["id"], status="canceled")
    response = get(stripe_simulator, "/v1/subscriptions", starting_after=sub["id"])
    assert response.status_code == 400 and error_of(response)["code"] == "resource_missing"
    assert get(stripe_simulator, "/v1/subscriptions", starting_after=sub["id"], status="all").status_code == 200


def test_created_filters_select_the_matching_window(stripe_simulator):
    charges = stripe_simulator.objects("charges")
    pivot = charges[20]["created"]
    cases = {
        "created[gte]": lambda c: c >= pivot, "created[gt]": lambda c: c > pivot,
        "created[lt]": lambda c: c < pivot, "created[lte]": lambda c: c <= pivot, "created": lambda c: c == pivot,
    }
    for param, keep in cases.items():
        listed = page_through(stripe_simulator, "/v1/charges", limit=100, **{param: pivot})
        assert ids(listed) == [c["id"] for c in charges if keep(c["created"])], param


def test_unknown_query_parameter_is_rejected_like_stripe(stripe_simulator):
    response = get(stripe_simulator, "/v1/charges", foo="1")
    assert response.status_code == 400
    assert error_of(response) == {"type": "invalid_request_error", "code": "parameter_unknown", "param": "foo",
                                  "message": "Received unknown parameter: foo",
                                  "doc_url": "https://stripe.com/docs/error-codes/parameter-unknown"}


def test_parameter_of_another_endpoint_is_unknown_here(stripe_simulator):
    assert get(stripe_simulator, "/v1/subscriptions", status="all").status_code == 200
    response = get(stripe_simulator, "/v1/customers", status="all")
    assert response.status_code == 400 and error_of(response)["param"] == "status"
    assert get(stripe_simulator, "/v1/charges", **{"created[since]": 5}).status_code == 400


def test_bracketed_parameters_map_to_their_spec_names(stripe_simulator):
    response = get(stripe_simulator, "/v1/products", **{"expand[]": "data.default_price", "created[gte]": 1})
    assert response.status_code == 200
    response = get(stripe_simulator, "/v1/events", **{"types[]": "customer.created"})
    assert response.status_code == 200


# ---- endpoint specifics -------------------------------------------------------------------------------------
def test_subscriptions_hide_canceled_ones_unless_status_all_or_canceled(stripe_simulator):
    everything = stripe_simulator.objects("subscriptions")
    canceled = [s["id"] for s in everything if s["status"] == "canceled"]
    assert canceled
    default = ids(page_through(stripe_simulator, "/v1/subscriptions"))
    assert not set(default) & set(canceled)
    assert ids(page_through(stripe_simulator, "/v1/subscriptions", status="all")) == ids(everything)
    assert ids(page_through(stripe_simulator, "/v1/subscriptions", status="canceled")) == canceled
    trialing = [s["id"] for s in everything if s["status"] == "trialing"]
    assert ids(page_through(stripe_simulator, "/v1/subscriptions", status="trialing")) == trialing


def test_expand_default_price_replaces_the_id_by_the_price_object(stripe_simulator):
    plain = {p["id"]: p for p in page_through(stripe_simulator, "/v1/products")}
    expanded = page_through(stripe_simulator, "/v1/products", **{"expand[]": "data.default_price"})
    with_price = [p for p in expanded if p["default_price"]]
    assert with_price
    for product in with_price:
        price = product["default_price"]
        assert price["object"] == "price" and price["id"] == plain[product["id"]]["default_price"]
        assert price["product"] == product["id"]
    assert get(stripe_simulator, "/v1/products", **{"expand[]": "data.nonsense"}).status_code == 400


def test_invoices_embed_ten_lines_and_the_lines_endpoint_pages_the_rest(stripe_simulator):
    invoice = next(i for i in page_through(stripe_simulator, "/v1/invoices")
                   if len(stripe_simulator.invoice_lines(i["id"])) == 40)
    lines = invoice["lines"]
    assert len(lines["data"]) == 10 and lines["has_more"] is True
    assert lines["url"] == f"/v1/invoices/{invoice['id']}/lines"
    paged = page_through(stripe_simulator, lines["url"], limit=15)
    assert ids(paged) == ids(stripe_simulator.invoice_lines(invoice["id"]))
    assert len(paged) == 40 and ids(paged)[:10] == ids(lines["data"])
    short = next(i for i in stripe_simulator.objects("invoices") if len(i["lines"]["data"]) == 3)
    assert short["lines"]["has_more"] is False


def test_lines_of_an_unknown_invoice_are_404(stripe_simulator):
    assert get(stripe_simulator, "/v1/invoices/in_nope/lines").status_code == 404


# ---- keys ------------------------------------------------------------------------------------------------------
def test_missing_authorization_is_401(stripe_simulator):
    response = get(stripe_simulator, "/v1/charges", key=None)
    assert response.status_code == 401
    assert error_of(response)["message"].startswith("You did not provide an API key.")


@pytest.mark.parametrize("key", ["rk_test_51SimUnknownKeyThatNobodyRegistered1234", keys.REVOKED_KEY])
def test_unknown_or_revoked_key_is_401_with_the_key_redacted(stripe_simulator, key):
    response = get(stripe_simulator, "/v1/charges", key=key)
    assert response.status_code == 401
    prefix = key[:8]
    assert error_of(response) == {"type": "invalid_request_error",
                                  "message": f"Invalid API Key provided: {prefix}********{key[-4:]}"}
    assert key not in response.text


def test_publishable_key_cannot_list(stripe_simulator):
    response = get(stripe_simulator, "/v1/customers", key=keys.PUBLISHABLE_KEY)
    assert response.status_code == 403
    assert "publishable API key" in error_of(response)["message"]


def test_restricted_key_without_the_resource_gets_stripes_permission_text(stripe_simulator):
    key = "rk_live_51SimCustomersOnly0000000000000000000000000abcd"
    stripe_simulator.add_key(key, mode="live", resources={"customers"})
    assert get(stripe_simulator, "/v1/customers", key=key).status_code == 200
    response = get(stripe_simulator, "/v1/charges", key=key)
    assert response.status_code == 403
    assert error_of(response)["message"] == (
        f"The provided key 'rk_live_***abcd' does not have the required permissions for this endpoint on account "
        f"'{keys.ACCOUNT_ID}'. Having the 'rak_charge_read' permission would allow this request to continue.")
    lines = get(stripe_simulator, f"/v1/invoices/{stripe_simulator.objects('invoices', 'live')[0]['id']}/lines",
                key=key)
    assert "'rak_invoice_read'" in error_of(lines)["message"]


def test_test_keys_see_the_test_dataset_and_live_keys_the_live_one(stripe_simulator):
    test = page_through(stripe_simulator, "/v1/customers", key=keys.TEST_KEY)
    live = page_through(stripe_simulator, "/v1/customers", key=keys.SECRET_LIVE_KEY)
    assert test == stripe_simulator.objects("customers", "test")
    assert live == stripe_simulator.objects("customers", "live")
    assert {c["livemode"] for c in test} == {False} and {c["livemode"] for c in live} == {True}
    assert not set(ids(test)) & set(ids(live))


def test_request_log_redacts_the_key_and_records_stripe_account(stripe_simulator):
    client(keys.LIVE_KEY, **{"Stripe-Account": "acct_1Connected"}).get(stripe_simulator.url + "/v1/payouts")
    entry = stripe_simulator.stats.log[-1]
    assert entry["headers"]["Authorization"] == f"Bearer rk_live_...{keys.LIVE_KEY[-4:]}"
    assert entry["headers"]["Stripe-Account"] == "acct_1Connected"
    assert entry["status"] == 200 and entry["mode"] == "live" and entry["path"] == "/v1/payouts"
    assert keys.LIVE_KEY not in json.dumps(list(stripe_simulator.stats.log))


# ---- rate limits, latency, faults -------------------------------------------------------------------------
def test_rate_limits_are_off_by_default_in_the_fixture(stripe_simulator):
    session = client()
    statuses = {session.get(stripe_simulator.url + "/v1/charges").status_code for _ in range(40)}
    assert statuses == {200}


def test_global_budget_answers_429_with_stripes_body(stripe_simulator):
    stripe_simulator.set_rate_limits(RateLimits(live=100, test=5, per_endpoint=None, should_retry=True))
    session = client()
    responses = [session.get(stripe_simulator.url + path) for path in ["/v1/charges", "/v1/customers"] * 4]
    assert [r.status_code for r in responses] == [200] * 5 + [429] * 3
    err = error_of(responses[-1])
    assert err["code"] == "rate_limit" and err["message"].startswith("Request rate limit exceeded")
    assert responses[-1].headers["Stripe-Should-Retry"] == "true"
    assert stripe_simulator.stats.rate_limited == 3


def test_per_endpoint_budget_limits_one_endpoint_but_not_the_others(stripe_simulator):
    stripe_simulator.set_rate_limits(RateLimits(live=100, test=100, per_endpoint=3))
    session = client()
    charges = [session.get(stripe_simulator.url + "/v1/charges").status_code for _ in range(5)]
    customers = [session.get(stripe_simulator.url + "/v1/customers").status_code for _ in range(3)]
    assert charges == [200, 200, 200, 429, 429] and customers == [200, 200, 200]


def test_budget_frees_up_after_one_second(stripe_simulator):
    stripe_simulator.set_rate_limits(RateLimits(test=2, per_endpoint=None))
    session = client()
    assert [session.get(stripe_simulator.url + "/v1/charges").status_code for _ in range(3)] == [200, 200, 429]
    time.sleep(1.05)
    assert session.get(stripe_simulator.url + "/v1/charges").status_code == 200


def test_latency_is_applied_without_serialising_requests(stripe_simulator):
    stripe_simulator.latency = Latency(fixed_ms=300)
    threads = [threading.Thread(target=get, args=(stripe_simulator, "/v1/charges")) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert stripe_simulator.stats.peak_in_flight == 4
    assert all(e["duration_ms"] >= 300 for e in stripe_simulator.stats.log)


def test_burst_of_429_then_service_resumes(stripe_simulator):
    stripe_simulator.faults.burst_429(2)
    statuses = [get(stripe_simulator, "/v1/payouts").status_code for _ in range(3)]
    assert statuses == [429, 429, 200]


def test_fail_next_and_error_rate_answer_api_errors(stripe_simulator):
    stripe_simulator.faults.fail_next(1, status=502)
    response = get(stripe_simulator, "/v1/payouts")
    assert response.status_code == 502 and error_of(response)["type"] == "api_error"
    stripe_simulator.faults.error_rate(1.0, statuses=(500,))
    assert get(stripe_simulator, "/v1/payouts").status_code == 500
    stripe_simulator.faults.clear()
    assert get(stripe_simulator, "/v1/payouts").status_code == 200


def test_dropped_connection_gets_no_response(stripe_simulator):
    stripe_simulator.faults.drop_next(1)
    with pytest.raises(requests.exceptions.ConnectionError):
        get(stripe_simulator, "/v1/charges")
    assert get(stripe_simulator, "/v1/charges").status_code == 200
    assert stripe_simulator.stats.dropped == 1


def test_failing_a_created_window_only_fails_requests_that_overlap_it(stripe_simulator):
    stripe_simulator.faults.fail_resource("charges", status=500, created_gte=1_650_000_000, created_lt=1_660_000_000)
    assert get(stripe_simulator, "/v1/charges", **{"created[gte]": 1_655_000_000}).status_code == 500
    assert get(stripe_simulator, "/v1/charges", **{"created[gte]": 1_660_000_000}).status_code == 200
    assert get(stripe_simulator, "/v1/charges", **{"created[lt]": 1_650_000_000}).status_code == 200
    assert get(stripe_simulator, "/v1/charges").status_code == 500
    assert get(stripe_simulator, "/v1/customers").status_code == 200


def test_forbidding_a_resource_for_one_key_leaves_other_keys_alone(stripe_simulator):
    stripe_simulator.faults.forbid("invoices", keys.TEST_KEY)
    response = get(stripe_simulator, "/v1/invoices")
    assert response.status_code == 403 and "'rak_invoice_read'" in error_of(response)["message"]
    assert get(stripe_simulator, "/v1/invoices", key=keys.SECRET_TEST_KEY).status_code == 200


# ---- control API and events ---------------------------------------------------------------------------------
def test_created_object_appears_in_its_list_at_its_created_position(stripe_simulator):
    sim = stripe_simulator
    newest = sim.objects("charges")[0]["created"]
    made = sim.create("charges", created=newest + 5, amount=1234, currency="jpy")
    first = get(sim, "/v1/charges", limit=1).json()["data"][0]
    assert first["id"] == made["id"] and first["amount"] == 1234 and first["currency"] == "jpy"
    old = sim.create("customers", created=1_500_000_000)
    assert sim.objects("customers")[-1]["id"] == old["id"]


def test_update_and_delete_change_lists_and_record_events_with_previous_attributes(stripe_simulator):
    sim = stripe_simulator
    now = int(time.time())
    customer = sim.create("customers", created=now - 100, email="before@example.com")
    sim.update("customers", customer["id"], email="after@example.com")
    payout = next(p for p in sim.objects("payouts") if p["status"] == "pending")
    sim.update("payouts", payout["id"], status="paid")
    charge = next(c for c in sim.objects("charges") if c["status"] == "succeeded" and not c["refunded"])
    sim.update("charges", charge["id"], refunded=True, amount_refunded=charge["amount"])
    invoice = next(i for i in sim.objects("invoices") if i["status"] == "open")
    sim.update("invoices", invoice["id"], status="paid", paid=True)
    product = sim.objects("products")[0]
    sim.delete("products", product["id"])
    sim.delete("customers", customer["id"])

    events = page_through(sim, "/v1/events")
    reconciled = ["payout.reconciliation_completed"] if payout["automatic"] else []  # see money_trail.py
    assert [e["type"] for e in events] == ["customer.deleted", "product.deleted", "invoice.paid", "charge.refunded",
                                           *reconciled, "payout.paid", "customer.updated", "customer.created"]
    events = [e for e in events if e["type"] != "payout.reconciliation_completed"]
    updated = events[5]
    assert updated["data"]["object"]["email"] == "after@example.com"
    assert updated["data"]["previous_attributes"] == {"email": "before@example.com"}
    assert events[4]["data"]["previous_attributes"] == {"status": "pending"}
    assert customer["id"] not in ids(sim.objects("customers"))
    assert product["id"] not in ids(page_through(sim, "/v1/products"))
    assert next(p for p in page_through(sim, "/v1/payouts") if p["id"] == payout["id"])["status"] == "paid"


def test_events_filter_by_types_type_wildcard_and_created(stripe_simulator):
    sim = stripe_simulator
    now = int(time.time())
    a = sim.create("customers", created=now - 300)
    sim.update("customers", a["id"], name="Renamed")
    sub = next(s for s in sim.objects("subscriptions") if s["status"] == "trialing")
    sim.update("subscriptions", sub["id"], status="active")
    types = lambda **q: [e["type"] for e in page_through(sim, "/v1/events", **q)]
    assert types(**{"types[]": ["customer.created", "customer.subscription.updated"]}) == [
        "customer.subscription.updated", "customer.created"]
    assert types(type="customer.*") == ["customer.subscription.updated", "customer.updated", "customer.created"]
    assert types(type="customer.updated") == ["customer.updated"]
    assert types(**{"created[lt]": now - 200}) == ["customer.created"]
    too_many = get(sim, "/v1/events", **{"types[]": [f"t{i}.x" for i in range(21)]})
    assert too_many.status_code == 400


def test_events_older_than_30_days_by_the_simulator_clock_are_gone(stripe_simulator):
    sim = stripe_simulator
    now = 1_800_000_000
    sim.clock = lambda: now
    old = sim.create("customers", created=now - 31 * 86400)
    recent = sim.create("customers", created=now - 29 * 86400)
    listed = page_through(sim, "/v1/events")
    assert [e["data"]["object"]["id"] for e in listed] == [recent["id"]]
    assert old["id"] in ids(sim.objects("customers"))
    sim.clock = lambda: now + 2 * 86400
    assert page_through(sim, "/v1/events") == []


def test_http_control_api_drives_the_same_operations(stripe_simulator):
    base = stripe_simulator.url + "/_sim"
    made = requests.post(f"{base}/customers", json={"mode": "live", "created": 1_700_000_000,
                                                    "email": "http@example.com"}).json()
    assert made["livemode"] is True and made["email"] == "http@example.com"
    requests.post(f"{base}/customers/{made['id']}", json={"mode": "live", "name": "Via HTTP"})
    live = requests.get(f"{base}/objects/customers", params={"mode": "live"}).json()["data"]
    assert next(c for c in live if c["id"] == made["id"])["name"] == "Via HTTP"
    requests.delete(f"{base}/customers/{made['id']}", params={"mode": "live"})
    assert made["id"] not in ids(stripe_simulator.objects("customers", "live"))
    requests.post(f"{base}/faults/burst_429", json={"n": 1})
    assert get(stripe_simulator, "/v1/charges").status_code == 429
    stats = requests.get(f"{base}/stats", params={"log": "false"}).json()
    assert stats["rate_limited"] == 1 and "log" not in stats


def test_command_line_starts_a_server_and_prints_its_url():
    proc = subprocess.Popen([sys.executable, "-m", "integration_tests.stripe_simulator", "--port", "0", "--size",
                             "tiny", "--seed", "3"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True)
    try:
        line = proc.stdout.readline().strip()
        assert line.startswith("Stripe simulator listening on http://127.0.0.1:")
        url = line.rsplit(" ", 1)[1]
        response = requests.get(url + "/v1/customers", headers={"Authorization": f"Bearer {keys.TEST_KEY}"})
        assert response.status_code == 200 and len(response.json()["data"]) == 5
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# ---- one object by id -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("resource", list(SCHEMA_OF))
def test_get_by_id_answers_the_object_as_its_list_renders_it(stripe_simulator, resource):
    listed = stripe_simulator.objects(resource)[3]

    answer = get(stripe_simulator, f"/v1/{resource}/{listed['id']}")

    assert answer.status_code == 200
    assert answer.json() == listed
    assert stripe_simulator.stats.requests[f"/v1/{resource}/{{id}}"] == 1


def test_get_by_id_expands_the_field_itself_not_data_field(stripe_simulator):
    product = next(p for p in stripe_simulator.objects("products") if p["default_price"])

    expanded = get(stripe_simulator, f"/v1/products/{product['id']}", **{"expand[]": "default_price"}).json()
    list_style = get(stripe_simulator, f"/v1/products/{product['id']}", **{"expand[]": "data.default_price"})

    assert expanded["default_price"]["id"] == product["default_price"]
    assert expanded["default_price"]["object"] == "price"
    assert list_style.status_code == 400


def test_get_by_id_accepts_only_the_query_parameters_the_spec_lists(stripe_simulator):
    charge = stripe_simulator.objects("charges")[0]

    answer = get(stripe_simulator, f"/v1/charges/{charge['id']}", limit=1)

    assert answer.status_code == 400
    assert error_of(answer)["code"] == "parameter_unknown" and error_of(answer)["param"] == "limit"


def test_get_by_id_of_a_deleted_customer_says_deleted_and_of_a_deleted_product_is_404(stripe_simulator):
    sim = stripe_simulator
    customer, product = sim.objects("customers")[0], sim.objects("products")[0]
    sim.delete("customers", customer["id"])
    sim.delete("products", product["id"])

    gone_customer = get(sim, f"/v1/customers/{customer['id']}")
    gone_product = get(sim, f"/v1/products/{product['id']}")

    assert gone_customer.status_code == 200
    assert gone_customer.json() == {"id": customer["id"], "object": "customer", "deleted": True}
    assert gone_product.status_code == 404
    assert error_of(gone_product)["code"] == "resource_missing"
    assert error_of(gone_product)["message"] == f"No such product: '{product['id']}'"


def test_get_by_id_needs_the_resource_permission(stripe_simulator):
    sim = stripe_simulator
    sim.add_key("rk_test_onlycharges0000000000000000wxyz", mode="test", resources={"charges"})
    payout = sim.objects("payouts")[0]

    answer = get(sim, f"/v1/payouts/{payout['id']}", key="rk_test_onlycharges0000000000000000wxyz")

    assert answer.status_code == 403
    assert "rak_payout_read" in error_of(answer)["message"]
