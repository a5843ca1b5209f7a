# -*- test-case-name: tests.test_manpage -*-
"""
The manual pages, generated from what the programs themselves know: the
argument parser of C{gatewayctl}, the options of the twistd plugin and the
configuration schema.  C{make man} writes them to C{docs/}; a test keeps
the files there the same as what this module generates.

    python -m gateway.manpage docs
"""

import argparse
import os
import re
import sys
import textwrap

from gateway import __version__
from gateway.config import SCHEMA

_MARKUP = re.compile(r"\b[CLIBU]\{([^{}]*)\}")


def plain(text):
    """
    Text without epytext markup (C{C{name}} becomes C{name}).
    """
    return _MARKUP.sub(r"\1", text or "")


def escape(text):
    """
    Text safe in a roff line: backslashes doubled, hyphens of options kept
    as minus signs, and no line starting with a control character.
    """
    text = plain(text).replace("\\", "\\e").replace("-", "\\-")
    lines = []
    for line in text.splitlines():
        if line.startswith((".", "'")):
            line = "\\&" + line
        lines.append(line)
    return "\n".join(lines)


def _paragraphs(text):
    """
    A docstring's paragraphs, each on one line.
    """
    text = textwrap.dedent(plain(text)).strip()
    return [" ".join(p.split()) for p in re.split(r"\n\s*\n", text) if p.strip()]


def _header(name, section, title):
    return [
        '.TH %s %s "" "gateway %s" "%s"' % (name.upper().replace("-", "\\-"), section, __version__, title),
    ]


def _subcommands(parser):
    """
    C{(name, help, subparser)} of the sub-commands of an argparse parser.
    """
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, sub in action.choices.items():
                yield name, helps.get(name), sub


def _arguments(parser):
    """
    C{(label, help)} of a parser's own arguments (not C{--help}).
    """
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        if action.help == argparse.SUPPRESS:
            continue
        if action.option_strings:
            label = ", ".join(action.option_strings)
            if action.nargs != 0:
                label += " " + (action.metavar or action.dest.upper())
        else:
            label = action.metavar or action.dest.upper()
        helpText = action.help or ""
        if "%(default)" in helpText:
            helpText = helpText % {"default": action.default}
        yield label, helpText


def _usage(parser):
    usage = parser.format_usage().strip()
    return " ".join(usage.removeprefix("usage:").replace(" [-h]", "").split())


def gatewayctlPage(parser=None):
    """
    The troff text of C{gatewayctl(8)}.
    """
    from gateway import ctl

    parser = parser or ctl.makeParser()
    paragraphs = _paragraphs(ctl.__doc__)
    out = _header("gatewayctl", 8, "System Manager's Manual")
    out += [".SH NAME", "gatewayctl \\- %s" % (escape(paragraphs[0].split(": ", 1)[-1].split(".")[0]),)]
    out += [".SH SYNOPSIS", ".B gatewayctl", "[\\fB\\-\\-config\\fR \\fIFILE\\fR] \\fICOMMAND\\fR ..."]
    out += [".SH DESCRIPTION"]
    for paragraph in paragraphs:
        out += [escape(paragraph), ".PP"]
    out.pop()
    out += [".SH OPTIONS"]
    for label, helpText in _arguments(parser):
        out += [".TP", "\\fB%s\\fR" % (escape(label),), escape(helpText)]
    out += [".SH COMMANDS"]

    def walk(prefix, sub, helpText):
        children = list(_subcommands(sub))
        if children:
            for name, childHelp, child in children:
                walk(prefix + [name], child, childHelp)
            return
        out.extend([".TP", "\\fB%s\\fR" % (escape(_usage(sub)),), escape(helpText or "")])
        for label, argumentHelp in _arguments(sub):
            if argumentHelp:
                out.extend([".RS", ".TP", "\\fB%s\\fR" % (escape(label),), escape(argumentHelp), ".RE"])

    for name, helpText, sub in _subcommands(parser):
        walk([name], sub, helpText)
    out += _files() + [".SH SEE ALSO", ".BR twistd\\-gateway (8),", ".BR twistd (1)"]
    return "\n".join(out) + "\n"


def _files():
    return [
        ".SH FILES",
        ".TP", "\\fIetc/gateway.ini\\fR",
        "The configuration file (every option is described in",
        ".BR twistd\\-gateway (8)).",
        ".TP", "\\fIDATA_ROOT/domains/DOMAIN/accounts/NAME/\\fR",
        "An account: its settings, Maildir mailboxes and files.",
    ]


def twistdPage():
    """
    The troff text of C{twistd-gateway(8)}: the plugin's options, signals,
    exit status and every configuration option.
    """
    from gateway import tap

    options = tap.Options()
    out = _header("twistd-gateway", 8, "System Manager's Manual")
    out += [".SH NAME", "twistd gateway \\- IMAP, POP3, HTTP, FTP and LMTP server over one account realm"]
    out += [".SH SYNOPSIS", ".B twistd", "[\\fItwistd options\\fR] \\fBgateway\\fR %s" % (escape(options.synopsis),)]
    out += [".SH DESCRIPTION", escape(" ".join(options.longdesc.split()))]
    out += [".SH OPTIONS"]
    for name, short, default, helpText in options.optParameters:
        label = "\\-\\-%s %s" % (escape(name), escape(name.upper()))
        if short:
            label = "\\-%s, %s" % (short, label)
        out += [".TP", "\\fB%s\\fR" % (label,), escape("%s (default %s)" % (helpText.rstrip("."), default)) + "."]
    out += [
        ".PP",
        "Useful twistd options: \\fB\\-\\-nodaemon\\fR (stay in the foreground, as under systemd),",
        "\\fB\\-\\-pidfile=\\fR, \\fB\\-\\-logfile=\\-\\fR, and \\fB\\-\\-uid\\fR/\\fB\\-\\-gid\\fR: every",
        "listener is bound as root first, then the server runs as that user.",
        ".SH SIGNALS",
        ".TP", ".B SIGHUP",
        "Read the configuration file again and apply log levels, the log file, connection limits, TLS",
        "certificates and listeners without dropping a session.",
        ".TP", ".B SIGUSR1",
        "Open [server] log_file again by name (after logrotate moved it).",
        ".TP", ".B SIGUSR2",
        "With [debug] memory_reports on, write a memory report (what grew since start-up) to the log folder;",
        "with workers, the parent writes its own and passes the signal on to every worker.",
        ".TP", ".B SIGTERM, SIGINT",
        "Stop gracefully: stop accepting, tell the IMAP, POP3, LMTP and FTP sessions to go (IMAP * BYE,",
        "POP3 -ERR [SYS/TEMP], LMTP and FTP 421) once the command each has in flight is answered, and",
        "wait for them, at most [server] drain_seconds.",
        ".PP",
        "With [server] workers above 1, the process twistd starts passes SIGHUP, SIGUSR1 and SIGTERM on",
        "to its worker processes and ends after them; when a reload changes the listeners it opens and",
        "closes its sockets and starts the workers again one by one (each drains its sessions first).",
        ".SH EXIT STATUS",
        "78 (EX_CONFIG) when the configuration cannot work; the one line on standard error names the",
        "option and the problem.",
        ".SH CONFIGURATION",
        "The file is in INI syntax. Listeners are Twisted endpoint strings (tcp:1143:interface=127.0.0.1,",
        "ssl:993), several per protocol. Sizes take K, M, G. Every option, with its default:",
    ]
    section = None
    for option in SCHEMA:
        if option.section != section:
            section = option.section
            out += [".SS [%s]" % (section,)]
        default = " ".join(option.default.split()) or "(empty)"
        out += [".TP", "\\fB%s\\fR = %s" % (escape(option.name), escape(default)), escape(option.help)]
    out += [".SH SEE ALSO", ".BR gatewayctl (8),", ".BR twistd (1)"]
    return "\n".join(out) + "\n"


#: file name in docs/ -> generator
PAGES = {"gatewayctl.8": gatewayctlPage, "twistd-gateway.8": twistdPage}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    folder = argv[0] if argv else "docs"
    os.makedirs(folder, exist_ok=True)
    for name, make in PAGES.items():
        with open(os.path.join(folder, name), "w", encoding="utf-8") as f:
            f.write(make())
        print(os.path.join(folder, name))


if __name__ == "__main__":
    main()
