"""``pso-server``: serve, accounts (add-user, list-users, set-password, disable-user, enable-user,
revoke-sessions), set-status, set-units, stats, catalogue check, sealing keys and device credentials (the sealed
outbox), and a one-command demo.

Exit codes: 0 success, 1 failure (one plain line on stderr, no traceback), 2 usage error.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import json
import os
import secrets
import shutil
import signal
import socket
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from uvicorn.config import LOGGING_CONFIG

from pso_desktop.domain.catalogue_check import check_file, summary
from pso_server import catalogues, store
from pso_server.admission import AdmissionState
from pso_server.app import create_app
from pso_server.auth import Authenticator
from pso_server.config import Limits, ServerConfig, default_db_url, server_home
from pso_server.errors import InvalidInput, ServerError
from pso_server.proxies import ProxySettingInvalid, parse_networks
from pso_server.runner import DrainingServer, bind, is_loopback, uvicorn_config
from pso_server.sealing import WRAPPING_KEY_FILE, SealingKeys, open_sealing_keys
from pso_server.store import Database
from pso_server.tls import make_demo_tls


class UsageError(Exception):
    """A command line that cannot work as given (exit code 2)."""


def _db_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db",
        metavar="URL",
        help="SQLite path or sqlite:///path, or a postgresql:// URL (default: pso-server.db in the data "
        "folder, PSO_SERVER_HOME)",
    )


def _wrapping_key_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--wrapping-key",
        type=Path,
        metavar="FILE",
        help=f"the key that wraps the sealing keys in the database (default: {WRAPPING_KEY_FILE} in the data "
        "folder, PSO_SERVER_HOME; created on a first start, owner-only; every server on one database needs the "
        "same file)",
    )


def _limit_args(parser: argparse.ArgumentParser) -> None:
    defaults = Limits()
    parser.add_argument("--max-batch-reports", type=int, default=defaults.max_reports_per_batch)
    parser.add_argument("--max-body-bytes", type=int, default=defaults.max_body_bytes)
    parser.add_argument(
        "--rate", type=float, default=defaults.requests_per_second, help="sustained requests/s per client"
    )
    parser.add_argument(
        "--burst", type=int, default=defaults.request_burst, help="requests a client may send at once"
    )
    parser.add_argument("--max-in-flight", type=int, default=defaults.max_in_flight)
    parser.add_argument(
        "--drain-seconds", type=float, default=ServerConfig().drain_seconds, help="503 period after SIGTERM"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pso-server", description="Reference PSO server for PSO Desktop.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="serve the API over HTTPS")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8443)
    _db_arg(serve)
    serve.add_argument("--tls-cert", type=Path, metavar="PEM", help="server certificate chain")
    serve.add_argument("--tls-key", type=Path, metavar="PEM", help="server private key")
    serve.add_argument(
        "--insecure-loopback",
        action="store_true",
        help="allow plain HTTP, only on a loopback address (development)",
    )
    serve.add_argument("--no-access-log", action="store_true")
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="serve with N processes sharing the listening socket (POSIX; the database holds every shared state)",
    )
    serve.add_argument(
        "--trusted-proxy",
        action="append",
        default=[],
        metavar="ADDRESS",
        help="a load balancer or reverse proxy (IP address or network, repeatable) whose X-Forwarded-For gives "
        "the client's address for the per-address limits; off by default",
    )
    _wrapping_key_arg(serve)
    _limit_args(serve)

    add_user = commands.add_parser("add-user", help="create an account")
    add_user.add_argument("name")
    add_user.add_argument("--role", required=True, choices=store.ROLES)
    add_user.add_argument("--facility", default="General Hospital")
    add_user.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    _db_arg(add_user)

    list_users = commands.add_parser("list-users", help="list accounts (never their passwords or tokens)")
    list_users.add_argument("--json", action="store_true", help="print one JSON array")
    _db_arg(list_users)

    set_password = commands.add_parser("set-password", help="replace a password and sign the account out")
    set_password.add_argument("name")
    set_password.add_argument(
        "--password-stdin", action="store_true", help="read the new password from standard input"
    )
    _db_arg(set_password)

    for command, text in (
        ("disable-user", "refuse an account's sign-ins and tokens (its reports stay)"),
        ("enable-user", "let a disabled account sign in again"),
        ("revoke-sessions", "sign an account out on every device"),
    ):
        account = commands.add_parser(command, help=text)
        account.add_argument("name")
        _db_arg(account)

    set_role = commands.add_parser(
        "set-role", help="change an account's role (a former risk manager's copies are purged at its next sync)"
    )
    set_role.add_argument("name")
    set_role.add_argument("--role", required=True, choices=store.ROLES)
    _db_arg(set_role)

    set_status = commands.add_parser("set-status", help="change a report's status (as the PSO)")
    set_status.add_argument("report", help="report UUID or case reference (PSO-YYYY-NNNNNN)")
    set_status.add_argument("status", choices=store.STATUSES)
    set_status.add_argument("--note", help="a message the reporter will see")
    _db_arg(set_status)

    units = commands.add_parser("set-units", help="replace the list of units/locations offered to clients")
    units.add_argument("file", type=Path, help="CSV with columns code,name (header row) or JSON [{code, name}]")
    _db_arg(units)

    stats = commands.add_parser("stats", help="counts of reports held and intake outcomes")
    stats.add_argument("--json", action="store_true", help="print one JSON object")
    _db_arg(stats)

    catalogue = commands.add_parser("catalogue", help="form catalogues (the Common Formats as data)")
    catalogue_commands = catalogue.add_subparsers(dest="catalogue_command", required=True, metavar="COMMAND")
    check = catalogue_commands.add_parser(
        "check", help="list every problem of a catalogue file with its JSON path (exit 1 if any)"
    )
    check.add_argument("file", type=Path, help="a catalogue JSON file (resources/forms/catalogue.schema.json)")
    publish = catalogue_commands.add_parser(
        "publish", help="check a catalogue file and make its version the current one (clients fetch it at sync)"
    )
    publish.add_argument("file", type=Path, help="a catalogue JSON file with a new version name")
    withdraw = catalogue_commands.add_parser(
        "withdraw", help="no new drafts start on VERSION; reports written on it are still accepted"
    )
    withdraw.add_argument("version", help="a published form version, e.g. hospital-2.1")
    for sub in (publish, withdraw):
        _db_arg(sub)

    sealing_key = commands.add_parser("sealing-key", help="the PSO's sealing keys (the sealed outbox)")
    sealing_commands = sealing_key.add_subparsers(dest="sealing_command", required=True, metavar="COMMAND")
    rotate = sealing_commands.add_parser(
        "rotate", help="make a new current sealing key (old ones are kept to open envelopes sealed before)"
    )
    _wrapping_key_arg(rotate)
    _db_arg(rotate)
    list_keys = sealing_commands.add_parser("list", help="list the sealing keys: ids, dates, which is current")
    list_keys.add_argument("--json", action="store_true", help="print one JSON array")
    _db_arg(list_keys)

    credentials = commands.add_parser(
        "device-credentials", help="the upload-only credentials of workstations' sealed outboxes"
    )
    credential_commands = credentials.add_subparsers(dest="credentials_command", required=True, metavar="COMMAND")
    list_credentials = credential_commands.add_parser("list", help="list device credentials (never their tokens)")
    list_credentials.add_argument("--user", metavar="NAME", help="only this account's")
    list_credentials.add_argument("--json", action="store_true", help="print one JSON array")
    _db_arg(list_credentials)
    revoke = credential_commands.add_parser("revoke", help="revoke one device credential at once")
    revoke.add_argument("id", help="the credential id (dc-...), from 'device-credentials list'")
    _db_arg(revoke)

    demo = commands.add_parser("demo", help="a throwaway TLS server with demo accounts on loopback")
    demo.add_argument("--port", type=int, default=8443, help="0 picks a free port")
    demo.add_argument("--json", action="store_true", help="print the connection details as one JSON line")
    return parser


@contextmanager
def _database(url: str | None) -> Iterator[Database]:
    """The ``--db`` database (default: the data folder's SQLite file), closed when the block ends."""
    db = Database.open(url or default_db_url())
    try:
        yield db
    finally:
        db.close()


def _config(args: argparse.Namespace) -> ServerConfig:
    limits = Limits(
        max_reports_per_batch=args.max_batch_reports,
        max_body_bytes=args.max_body_bytes,
        requests_per_second=args.rate,
        request_burst=args.burst,
        max_in_flight=args.max_in_flight,
    )
    counts = (limits.max_reports_per_batch, limits.max_body_bytes, limits.request_burst, limits.max_in_flight)
    if min(counts) < 1 or limits.requests_per_second <= 0 or args.drain_seconds < 0:
        raise UsageError("limits must be positive numbers")
    proxies = tuple(getattr(args, "trusted_proxy", None) or ())
    try:
        parse_networks(proxies)
    except ProxySettingInvalid as exc:
        raise UsageError(str(exc)) from None
    return ServerConfig(limits=limits, drain_seconds=args.drain_seconds, trusted_proxies=proxies)


def _listen(host: str, port: int) -> socket.socket:
    try:
        return bind(host, port)
    except OSError as exc:
        raise ServerError(f"Cannot listen on {host}:{port} ({exc.strerror}); choose another --port.") from None


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _sealing(db: Database, wrapping_key: Path | None, config: ServerConfig) -> SealingKeys:
    """The database's sealing keys, with the wrapping key from ``--wrapping-key`` or the data folder (created
    there on a first start; see :func:`pso_server.sealing.load_wrapping_key`)."""
    return open_sealing_keys(db, wrapping_key or server_home() / WRAPPING_KEY_FILE, config.clock)


def _run(
    db: Database,
    config: ServerConfig,
    sealing: SealingKeys,
    sock: socket.socket,
    cert: Path | None,
    key: Path | None,
    access_log: bool,
    *,
    announce: bool = True,
) -> None:
    """Serves until SIGINT, or SIGTERM plus the drain period (see :mod:`pso_server.runner`)."""
    admission = AdmissionState()
    app = create_app(db, config, sealing=sealing, admission=admission)
    settings = uvicorn_config(app, tls_cert=cert, tls_key=key, access_log=access_log, log_config=LOGGING_CONFIG)
    if announce:
        print(_listening(sock, cert, db), flush=True)
    try:
        DrainingServer(settings, admission, config.drain_seconds).run(sockets=[sock])
    finally:
        sock.close()


def _listening(sock: socket.socket, cert: Path | None, db: Database) -> str:
    host, port = sock.getsockname()[:2]
    scheme = "https" if cert else "http"
    return f"PSO server listening on {scheme}://{_url_host(host)}:{port} ({db.dialect.name})"


def _serve_workers(args: argparse.Namespace, config: ServerConfig) -> int:
    """``--workers N``: the parent creates the schema and binds the socket, then forks N workers, each with its
    own database connections and its own uvicorn server on the shared socket (the kernel spreads connections).
    SIGTERM and SIGINT are passed on to every worker, which drains as a single server does; the parent exits
    when all have, non-zero if any failed. Every guarantee lives in the database, so N processes here behave
    as N machines behind a load balancer (docs/server.md, "Several processes or machines")."""
    if not hasattr(os, "fork"):
        raise UsageError("--workers needs a POSIX system; run several 'pso-server serve' processes instead")
    with _database(args.db) as db:  # creates or checks the schema and the sealing keys once, before any worker
        _sealing(db, args.wrapping_key, config)
        sock = _listen(args.host, args.port)
        listening = f"{_listening(sock, args.tls_cert, db)}, {args.workers} workers"
    children: list[int] = []
    for _ in range(args.workers):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the worker process (tested through the real command)
            code = 1
            try:
                with _database(args.db) as worker_db:
                    _run(
                        worker_db,
                        config,
                        _sealing(worker_db, args.wrapping_key, config),
                        sock,
                        args.tls_cert,
                        args.tls_key,
                        not args.no_access_log,
                        announce=False,
                    )
                code = 0
            except BaseException as exc:  # one line, as main() would say it
                print(f"pso-server: worker {os.getpid()}: {exc}", file=sys.stderr, flush=True)
            finally:
                os._exit(code)
        children.append(pid)
    sock.close()
    print(listening, flush=True)

    def forward(signum: int, _frame: object) -> None:
        for child in children:
            with suppress(ProcessLookupError):
                os.kill(child, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    worst = 0
    for child in children:
        _, status = os.waitpid(child, 0)
        worst = max(worst, os.waitstatus_to_exitcode(status) != 0)
    return int(worst)


def cmd_serve(args: argparse.Namespace) -> int:
    if (args.tls_cert is None) != (args.tls_key is None):
        raise UsageError("give both --tls-cert and --tls-key")
    if args.tls_cert is None:
        if not args.insecure_loopback:
            raise UsageError("HTTPS is required: give --tls-cert and --tls-key (or try 'pso-server demo')")
        if not is_loopback(args.host):
            raise UsageError("--insecure-loopback only works with a loopback --host such as 127.0.0.1")
    else:
        for path in (args.tls_cert, args.tls_key):
            if not path.is_file():
                raise ServerError(f"The TLS file {path} does not exist; check the path.")
    config = _config(args)
    if args.workers < 1:
        raise UsageError("--workers must be 1 or more")
    if args.workers > 1:
        return _serve_workers(args, config)
    with _database(args.db) as db:
        sealing = _sealing(db, args.wrapping_key, config)
        sock = _listen(args.host, args.port)
        _run(db, config, sealing, sock, args.tls_cert, args.tls_key, not args.no_access_log)
    return 0


def _read_password() -> str:
    line = sys.stdin.readline()
    password = line.rstrip("\r\n")
    if not password:
        raise InvalidInput(
            "No password on standard input; pipe it in, e.g. printf '%s\\n' \"$PW\" | pso-server ..."
        )
    return password


def cmd_add_user(args: argparse.Namespace) -> int:
    if not args.password_stdin:
        raise UsageError("add-user reads the password from standard input: add --password-stdin")
    password = _read_password()
    with _database(args.db) as db:
        user = Authenticator(db, ServerConfig()).add_user(args.name, password, args.role, args.facility)
    print(f"Created {user.role} account {user.username!r} at {user.facility!r}.")
    return 0


def _utc(when: float) -> str:
    return dt.datetime.fromtimestamp(when, dt.UTC).isoformat(timespec="seconds")


def cmd_list_users(args: argparse.Namespace) -> int:
    with _database(args.db) as db, db.reader() as tx:
        accounts = store.list_accounts(tx, ServerConfig().clock())
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "username": a.username,
                        "role": a.role,
                        "facility": a.facility,
                        "disabled": a.disabled,
                        "created_at": _utc(a.created_at),
                        "live_sessions": a.live_sessions,
                    }
                    for a in accounts
                ]
            )
        )
        return 0
    table = [("USERNAME", "ROLE", "FACILITY", "STATE", "CREATED (UTC)", "SESSIONS")] + [
        (
            a.username,
            a.role,
            a.facility,
            "disabled" if a.disabled else "enabled",
            _utc(a.created_at)[:16].replace("T", " "),
            str(a.live_sessions),
        )
        for a in accounts
    ]
    _table(table)
    return 0


def _table(rows: Sequence[Sequence[str]]) -> None:
    """Prints rows as left-aligned columns (the first row is the header)."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def _ended(count: int) -> str:
    return f"{count} live session{'' if count == 1 else 's'} ended"


def cmd_set_password(args: argparse.Namespace) -> int:
    if not args.password_stdin:
        raise UsageError("set-password reads the new password from standard input: add --password-stdin")
    password = _read_password()
    with _database(args.db) as db:
        ended = Authenticator(db, ServerConfig()).set_password(args.name, password)
    print(f"Password of {args.name!r} replaced; {_ended(ended)}.")
    return 0


def cmd_disable_user(args: argparse.Namespace) -> int:
    with _database(args.db) as db:
        ended = Authenticator(db, ServerConfig()).set_disabled(args.name, True)
    print(f"Account {args.name!r} disabled; {_ended(ended)}. Its reports stay.")
    return 0


def cmd_enable_user(args: argparse.Namespace) -> int:
    with _database(args.db) as db:
        Authenticator(db, ServerConfig()).set_disabled(args.name, False)
    print(f"Account {args.name!r} enabled; it can sign in again.")
    return 0


def cmd_revoke_sessions(args: argparse.Namespace) -> int:
    with _database(args.db) as db:
        ended = Authenticator(db, ServerConfig()).revoke_sessions(args.name)
    print(f"Account {args.name!r} signed out everywhere; {_ended(ended)}.")
    return 0


def cmd_set_role(args: argparse.Namespace) -> int:
    with _database(args.db) as db:
        Authenticator(db, ServerConfig()).set_role(args.name, args.role)
    print(f"Account {args.name!r} is now a {args.role}.")
    return 0


def cmd_set_status(args: argparse.Namespace) -> int:
    with _database(args.db) as db, db.transaction() as tx:
        report = store.get_report(tx, args.report)
        change = store.set_status(tx, report.id, args.status, args.note, None, ServerConfig().clock())
    print(f"{change.server_ref} ({change.report_id}) is now {change.status}.")
    return 0


def read_units(path: Path) -> list[tuple[str, str]]:
    """Units from a CSV (header ``code,name``) or JSON (``[{"code", "name"}]``) file. Raises InvalidInput."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(
            f"Cannot read {path} ({type(exc).__name__}); check the path and that it is UTF-8."
        ) from None
    try:
        rows = json.loads(text) if path.suffix.lower() == ".json" else list(csv.DictReader(io.StringIO(text)))
        units = [(str(row["code"]).strip(), str(row["name"]).strip()) for row in rows]
    except (ValueError, KeyError, TypeError):
        raise InvalidInput(f"{path} must list units with a 'code' and a 'name' each.") from None
    codes = [code for code, _ in units]
    if not units or not all(code and name for code, name in units) or len(set(codes)) != len(codes):
        raise InvalidInput(f"{path} must list at least one unit, each with a unique code and a name.")
    return units


def cmd_set_units(args: argparse.Namespace) -> int:
    units = read_units(args.file)
    with _database(args.db) as db, db.transaction() as tx:
        store.replace_units(tx, units)
    print(f"{len(units)} units set.")
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    with _database(args.db) as db, db.reader() as tx:
        counts = store.stats(tx)
    if args.json:
        print(json.dumps(counts))
    else:
        for name, value in counts.items():
            print(f"{name}: {value}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    folder = server_home() / "demo"
    shutil.rmtree(folder, ignore_errors=True)  # a demo starts from nothing: new CA, new database, new passwords
    folder.mkdir(parents=True, mode=0o700)
    tls = make_demo_tls(folder)
    with _database(f"sqlite:///{folder / 'demo.db'}") as db:
        config = ServerConfig()
        sealing = _sealing(db, folder / WRAPPING_KEY_FILE, config)  # a throwaway key, as everything here
        accounts: dict[str, Any] = {}
        auth = Authenticator(db, config)
        for username, role in (("demo", "reporter"), ("demo-manager", "risk_manager")):
            password = secrets.token_urlsafe(12)
            auth.add_user(username, password, role, "Demo Hospital")
            accounts[username] = {"password": password, "role": role}
        sock = _listen("127.0.0.1", args.port)
        url = f"https://127.0.0.1:{sock.getsockname()[1]}"
        if args.json:
            print(json.dumps({"url": url, "ca_file": str(tls.ca_cert), "accounts": accounts}), flush=True)
        else:
            print(f"PSO demo server (training data only) at {url}")
            print(f"CA certificate to trust: {tls.ca_cert}")
            for username, info in accounts.items():
                print(f"Account: {username}  password: {info['password']}  ({info['role']})")
            print(
                f"Try: curl --cacert {tls.ca_cert} {url}/healthz   (API contract: {url}/openapi.json)\n"
                "Stop with Ctrl+C.",
                flush=True,
            )
        _run(db, config, sealing, sock, tls.server_cert, tls.server_key, access_log=False)
    return 0


def cmd_catalogue(args: argparse.Namespace) -> int:
    if args.catalogue_command == "check":
        return cmd_catalogue_check(args)
    if args.catalogue_command == "publish":
        return cmd_catalogue_publish(args)
    if args.catalogue_command == "withdraw":
        return cmd_catalogue_withdraw(args)
    raise UsageError(f"unknown catalogue command {args.catalogue_command!r}")


def cmd_catalogue_check(args: argparse.Namespace) -> int:
    """Every problem on its own line (``$.path: what to fix``) on stdout, then one line on stderr; exit 1.
    A clean catalogue: one summary line on stdout; exit 0."""
    problems, data = check_file(args.file)
    if problems:
        for problem in problems:
            print(problem)
        count = len(problems)
        print(
            f"pso-server: {args.file.name}: {count} problem{'s' if count != 1 else ''}; the catalogue is not valid.",
            file=sys.stderr,
        )
        return 1
    print(f"{args.file.name}: {summary(data)}")
    return 0


def cmd_catalogue_publish(args: argparse.Namespace) -> int:
    """Checked first as ``catalogue check`` does (every problem listed, exit 1, nothing published)."""
    with _database(args.db) as db:
        try:
            version, new = catalogues.publish(db, args.file, time.time())
        except catalogues.CatalogueRefused as exc:
            for problem in exc.problems:
                print(problem)
            raise
    if new:
        print(
            f"Published {version}: it is now the current form version; PSO Desktop picks it up at its next sync."
        )
    else:
        print(f"{version} was already published with this content; nothing changed.")
    return 0


def cmd_catalogue_withdraw(args: argparse.Namespace) -> int:
    with _database(args.db) as db:
        try:
            current = catalogues.withdraw(db, args.version, time.time())
        except catalogues.AlreadyWithdrawn as already:
            print(
                f"{args.version} was already withdrawn: no new report starts on it (new ones start on "
                f"{already.current}); nothing changed."
            )
            return 0
    print(
        f"Withdrew {args.version}: no new report starts on it (new ones start on {current}); "
        "reports already written on it are still accepted."
    )
    return 0


def cmd_sealing_key(args: argparse.Namespace) -> int:
    if args.sealing_command == "rotate":
        with _database(args.db) as db:
            config = ServerConfig()
            new = _sealing(db, args.wrapping_key, config).rotate()
        print(
            f"New current sealing key {new.key_id}; clients pick it up at their next sync, and envelopes sealed "
            "for the older keys still open."
        )
        return 0
    with _database(args.db) as db, db.reader() as tx:
        keys = store.sealing_keys(tx)
    if args.json:
        print(
            json.dumps(
                [{"key_id": k.key_id, "created_at": _utc(k.created_at), "current": k.current} for k in keys]
            )
        )
        return 0
    _table(
        [("KEY ID", "CREATED (UTC)", "")]
        + [(k.key_id, _utc(k.created_at)[:16].replace("T", " "), "current" if k.current else "") for k in keys]
    )
    return 0


def cmd_device_credentials(args: argparse.Namespace) -> int:
    now = ServerConfig().clock()
    if args.credentials_command == "revoke":
        with _database(args.db) as db, db.transaction() as tx:
            revoked = store.revoke_device_credential(tx, args.id, now)
        print(f"Device credential {args.id} {'revoked' if revoked else 'was already revoked'}.")
        return 0
    with _database(args.db) as db, db.reader() as tx:
        if args.user is not None:
            store.lock_account(tx, args.user)  # an unknown name is one sentence, not an empty list
        found = store.list_device_credentials(tx, args.user)

    def day(when: float | None) -> str | None:
        return None if when is None else _utc(when)[:10]

    if args.json:
        print(
            json.dumps(
                [
                    {
                        "id": c.id,
                        "username": c.username,
                        "device_name": c.device_name,
                        "created_at": _utc(c.created_at),
                        "last_used_on": day(c.last_used_at),
                        "revoked_at": None if c.revoked_at is None else _utc(c.revoked_at),
                    }
                    for c in found
                ]
            )
        )
        return 0
    _table(
        [("ID", "USERNAME", "DEVICE", "CREATED (UTC)", "LAST USED", "STATE")]
        + [
            (
                c.id,
                c.username,
                c.device_name,
                _utc(c.created_at)[:16].replace("T", " "),
                day(c.last_used_at) or "never",
                "revoked" if c.revoked_at is not None else "active",
            )
            for c in found
        ]
    )
    return 0


COMMANDS = {
    "serve": cmd_serve,
    "add-user": cmd_add_user,
    "list-users": cmd_list_users,
    "set-password": cmd_set_password,
    "disable-user": cmd_disable_user,
    "enable-user": cmd_enable_user,
    "revoke-sessions": cmd_revoke_sessions,
    "set-role": cmd_set_role,
    "set-status": cmd_set_status,
    "set-units": cmd_set_units,
    "stats": cmd_stats,
    "catalogue": cmd_catalogue,
    "sealing-key": cmd_sealing_key,
    "device-credentials": cmd_device_credentials,
    "demo": cmd_demo,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except UsageError as exc:
        parser.error(str(exc))  # prints usage and exits 2
    except ServerError as exc:
        print(f"pso-server: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 1


if __name__ == "__main__":
    sys.exit(main())
