"""MkDocs hooks: the CLI reference, written from the ``fraudkeras`` argument parsers,
and plain code for the Sphinx roles (``:func:`x` ``) that docstrings use.

Every ``<!-- cli-reference -->`` marker is replaced by a table of the commands and
each command's ``--help``, so the page cannot drift from the code. Building the
parsers imports no Keras and no backend.
"""

from __future__ import annotations

import os
import re
from typing import Any

MARKER = "<!-- cli-reference -->"
WIDTH = "74"  # argparse wraps at $COLUMNS: fixed, so every build writes the same page
ROLE = re.compile(r":(?:func|class|mod|meth|attr|data|exc|obj):(?=<code>)")


def _reference() -> str:
    from fraudkeras.cli import build_parser

    parser, commands = build_parser()
    columns = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = WIDTH
    helps = {
        action.dest: action.help or ""
        for group in parser._subparsers._group_actions  # type: ignore[union-attr]
        for action in group._choices_actions  # type: ignore[attr-defined]
    }
    lines = ["| command | what it does |", "| --- | --- |"]
    lines += [f"| [`{name}`](#fraudkeras-{name}) | {helps.get(name, '')} |" for name in commands]
    for name, command in commands.items():
        lines += ["", f"## fraudkeras {name}", "", "```text", command.format_help().rstrip(), "```"]
    if columns is None:
        del os.environ["COLUMNS"]
    else:
        os.environ["COLUMNS"] = columns
    return "\n".join(lines) + "\n"


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    if MARKER not in markdown:
        return markdown
    return markdown.replace(MARKER, _reference())


def on_page_content(html: str, **_: Any) -> str:
    """``:func:`name` `` in a docstring renders as ``name`` in code, without the role."""
    return ROLE.sub("", html)
