"""``sigmasight serve`` (the HTTP API under uvicorn) and ``sigmasight api-key create|list|revoke``."""

from __future__ import annotations

import argparse
import sys


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from sigmasight_pipeline.api.app import PREFIX, create_app

    try:
        app = create_app()
    except ValueError as exc:  # a bad SIGMASIGHT_API_* setting
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"SigmaSight API on http://{args.host}:{args.port}{PREFIX} (docs: {PREFIX}/docs); warehouse "
          f"{app.state.settings.database_url}", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, access_log=args.access_log)
    return 0


def cmd_key_create(args: argparse.Namespace) -> int:
    from sigmasight_pipeline.warehouse.api_keys import ApiKeyError, create_key
    from sigmasight_pipeline.warehouse.io import get_engine

    try:
        key, token = create_key(get_engine(), args.owner, operator=args.operator, label=args.label)
    except ApiKeyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    kind = "operator key" if key.is_operator else "key"
    print(f"created {kind} {key.key_id} for {key.owner}; the key (shown once, only its hash is stored):", file=sys.stderr)
    print(token)
    return 0


def cmd_key_list(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from sigmasight_pipeline.warehouse.api_keys import list_keys
    from sigmasight_pipeline.warehouse.io import get_engine

    keys = list_keys(get_engine(), include_revoked=args.all)
    if keys.empty:
        print("no API keys (sigmasight api-key create --owner EMAIL makes one)")
        return 0

    def when(value):
        return "" if value is None or value != value else f"{value:%Y-%m-%d %H:%M}"

    rows = [[k.key_id, k.owner, "yes" if k.is_operator else "", k.label if isinstance(k.label, str) else "", when(k.created_at),
             when(k.revoked_at), int(k.request_count), int(k.rate_limited_count), when(k.last_used_at)]
            for k in keys.itertuples()]
    print(tabulate(rows, headers=["key", "owner", "operator", "label", "created (UTC)", "revoked", "requests",
                                  "rate-limited", "last used"]))
    return 0


def cmd_key_revoke(args: argparse.Namespace) -> int:
    from sigmasight_pipeline.warehouse.api_keys import ApiKeyError, revoke_key
    from sigmasight_pipeline.warehouse.io import get_engine

    try:
        changed = revoke_key(get_engine(), args.key)
    except ApiKeyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"revoked {args.key}" if changed else f"{args.key} was already revoked")
    return 0


def register(subparsers) -> None:
    serve = subparsers.add_parser(
        "serve", help="serve the HTTP API (spec/api.md) under uvicorn",
        description="Serve the SigmaSight API on the warehouse of SIGMASIGHT_DATABASE_URL (default the embedded "
                    "SQLite file). Settings: SIGMASIGHT_API_RATE_LIMIT (requests a minute per key, default 100), "
                    "SIGMASIGHT_API_MAX_UPLOAD_BYTES (default 5 MB), SIGMASIGHT_DAGSTER_URL (a Dagster webserver to "
                    "launch runs through; default: runs in the API's own worker thread on DAGSTER_HOME's instance).",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    serve.add_argument("--no-access-log", dest="access_log", action="store_false", help="do not log each request")
    serve.set_defaults(func=cmd_serve)

    keys = subparsers.add_parser("api-key", help="API keys: create, list, revoke")
    sub = keys.add_subparsers(dest="api_key_command", required=True)
    create = sub.add_parser("create", help="create a key for an owner; prints the key once")
    create.add_argument("--owner", required=True, help="owner e-mail: the key sees the portfolios of this owner")
    create.add_argument("--operator", action="store_true", help="an operator key: sees every portfolio, may call /operations")
    create.add_argument("--label", help="a note to tell keys apart (e.g. 'notebook')")
    create.set_defaults(func=cmd_key_create)
    listing = sub.add_parser("list", help="list keys (never the keys themselves) with their use")
    listing.add_argument("--all", action="store_true", help="include revoked keys")
    listing.set_defaults(func=cmd_key_list)
    revoke = sub.add_parser("revoke", help="revoke a key by its id (or the whole key)")
    revoke.add_argument("key", help="key id as listed (8 hex characters) or the whole key")
    revoke.set_defaults(func=cmd_key_revoke)
