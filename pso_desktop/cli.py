"""``pso-desktop``: the GUI when run bare, and headless commands for IT scripts and tests.

Exit codes: 0 success, 1 failure with a one-line reason on stderr, 2 usage error. Expected failures (wrong
password, bad file, missing profile) never print a traceback, and no message repeats report contents.
"""

from __future__ import annotations

import argparse
import getpass
import io
import json
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING

from pso_desktop import paths
from pso_desktop.domain import report_json_schema
from pso_desktop.errors import ExpectedError
from pso_desktop.files import read_user_file
from pso_desktop.logs import configure_logging
from pso_desktop.services.reports_input import InputRejected
from pso_desktop.services.workstation import Session, Workstation
from pso_desktop.texts import LOCKOUT_NOTE

if TYPE_CHECKING:
    from pso_desktop.security.profiles import KeyPolicy
    from pso_desktop.sync.engine import Progress

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
MAX_PROBLEMS_SHOWN = 50
# How long 'sync' keeps retrying a server that does not answer, unless --max-wait or IT policy says otherwise:
# enough for a server restart, short enough for a scheduled script to end and run again later.
SYNC_MAX_WAIT = 120.0


class CliFailure(ExpectedError):
    """An expected failure of the command line itself (no secret given, file not found): exit code 1."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"{self.prog}: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="pso-desktop", description="Patient safety event reporting (AHRQ Common Formats).")
    parser.add_argument(
        "--demo",
        action="store_true",
        help="start the GUI in training mode: a practice profile and PSO server, deleted at exit",
    )
    common = _Parser(add_help=False)
    common.add_argument("--profile", default=os.environ.get("PSO_DESKTOP_PROFILE"), help="clinician profile name")
    common.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the profile secret from the first line of standard input",
    )
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

    profile = sub.add_parser("profile", help="local clinician profiles")
    profile_sub = profile.add_subparsers(dest="profile_command", required=True, parser_class=_Parser)
    create = profile_sub.add_parser("create", parents=[common], help="create a profile (works offline)")
    create.add_argument("name")
    profile_sub.add_parser("list", help="list the profiles on this workstation")

    report = sub.add_parser("report", help="add reports, print the report schema")
    report_sub = report.add_subparsers(dest="report_command", required=True, parser_class=_Parser)
    add = report_sub.add_parser(
        "add", parents=[common], help="add reports from a file or - (one report, a JSON array or JSON lines)"
    )
    add.add_argument("file", help="path, or - for standard input (after the secret line with --password-stdin)")
    add.add_argument("--submit", action="store_true", help="queue the reports for sending to the PSO")
    add.add_argument("--dry-run", action="store_true", help="check the reports without storing them")
    report_sub.add_parser("schema", help="print the JSON Schema of a report")

    status = sub.add_parser("status", parents=[common], help="counts of reports per outbox state")
    status.add_argument("--json", action="store_true", help="print JSON")

    login = sub.add_parser(
        "login",
        parents=[common],
        help="link the profile to its PSO account (standard input: the profile secret, then the account password)",
    )
    login.add_argument(
        "--server", help="the PSO server, https://host[:port] (not needed when IT's policy names it)"
    )
    login.add_argument("--user", required=True, help="the PSO account's user name")
    login.add_argument("--ca-file", help="an extra CA certificate (PEM) to trust, e.g. the hospital proxy's")
    login.add_argument("--proxy", help="an http(s):// proxy URL, or 'system' for the computer's proxy settings")

    sync = sub.add_parser("sync", parents=[common], help="send queued reports and fetch their PSO statuses")
    sync.add_argument("--progress", choices=["json"], help="print progress as one JSON object per line")
    sync.add_argument(
        "--max-wait",
        type=_seconds,
        metavar="SECONDS",
        help="how long to keep retrying a PSO server that does not answer before giving up, the rest staying "
        f"queued (default: IT policy's, else {SYNC_MAX_WAIT:.0f}); Ctrl+C stops sooner",
    )

    sub.add_parser("logout", parents=[common], help="sign the profile out of its PSO account")

    agent = sub.add_parser(
        "agent",
        help="send the sealed outbox of every profile on this workstation (no secret needed); keeps going",
    )
    agent.add_argument(
        "--once", action="store_true", help="send what is there and exit: 0 when the spool is empty, else 1"
    )
    agent.add_argument(
        "--status",
        action="store_true",
        help="print each profile's spool count, rejections and the agent's last success as JSON and exit 0 "
        "(reads the spool only: no secret, no network; for IT's monitoring)",
    )

    imp = sub.add_parser(
        "import",
        parents=[common],
        help="import reports from FILE.csv or FILE.jsonl: all rows are checked, then all stored, or none",
    )
    imp.add_argument("file", type=Path, help="a .csv file (docs/import-export.md) or a .jsonl file")
    imp.add_argument("--submit", action="store_true", help="queue the reports for sending to the PSO")

    recover = sub.add_parser(
        "recover",
        parents=[common],
        help="check a damaged profile and list its backups; with --password-stdin, restore it from the newest good "
        "backup and what the damaged file still holds (the damaged file is kept)",
    )
    recover.add_argument(
        "--set-aside",
        action="store_true",
        help="move the damaged database (and its -wal/-shm) into the profile's set-aside folder for IT",
    )

    export = sub.add_parser("export", parents=[common], help="export reports (carries the PSWP label)")
    export.add_argument(
        "--format",
        choices=["csv", "csv-readable", "fhir", "json"],
        required=True,
        help="csv imports back unchanged; csv-readable adds the answers' words, case number, state and PSO status",
    )
    export.add_argument("--out", required=True, type=Path)
    export.add_argument(
        "--view",
        metavar="NAME",
        help="only the reports a view saved in the window's list shows (its filters, search and order)",
    )
    return parser


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 24 * 3600:
        raise argparse.ArgumentTypeError(f"give a number of seconds from 0 to 86400, not {text!r}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if isinstance(sys.stdin, io.TextIOWrapper):
        # Keep undecodable input bytes so a non-UTF-8 file gets a clear message instead of a crash.
        sys.stdin.reconfigure(encoding="utf-8", errors="surrogateescape")
    # Said after the command's own result or error, never instead of it (a profile that could not record its
    # closing, e.g. on a full disk, after the command's work was committed).
    afterwards: list[str] = []
    try:
        configure_logging()
        code = _dispatch(args, sys.stdin, sys.stdout, afterwards)
        sys.stdout.flush()  # a reader that went away fails here, where it is handled, not at exit
        return code
    except InputRejected as exc:
        for problem in exc.problems[:MAX_PROBLEMS_SHOWN]:
            print(f"  {problem}", file=sys.stderr)
        if len(exc.problems) > MAX_PROBLEMS_SHOWN:
            print(f"  ... and {len(exc.problems) - MAX_PROBLEMS_SHOWN} more", file=sys.stderr)
        return _fail(str(exc))
    except ExpectedError as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        return _fail("Interrupted; nothing more was changed.")
    except BrokenPipeError:
        # The reader went away (e.g. "| head"); stop quietly as other command-line tools do.
        # Python's documented recipe: point the descriptor at devnull, so the flush of what is still buffered
        # at exit goes nowhere instead of failing again ("Exception ignored ... BrokenPipeError").
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    finally:
        for warning in afterwards:
            print(f"pso-desktop: warning: {warning}", file=sys.stderr)


def _fail(message: str) -> int:
    print(f"pso-desktop: {message}", file=sys.stderr)
    return EXIT_FAILURE


def _dispatch(args: argparse.Namespace, stdin: IO[str], stdout: IO[str], afterwards: list[str]) -> int:
    if args.command is None:
        return _launch_gui(args)
    if args.command == "report" and args.report_command == "schema":
        json.dump(report_json_schema(), stdout, indent=2)
        stdout.write("\n")
        return EXIT_OK
    workstation = Workstation()
    if args.command == "agent":
        return _agent(args, workstation, stdout)
    if workstation.keys.warning:
        print(f"pso-desktop: warning: {workstation.keys.warning}", file=sys.stderr)
    if args.command == "profile":
        if args.profile_command == "list":
            for name in workstation.keys.list_profiles():
                print(name, file=stdout)
            return EXIT_OK
        created = workstation.create_profile(args.name, _read_new_secret(args, stdin))
        print(f"Created profile {created}. {LOCKOUT_NOTE}", file=stdout)
        return EXIT_OK
    name = _profile_name(args, workstation)
    if args.command == "recover":
        return _recover(args, workstation, name, stdin, stdout, afterwards)
    secret = _read_secret(args, stdin)
    # Commands that only read go on when a full disk keeps the unlock from being recorded (a warning afterwards).
    read_only = args.command == "status" or (args.command == "report" and bool(getattr(args, "dry_run", False)))
    with workstation.session(name, secret, on_close_problem=afterwards.append, read_only=read_only) as session:
        code = _run_in_session(args, session, stdin, stdout, workstation.keys.policy)
        afterwards.extend(session.notices)  # a draft the PSO already held: said after the command's outcome
        _back_up(session, after_sync=args.command == "sync", afterwards=afterwards)
        return code


def _back_up(session: Session, *, after_sync: bool, afterwards: list[str]) -> None:
    """The automatic backup, when one is due (docs/storage.md). Its failure is a warning after the command's own
    outcome, never instead of it."""
    from pso_desktop.storage import backup
    from pso_desktop.storage.errors import StorageError

    try:
        session.back_up_if_due(max_age=backup.DUE_AFTER_SYNC if after_sync else backup.DUE_AFTER)
    except StorageError as exc:
        afterwards.append(str(exc))


def _recover(
    args: argparse.Namespace,
    workstation: Workstation,
    name: str,
    stdin: IO[str],
    stdout: IO[str],
    afterwards: list[str],
) -> int:
    """Without the secret: check and list (exit 1 when the files look damaged), or set aside. With it: restore."""
    from pso_desktop.services import recovery

    if args.password_stdin:
        restored = recovery.restore(workstation, name, _read_secret(args, stdin))
        print(recovery.restored_sentence(name, restored), file=stdout)
        afterwards.extend(restored.warnings)
        return EXIT_OK
    inspection = recovery.inspect(workstation, name)
    for line in recovery.inspection_lines(inspection):
        print(line, file=stdout)
    if args.set_aside:
        aside = recovery.set_aside_damaged(workstation, name)
        print(recovery.set_aside_sentence(name, aside), file=stdout)
        return EXIT_OK
    if inspection.files.problems:
        raise CliFailure(recovery.damaged_sentence(name))
    return EXIT_OK


def _run_in_session(
    args: argparse.Namespace, session: Session, stdin: IO[str], stdout: IO[str], policy: KeyPolicy
) -> int:
    # Imported here: the HTTP and TLS libraries are only needed by the commands that talk to the server.
    from pso_desktop.services import syncing

    if args.command == "report":
        data = _read_input(args.file, stdin)
        reports = session.add_from_bytes(data, submit=args.submit, dry_run=args.dry_run)
        verb = "would be added" if args.dry_run else "added"
        queued = " and queued for submission" if args.submit else ""
        print(f"{len(reports)} report(s) {verb}{queued}.", file=stdout)
        return EXIT_OK
    if args.command == "status":
        from pso_desktop.services import sealing

        counts = session.status_counts()
        sealed = sealing.status(session)
        if args.json:
            json.dump({**counts, "sealed": sealed}, stdout, sort_keys=True)
            stdout.write("\n")
        else:
            for state, count in counts.items():
                print(f"{state:16} {count}", file=stdout)
            print(f"{'sealed spool':16} {sealed['spooled']}", file=stdout)
            if sealed["rejected"]:
                print(f"{'sealed rejected':16} {sealed['rejected']}", file=stdout)
            if sealed["agent_last_success"]:
                print(f"{'agent last sent':16} {sealed['agent_last_success']}", file=stdout)
        return EXIT_OK
    if args.command == "login":
        settings = syncing.choose_server(
            policy.server,
            args.server,
            ca_file=args.ca_file,
            proxy=args.proxy,
            proxy_from_environment=policy.proxy_from_environment,
        )
        password = _read_account_password(args, stdin)
        user = syncing.login(session, settings, args.user, password)
        print(f"Signed in to {settings.base_url} as {user.get('username', args.user)}.", file=stdout)
        return EXIT_OK
    if args.command == "sync":
        return _sync(args, session, stdout, policy)
    if args.command == "logout":
        syncing.sign_out(
            session, server_policy=policy.server, proxy_from_environment=policy.proxy_from_environment
        )
        print("Signed out of the PSO account; the tokens on this workstation are wiped.", file=stdout)
        return EXIT_OK
    if args.command == "import":
        return _import(args, session, stdout)
    if args.command == "export":
        exporters = {
            "csv": session.export_csv,
            "csv-readable": session.export_csv_readable,
            "fhir": session.export_fhir,
            "json": session.export_json,
        }
        query = None
        if args.view is not None:
            query = session.views.get(args.view)
            if query is None:
                raise ExpectedError(
                    "This profile has no saved view of that name; its list's Views menu shows them."
                )
        count = exporters[args.format](args.out, query)
        print(
            f"Exported {count} report(s) to {args.out}. The file is confidential patient safety work product.",
            file=stdout,
        )
        return EXIT_OK
    raise AssertionError(f"unhandled command {args.command}")


def _import(args: argparse.Namespace, session: Session, stdout: IO[str]) -> int:
    from pso_desktop.services import importing

    data, fmt = importing.read_import_file(args.file)
    result = importing.import_file(session, data, fmt, submit=args.submit)
    queued = " and queued for submission" if result.submitted else ""
    print(f"{result.count} report(s) imported{queued}.", file=stdout)
    return EXIT_OK


def _sync(args: argparse.Namespace, session: Session, stdout: IO[str], policy: KeyPolicy) -> int:
    from pso_desktop.services import syncing
    from pso_desktop.sync.engine import RetryPolicy

    def show(progress: Progress) -> None:
        if args.progress == "json":
            json.dump({"event": progress.phase, **_progress_fields(progress)}, stdout)
            stdout.write("\n")
            stdout.flush()
        elif progress.phase == "waiting" and progress.wait_seconds is not None:
            print(f"{progress.reason} Trying again in {progress.wait_seconds:.0f} s.", file=sys.stderr)

    max_wait = args.max_wait
    if max_wait is None:
        max_wait = SYNC_MAX_WAIT if policy.sync_max_wait_seconds is None else policy.sync_max_wait_seconds
    # Ctrl+C stops the run as the window's Stop does (a wait ends at once, the batch on its way is answered and
    # checkpointed, the rest stays queued). A second Ctrl+C quits at once, even with a request hanging on a
    # silent network (a KeyboardInterrupt would still wait for it, up to the read timeout): the process ends as
    # after a kill, which the outbox is built to survive - what was in flight is sent again next time and the
    # server's dedupe keeps it once. os.write, not print: this runs between any two bytecodes of the main thread.
    stop = threading.Event()

    def interrupted(signum: int, frame: object) -> None:
        if stop.is_set():
            os.write(2, b"pso-desktop: Interrupted; unsent reports stay queued and are sent by the next sync.\n")
            os._exit(EXIT_FAILURE)
        stop.set()
        os.write(2, b"pso-desktop: stopping after the request on its way; Ctrl+C again to quit now.\n")

    previous = signal.getsignal(signal.SIGINT)
    if previous is not signal.SIG_IGN:  # started with Ctrl+C ignored (nohup, a background job): leave it so
        signal.signal(signal.SIGINT, interrupted)
    try:
        summary = syncing.sync(
            session,
            on_progress=show,
            should_stop=stop.is_set,
            policy=RetryPolicy(max_wait_seconds=max_wait),
            server_policy=policy.server,
            proxy_from_environment=policy.proxy_from_environment,
            keep_closed_days=policy.facility_keep_closed_days,
        )
    finally:
        signal.signal(signal.SIGINT, previous)
    if args.progress != "json":
        print(
            f"{summary.submitted} report(s) sent, {summary.needs_attention} need attention, "
            f"{summary.remaining} still queued; {summary.status_changes} status update(s) from the PSO.",
            file=stdout,
        )
        if summary.facility_reports or summary.review_records or summary.facility_purged:  # a risk manager's
            print(
                f"Facility: {summary.facility_reports} report(s) fetched, {summary.review_records} review "
                f"record(s) sent or received, {summary.facility_purged} copy(ies) removed.",
                file=stdout,
            )
    if summary.remaining:
        return _fail(summary.problem or f"{summary.remaining} report(s) are still queued; run sync again.")
    if summary.problem:  # every report was sent; only the PSO's statuses could not be brought up to date
        print(f"pso-desktop: warning: {summary.problem}", file=sys.stderr)
    return EXIT_OK


def _agent(args: argparse.Namespace, workstation: Workstation, stdout: IO[str]) -> int:
    """The sealed outbox's agent: no profile, no secret (docs/sync.md)."""
    from pso_desktop.services.agent import Agent, AgentRound, run_once, spool_status

    if args.status:
        json.dump(spool_status(workstation.root, workstation.keys.policy), stdout, sort_keys=True)
        print(file=stdout)
        return EXIT_OK
    if args.once:
        outcome = run_once(workstation.root, workstation.keys)
        print(
            f"{outcome.sent} sealed report(s) delivered, {outcome.rejected} rejected; the spool is empty.",
            file=stdout,
        )
        return EXIT_OK
    agent = Agent(workstation.root, workstation.keys)

    def stop(signum: int, frame: object) -> None:
        agent.stop()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    said: list[str | None] = [None]

    def show(outcome: AgentRound) -> None:
        if outcome.sent or outcome.rejected:
            print(
                f"{outcome.sent} sealed report(s) delivered, {outcome.rejected} rejected.", file=stdout, flush=True
            )
        problem = outcome.problems[0] if outcome.problems else None
        if problem != said[0] and problem is not None:
            print(f"pso-desktop: {problem}", file=sys.stderr, flush=True)
        said[0] = problem

    agent.run_forever(on_round=show)
    return EXIT_OK


def _progress_fields(progress: Progress) -> dict[str, object]:
    fields: dict[str, object] = {
        "sent": progress.sent,
        "total": progress.total,
        "submitted": progress.submitted,
        "needs_attention": progress.needs_attention,
    }
    if progress.wait_seconds is not None:
        fields["wait_seconds"] = round(progress.wait_seconds, 3)
        fields["reason"] = progress.reason
    return fields


def _profile_name(args: argparse.Namespace, workstation: Workstation) -> str:
    if args.profile:  # the folder name, or the display name it was created with
        return paths.profile_folder_name(str(args.profile)) or str(args.profile)
    profiles = workstation.keys.list_profiles()
    if len(profiles) == 1:
        return profiles[0]
    if not profiles:
        raise CliFailure(
            "No profile exists yet; create one with 'pso-desktop profile create NAME --password-stdin'."
        )
    raise CliFailure("Several profiles exist; choose one with --profile NAME or PSO_DESKTOP_PROFILE.")


def _read_secret(args: argparse.Namespace, stdin: IO[str]) -> str:
    if args.password_stdin:
        line = stdin.readline()
        secret = line[:-1] if line.endswith("\n") else line
        if not secret:
            raise CliFailure("No secret on standard input; write the profile secret on the first line.")
        if any("\udc80" <= char <= "\udcff" for char in secret):
            # Bytes that are not UTF-8 (kept as surrogates by the stdin set-up in main) cannot be a secret.
            raise CliFailure("The secret on standard input is not UTF-8 text; write it as UTF-8.")
        return secret.rstrip("\r")
    if not sys.stdin.isatty():
        raise CliFailure(
            "No terminal to ask for the secret; pass --password-stdin and write it on standard input."
        )
    return getpass.getpass("Profile secret: ")


def _read_account_password(args: argparse.Namespace, stdin: IO[str]) -> str:
    """The PSO account's password: the line after the profile secret with --password-stdin."""
    if args.password_stdin:
        line = stdin.readline().rstrip("\n").rstrip("\r")
        if not line:
            raise CliFailure(
                "No account password on standard input; write the profile secret, then the account password, "
                "one per line."
            )
        return line
    if not sys.stdin.isatty():
        raise CliFailure("No terminal to ask for the password; pass --password-stdin.")
    return getpass.getpass("PSO account password: ")


def _read_new_secret(args: argparse.Namespace, stdin: IO[str]) -> str:
    if args.password_stdin or not sys.stdin.isatty():
        return _read_secret(args, stdin)
    first = getpass.getpass("New profile secret: ")
    if getpass.getpass("Repeat the secret: ") != first:
        raise CliFailure("The two secrets differ; nothing was created.")
    return first


def _read_input(file: str, stdin: IO[str]) -> bytes:
    if file == "-":
        return stdin.read().encode("utf-8", errors="surrogateescape")
    return read_user_file(Path(file))


def _launch_gui(args: argparse.Namespace) -> int:
    if args.demo:
        from pso_desktop.services.training import UNAVAILABLE, training_available

        if not training_available():  # said before any window opens: a plain install has no practice server
            raise CliFailure(UNAVAILABLE)
    try:
        from pso_desktop.ui.app import run
    except ImportError as exc:
        raise CliFailure(
            f"The desktop window cannot start here ({exc.__class__.__name__}); use the commands in "
            "'pso-desktop --help'."
        ) from None
    return run(demo=args.demo)


if __name__ == "__main__":
    sys.exit(main())
