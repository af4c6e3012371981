"""The manual page (roff, man(7) macros) and the bash completion script, generated from the
argument parser so that neither can fall behind it (``s3-route-agent man``, ``s3-route-agent
completion bash``, ``make cli-docs``). Part of the CLI layer."""

from __future__ import annotations

import argparse
import datetime as _dt
import logging
import shlex

from s3_route_agent import __version__

logger = logging.getLogger(__name__)

PROG = "s3-route-agent"


def subcommands(parser: argparse.ArgumentParser) -> dict[str, tuple[str, argparse.ArgumentParser]]:
    """Each subcommand's name, one-line summary and parser, in the order they were added."""
    for action in parser._actions:  # argparse keeps subparsers only here
        if isinstance(action, argparse._SubParsersAction):
            summaries = {a.dest: a.help or "" for a in action._choices_actions}
            return {name: (summaries.get(name, ""), sub) for name, sub in action.choices.items()}
    return {}


def options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """The optional arguments of ``parser`` (help and version excluded)."""
    return [a for a in parser._actions if a.option_strings
            and not isinstance(a, (argparse._HelpAction, argparse._VersionAction))]


def positionals(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """The positional arguments of ``parser`` (the subcommand slot excluded)."""
    return [a for a in parser._actions if not a.option_strings
            and not isinstance(a, argparse._SubParsersAction)]


def _roff(text: str) -> str:
    """Text safe in a roff line: backslashes and hyphens escaped, no leading dot or quote."""
    out = text.replace("\\", "\\e").replace("-", "\\-")
    return ("\\&" + out) if out[:1] in (".", "'") else out


def _option_head(action: argparse.Action) -> str:
    names = ", ".join(f"\\fB{_roff(n)}\\fR" for n in action.option_strings)
    if action.nargs == 0:
        return names
    if action.choices:
        value = "{" + ",".join(map(str, action.choices)) + "}"
    else:
        value = action.metavar or action.dest.upper()
    return f"{names} \\fI{_roff(str(value))}\\fR"


def _option_help(action: argparse.Action) -> str:
    text = action.help or ""
    default = action.default
    if default not in (None, False, [], argparse.SUPPRESS) and "default:" not in text:
        text += f" (default: {default})"
    return _roff(text % {"default": default} if "%(" in text else text)


def man_page(parser: argparse.ArgumentParser, today: _dt.date | None = None) -> str:
    """The manual page of ``parser`` in roff (section 1)."""
    date = (today or _dt.date.today()).isoformat()
    lines = [f'.TH S3\\-ROUTE\\-AGENT 1 "{date}" "{PROG} {__version__}" "User Commands"',
             ".SH NAME", f"{_roff(PROG)} \\- {_roff(parser.description or '')}",
             ".SH SYNOPSIS", f"\\fB{_roff(PROG)}\\fR [\\fIglobal options\\fR] \\fICOMMAND\\fR "
             "[\\fIoptions\\fR]", ".SH DESCRIPTION",
             _roff("Every command prints its result on stdout; logs go to stderr. The exit "
                   "status follows the Nagios plugin convention."),
             ".SH GLOBAL OPTIONS", "Accepted before or after the command."]
    for action in options(parser):
        lines += [".TP", _option_head(action), _option_help(action)]
    lines.append(".SH COMMANDS")
    for name, (summary, sub) in subcommands(parser).items():
        usage = " ".join(sub.format_usage().split()[1:])
        lines += [f".SS {_roff(name)}", _roff(sub.description or summary), ".PP",
                  f"Usage: {_roff(usage)}"]
        for action in positionals(sub):
            lines += [".TP", f"\\fI{_roff(action.metavar or action.dest)}\\fR",
                      _option_help(action)]
        global_dests = {a.dest for a in options(parser)}
        for action in options(sub):
            if action.dest in global_dests:
                continue
            lines += [".TP", _option_head(action), _option_help(action)]
        if sub.epilog:
            lines += [".PP", "Examples:", ".RS", ".nf"]
            lines += [_roff(line.strip()) for line in sub.epilog.splitlines()[1:]]
            lines += [".fi", ".RE"]
    lines += [".SH EXIT STATUS",
              ".TP", "0", "OK: every target takes the expected path",
              ".TP", "1", "WARNING", ".TP", "2", "CRITICAL",
              ".TP", "3", _roff("UNKNOWN: the agent could not tell (bad config or arguments, "
                                "no credentials, IMDS or EC2 unreachable)"),
              ".TP", "78", _roff("run: the config cannot be loaded at start (systemd does not "
                                 "restart it)"),
              ".SH ENVIRONMENT",
              ".TP", "S3_ROUTE_AGENT_CONFIG",
              _roff("the config file when --config is not given"),
              ".TP", "AWS_REGION, AWS_DEFAULT_REGION",
              _roff("the region when neither the config nor instance metadata gives one"),
              ".TP", "AWS_EC2_METADATA_SERVICE_ENDPOINT",
              _roff("the instance metadata base URL (default http://169.254.169.254)"),
              ".TP", "NO_COLOR", _roff("set to anything: no colour on a terminal"),
              ".SH FILES",
              ".TP", _roff("/etc/s3-route-agent/config.yaml"),
              _roff("the config when neither --config nor S3_ROUTE_AGENT_CONFIG names one"),
              ".TP", _roff("/var/lib/s3-route-agent"), _roff("state_dir: caches and state"),
              ".SH SEE ALSO", "The README of s3\\-route\\-agent: every config key."]
    return "\n".join(lines) + "\n"


def bash_completion(parser: argparse.ArgumentParser) -> str:
    """A bash completion script for ``parser``: subcommands, each one's options, and the
    values of options with choices; files for FILE and PATH values."""
    func = "_" + PROG.replace("-", "_")
    globals_ = [n for a in options(parser) for n in a.option_strings]
    cases = []
    for name, (_, sub) in subcommands(parser).items():
        words = [n for a in options(sub) for n in a.option_strings] + ["--help"]
        values = []
        for action in options(sub) + positionals(sub):
            if action.choices:
                choices = " ".join(map(str, action.choices))
                if action.option_strings:
                    pattern = "|".join(action.option_strings)
                    values.append(f'                {pattern}) COMPREPLY=($(compgen -W '
                                  f'{shlex.quote(choices)} -- "$cur")); return;;')
                else:
                    words.append(choices)
            elif action.option_strings and (action.metavar in ("FILE", "PATH")):
                pattern = "|".join(action.option_strings)
                values.append(f'                {pattern}) COMPREPLY=($(compgen -f -- "$cur")); '
                              'return;;')
        block = [f"        {name})", '            case "$prev" in'] + values + [
            "            esac",
            f'            COMPREPLY=($(compgen -W {shlex.quote(" ".join(words))} -- "$cur"))'
            + ('; [[ "$cur" == -* ]] || COMPREPLY+=($(compgen -f -- "$cur"))'
               if any(a.metavar == "FILE" for a in positionals(sub)) else ""),
            "            ;;"]
        cases.append("\n".join(block))
    commands = " ".join(subcommands(parser))
    # Options before the command that take a value: their value is not the command.
    valued = "|".join(n for a in options(parser) if a.nargs != 0 for n in a.option_strings)
    return f"""# bash completion for {PROG} (generated by `{PROG} completion bash`)
{func}() {{
    local cur prev cmd i
    cur="${{COMP_WORDS[COMP_CWORD]}}"
    prev="${{COMP_WORDS[COMP_CWORD-1]}}"
    cmd=""
    for ((i = 1; i < COMP_CWORD; i++)); do
        case "${{COMP_WORDS[i]}}" in
            {valued}) ((i++));;
            -*) ;;
            *) cmd="${{COMP_WORDS[i]}}"; break;;
        esac
    done
    if [[ "$prev" == --log-level ]]; then
        COMPREPLY=($(compgen -W "debug info warning error" -- "$cur")); return
    fi
    case "$cmd" in
        "")
            COMPREPLY=($(compgen -W {shlex.quote(commands + " " + " ".join(globals_) + " --version --help")} -- "$cur"))
            ;;
{chr(10).join(cases)}
    esac
}}
complete -F {func} {PROG}
"""
