"""Command line: the only place that wires collectors, configures logging and picks exit codes.

Exit codes follow the Nagios plugin convention: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (bad
arguments, bad config, missing credentials, IMDS or EC2 unreachable). A failure never prints a
traceback unless ``--debug`` asks for one.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Callable, NoReturn, Sequence

from agent import __version__
from agent.errors import AgentError
from agent.model import Status

logger = logging.getLogger(__name__)

PROG = "s3-route-agent"


class _Parser(argparse.ArgumentParser):
    """argparse, but bad arguments exit 3 (UNKNOWN), not 2 (which means CRITICAL here)."""

    def error(self, message: str) -> NoReturn:
        """Print usage and a one-line reason; exit UNKNOWN."""
        self.print_usage(sys.stderr)
        self.exit(int(Status.UNKNOWN), f"{PROG}: UNKNOWN: {message}\n")


def configure_logging(level: str) -> None:
    """Logs go to stderr, one line each; botocore stays at WARNING unless asked."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"{PROG}: %(levelname)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("botocore", "boto3", "urllib3", "s3transfer", "werkzeug"):
        logging.getLogger(noisy).setLevel(logging.WARNING if level.upper() != "DEBUG-AWS"
                                          else logging.DEBUG)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = _Parser(prog=PROG, description="Prove which network path S3 traffic takes from "
                     "this host: gateway endpoint, interface endpoint, or public.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.add_argument("--log-level", default="WARNING",
                        choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="stderr log level")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    check = sub.add_parser("check", help="check every target once and report (exit = status)")
    check.add_argument("--config", "-c", required=True, help="YAML config file")
    check.add_argument("--format", choices=["json", "text"], default="text")
    check.add_argument("--refresh", action="store_true",
                       help="ignore the cached EC2 inventory and fetch it again")
    check.set_defaults(handler=_cmd_check)

    validate = sub.add_parser("validate-config", help="validate a config file and exit")
    validate.add_argument("file")
    validate.set_defaults(handler=_cmd_validate)

    demo = sub.add_parser("demo", help="run the agent against the built-in local environment")
    demo.add_argument("--format", choices=["json", "text"], default="text")
    demo.set_defaults(handler=_cmd_demo)

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
    return parser


def _cmd_validate(args: argparse.Namespace) -> int:
    from agent.config import load_config
    config = load_config(args.file)
    print(f"{args.file}: valid ({len(config.targets)} target(s), {len(config.buckets)} bucket(s))")
    return int(Status.OK)


def _cmd_check(args: argparse.Namespace) -> int:
    from agent.config import load_config
    from agent.report import render_json, render_text
    from agent.wiring import build_check_deps
    from agent.check import run_check

    config = load_config(args.config)
    result = run_check(config, build_check_deps(config), force_refresh=args.refresh)
    print(render_json(result.report) if args.format == "json" else render_text(result.report))
    if result.status is not Status.OK:
        print(f"{PROG}: {result.report['summary']}", file=sys.stderr)
    return int(result.status)


def _cmd_presign(args: argparse.Namespace) -> int:
    from agent.config import load_config
    from agent.presign import render_presign_text, run_presign_audit
    from agent.report import render_json
    from agent.wiring import build_check_deps

    config = load_config(args.config)
    audit = run_presign_audit(config, build_check_deps(config), args.bucket, args.key,
                              region=args.region, endpoint_url=args.endpoint_url,
                              vpce_id=args.vpce_id)
    print(render_json(audit.report) if args.format == "json"
          else render_presign_text(audit.report))
    if audit.status is not Status.OK:
        print(f"{PROG}: {audit.report['summary']}", file=sys.stderr)
    return int(audit.status)


def _cmd_demo(args: argparse.Namespace) -> int:
    from agent.localenv.demo import run_demo
    return run_demo(args.format, out=sys.stdout)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``s3-route-agent`` console script and ``python -m agent``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.log_level)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except AgentError as exc:
        print(f"{PROG}: UNKNOWN: {exc.message}", file=sys.stderr)
        return int(Status.UNKNOWN)
    except KeyboardInterrupt:
        print(f"{PROG}: UNKNOWN: interrupted", file=sys.stderr)
        return int(Status.UNKNOWN)
    except Exception as exc:  # noqa: BLE001 - last line of defence: one line, no traceback
        if args.debug:
            raise
        print(f"{PROG}: UNKNOWN: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return int(Status.UNKNOWN)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
