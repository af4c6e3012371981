"""Command line: the only place that wires collectors, configures logging and picks exit codes.

Exit codes follow the Nagios plugin convention: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (bad
arguments, bad config, missing credentials, IMDS or EC2 unreachable). A failure never prints a
traceback unless ``--debug`` asks for one.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import TYPE_CHECKING, Any, Callable, NoReturn, Sequence

from s3_route_agent import __version__
from s3_route_agent.engine.kinds import Expect, Status
from s3_route_agent.errors import AgentError

if TYPE_CHECKING:
    from s3_route_agent.wiring import Wiring

logger = logging.getLogger(__name__)

PROG = "s3-route-agent"


class ArgumentProblem(Exception):
    """Bad command-line arguments: ``main`` prints the plugin line and exits 3 (UNKNOWN)."""

    def __init__(self, message: str, usage: str) -> None:
        """Keep the one-line reason and the usage of the (sub)command that refused it."""
        super().__init__(message)
        self.message = message
        self.usage = usage


class _HelpFormatter(argparse.HelpFormatter):
    """Descriptions wrapped, example lines (indented) as written; each option's default after
    its help."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        import textwrap
        out = []
        for line in text.splitlines():
            out.append(indent + line if line.startswith("  ") or not line else textwrap.fill(
                line, width, initial_indent=indent, subsequent_indent=indent))
        return "\n".join(out)

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if ("%(default)" in text or "default:" in text or default in (None, False, [])
                or default is argparse.SUPPRESS or not action.option_strings):
            return text
        return f"{text} (default: %(default)s)"


class _Parser(argparse.ArgumentParser):
    """argparse, but bad arguments exit 3 (UNKNOWN), not 2 (which means CRITICAL here), and
    print the plugin line on stdout like every other failure (``main``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """An ArgumentParser with this CLI's help formatter."""
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        """Refuse the arguments: ``main`` reports the reason (exit UNKNOWN)."""
        raise ArgumentProblem(message, self.format_usage())


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


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
CONFIG_HELP = ("YAML config file (default: $S3_ROUTE_AGENT_CONFIG, else "
               "/etc/s3-route-agent/config.yaml if it exists, else the built-in defaults)")


def _log_level(text: str) -> str:
    """``--log-level`` in any case (``info``, ``Info``)."""
    level = text.upper()
    if level not in LOG_LEVELS:
        raise argparse.ArgumentTypeError(f"invalid choice: {text!r} (choose from "
                                         f"{', '.join(LOG_LEVELS)}, any case)")
    return level


def _add_global_options(parser: argparse.ArgumentParser, top: bool) -> None:
    """The options every command takes, before or after its name. Below a subcommand their
    default is SUPPRESS, so an option given before the subcommand is not reset by it."""
    def default(value: Any) -> Any:
        return value if top else argparse.SUPPRESS
    group = parser.add_argument_group("global options (before or after the command)")
    group.add_argument("--log-level", type=_log_level, default=default(None), metavar="LEVEL",
                       help="stderr log level: debug, info, warning, error, any case (default: "
                            "warning; info for run)")
    group.add_argument("--debug", action="store_true", default=default(False),
                       help="show tracebacks of internal errors")
    group.add_argument("--aws-debug", action="store_true", default=default(False),
                       help="log botocore/urllib3 at DEBUG too (signatures and keys redacted)")
    group.add_argument("-v", "--verbose", action="store_true", default=default(False),
                       help="text output: evidence of every target, not only those not OK")


def _example(*lines: str) -> str:
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = _Parser(prog=PROG, description="Prove which network path S3 traffic takes from "
                     "this host: gateway endpoint, interface endpoint, or public.",
                     epilog="exit status: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (the Nagios "
                            "plugin convention).\n" + _example(
                                f"{PROG} check", f"{PROG} explain s3.amazonaws.com",
                                f"{PROG} init && {PROG} validate-config"))
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    _add_global_options(parser, top=True)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser,
                                metavar="COMMAND")

    def command(name: str, summary: str, description: str, *examples: str) -> argparse.ArgumentParser:
        cmd = sub.add_parser(name, help=summary, description=description,
                             epilog=_example(*examples))
        _add_global_options(cmd, top=False)
        return cmd

    def config_option(cmd: argparse.ArgumentParser) -> None:
        cmd.add_argument("--config", "-c", metavar="FILE", help=CONFIG_HELP)

    def format_option(cmd: argparse.ArgumentParser) -> None:
        cmd.add_argument("--format", choices=["json", "text"], default="text",
                         help="text for people (a Nagios plugin's output), json for machines")

    check = command(
        "check", "check every target once and report (exit = status)",
        "Check every target once: resolve it, find the route each address takes, and print the "
        "report. Text output is a Nagios plugin's: the first line is 'S3ROUTE STATUS - "
        "summary | perfdata', then the details. JSON output is one document (its schema is "
        "agent/report/report.schema.json). The exit status is the report's status.",
        f"{PROG} check", f"{PROG} check --format json >> reports.jsonl",
        f"{PROG} check --config /etc/s3-route-agent/config.yaml -v")
    config_option(check)
    format_option(check)
    check.add_argument("--refresh", action="store_true",
                       help="ignore the cached EC2 inventory and fetch it again")
    check.add_argument("--report-file", metavar="PATH",
                       help="also write the JSON report to PATH (replaced atomically), whatever "
                            "--format prints")
    check.set_defaults(handler=_cmd_check)

    validate = command(
        "validate-config", "validate a config file and print the targets check would use",
        "Validate the config (every key, type and limit; errors name the key and line) and "
        "print the targets check would use: the configured ones, else the defaults and the "
        "names this host was seen using.",
        f"{PROG} validate-config", f"{PROG} validate-config /etc/s3-route-agent/config.yaml")
    validate.add_argument("file", nargs="?", metavar="FILE", help=CONFIG_HELP)
    config_option(validate)
    validate.set_defaults(handler=_cmd_validate)

    init = command(
        "init", "write a commented config for this host",
        "Write a commented config for this host, from instance metadata (IMDSv2) when it "
        "answers. An existing file is not replaced without --force.",
        f"sudo {PROG} init", f"{PROG} init --output ./config.yaml --force",
        f"{PROG} init --output -")
    init.add_argument("--output", "-o", metavar="PATH",
                      help="where to write it, - for stdout (default: $S3_ROUTE_AGENT_CONFIG, "
                           "else /etc/s3-route-agent/config.yaml)")
    init.add_argument("--force", action="store_true", help="replace an existing file")
    init.set_defaults(handler=_cmd_init)

    demo = command("demo", "run the agent against the built-in local environment",
                   "Start the local environment (moto, a DNS server and an IMDSv2 emulator on "
                   "127.0.0.1), run check against it and print the report. No AWS account.",
                   f"{PROG} demo", f"{PROG} demo --format json")
    format_option(demo)
    demo.set_defaults(handler=_cmd_demo)

    run = command(
        "run", "run as a service: one check per interval, reports to the configured sinks, "
        "systemd notify and watchdog (exit 78 on a bad config)",
        "Run as a service: one check per daemon.interval_seconds at a stable per-host offset "
        "under daemon.jitter_seconds, every report to the sinks under outputs; systemd "
        "notify, watchdog and reload (SIGHUP). A config that cannot be loaded at start exits "
        "78. Logs at info unless --log-level says otherwise.",
        f"{PROG} run", f"{PROG} run --config ./config.yaml --max-cycles 1")
    config_option(run)
    run.add_argument("--max-cycles", type=int, default=None, metavar="N",
                     help="stop (exit 0) after this many cycles (tests, benchmarks)")
    run.set_defaults(handler=_cmd_run)

    presign = command(
        "presign", "audit presigned URLs made on this host: host form, signature, path "
        "(exit = status)",
        "Presign a GET of BUCKET/KEY the way boto3 does on this host and judge each URL: its "
        "host form, signature version and the path its host takes.",
        f"{PROG} presign --bucket my-bucket --key some/key",
        f"{PROG} presign --bucket my-bucket --key k --vpce-id vpce-0123456789abcdef0")
    config_option(presign)
    presign.add_argument("--bucket", required=True)
    presign.add_argument("--key", required=True)
    presign.add_argument("--region", help="the bucket's region (default: this host's region)")
    presign_via = presign.add_mutually_exclusive_group()
    presign_via.add_argument("--endpoint-url", help="endpoint URL the application passes to boto3")
    presign_via.add_argument("--vpce-id", help="S3 interface endpoint the URLs should use")
    format_option(presign)
    presign.set_defaults(handler=_cmd_presign)

    explain = command(
        "explain", "walk through one hostname's path: identity, routes, endpoints, DNS, "
        "verdict and what to change (exit = status)",
        "Walk through the path of one hostname or IP address: who this host is, its route "
        "table, the VPC's S3 endpoints, what DNS answered (an address is judged as is, with "
        "no DNS query), the winning route per address, the verdict and what to change.",
        f"{PROG} explain s3.amazonaws.com", f"{PROG} explain my-bucket.s3.eu-west-1.amazonaws.com",
        f"{PROG} explain 10.0.2.50 --expect interface")
    explain.add_argument("host", help="hostname or IP address")
    config_option(explain)
    explain.add_argument("--expect", choices=[e.value for e in Expect],
                         help="expected path (default: the config's default_expect)")
    explain.add_argument("--bucket", help="bucket the name serves (default: from the name)")
    format_option(explain)
    explain.set_defaults(handler=_cmd_explain)

    observe = command(
        "observe", "the host's live S3 connections by path, process and bytes: a top-like "
        "view on a TTY, one JSON snapshot otherwise",
        "Show the host's live TCP connections to S3, judged like targets: path, process and "
        "bytes. A top-like view on a terminal; one JSON snapshot when stdout is not one.",
        f"{PROG} observe", f"{PROG} observe --count 1 > snapshot.json")
    config_option(observe)
    observe.add_argument("--interval", type=float, default=2.0, metavar="SECONDS",
                         help="seconds between refreshes of the view")
    observe.add_argument("--count", type=int, default=None, metavar="N",
                         help="stop after this many refreshes (default: until Ctrl-C)")
    observe.set_defaults(handler=_cmd_observe)

    oracle = command(
        "oracle-policy", "print the path-oracle bucket policy for a dedicated canary bucket",
        "Print the bucket policy that makes S3 itself say which path a request took (the "
        "path oracle, oracle.bucket): apply it to a dedicated bucket only.",
        f"{PROG} oracle-policy --bucket my-oracle --vpce-id vpce-0123456789abcdef0")
    oracle.add_argument("--bucket", required=True)
    oracle.add_argument("--vpce-id", required=True, action="append",
                        help="VPC endpoint id (repeat for several endpoints)")
    oracle.add_argument("--prefix", default="oracle/", help="key prefix of the oracle objects")
    oracle.add_argument("--principal", help="optional IAM principal ARN granted the reads")
    oracle.set_defaults(handler=_cmd_oracle_policy)

    completion = command(
        "completion", "print a shell completion script",
        "Print a completion script for SHELL, generated from this parser.",
        f"source <({PROG} completion bash)",
        f"{PROG} completion bash > /etc/bash_completion.d/{PROG}")
    completion.add_argument("shell", choices=["bash"], help="the shell")
    completion.set_defaults(handler=_cmd_completion)

    man = command("man", "print the manual page (roff), generated from this parser",
                  "Print the manual page in roff, generated from this parser.",
                  f"{PROG} man | man -l -", f"{PROG} man > /usr/share/man/man1/{PROG}.1")
    man.set_defaults(handler=_cmd_man)

    iam = command(
        "iam-policy", "print the least-privilege IAM policy for what a config makes the agent "
        "call (or the CloudWatch agent's, for its config)",
        "Print the identity policy granting exactly the AWS calls this config makes the agent "
        "make: the EC2 inventory, the bucket facts of every configured bucket, canaries and "
        "the oracle only with test transfers, the flow-log query and the report log group "
        "only when enabled. With --cloudwatch-agent FILE, the CloudWatch agent's own policy "
        "for the log groups (and retention) that agent config names.",
        f"{PROG} iam-policy --config /etc/s3-route-agent/config.yaml > policy.json",
        f"{PROG} iam-policy --cloudwatch-agent amazon-cloudwatch-agent.json")
    config_option(iam)
    iam.add_argument("--cloudwatch-agent", metavar="FILE",
                     help="CloudWatch agent config (JSON): print that agent's policy instead")
    iam.set_defaults(handler=_cmd_iam_policy)
    return parser


def emit(text: str) -> None:
    """Print ``text`` on stdout and flush it. A reader that went away (``... | head``) ends the
    output quietly: stdout is pointed at /dev/null and the command goes on to its exit status."""
    try:
        print(text, flush=True)
    except BrokenPipeError:
        _drop_stdout()


def _drop_stdout() -> None:
    """Point stdout at /dev/null (Python's documented answer to SIGPIPE: the interpreter would
    otherwise fail again flushing it at exit)."""
    import os
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout without a descriptor (tests' StringIO)
        pass


def use_colour(stream: Any, environ: dict[str, str] | None = None) -> bool:
    """Colour on a terminal only, and never when NO_COLOR is set to anything (no-color.org)
    or TERM is dumb."""
    import os
    env = os.environ if environ is None else environ
    if env.get("NO_COLOR") or env.get("TERM") == "dumb":
        return False
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


TEXT_WIDTH = 80


def _cmd_validate(args: argparse.Namespace, wiring: Wiring) -> int:
    from s3_route_agent.config import load_effective_config, locate_config
    from s3_route_agent.runs.targets import check_targets

    if args.file and args.config and args.file != args.config:
        raise AgentError("invalid_argument", "give the config file once (FILE or --config)")
    where = locate_config(args.file or args.config)
    config = load_effective_config(args.file or args.config)
    region, region_source = wiring.region_for(config)
    targets = check_targets(config, region or "{region}", wiring.observed_state(config))
    lines = [f"{where.path or where.how}: valid ({where.how}; {len(targets)} target(s), "
             f"{len(config.buckets)} bucket(s))",
             f"region {region} (from {region_source})" if region else
             "region unknown: set aws.region or AWS_REGION, or run on EC2 (IMDS); targets "
             "below keep {region}"]
    if targets:
        name_w = max(len(t.name) for t in targets)
        host_w = max(len(t.host) for t in targets)
        lines.append("targets check would use (origin: config, default or observed):")
        for t in targets:
            lines.append(f"  {t.name:<{name_w}}  {t.host:<{host_w}}  expect {t.expect.value:<9} "
                         f"{t.origin}")
    emit("\n".join(lines))
    return int(Status.OK)


def _cmd_init(args: argparse.Namespace, wiring: Wiring) -> int:
    import os

    from s3_route_agent.config import CONFIG_ENV, DEFAULT_CONFIG_PATH
    from s3_route_agent.runs.init_config import (gather_host_facts, render_init_config,
                                                 write_init_config)

    path = args.output or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG_PATH
    if path != "-" and os.path.lexists(path) and not args.force:
        raise AgentError("invalid_argument", f"{path} exists; not replaced (--force replaces it)")
    facts = gather_host_facts(wiring.imds_identity())
    write_init_config(path, render_init_config(facts), force=args.force)
    if path != "-":
        where = (f"for {facts.identity.instance_id or 'this host'} in {facts.identity.region}"
                 if facts.identity else f"without instance metadata ({facts.problem})")
        emit(f"wrote {path} {where}; next: {PROG} validate-config"
             + ("" if path == DEFAULT_CONFIG_PATH else f" {path}"))
    return int(Status.OK)


def _cmd_check(args: argparse.Namespace, wiring: Wiring) -> int:
    import time

    from s3_route_agent.config import load_effective_config
    from s3_route_agent.redact import redact
    from s3_route_agent.runs.check import run_check, with_flow_logs
    from s3_route_agent.statefile import replace_file

    config = load_effective_config(args.config)
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
        emit(report.to_json())
    else:
        from s3_route_agent.report.nagios import with_perfdata
        from s3_route_agent.report.text import render_text
        text = render_text(report, verbose=args.verbose, width=TEXT_WIDTH,
                           colour=use_colour(sys.stdout))
        emit(redact(with_perfdata(text, report)))
    if result.status is not Status.OK:
        print(f"{PROG}: {redact(report.summary)}", file=sys.stderr)
    return int(result.status)


def _cmd_presign(args: argparse.Namespace, wiring: Wiring) -> int:
    from s3_route_agent.config import load_effective_config
    from s3_route_agent.runs.presign import render_presign_text, run_presign_audit
    from s3_route_agent.redact import redact_obj
    from s3_route_agent.report.document import render_json

    config = load_effective_config(args.config)
    audit = run_presign_audit(config, wiring.check_deps(config), args.bucket, args.key,
                              region=args.region, endpoint_url=args.endpoint_url,
                              vpce_id=args.vpce_id)
    # The audit embeds the check report (its redacted document); "urls" are already redacted,
    # with presign's documented REDACTED.
    report = {k: v if k == "urls" else redact_obj(v) for k, v in audit.report.items()}
    emit(render_json(report) if args.format == "json" else render_presign_text(report))
    if audit.status is not Status.OK:
        print(f"{PROG}: {report['summary']}", file=sys.stderr)
    return int(audit.status)


def _cmd_explain(args: argparse.Namespace, wiring: Wiring) -> int:
    from s3_route_agent.config import load_effective_config
    from s3_route_agent.runs.explain import explain_host, render_explanation
    from s3_route_agent.redact import redact, redact_obj
    from s3_route_agent.report.document import render_json

    config = load_effective_config(args.config)
    # The same wiring as check: bucket facts come from its collector.
    explanation = explain_host(config, wiring.check_deps(config), args.host,
                               Expect(args.expect) if args.expect else None, args.bucket)
    # Redacted as check's stdout is (the explanation embeds the check report).
    emit(render_json(redact_obj(explanation.to_dict())) if args.format == "json"
         else redact(render_explanation(explanation, width=TEXT_WIDTH)))
    if explanation.status is not Status.OK:
        summary = explanation.check.report.summary or explanation.status.name
        print(f"{PROG}: {redact(summary)}", file=sys.stderr)
    return int(explanation.status)


def _cmd_observe(args: argparse.Namespace, wiring: Wiring) -> int:
    from s3_route_agent.config import load_effective_config
    from s3_route_agent.runs.observe import run_observe

    if not args.interval > 0 or (args.count is not None and args.count < 1):
        raise AgentError("invalid_argument", "--interval must be above 0 and --count at least 1")
    config = load_effective_config(args.config)
    # observe looks whatever observe.enabled says (that key is about check and the daemon);
    # the wiring builds the traffic collectors only for a config that observes.
    import dataclasses
    config = dataclasses.replace(config, observe=dataclasses.replace(config.observe, enabled=True))
    return run_observe(config, wiring.check_deps(config), args.interval, args.count)


def _cmd_oracle_policy(args: argparse.Namespace, wiring: Wiring | None) -> int:
    from s3_route_agent.engine.oracle import render_oracle_policy
    try:
        policy = render_oracle_policy(args.bucket, args.vpce_id, args.prefix, args.principal)
    except ValueError as exc:
        raise AgentError("invalid_argument", str(exc)) from None
    emit(policy)
    return int(Status.OK)


def _cmd_iam_policy(args: argparse.Namespace, wiring: Wiring) -> int:
    from s3_route_agent.config import load_effective_config
    from s3_route_agent.engine.least_privilege import render_policy
    from s3_route_agent.runs.iam_policy import policy_for_cloudwatch_agent, policy_for_config

    if args.config and args.cloudwatch_agent:
        raise AgentError("invalid_argument", "iam-policy takes --config FILE (the agent's "
                         "policy) or --cloudwatch-agent FILE (the CloudWatch agent's), not both")
    if args.cloudwatch_agent:
        emit(render_policy(policy_for_cloudwatch_agent(args.cloudwatch_agent)))
    else:
        emit(render_policy(policy_for_config(load_effective_config(args.config))))
    return int(Status.OK)


def _cmd_run(args: argparse.Namespace, wiring: Wiring) -> int:
    from s3_route_agent.runs.daemon import Daemon
    return Daemon(args.config, max_cycles=args.max_cycles, deps_factory=wiring.check_deps,
                  sinks_factory=wiring.report_sinks,
                  flowlogs_factory=wiring.flow_logs).run()


def _cmd_demo(args: argparse.Namespace, wiring: Wiring) -> int:
    from s3_route_agent.devenv.localenv.demo import run_demo
    return run_demo(args.format, out=sys.stdout)


def _cmd_completion(args: argparse.Namespace, wiring: Wiring) -> int:
    from s3_route_agent.clidoc import bash_completion
    emit(bash_completion(build_parser()))
    return int(Status.OK)


def _cmd_man(args: argparse.Namespace, wiring: Wiring) -> int:
    from s3_route_agent.clidoc import man_page
    emit(man_page(build_parser()))
    return int(Status.OK)


def _wants_json(argv: Sequence[str]) -> bool:
    """``--format json`` among raw arguments (used when they could not be parsed)."""
    args = list(argv)
    return "--format=json" in args or any(
        a == "--format" and b == "json" for a, b in zip(args, args[1:]))


def fail(reason: str, json_output: bool, command: str | None) -> int:
    """A run that could not check: the one-line reason on stderr and, on stdout, the plugin
    line ``S3ROUTE UNKNOWN - reason`` (text) or a schema-valid UNKNOWN report (JSON), so that
    Nagios and a ``>> reports.jsonl`` cron line always get a result. Returns 3."""
    from s3_route_agent.redact import redact
    reason = redact(" ".join(str(reason).split()))
    print(f"{PROG}: UNKNOWN: {reason}", file=sys.stderr)
    if command == "run":
        # The service's stdout is its report stream (outputs.stdout); systemd has the reason.
        return int(Status.UNKNOWN)
    if json_output:
        import time
        import uuid

        from s3_route_agent.report.document import unknown_report
        now = time.time()
        emit(unknown_report(reason, now, now, uuid.uuid4().hex).to_json())
    else:
        from s3_route_agent.report.nagios import plugin_line
        emit(plugin_line(Status.UNKNOWN, reason))
    return int(Status.UNKNOWN)


# Commands that run once and exit: nothing of theirs is left to finish at interpreter exit (no
# thread, no open sink, no atexit work), unlike run, observe and demo.
_ONE_SHOT = frozenset({"check", "validate-config", "explain", "presign", "oracle-policy",
                       "iam-policy"})
_command: list[str | None] = [None]     # the command main() parsed last (for the fast exit)


def _exit_now(code: int) -> NoReturn:
    """Flush stdout, stderr and the log handlers, then leave with ``os._exit``: the interpreter's
    teardown of every module and object it loaded (botocore's models) costs about 190 ms of CPU
    after a cold check, a quarter of the run, and changes nothing the command did."""
    import os
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass   # a closed pipe: nothing more can be written anyway
    logging.shutdown()
    os._exit(code)


def main(argv: Sequence[str] | None = None, wiring: Wiring | None = None) -> int:
    """Entry point of the ``s3-route-agent`` console script and ``python -m s3_route_agent``.

    Called without ``argv`` (the console script, ``python -m``), a one-shot command ends the
    process itself once its output is flushed (:func:`_exit_now`); with ``argv`` (tests) it
    returns the exit code.

    ``wiring`` builds the collectors, sinks and flow-log step (default: the standard
    :class:`~s3_route_agent.wiring.Wiring`)."""
    _command[0] = None
    code = _main(argv, wiring)
    if argv is None and _command[0] in _ONE_SHOT:
        _exit_now(code)
    return code


def _main(argv: Sequence[str] | None, wiring: Wiring | None) -> int:
    """:func:`main` without the fast exit."""
    raw = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(raw)
    except ArgumentProblem as exc:
        sys.stderr.write(exc.usage)
        return fail(exc.message, _wants_json(raw), None)
    _command[0] = args.command
    json_output = getattr(args, "format", None) == "json"
    level = args.log_level or ("INFO" if args.command == "run" else "WARNING")
    configure_logging(level, args.aws_debug)
    handler: Callable[[argparse.Namespace, Wiring], int] = args.handler
    if wiring is None:
        from s3_route_agent.wiring import Wiring
        wiring = Wiring()
    try:
        status = handler(args, wiring)
        sys.stdout.flush()
        return status
    except BrokenPipeError:
        # The reader went away (``| head``): nothing to say, nobody to say it to.
        _drop_stdout()
        return int(Status.UNKNOWN)
    except AgentError as exc:
        return fail(exc.message, json_output, args.command)
    except KeyboardInterrupt:
        return fail("interrupted", json_output, args.command)
    except Exception as exc:  # noqa: BLE001 - last line of defence: one line, no traceback
        if args.debug:
            raise
        detail = " ".join(str(exc).split())
        return fail(f"internal error: {type(exc).__name__}: {detail}", json_output,
                    args.command)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
