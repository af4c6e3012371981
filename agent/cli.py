"""Command line: the only place that wires collectors, configures logging and picks exit codes.

Exit codes follow the Nagios plugin convention: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (bad
arguments, bad config, missing credentials, IMDS or EC2 unreachable). A failure never prints a
traceback unless ``--debug`` asks for one.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import TYPE_CHECKING, Callable, NoReturn, Sequence

from s3_route_agent import __version__
from s3_route_agent.engine.model import Expect, Status
from s3_route_agent.errors import AgentError

if TYPE_CHECKING:
    from s3_route_agent.wiring import Wiring

logger = logging.getLogger(__name__)

PROG = "s3-route-agent"


class _Parser(argparse.ArgumentParser):
    """argparse, but bad arguments exit 3 (UNKNOWN), not 2 (which means CRITICAL here)."""

    def error(self, message: str) -> NoReturn:
        """Print usage and a one-line reason; exit UNKNOWN."""
        self.print_usage(sys.stderr)
        self.exit(int(Status.UNKNOWN), f"{PROG}: UNKNOWN: {message}\n")


def configure_logging(level: str, aws_debug: bool = False) -> None:
    """Logs go to stderr, one line each, redacted; botocore stays at WARNING unless asked."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"{PROG}: %(levelname)s: %(message)s"))
    root = logging.getLogger()
    # Redact on the handler: handler filters also see records propagated from botocore/urllib3.
    from s3_route_agent.redact import install as install_redaction
    install_redaction(handler)
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("botocore", "boto3", "urllib3", "s3transfer", "werkzeug"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if aws_debug else logging.WARNING)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = _Parser(prog=PROG, description="Prove which network path S3 traffic takes from "
                     "this host: gateway endpoint, interface endpoint, or public.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.add_argument("--log-level", default="WARNING",
                        choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="stderr log level")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    parser.add_argument("--aws-debug", action="store_true",
                        help="log botocore/urllib3 at DEBUG too (signatures and keys redacted)")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    check = sub.add_parser("check", help="check every target once and report (exit = status)")
    check.add_argument("--config", "-c", required=True, help="YAML config file")
    check.add_argument("--format", choices=["json", "text"], default="text")
    check.add_argument("--refresh", action="store_true",
                       help="ignore the cached EC2 inventory and fetch it again")
    check.add_argument("--report-file", metavar="PATH",
                       help="also write the JSON report to PATH (replaced atomically), whatever "
                            "--format prints")
    check.set_defaults(handler=_cmd_check)

    validate = sub.add_parser("validate-config", help="validate a config file and exit")
    validate.add_argument("file")
    validate.set_defaults(handler=_cmd_validate)

    demo = sub.add_parser("demo", help="run the agent against the built-in local environment")
    demo.add_argument("--format", choices=["json", "text"], default="text")
    demo.set_defaults(handler=_cmd_demo)

    run = sub.add_parser("run", help="run as a service: one check per interval, reports to the "
                         "configured sinks, systemd notify and watchdog (exit 78 on a bad config)")
    run.add_argument("--config", "-c", required=True, help="YAML config file")
    run.add_argument("--max-cycles", type=int, default=None,
                     help="stop (exit 0) after this many cycles (tests, benchmarks)")
    run.set_defaults(handler=_cmd_run)

    presign = sub.add_parser("presign", help="audit presigned URLs made on this host: host form, "
                             "signature, path (exit = status)")
    presign.add_argument("--config", "-c", required=True, help="YAML config file")
    presign.add_argument("--bucket", required=True)
    presign.add_argument("--key", required=True)
    presign.add_argument("--region", help="the bucket's region (default: this host's region)")
    presign_via = presign.add_mutually_exclusive_group()
    presign_via.add_argument("--endpoint-url", help="endpoint URL the application passes to boto3")
    presign_via.add_argument("--vpce-id", help="S3 interface endpoint the URLs should use")
    presign.add_argument("--format", choices=["json", "text"], default="text")
    presign.set_defaults(handler=_cmd_presign)

    explain = sub.add_parser("explain", help="walk through one hostname's path: identity, routes, "
                             "endpoints, DNS, verdict and what to change (exit = status)")
    explain.add_argument("host")
    explain.add_argument("--config", "-c", required=True, help="YAML config file")
    explain.add_argument("--expect", choices=[e.value for e in Expect],
                         help="expected path (default: the config's default_expect)")
    explain.add_argument("--bucket", help="bucket the name serves (default: from the name)")
    explain.add_argument("--format", choices=["json", "text"], default="text")
    explain.set_defaults(handler=_cmd_explain)

    observe = sub.add_parser("observe", help="the host's live S3 connections by path, process "
                             "and bytes: a top-like view on a TTY, one JSON snapshot otherwise")
    observe.add_argument("--config", "-c", required=True, help="YAML config file")
    observe.add_argument("--interval", type=float, default=2.0,
                         help="seconds between refreshes of the view (default 2)")
    observe.add_argument("--count", type=int, default=None,
                         help="stop after this many refreshes (default: until Ctrl-C)")
    observe.set_defaults(handler=_cmd_observe)

    oracle = sub.add_parser("oracle-policy", help="print the path-oracle bucket policy for a "
                            "dedicated canary bucket")
    oracle.add_argument("--bucket", required=True)
    oracle.add_argument("--vpce", required=True, action="append",
                        help="VPC endpoint id (repeat for several endpoints)")
    oracle.add_argument("--prefix", default="oracle/")
    oracle.add_argument("--principal", help="optional IAM principal ARN granted the reads")
    oracle.set_defaults(handler=_cmd_oracle_policy)
    return parser


def _cmd_validate(args: argparse.Namespace, wiring: Wiring) -> int:
    from s3_route_agent.config import load_config
    config = load_config(args.file)
    print(f"{args.file}: valid ({len(config.targets)} target(s), {len(config.buckets)} bucket(s))")
    return int(Status.OK)


def _cmd_check(args: argparse.Namespace, wiring: Wiring) -> int:
    import time

    from s3_route_agent.config import load_config
    from s3_route_agent.redact import redact
    from s3_route_agent.report.nagios import with_perfdata
    from s3_route_agent.report.text import render_text
    from s3_route_agent.runs.check import run_check, with_flow_logs
    from s3_route_agent.statefile import replace_file

    config = load_config(args.config)
    started = time.time()
    result = run_check(config, wiring.check_deps(config), force_refresh=args.refresh)
    report = result.report
    # Flow logs (opt-in): the same step the daemon runs each cycle, so cron and timer one-shots
    # corroborate earlier runs too (the queue of pending queries lives in state_dir).
    flow_logs = wiring.flow_logs(config)
    if flow_logs is not None:
        ended = time.time()
        report = with_flow_logs(flow_logs, report, started, ended, ended)
    if args.report_file:
        replace_file(args.report_file, report.to_json() + "\n", mode=0o640)
    if args.format == "json":
        print(report.to_json())
    else:
        print(redact(with_perfdata(render_text(report), report)))
    if result.status is not Status.OK:
        print(f"{PROG}: {redact(report.summary)}", file=sys.stderr)
    return int(result.status)


def _cmd_presign(args: argparse.Namespace, wiring: Wiring) -> int:
    from s3_route_agent.config import load_config
    from s3_route_agent.runs.presign import render_presign_text, run_presign_audit
    from s3_route_agent.redact import redact_obj
    from s3_route_agent.report.document import render_json

    config = load_config(args.config)
    audit = run_presign_audit(config, wiring.check_deps(config), args.bucket, args.key,
                              region=args.region, endpoint_url=args.endpoint_url,
                              vpce_id=args.vpce_id)
    # The audit embeds the check report (its redacted document); "urls" are already redacted,
    # with presign's documented REDACTED.
    report = {k: v if k == "urls" else redact_obj(v) for k, v in audit.report.items()}
    print(render_json(report) if args.format == "json" else render_presign_text(report))
    if audit.status is not Status.OK:
        print(f"{PROG}: {report['summary']}", file=sys.stderr)
    return int(audit.status)


def _cmd_explain(args: argparse.Namespace, wiring: Wiring) -> int:
    from s3_route_agent.config import load_config
    from s3_route_agent.runs.explain import explain_host, render_explanation
    from s3_route_agent.redact import redact, redact_obj
    from s3_route_agent.report.document import render_json

    config = load_config(args.config)
    # The same wiring as check: bucket facts come from its collector.
    explanation = explain_host(config, wiring.check_deps(config), args.host,
                               Expect(args.expect) if args.expect else None, args.bucket)
    # Redacted as check's stdout is (the explanation embeds the check report).
    print(render_json(redact_obj(explanation.to_dict())) if args.format == "json"
          else redact(render_explanation(explanation)))
    if explanation.status is not Status.OK:
        summary = explanation.check.report.summary or explanation.status.name
        print(f"{PROG}: {redact(summary)}", file=sys.stderr)
    return int(explanation.status)


def _cmd_observe(args: argparse.Namespace, wiring: Wiring) -> int:
    from s3_route_agent.config import load_config
    from s3_route_agent.runs.observe import run_observe

    if not args.interval > 0 or (args.count is not None and args.count < 1):
        raise AgentError("invalid_argument", "--interval must be above 0 and --count at least 1")
    config = load_config(args.config)
    return run_observe(config, wiring.check_deps(config), args.interval, args.count)


def _cmd_oracle_policy(args: argparse.Namespace, wiring: Wiring) -> int:
    from s3_route_agent.engine.oracle import render_oracle_policy
    try:
        print(render_oracle_policy(args.bucket, args.vpce, args.prefix, args.principal))
    except ValueError as exc:
        print(f"{PROG}: UNKNOWN: {exc}", file=sys.stderr)
        return int(Status.UNKNOWN)
    return int(Status.OK)


def _cmd_run(args: argparse.Namespace, wiring: Wiring) -> int:
    from s3_route_agent.runs.daemon import Daemon
    return Daemon(args.config, max_cycles=args.max_cycles, deps_factory=wiring.check_deps,
                  sinks_factory=wiring.report_sinks,
                  flowlogs_factory=wiring.flow_logs).run()


def _cmd_demo(args: argparse.Namespace, wiring: Wiring) -> int:
    from s3_route_agent.devenv.localenv.demo import run_demo
    return run_demo(args.format, out=sys.stdout)


def main(argv: Sequence[str] | None = None, wiring: Wiring | None = None) -> int:
    """Entry point of the ``s3-route-agent`` console script and ``python -m s3_route_agent``.

    ``wiring`` builds the collectors, sinks and flow-log step (default: the standard
    :class:`~s3_route_agent.wiring.Wiring`)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.log_level, args.aws_debug)
    handler: Callable[[argparse.Namespace, Wiring], int] = args.handler
    from s3_route_agent.redact import redact
    if wiring is None:
        from s3_route_agent.wiring import Wiring
        wiring = Wiring()
    try:
        return handler(args, wiring)
    except AgentError as exc:
        print(redact(f"{PROG}: UNKNOWN: {exc.message}"), file=sys.stderr)
        return int(Status.UNKNOWN)
    except KeyboardInterrupt:
        print(f"{PROG}: UNKNOWN: interrupted", file=sys.stderr)
        return int(Status.UNKNOWN)
    except Exception as exc:  # noqa: BLE001 - last line of defence: one line, no traceback
        if args.debug:
            raise
        detail = " ".join(str(exc).split())
        print(redact(f"{PROG}: UNKNOWN: internal error: {type(exc).__name__}: {detail}"),
              file=sys.stderr)
        return int(Status.UNKNOWN)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
