"""The simulator serves every list endpoint of Stripe's OpenAPI extract, not only the six we ship (generic.py).

Objects of those endpoints are generated from their component schema; these tests hold them to that schema with
unknown fields forbidden, and check that the list rules, GET by id, the control API with its events and key
permissions work for them as they do for the six.
"""

import pytest

from integration_tests.stripe_simulator import StripeSimulator, money_trail
from integration_tests.stripe_simulator.generic import GenericCatalog
from integration_tests.stripe_simulator.spec import components, event_types, list_endpoints, schema_validator
from integration_tests.test_simulator import error_of, get, ids, page_through

CATALOG = GenericCatalog.load()
RESTRICTED_KEY = "rk_test_51SimGenericOnlyCustomers000000000000000000000000000000000000000000000000000000wxyz"


def simulator(**kwargs) -> StripeSimulator:
    """A simulator with nothing generated up front (generic resources are generated on first use anyway)."""
    return StripeSimulator(seed=kwargs.pop("seed", 7), size=kwargs.pop("size", "tiny"), preload=(), **kwargs)


def problems(resource_name: str, objects: list) -> list:
    validator = schema_validator(CATALOG[resource_name].component)
    return [f"{resource_name} {o.get('id')}: {'/'.join(map(str, e.absolute_path))}: {e.message[:120]}"
            for o in objects for e in validator.iter_errors(o)]


# ---- which endpoints ------------------------------------------------------------------------------------------
def test_every_list_endpoint_without_a_parent_is_served_generically_except_the_realistic_ones():
    top_level = {path for path, e in list_endpoints().items() if not e["path_parameters"]}

    served = {resource.url for resource in CATALOG.resources.values()}

    assert {"/v1/tax_rates", "/v1/promotion_codes", "/v1/reviews", "/v1/treasury/financial_accounts"} <= served
    assert top_level - served == {"/v1/customers", "/v1/charges", "/v1/subscriptions", "/v1/invoices",
                                  "/v1/products", "/v1/payouts", "/v1/events", "/v1/invoices/upcoming/lines",
                                  *(f"/v1/{r}" for r in money_trail.RESOURCES)}  # realistic: money_trail.py


# ---- data -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["test", "live"])
def test_objects_of_every_generic_endpoint_validate_strictly_against_their_schema(mode):
    sim = simulator(size="small")
    found = []

    for name, resource in CATALOG.resources.items():
        objects = sim.objects(name, mode)
        assert len(objects) == 12, name
        assert {o["object"] for o in objects} == {resource.object_name}, name
        if resource.has_livemode:
            assert {o["livemode"] for o in objects} == {mode == "live"}, name
        found += problems(name, objects)

    assert found == []


def test_generic_objects_look_like_stripe_ones():
    tax_rates = simulator(size="small").objects("tax_rates")

    assert all(o["id"].startswith("txr_") for o in tax_rates)
    assert len(set(ids(tax_rates))) == 12
    created = [o["created"] for o in tax_rates]
    assert created == sorted(created, reverse=True)
    assert created[0] - created[-1] > 365 * 86400  # spread over the dataset's years, not one instant
    assert {o["tax_type"] for o in tax_rates} - {None} <= set(components()["tax_rate"]["properties"]["tax_type"]["enum"])
    assert any(o[f] is None for o in tax_rates for f in ("jurisdiction", "country", "description", "state"))


def test_expandable_references_are_id_strings_and_nested_lists_empty_envelopes():
    sim = simulator(size="small")
    # (refunds and credit notes are the money trail's realistic objects: money_trail.py)
    review, schedule, value_list = (sim.objects(r)[0] for r in ("reviews", "subscription_schedules",
                                                                 "radar/value_lists"))

    assert review["charge"] is None or review["charge"].startswith("ch_")
    assert schedule["customer"].startswith("cus_")
    assert value_list["list_items"] == {"object": "list", "data": [], "has_more": False,
                                        "url": f"/v1/radar/value_lists/{value_list['id']}/list_items"}


def test_generic_data_is_deterministic_per_seed_and_mode_and_sized_by_counts():
    first = simulator(seed=3).objects("promotion_codes", "test")

    assert simulator(seed=3).objects("promotion_codes", "test") == first
    assert ids(simulator(seed=4).objects("promotion_codes", "test")) != ids(first)
    assert ids(simulator(seed=3).objects("promotion_codes", "live")) != ids(first)
    assert len(first) == 4  # "tiny"
    assert len(simulator(counts={"promotion_codes": 30}).objects("promotion_codes")) == 30
    with pytest.raises(ValueError, match="unknown resources"):
        simulator(counts={"no_such_things": 3})


def test_the_six_realistic_resources_are_untouched_by_generic_counts():
    plain, with_generic = simulator(), simulator(counts={"tax_rates": 50})

    for resource in ("customers", "charges", "subscriptions", "invoices", "products", "payouts"):
        assert plain.objects(resource) == with_generic.objects(resource)


# ---- the list API ---------------------------------------------------------------------------------------------
def test_listing_pages_newest_first_with_starting_after_and_ending_before(stripe_simulator):
    everything = stripe_simulator.objects("refunds")

    assert page_through(stripe_simulator, "/v1/refunds", limit=5) == everything
    body = get(stripe_simulator, "/v1/refunds", limit=3, ending_before=everything[5]["id"]).json()
    assert ids(body["data"]) == ids(everything[2:5]) and body["has_more"] is True
    assert body["url"] == "/v1/refunds"


def test_created_filters_select_a_window(stripe_simulator):
    everything = stripe_simulator.objects("tax_rates")
    lo, hi = everything[8]["created"], everything[3]["created"]

    window = page_through(stripe_simulator, "/v1/tax_rates", **{"created[gte]": lo, "created[lt]": hi})

    assert ids(window) == ids(everything[4:9])


def test_a_parameter_the_extract_does_not_list_is_refused_like_stripe(stripe_simulator):
    response = get(stripe_simulator, "/v1/tax_codes", **{"created[gte]": 1})  # tax codes have no created filter

    assert response.status_code == 400
    assert error_of(response)["code"] == "parameter_unknown"
    assert get(stripe_simulator, "/v1/tax_rates", limit=101).status_code == 400


def test_nested_treasury_style_paths_list_and_fetch_by_id(stripe_simulator):
    accounts = page_through(stripe_simulator, "/v1/treasury/financial_accounts")
    one = get(stripe_simulator, f"/v1/treasury/financial_accounts/{accounts[0]['id']}")

    assert len(accounts) == 12
    assert one.status_code == 200 and one.json() == accounts[0]


def test_get_by_id_answers_the_object_or_404_resource_missing(stripe_simulator):
    coupon = stripe_simulator.objects("coupons")[0]

    assert get(stripe_simulator, f"/v1/coupons/{coupon['id']}").json() == coupon
    missing = get(stripe_simulator, "/v1/coupons/co_doesnotexist")
    assert missing.status_code == 404
    assert error_of(missing)["code"] == "resource_missing"
    assert error_of(missing)["message"] == "No such coupon: 'co_doesnotexist'"


# ---- control API and events -----------------------------------------------------------------------------------
def test_create_update_delete_record_stripe_like_events(stripe_simulator):
    sim = stripe_simulator
    now = int(sim.clock())

    created = sim.create("tax_rates", created=now - 60, display_name="VAT FR", percentage=20.0,
                         active=True)
    sim.update("tax_rates", created["id"], active=False)
    sim.delete("tax_rates", created["id"])

    assert created["id"].startswith("txr_") and created["livemode"] is False and problems("tax_rates", [created]) == []
    events = sim.events(types=["tax_rate.created", "tax_rate.updated", "tax_rate.deleted"])
    assert [e["type"] for e in events] == ["tax_rate.deleted", "tax_rate.updated", "tax_rate.created"]
    assert events[1]["data"]["previous_attributes"] == {"active": True}
    assert events[2]["data"]["object"]["display_name"] == "VAT FR"
    assert get(sim, f"/v1/tax_rates/{created['id']}").status_code == 404
    assert created["id"] not in ids(sim.objects("tax_rates"))


def test_an_event_type_stripe_does_not_know_is_still_recorded_and_reported(stripe_simulator):
    known = set(event_types())
    code = stripe_simulator.create("promotion_codes")

    stripe_simulator.update("promotion_codes", code["id"], active=False)

    assert "promotion_code.created" in known and "promotion_code.updated" in known
    assert "tax_rate.deleted" not in known
    tax_rate = stripe_simulator.create("tax_rates")
    stripe_simulator.delete("tax_rates", tax_rate["id"])
    assert stripe_simulator.unknown_event_types == {"tax_rate.deleted"}
    assert [e["type"] for e in stripe_simulator.events()][:1] == ["tax_rate.deleted"]


def test_a_created_object_is_listed_first_and_served_by_id(stripe_simulator):
    created = stripe_simulator.create("reviews")  # default created: the clock, newer than all seeded data

    assert get(stripe_simulator, "/v1/reviews", limit=1).json()["data"] == [created]
    assert get(stripe_simulator, f"/v1/reviews/{created['id']}").json() == created


def test_control_api_over_http_reaches_generic_resources(stripe_simulator):
    import requests

    url = stripe_simulator.url + "/_sim/treasury/financial_accounts"
    created = requests.post(url, json={"mode": "live"}, timeout=10).json()

    assert created["livemode"] is True and created["object"] == "treasury.financial_account"
    assert created["id"] in ids(stripe_simulator.objects("treasury/financial_accounts", "live"))


# ---- keys -----------------------------------------------------------------------------------------------------
def test_a_key_without_the_permission_gets_stripes_403_naming_it(stripe_simulator):
    stripe_simulator.add_key(RESTRICTED_KEY, resources={"customers", "tax_rates"})

    assert get(stripe_simulator, "/v1/tax_rates", key=RESTRICTED_KEY).status_code == 200
    forbidden = get(stripe_simulator, "/v1/treasury/financial_accounts", key=RESTRICTED_KEY)
    assert forbidden.status_code == 403
    message = error_of(forbidden)["message"]
    assert "'rak_treasury_financial_account_read' permission" in message
    assert RESTRICTED_KEY not in message and "rk_test_***wxyz" in message
    assert "'rak_coupon_read'" in error_of(get(stripe_simulator, "/v1/coupons", key=RESTRICTED_KEY))["message"]


def test_keys_accept_only_resources_the_simulator_serves(stripe_simulator):
    with pytest.raises(ValueError, match="unknown resources"):
        stripe_simulator.add_key(RESTRICTED_KEY, resources={"tax_ratez"})
