"""The simulator's Stripe Connect: connected accounts listed, each with its own data under `Stripe-Account`."""

import requests

from integration_tests.stripe_simulator import StripeSimulator, keys


def get(sim, path, account=None, key=keys.TEST_KEY, **params):
    headers = {"Authorization": f"Bearer {key}", **({"Stripe-Account": account} if account else {})}
    return requests.get(sim.url + path, headers=headers, params=params, timeout=10)


def test_accounts_are_listed_newest_first_and_paged():
    with StripeSimulator(seed=7, size="tiny", preload=()) as sim:
        ids = [sim.connect_account(size="empty", created=1_700_000_000 + n) for n in range(5)]
        seen, after = [], None
        while True:
            page = get(sim, "/v1/accounts", limit=2, **({"starting_after": after} if after else {})).json()
            seen += [account["id"] for account in page["data"]]
            if not page["has_more"]:
                break
            after = seen[-1]
        assert seen == list(reversed(ids)) == sim.connected_accounts()
        assert get(sim, "/v1/account").json()["id"] == sim.platform_account_id
        assert get(sim, "/v1/account", account=ids[0]).json()["id"] == ids[0]


def test_each_account_has_its_own_data_and_events_name_it():
    with StripeSimulator(seed=7, size="tiny", preload=()) as sim:
        empty = sim.connect_account(size="empty")
        small = sim.connect_account(counts={"customers": 3, "charges": 2, "subscriptions": 0, "invoices": 0,
                                            "products": 1, "payouts": 1})
        platform_ids = {c["id"] for c in get(sim, "/v1/customers", limit=100).json()["data"]}
        small_ids = {c["id"] for c in get(sim, "/v1/customers", account=small, limit=100).json()["data"]}
        assert len(small_ids) == 3 and not platform_ids & small_ids
        assert small_ids == {c["id"] for c in sim.objects("customers", account=small)}
        assert get(sim, "/v1/charges", account=empty).json()["data"] == []
        created = sim.create("customers", account=small)
        assert sim.events(account=small)[0]["account"] == small
        assert created["id"] not in {c["id"] for c in sim.objects("customers")}
        # a Stripe-Account that is not connected reads the platform's data, as before connected accounts existed
        assert {c["id"] for c in get(sim, "/v1/customers", account="acct_1Other", limit=100).json()["data"]} == platform_ids


def test_a_revoked_account_answers_account_invalid_and_the_others_still_answer():
    with StripeSimulator(seed=7, size="tiny", preload=()) as sim:
        gone, kept = sim.connect_account(), sim.connect_account()
        sim.revoke_account(gone)
        answer = get(sim, "/v1/customers", account=gone)
        assert answer.status_code == 403
        error = answer.json()["error"]
        assert error["code"] == "account_invalid" and f"account '{gone}'" in error["message"]
        assert "Application access may have been revoked." in error["message"]
        assert get(sim, "/v1/customers", account=kept).status_code == 200


def test_listing_accounts_needs_its_permission():
    with StripeSimulator(seed=7, size="tiny", preload=()) as sim:
        sim.add_key("rk_test_NoConnect000000000000000", mode="test", resources={"customers"})
        answer = get(sim, "/v1/accounts", key="rk_test_NoConnect000000000000000")
        assert answer.status_code == 403 and "rak_account_read" in answer.json()["error"]["message"]


def test_an_empty_account_holds_nothing_in_any_list():
    with StripeSimulator(seed=7, size="tiny", preload=()) as sim:
        empty = sim.connect_account(size="empty")
        for resource in ("customers", "balance_transactions", "coupons", "prices", "transfers", "events"):
            assert get(sim, f"/v1/{resource}", account=empty).json()["data"] == [], resource
        assert sim.objects("coupons")  # the platform's generic lists are not empty
