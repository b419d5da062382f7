"""Users, Argon2 password hashes, bearer tokens with expiry and revocation, admin-only user management, and the
`gridgov users` command."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest
from conftest import ROOT, LiveServer, _clone
from test_tickets_support import (
    COMMUNITIES,
    GRIDS,
    PASSWORD,
    build_city,
    make_users,
    sql,
)

from gis.access import auth


@pytest.fixture(scope="module")
def world(pg_cluster, empty_template):
    url = _clone(pg_cluster, empty_template)
    made = build_city(url)
    make_users(url, made["companies"])
    server = LiveServer(url)
    yield {"url": url, "server": server, **made}
    server.stop()


def login(http, username, password=PASSWORD):
    return http.post("/auth/login", json={"username": username, "password": password})


def test_passwords_are_argon2_hashes(world):
    rows = sql(world["url"], "SELECT password_hash FROM app_user")
    assert rows and all(h.startswith("$argon2id$") and PASSWORD not in h for (h,) in rows)
    assert sql(world["url"], "SELECT count(DISTINCT password_hash) FROM app_user")[0][0] == len(rows)  # salted


def test_login_me_logout(world):
    with world["server"].client() as http:
        assert login(http, "grid1", "wrong password!").status_code == 401
        assert login(http, "nobody").status_code == 401
        issued = login(http, "grid1")
        assert issued.status_code == 200
        body = issued.json()
        assert body["token_type"] == "bearer" and body["role"] == "grid_worker" and body["expires_at"]
        headers = {"Authorization": f"Bearer {body['access_token']}"}
        me = http.get("/auth/me", headers=headers).json()
        assert me["username"] == "grid1" and me["scope"] == [GRIDS[0]]
        assert sql(world["url"], "SELECT count(*) FROM auth_token WHERE token_digest = %s",
                   [body["access_token"]]) == [(0,)]  # only the digest is stored
        assert http.post("/auth/logout", headers=headers).status_code == 200
        assert http.get("/auth/me", headers=headers).status_code == 401
        assert http.get("/auth/me").status_code == 401
        assert http.get("/auth/me", headers={"Authorization": "Basic abc"}).status_code == 401


def test_company_scope_follows_its_compounds(world):
    with world["server"].client() as http:
        token = login(http, "company1").json()["access_token"]
        me = http.get("/auth/me", headers={"Authorization": f"Bearer {token}"}).json()
    assert me["role"] == "property_company" and me["scope"] == ["370902001001C0001"]


def test_expired_token_is_refused(world):
    with world["server"].client() as http:
        token = login(http, "street1").json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        assert http.get("/auth/me", headers=headers).status_code == 200
        sql(world["url"], "UPDATE auth_token SET expires_at = now() - interval '1 second' "
                          "WHERE user_id = (SELECT id FROM app_user WHERE username = 'street1')")
        assert http.get("/auth/me", headers=headers).status_code == 401


def test_admin_manages_users_and_disabling_revokes(world):
    with world["server"].client() as http:
        admin = {"Authorization": f"Bearer {login(http, 'admin').json()['access_token']}"}
        street = {"Authorization": f"Bearer {login(http, 'street1').json()['access_token']}"}
        assert http.get("/users", headers=street).status_code == 403
        assert http.get("/users").status_code == 401
        made = http.post("/users", headers=admin, json={"username": "c1b", "password": "another long one",
                                                        "role": "community", "scope_codes": [COMMUNITIES[0]]})
        assert made.status_code == 201 and "password_hash" not in made.json()
        assert http.post("/users", headers=admin, json={"username": "c1b", "password": "another long one",
                                                        "role": "community", "scope_codes": [COMMUNITIES[0]]}
                         ).status_code == 409
        for bad in ({"role": "community", "scope_codes": ["999"]}, {"role": "wizard"},
                    {"role": "community", "scope_codes": []}, {"role": "property_company"},
                    {"role": "planner", "password": "short"}):
            body = {"username": "x1", "password": "long enough pw", **bad}
            assert http.post("/users", headers=admin, json=body).status_code == 400, bad
        token = login(http, "c1b", "another long one").json()["access_token"]
        assert http.get("/auth/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        assert http.patch("/users/c1b", headers=admin, json={"active": False}).json()["active"] is False
        assert http.get("/auth/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
        assert login(http, "c1b", "another long one").status_code == 401
        listed = {u["username"]: u for u in http.get("/users", headers=admin).json()}
        assert listed["c1b"]["active"] is False and "password_hash" not in listed["c1b"]


def test_users_command(world):
    env = {**os.environ, "GRIDGOV_DATABASE_URL": world["url"], "GRIDGOV_NEW_USER_PASSWORD": "cli password 123"}

    def gridgov(*args):
        return subprocess.run([sys.executable, "-c", "from cli.main import app; app()", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120)

    added = gridgov("users", "add", "gw2b", "--role", "grid_worker", "--scope", GRIDS[1])
    assert added.returncode == 0, added.stderr
    refused = gridgov("users", "add", "gw9", "--role", "grid_worker", "--scope", "123")
    assert refused.returncode == 1 and "unknown grid code" in refused.stderr
    listed = gridgov("users", "list")
    assert "gw2b" in listed.stdout and GRIDS[1] in listed.stdout
    assert gridgov("users", "disable", "gw2b").returncode == 0
    assert sql(world["url"], "SELECT active FROM app_user WHERE username = 'gw2b'") == [(False,)]
    with world["server"].client() as http:
        assert login(http, "gw2b", "cli password 123").status_code == 401


# --- sign-in throttling: by source address and account together -------------------------------------------------

BACKOFF = 3600
"""The first wait of the throttled server: long enough that no test can outrun it (no timed assertions)."""


@pytest.fixture(scope="module")
def throttled(world):
    """A second app on the same database with long back-off waits, small ceilings, and loopback as its one
    trusted proxy. Clients choose their source address by binding to another loopback address (127.0.0.N)."""
    server = LiveServer(world["url"], extra_env={
        "GRIDGOV_AUTH_LOGIN_BACKOFF_SECONDS": str(BACKOFF), "GRIDGOV_AUTH_LOGIN_BACKOFF_MAX_SECONDS": "86400",
        "GRIDGOV_AUTH_LOGIN_FAILURES_PER_ADDRESS": "12", "GRIDGOV_AUTH_LOGIN_FAILURES_PER_ACCOUNT": "9",
        "GRIDGOV_AUTH_LOGIN_WINDOW_SECONDS": "86400", "GRIDGOV_AUTH_LOGIN_MEMORY_SECONDS": "86400",
        "GRIDGOV_TRUSTED_PROXIES": "127.0.0.1"})
    yield server
    server.stop()


def from_address(server, address: str) -> httpx.Client:
    return server.client(transport=httpx.HTTPTransport(local_address=address))


def failures(world, username: str) -> list[tuple]:
    return sql(world["url"], "SELECT client_address FROM login_failure WHERE username = %s ORDER BY id", [username])


def test_one_address_hammering_an_account_does_not_lock_its_owner_out(world, throttled):
    with from_address(throttled, "127.0.0.2") as attacker, from_address(throttled, "127.0.0.3") as owner:
        assert [login(attacker, "community1", "wrong password!").status_code for _ in range(5)] == [401] * 5
        assert login(attacker, "community1", "wrong password!").status_code == 429
        # The owner, from an address that has not been failing, signs in while the attacker is refused.
        assert login(owner, "community1").status_code == 200
        # ... and that does not forgive the attacker's failures.
        assert login(attacker, "community1", "wrong password!").status_code == 429
        assert failures(world, "community1") == [("127.0.0.2",)] * 5


def test_the_throttled_answer_is_the_same_for_the_right_and_a_wrong_password(world, throttled):
    with from_address(throttled, "127.0.0.4") as client:
        for _ in range(5):
            assert login(client, "community2", "wrong password!").status_code == 401
        answers = [login(client, "community2", password)
                   for password in (PASSWORD, "wrong password!", PASSWORD, "another wrong one")]
    assert {answer.status_code for answer in answers} == {429}
    assert len({answer.content for answer in answers}) == 1  # byte for byte
    assert "请稍后再试" in answers[0].json()["detail"]
    waits = [int(answer.headers["retry-after"]) for answer in answers]
    assert max(waits) - min(waits) <= 1 and BACKOFF - 60 < waits[0] <= BACKOFF
    assert {tuple(sorted(answer.headers.keys() - {"x-request-id", "date"})) for answer in answers} == {
        tuple(sorted(answers[0].headers.keys() - {"x-request-id", "date"}))}
    # Refused attempts are not even looked at: nothing more was counted.
    assert len(failures(world, "community2")) == 5


def test_the_wait_doubles_with_each_further_failure(world, throttled):
    with from_address(throttled, "127.0.0.5") as client:
        for _ in range(5):
            assert login(client, "grid3", "wrong password!").status_code == 401
        first = int(login(client, "grid3", "wrong password!").headers["retry-after"])
        # Let the first wait pass (moving the failures back in time), then fail once more.
        sql(world["url"], "UPDATE login_failure SET at = at - make_interval(secs => %s) WHERE username = 'grid3'",
            [BACKOFF + 5])
        assert login(client, "grid3", "wrong password!").status_code == 401
        second = login(client, "grid3", PASSWORD)
        assert second.status_code == 429
        assert 2 * BACKOFF - 60 < int(second.headers["retry-after"]) <= 2 * BACKOFF and first <= BACKOFF
        # Once the wait is over the right password signs in and this address's failures are forgiven.
        sql(world["url"], "UPDATE login_failure SET at = at - make_interval(secs => %s) WHERE username = 'grid3'",
            [2 * BACKOFF + 5])
        assert login(client, "grid3").status_code == 200
    assert failures(world, "grid3") == []


def test_an_address_failing_on_many_accounts_meets_a_ceiling(world, throttled):
    with from_address(throttled, "127.0.0.6") as sprayer, from_address(throttled, "127.0.0.7") as other:
        assert [login(sprayer, f"spray-{n}", "wrong password!").status_code for n in range(12)] == [401] * 12
        refused = login(sprayer, "grid4")  # the right password of an account it never tried
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
        assert login(other, "grid4").status_code == 200


def test_a_distributed_guess_gets_one_try_per_address_and_the_owner_still_signs_in(world, throttled):
    """Nine failures on one account from nine addresses: from then on an address that has failed on it is
    refused even before its own back-off, while an address that has not failed on it still signs in."""
    for n in range(9):
        with from_address(throttled, f"127.0.1.{n + 1}") as guesser:
            assert login(guesser, "company2", "wrong password!").status_code == 401
    with from_address(throttled, "127.0.1.1") as guesser, from_address(throttled, "127.0.1.99") as owner:
        assert login(guesser, "company2").status_code == 429
        assert login(owner, "company2").status_code == 200


def test_ipv6_sources_are_counted_per_64_network():
    assert auth.throttle_address("2001:db8:1:2:aaaa::1") == auth.throttle_address("2001:db8:1:2:bbbb::7") \
        == "2001:db8:1:2::/64"
    assert auth.throttle_address("::ffff:192.0.2.7") == "192.0.2.7"
    assert auth.throttle_address("192.0.2.7") == "192.0.2.7" and auth.throttle_address(None) is None


# --- client addresses: forwarded headers only from configured proxies -------------------------------------------

def test_x_forwarded_for_from_an_untrusted_client_does_not_change_the_recorded_address(world):
    forged = {"X-Forwarded-For": "203.0.113.9"}
    with world["server"].client(headers=forged) as http:
        assert login(http, "xff-nobody", "wrong password!").status_code == 401
        admin = login(http, "admin")
        assert admin.status_code == 200, admin.text
        before = sql(world["url"], "SELECT coalesce(max(id), 0) FROM audit_personal_read")[0][0]
        assert http.get("/responsibility", params={"lon": 117.105, "lat": 36.205},
                        headers={"Authorization": f"Bearer {admin.json()['access_token']}"}).status_code == 200
    assert failures(world, "xff-nobody") == [("127.0.0.1",)]
    logged = sql(world["url"], "SELECT DISTINCT client_address FROM audit_personal_read WHERE id > %s", [before])
    assert logged == [("127.0.0.1",)]


def test_x_forwarded_for_is_believed_from_a_configured_proxy_only(world, throttled):
    with throttled.client(headers={"X-Forwarded-For": "203.0.113.9"}) as proxy, \
            from_address(throttled, "127.0.0.8") as direct:
        assert login(proxy, "xff-proxied", "wrong password!").status_code == 401
        assert login(direct, "xff-proxied", "wrong password!").status_code == 401
        assert direct.post("/auth/login", json={"username": "xff-proxied", "password": "wrong password!"},
                           headers={"X-Forwarded-For": "198.51.100.7"}).status_code == 401
    assert failures(world, "xff-proxied") == [("203.0.113.9",), ("127.0.0.8",), ("127.0.0.8",)]


def test_trusted_proxies_setting_is_checked():
    from api.security import uvicorn_proxy_args, uvicorn_proxy_options
    from gis.errors import SetupError

    assert uvicorn_proxy_args("") == ["--no-proxy-headers"]
    assert uvicorn_proxy_options(" 10.0.0.0/8, 127.0.0.1 ") == {"proxy_headers": True,
                                                                "forwarded_allow_ips": "10.0.0.0/8,127.0.0.1"}
    with pytest.raises(SetupError):
        uvicorn_proxy_options("10.0.0.0/8,proxy.example")
