"""Who may see what (api.md): keys, owners, operators, revocation, the rate limit and the keys' recorded use,
against a real server (``sigmasight serve``) on the short demo; and ``sigmasight api-key create|list|revoke``."""

from __future__ import annotations

import time

import pytest
import requests
import sqlalchemy as sa

from sigmasight_pipeline.warehouse import schema
from sigmasight_pipeline.warehouse.api_keys import create_key, list_keys, revoke_key, verify_token
from sigmasight_pipeline_tests.api_support import PREFIX, served_demo, stored
from sigmasight_pipeline_tests.user_state import sigmasight

HEDGE = "demo-hedge-fund"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(request, tmp_path_factory):
    # 120 requests a minute: two a second come back, so the limit test recovers in about a second
    with served_demo(request, tmp_path_factory, request.param, rate_limit=120) as w:
        yield w


def hedge_key(world, label: str):
    """A new key of the hedge fund's owner, stored in the server's warehouse: (key, token)."""
    engine = world.engine()
    try:
        return create_key(engine, "demo_hedgefundstyle@sigmasight.com", label=label)
    finally:
        engine.dispose()


def test_no_key_a_malformed_key_and_an_unknown_key_are_401(world):
    for headers in ({}, {"Authorization": "Bearer"}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer nope"},
                    {"Authorization": "Bearer ssk_00000000_" + "x" * 43}):
        r = requests.get(f"{world.url}{PREFIX}/portfolios", headers=headers, timeout=30)
        assert r.status_code == 401, (headers, r.text)
        assert r.json()["field"] == "authorization" and r.headers["WWW-Authenticate"] == "Bearer"
    # a real key id with a wrong secret
    key_id = world.keys.hedge.split("_")[1]
    forged = f"ssk_{key_id}_" + "A" * 43
    assert world.get("/portfolios", key=forged).status_code == 401


def test_a_revoked_key_is_refused_at_once(world):
    key, token = hedge_key(world, "to revoke")
    assert world.get(f"/portfolios/{HEDGE}", key=token).status_code == 200
    proc = sigmasight(world.folder, "api-key", "revoke", key.key_id, extra={"SIGMASIGHT_DATABASE_URL": world.database_url})
    assert proc.returncode == 0 and f"revoked {key.key_id}" in proc.stdout, proc.stderr
    r = world.get(f"/portfolios/{HEDGE}", key=token)
    assert r.status_code == 401 and "revoked" in r.json()["message"]


def test_owner_a_sees_nothing_of_owner_b(world):
    for path in ("", "/exposures", "/performance"):
        assert world.get(f"/portfolios/demo-hnw{path}", key="hedge").status_code == 404
        assert world.get(f"/portfolios/demo-hnw{path}", key="hnw").status_code == 200
        assert world.get(f"/portfolios/{HEDGE}{path}", key="stranger").status_code == 404
        assert world.get(f"/portfolios/{HEDGE}{path}", key="operator").status_code == 200


def test_the_rate_limit_answers_429_with_retry_after_then_recovers(world):
    key, token = hedge_key(world, "rate limit")
    session = requests.Session()
    headers = {"Authorization": f"Bearer {token}"}
    codes = [session.get(f"{world.url}{PREFIX}/portfolios", headers=headers, timeout=30).status_code for _ in range(130)]
    first_refused = codes.index(429)
    assert 120 <= first_refused <= 125  # the bucket holds 120 (a few refill while the requests go)
    limited = session.get(f"{world.url}{PREFIX}/portfolios", headers=headers, timeout=30)
    assert limited.status_code == 429 and limited.json()["field"] == "authorization"
    assert int(limited.headers["Retry-After"]) >= 1
    # another key is not limited by this one
    assert world.get("/portfolios", key="hedge").status_code == 200
    time.sleep(int(limited.headers["Retry-After"]) + 0.2)
    assert session.get(f"{world.url}{PREFIX}/portfolios", headers=headers, timeout=30).status_code == 200
    # the use is recorded in the warehouse (added every few seconds)
    deadline = time.monotonic() + 20
    while True:
        row = stored(world, sa.select(schema.api_keys).where(schema.api_keys.c.key_id == key.key_id))[0]
        if row["request_count"] + row["rate_limited_count"] >= 132 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert row["rate_limited_count"] == codes.count(429) + 1
    assert row["request_count"] == codes.count(200) + 1
    assert row["last_used_at"] is not None


def test_the_openapi_document_is_generated_and_valid(world):
    from openapi_spec_validator import validate

    r = requests.get(f"{world.url}{PREFIX}/openapi.json", timeout=30)
    assert r.status_code == 200
    document = r.json()
    validate(document)
    paths = document["paths"]
    for path in ("/api/v1/health", "/api/v1/portfolios", "/api/v1/portfolios/{portfolio_id}",
                 "/api/v1/portfolios/{portfolio_id}/exposures", "/api/v1/portfolios/{portfolio_id}/performance"):
        assert path in paths, sorted(paths)
    summary = paths["/api/v1/portfolios/{portfolio_id}"]["get"]
    assert {"200", "401", "404", "422", "429"} <= set(summary["responses"])
    assert requests.get(f"{world.url}{PREFIX}/docs", timeout=30).status_code == 200


# --- the key store and the command ------------------------------------------------------------------------------

def test_keys_are_stored_hashed_verified_and_revoked(engine):
    key, token = create_key(engine, "a@example.com", label="notebook")
    assert token.startswith(f"ssk_{key.key_id}_") and len(token) > 40
    with engine.connect() as conn:
        row = conn.execute(sa.select(schema.api_keys)).one()._mapping
    assert token not in str(dict(row)) and len(row["key_hash"]) == 64
    assert verify_token(engine, token) == key
    assert verify_token(engine, token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    operator, op_token = create_key(engine, "ops@example.com", operator=True)
    assert verify_token(engine, op_token).is_operator
    assert revoke_key(engine, key.key_id) is True
    assert revoke_key(engine, token) is False  # already revoked; the whole token names it too
    assert verify_token(engine, token) is None
    assert list(list_keys(engine).key_id) == [operator.key_id]
    assert set(list_keys(engine, include_revoked=True).key_id) == {key.key_id, operator.key_id}


@pytest.mark.parametrize("owner", ["", "not-an-email", "a b@example.com", "x" * 200 + "@example.com"])
def test_a_key_owner_must_be_an_email(sqlite_engine, owner):
    from sigmasight_pipeline.warehouse.api_keys import ApiKeyError

    with pytest.raises(ApiKeyError, match="owner must be an e-mail"):
        create_key(sqlite_engine, owner)


def test_the_api_key_command_creates_lists_and_revokes(tmp_path):
    from sigmasight_pipeline_tests.user_state import make_state

    folder = make_state(tmp_path / "state")
    made = sigmasight(folder, "api-key", "create", "--owner", "ann@example.com", "--label", "laptop")
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert token.startswith("ssk_") and "shown once" in made.stderr
    key_id = token.split("_")[1]
    op = sigmasight(folder, "api-key", "create", "--owner", "ops@example.com", "--operator")
    assert op.returncode == 0 and "operator key" in op.stderr
    listed = sigmasight(folder, "api-key", "list")
    assert listed.returncode == 0 and key_id in listed.stdout and "laptop" in listed.stdout
    assert token not in listed.stdout
    bad = sigmasight(folder, "api-key", "create", "--owner", "nobody")
    assert bad.returncode == 2 and "owner must be an e-mail" in bad.stderr
    gone = sigmasight(folder, "api-key", "revoke", key_id)
    assert gone.returncode == 0 and f"revoked {key_id}" in gone.stdout
    assert key_id not in sigmasight(folder, "api-key", "list").stdout
    assert key_id in sigmasight(folder, "api-key", "list", "--all").stdout
    unknown = sigmasight(folder, "api-key", "revoke", "deadbeef")
    assert unknown.returncode == 2 and "no API key 'deadbeef'" in unknown.stderr


def test_a_bad_numeric_setting_names_its_variable(monkeypatch):
    from sigmasight_pipeline.api.settings import ApiSettings
    from sigmasight_pipeline.runner import default_workers

    monkeypatch.setenv("SIGMASIGHT_API_RATE_LIMIT", "lots")
    with pytest.raises(ValueError, match="SIGMASIGHT_API_RATE_LIMIT must be a whole number, got 'lots'"):
        ApiSettings.from_env()
    monkeypatch.setenv("SIGMASIGHT_API_RATE_LIMIT", "0")
    with pytest.raises(ValueError, match="SIGMASIGHT_API_RATE_LIMIT must be at least 1"):
        ApiSettings.from_env()
    monkeypatch.setenv("SIGMASIGHT_API_RATE_LIMIT", " 30 ")
    assert ApiSettings.from_env().rate_limit == 30
    monkeypatch.setenv("SIGMASIGHT_WORKERS", "-2")
    with pytest.raises(ValueError, match="SIGMASIGHT_WORKERS must be at least 1, got -2"):
        default_workers()
    monkeypatch.setenv("SIGMASIGHT_WORKERS", "3")
    assert default_workers() == 3
