"""The `cuewatch` command line (also `python -m monitor`)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from monitor._version import __version__
from monitor.errors import CuewatchError


def _settings(args: argparse.Namespace, **defaults: Any) -> Any:
    """Settings from defaults < env (CUEWATCH_*) < flags; a clear error for bad values."""
    from pydantic import ValidationError

    from monitor.settings import Settings

    overrides: dict[str, Any] = {k: v for k, v in vars(args).items() if k in Settings.model_fields and v is not None}
    for key, value in defaults.items():
        if key not in overrides and f"CUEWATCH_{key.upper()}" not in os.environ:
            overrides[key] = value
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise CuewatchError(
            "invalid settings:\n" + "\n".join(f"  {'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        ) from exc


_WORKER_DEFAULTS = {"port": 8081, "transport": "redis"}


def _settings_flags(parser: argparse.ArgumentParser, serve_defaults: bool = True) -> None:
    """One flag per setting (`--read-timeout-s` for `read_timeout_s`), its help from the model."""
    from typing import Literal, get_args, get_origin

    from monitor.routes import Route
    from monitor.settings import Settings, flag

    def route(text: str) -> Route:
        return Route.parse(text)

    group = parser.add_argument_group("settings (each is also an environment variable CUEWATCH_<NAME>; flags win)")
    for name, field in Settings.model_fields.items():
        kind, args = field.annotation, get_args(field.annotation)
        if type(None) in args:  # Optional[X] -> X
            kind = next(a for a in args if a is not type(None))
            args = get_args(kind)
        default = field.default if serve_defaults else _WORKER_DEFAULTS.get(name, field.default)
        shown = "hidden" if hasattr(default, "get_secret_value") else "none" if default in (None, []) else default
        description = str(field.description).replace("%", "%%")
        options: dict[str, Any] = {"dest": name, "default": None}
        options["help"] = f"{description} [env CUEWATCH_{name.upper()}; default: {shown}]"
        if kind is bool:
            options["action"] = argparse.BooleanOptionalAction
        elif get_origin(kind) is Literal:
            options["choices"] = list(args)
        repeated = get_origin(kind) is list and get_args(kind)[0] is Route  # --route A --route B
        if repeated:
            options.update(action="append", type=route, metavar="PATTERN=DIALECT[@UPSTREAM]")
        elif get_origin(kind) is list:
            options.update(nargs="+", type=get_args(kind)[0])
        elif kind in (int, float, Path):
            options["type"] = kind
        group.add_argument(flag(name.removesuffix("s") if repeated else name), **options)


def _serve(args: argparse.Namespace) -> int:
    from monitor import _serve as server
    from monitor.logs import configure_logging
    from proxy import create_app

    settings = _settings(args)
    configure_logging(settings.log_level, settings.log_format)
    app = create_app(settings)  # a bad policy file stops here with file:line: field: message
    server.run(app, settings.host, settings.port, settings.log_level)
    return 0


def _worker(args: argparse.Namespace) -> int:
    from monitor import _serve as server
    from monitor.logs import configure_logging
    from monitor.worker_app import WorkerApp

    settings = _settings(args, **_WORKER_DEFAULTS)
    configure_logging(settings.log_level, settings.log_format)
    app = WorkerApp(settings)  # a bad policy file stops here with file:line: field: message
    server.run(app, settings.host, settings.port, settings.log_level)
    return 0


def _sim(args: argparse.Namespace) -> int:
    from monitor import _serve as server
    from monitor.logs import configure_logging
    from monitor.sim import SimApp, load_profile

    profile = load_profile(args.profile)
    updates = {k: getattr(args, k) for k in ("latency_ms", "chunk_interval_ms") if getattr(args, k) is not None}
    if updates:
        profile = profile.model_copy(update=updates)
    configure_logging(args.log_level, "json")
    server.run(SimApp(profile, seed=args.seed), args.host, args.port, args.log_level)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from monitor.demo import run_demo

    return run_demo(profile=args.profile, requests=args.requests, workdir=args.workdir)


def _policy_check(args: argparse.Namespace) -> int:
    from monitor.errors import ConfigError
    from monitor.policy import load_policy, summary, unset_secrets

    failed = 0
    for path in args.files:
        try:
            policy = load_policy(path, unset_secrets_ok=True)
        except ConfigError as exc:
            failed += 1
            print(f"{path}: INVALID\n{exc}", file=sys.stderr)
            continue
        print(f"{path}: OK")
        for line in summary(policy):
            print(line)
        for warning in unset_secrets(policy):
            print(f"  warning: {warning} (needed where the policy runs)")
    return 2 if failed else 0


def _db(args: argparse.Namespace) -> Path:
    return Path(args.db) if args.db else Path(os.environ.get("CUEWATCH_LOG_DIR", "cuewatch-logs")) / "alerts.sqlite"


def _outbox(args: argparse.Namespace) -> Any:
    """The alert outbox: the shared one in Redis when CUEWATCH_TRANSPORT=redis (and no --db),
    else the SQLite file of a single process."""
    if not args.db and os.environ.get("CUEWATCH_TRANSPORT") == "redis":
        return _settings(argparse.Namespace()).alert_store()
    from monitor.plugins import STORES

    return STORES.create("sqlite", {"path": _db(args)})


def _alert_test(args: argparse.Namespace) -> int:
    import asyncio
    import time

    from monitor.alerts import AlertManager
    from monitor.logs import configure_logging
    from monitor.reload import PolicyHolder

    configure_logging("warning", "console")
    holder = PolicyHolder(args.policy)
    outbox = _outbox(args)

    async def go() -> int:
        manager = AlertManager(holder, outbox, tick_s=0.1)
        keys = await manager.send_test(args.route)
        deadline = time.monotonic() + args.timeout
        while time.monotonic() < deadline:
            await manager.deliver()
            rows = {r.idempotency_key: r for r in outbox.rows() if r.idempotency_key in keys}
            if all(r.status != "pending" for r in rows.values()):
                break
            await asyncio.sleep(0.2)
        await manager.close()
        failed = 0
        for key in keys:
            row = next(r for r in outbox.rows() if r.idempotency_key == key)
            print(
                f"{row.receiver}: {row.status} after {row.attempts} attempt(s)"
                + (f" - {row.last_error}" if row.last_error else "")
            )
            failed += row.status != "sent"
        return 1 if failed else 0

    try:
        return asyncio.run(go())
    finally:
        outbox.close()


def _alert_outbox(args: argparse.Namespace) -> int:
    outbox = _outbox(args)
    try:
        for status in ("pending", "dead"):
            rows = outbox.rows(status)
            print(f"{status}: {len(rows)}")
            for r in rows:
                n = len(r.payload.get("alerts", []))
                print(
                    f"  #{r.id} {r.receiver} key={r.idempotency_key} alerts={n} attempts={r.attempts}"
                    + (f" last_error={r.last_error}" if r.last_error else "")
                )
    finally:
        outbox.close()
    return 0


def _silence(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from monitor.policy import seconds

    outbox = _outbox(args)
    try:
        if args.silence_command == "add":
            matchers = dict(m.split("=", 1) for m in args.matcher)
            s = outbox.add_silence(matchers, seconds(args.duration), args.comment, os.environ.get("USER", ""))
            print(f"silence {s.id} until {datetime.fromtimestamp(s.ends, UTC).isoformat()}: {s.matchers}")
        elif args.silence_command == "list":
            for s in outbox.silences(include_expired=args.all):
                until = datetime.fromtimestamp(s.ends, UTC).isoformat()
                print(f"{s.id}  until {until}  {s.matchers}  {s.comment}")
        else:
            if not outbox.expire_silence(args.id):
                print(f"no active silence {args.id}", file=sys.stderr)
                return 1
            print(f"expired {args.id}")
    except ValueError as exc:
        raise CuewatchError(str(exc)) from exc
    finally:
        outbox.close()
    return 0


def _replay(args: argparse.Namespace) -> int:
    from datetime import datetime

    from monitor.logs import configure_logging
    from monitor.replay import replay

    configure_logging("warning", "console")

    def when(value: str | None) -> datetime | None:
        if value is None:
            return None
        try:
            return datetime.fromisoformat(value)
        except ValueError as exc:
            raise CuewatchError(
                f"--since/--until: expected an ISO time like 2026-11-23T09:00:00+00:00, got {value!r}"
            ) from exc

    from monitor.replay.fetch import localise

    args.logs = localise(args.logs)
    missing = [str(p) for p in args.logs if not p.exists()]
    if missing:
        raise CuewatchError(f"no such file or folder: {', '.join(missing)}")
    logs = list(args.logs)
    if args.resend:
        from monitor.replay.resend import resend

        if not (args.upstream and args.policy and args.model):
            raise CuewatchError("--resend needs --upstream URL, --policy FILE (its experiment) and --model NAME")
        fresh = resend(
            args.logs,
            args.policy,
            args.upstream,
            args.out,
            model=args.model,
            yes=args.yes,
            experiment=args.experiment,
            limit=args.limit,
            concurrency=args.concurrency,
            max_tokens=args.max_tokens,
            max_requests=args.max_requests,
            api_key_env=args.api_key_env,
            seed=args.seed,
        )
        if fresh is None:
            return 0
        logs = [fresh]
    report = replay(
        logs,
        args.policy,
        args.out,
        seed=args.seed,
        since=when(args.since),
        until=when(args.until),
        alerts=args.alerts,
    )
    bad = report["bad_lines"]
    print(
        f"{report['records']:,} records replayed; {bad['count']} bad line(s)"
        + "".join(f"\n  {b['path']}:{b['line']}: {b['error']}" for b in bad["examples"][:5])
    )
    for f in report["findings"]:
        print(f"  finding: {f['summary']}")
    print(f"{len(report['findings'])} finding(s), {len(report['alerts_would_fire'])} alert(s) would have fired")
    print(f"report: {args.out / 'report.json'} and {args.out / 'report.html'}")
    return 0


def _scan(args: argparse.Namespace) -> int:
    from monitor.scan import scan, settings_from_policy

    opts: dict[str, Any] = settings_from_policy(args.policy) if args.policy else {}
    if args.tier:
        opts["tier"] = args.tier
    for item in args.threshold or []:
        cat, _, value = item.partition("=")
        try:
            opts.setdefault("thresholds", {})[cat] = float(value)
        except ValueError as exc:
            raise CuewatchError(f"--threshold: expected CATEGORY=0.7, got {item!r}") from exc
    parts = tuple(p.strip() for p in args.detectors.split(",") if p.strip())
    judge = None
    if args.judge_url:
        from detectors.scratchpad.judge import Judge

        judge = Judge(args.judge_url, args.judge_model, dialect=args.judge_dialect, votes=args.judge_votes)
    counts = scan(
        args.file,
        sys.stdout,
        parts=parts,
        batch_size=args.batch_size,
        progress=None if args.quiet else sys.stderr,
        judge=judge,
        classifiers=args.classifiers,
        **opts,
    )
    if counts["errors"]:
        print(f"cuewatch scan: {counts['errors']} line(s) could not be read (see above)", file=sys.stderr)
        return 1
    return 0


def _report(args: argparse.Namespace) -> int:
    from monitor.replay import rebuild

    print(f"wrote {rebuild(args.run_dir, x=args.x)}")
    return 0


def _show(args: argparse.Namespace) -> int:
    from monitor.replay.fetch import localise
    from monitor.show import find, render

    try:
        args.log = localise(args.log)
        found = find(args.log, args.id)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not found:
        print(f"no exchange or finding with id {args.id!r} in {', '.join(map(str, args.log))}", file=sys.stderr)
        return 1
    for record in found:
        print(record.model_dump_json(indent=2) if args.json else render(record))
    return 0


def _evidence(args: argparse.Namespace) -> int:
    import os

    from monitor._serve import run
    from monitor.evidence.web import EvidencePages, EvidenceServer
    from monitor.logs import configure_logging

    token = os.environ.get("CUEWATCH_ADMIN_TOKEN") or None
    if args.admin_token_file is not None:
        token = args.admin_token_file.read_text(encoding="utf-8").strip() or None
    if token is None:
        print("error: set CUEWATCH_ADMIN_TOKEN (or --admin-token-file): the pages show prompts and answers",
              file=sys.stderr)  # fmt: skip
        return 2
    missing = [str(p) for p in args.log if not p.exists()]
    if missing:
        print(f"error: no such log folder or file: {', '.join(missing)}", file=sys.stderr)
        return 2
    configure_logging("info", "console")
    print(f"evidence pages for {', '.join(map(str, args.log))}: http://{args.host}:{args.port}/admin/findings",
          flush=True)  # fmt: skip
    run(EvidenceServer(EvidencePages(token, list(args.log), log_location=args.log_location)), args.host, args.port)
    return 0


def _version(_: argparse.Namespace) -> int:
    print(f"cuewatch {__version__}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cuewatch", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the proxy (settings also from CUEWATCH_* env vars)")
    _settings_flags(serve)
    serve.set_defaults(func=_serve)

    worker = sub.add_parser(
        "worker", help="run detectors and alerts over the Redis stream of every proxy replica (docs/deploy.md)"
    )
    _settings_flags(serve_defaults=False, parser=worker)
    worker.set_defaults(func=_worker)

    sim = sub.add_parser("sim", help="run the simulated upstream model API")
    sim.add_argument("--profile", default="honest", help="built-in profile name or a profile .yaml")
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=8090)
    sim.add_argument("--seed", type=int, help="RNG seed (default: the profile's)")
    sim.add_argument("--latency-ms", dest="latency_ms", type=float, help="delay before the response")
    sim.add_argument("--chunk-interval-ms", dest="chunk_interval_ms", type=float, help="delay between stream chunks")
    sim.add_argument("--log-level", dest="log_level", default="warning", choices=["debug", "info", "warning", "error"])
    sim.set_defaults(func=_sim)

    demo = sub.add_parser("demo", help="simulated model + proxy + traffic, end to end")
    demo.add_argument("--profile", default="alignment-faker")
    demo.add_argument("--requests", type=int, default=300)
    demo.add_argument("--workdir", type=Path, default=Path("cuewatch-demo"))
    demo.set_defaults(func=_demo)

    policy = sub.add_parser("policy", help="policy files")
    policy_sub = policy.add_subparsers(dest="policy_command", required=True)
    check = policy_sub.add_parser("check", help="validate policy files and summarise them")
    check.add_argument("files", nargs="+", type=Path)
    check.set_defaults(func=_policy_check)

    rp = sub.add_parser("replay", help="run logged traffic through the detectors and alert rules")
    rp.add_argument(
        "logs",
        nargs="+",
        help="traffic-log segments or folders, OpenAI Batch input+output, Anthropic batch requests+results; "
        "also URLs and object-store paths (https://, s3://, gs://: copied to ~/.cache/cuewatch/logs first)",
    )
    rp.add_argument("--policy", type=Path, help="policy whose detectors and alert rules to apply")
    rp.add_argument("--out", type=Path, default=Path("cuewatch-replay"), help="report folder")
    rp.add_argument("--seed", type=int, default=0)
    rp.add_argument("--since", help="ISO time: skip records before")
    rp.add_argument("--until", help="ISO time: skip records after")
    rp.add_argument(
        "--alerts",
        choices=["none", "log", "route"],
        default="log",
        help="log (default): alerts only logged, so a replay never pages anyone",
    )
    rs = rp.add_argument_group("resend (pre-deployment check): re-send logged prompts under every arm")
    rs.add_argument("--resend", action="store_true")
    rs.add_argument("--upstream", help="model API base URL to send to")
    rs.add_argument("--model", help="model name to request")
    rs.add_argument("--experiment", help="experiment of the policy to use (default: the first)")
    rs.add_argument("--limit", type=int, help="at most this many logged prompts")
    rs.add_argument("--concurrency", type=int, default=8)
    rs.add_argument("--max-tokens", dest="max_tokens", type=int, default=512, help="per response")
    rs.add_argument("--max-requests", dest="max_requests", type=int, help="refuse plans larger than this")
    rs.add_argument("--api-key-env", dest="api_key_env", help="environment variable holding the upstream key")
    rs.add_argument("--yes", action="store_true", help="send after printing the plan and its cost")
    rp.set_defaults(func=_replay)

    sc = sub.add_parser(
        "scan", help="score transcripts (JSON Lines): reasoning red flags, answers, harmful requests, refusals"
    )
    sc.add_argument(
        "file", type=Path, help="JSON Lines with id[, reasoning, prompt, response, choices, expected]; - for stdin"
    )
    sc.add_argument("--policy", type=Path, help="take tier, thresholds and categories from its scratchpad detector")
    sc.add_argument(
        "--detectors",
        default="scratchpad,answers,classify",
        help="comma list of: scratchpad (red flags), answers (parsing), classify (harmful request, refusal)",
    )
    sc.add_argument("--tier", choices=["lexical", "semantic", "combined"], help="default: combined")
    sc.add_argument(
        "--classifiers",
        choices=["hashed", "semantic"],
        default="hashed",
        help="harmful-request and refusal heads: hashed (the live default, fast) or semantic (hashed n-grams "
        "beside the embedding model: better on held-out sources, about 5-10 lines/s per CPU core)",
    )
    sc.add_argument("--threshold", action="append", metavar="CATEGORY=SCORE", help="flag threshold, repeatable")
    sc.add_argument("--batch-size", dest="batch_size", type=int, default=64)
    sc.add_argument("--quiet", action="store_true", help="no progress on stderr")
    jg = sc.add_argument_group("LLM judge (optional): votes from a model API on each category's criteria")
    jg.add_argument("--judge-url", dest="judge_url", help="OpenAI- or Anthropic-compatible base URL")
    jg.add_argument("--judge-model", dest="judge_model", default="judge", help="model name to request")
    jg.add_argument("--judge-dialect", dest="judge_dialect", choices=["openai", "anthropic"], default="openai")
    jg.add_argument("--judge-votes", dest="judge_votes", type=int, default=5, help="samples per text and category")
    sc.set_defaults(func=_scan)

    report = sub.add_parser("report", help="rebuild report.html from a replay's report.json")
    report.add_argument("run_dir", type=Path)
    report.add_argument(
        "--x", choices=["time", "records"], default="time", help="x axis of the charts (default: time, UTC)"
    )
    report.set_defaults(func=_report)

    show = sub.add_parser("show", help="print one exchange or finding from a traffic log")
    show.add_argument("id", help="the exchange's or finding's id (or a prefix of at least 6 characters)")
    show.add_argument(
        "--log", nargs="+", default=["cuewatch-logs"], help="log folders or segment files, or URLs (as replay)"
    )
    show.add_argument("--json", action="store_true", help="the record as stored")
    show.set_defaults(func=_show)

    ev = sub.add_parser("evidence", help="serve the evidence pages over traffic logs (token: CUEWATCH_ADMIN_TOKEN)")
    ev.add_argument("--log", type=Path, nargs="+", default=[Path("cuewatch-logs")], help="log folders or segment files")
    ev.add_argument("--host", default="127.0.0.1")
    ev.add_argument("--port", type=int, default=8090)
    ev.add_argument("--admin-token-file", dest="admin_token_file", type=Path, help="file holding the admin token")
    ev.add_argument("--log-location", dest="log_location", help="the log's location as shown in commands")
    ev.set_defaults(func=_evidence)

    alert = sub.add_parser("alert", help="alert delivery")
    alert_sub = alert.add_subparsers(dest="alert_command", required=True)
    test = alert_sub.add_parser("test", help="send a clearly marked test alert through the policy's routes")
    test.add_argument("--policy", type=Path, required=True)
    test.add_argument("--route", help="send to this receiver only")
    test.add_argument("--db", help="outbox database (default: $CUEWATCH_LOG_DIR/alerts.sqlite)")
    test.add_argument("--timeout", type=float, default=60.0)
    test.set_defaults(func=_alert_test)
    box = alert_sub.add_parser("outbox", help="show pending and dead-lettered notifications")
    box.add_argument("--db")
    box.set_defaults(func=_alert_outbox)

    silence = sub.add_parser("silence", help="mute alerts matching labels for a while")
    silence_sub = silence.add_subparsers(dest="silence_command", required=True)
    add = silence_sub.add_parser("add")
    add.add_argument("--matcher", action="append", required=True, help="label=value (repeatable)")
    add.add_argument("--duration", default="2h")
    add.add_argument("--comment", default="")
    add.add_argument("--db")
    lst = silence_sub.add_parser("list")
    lst.add_argument("--all", action="store_true", help="include expired silences")
    lst.add_argument("--db")
    exp = silence_sub.add_parser("expire")
    exp.add_argument("id")
    exp.add_argument("--db")
    for p in (add, lst, exp):
        p.set_defaults(func=_silence)

    version = sub.add_parser("version", help="print the version")
    version.set_defaults(func=_version)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except CuewatchError as exc:
        print(f"cuewatch: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
