"""Users, Argon2 password hashes, bearer tokens with expiry and revocation, admin-only user management, and the
`gridgov users` command."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import ROOT, LiveServer, _clone
from test_tickets_support import COMMUNITIES, GRIDS, PASSWORD, build_city, make_users, sql


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
        return subprocess.run([sys.executable, "-c", "from cli.main import app; app()", *args], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=120)

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
