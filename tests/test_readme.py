"""The README reads in order and says only what the code does (issue 22): at most 250 lines, and every `launch`
command it shows names a real command and only options that command takes (checked against Click itself)."""

from __future__ import annotations

import re
from pathlib import Path

import click

from tailsweep.orchestrator.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"


def _commands(text: str) -> list[str]:
    """Every `launch ...` invocation: lines of code blocks and inline code spans."""
    found = []
    blocks = re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S)
    for block in blocks:
        for line in block.splitlines():
            line = line.split("#", 1)[0].strip().removeprefix("$ ").removeprefix(".venv/bin/")
            if line.startswith("launch "):  # a reference line's description follows two or more spaces
                found.append(re.split(r"\s{2,}", line.rstrip("\\").strip())[0])
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    found += [m for m in re.findall(r"`(launch [^`]+)`", prose)]
    return found


def _resolve(words: list[str]) -> list[tuple[click.Command, list[str]]]:
    """The command(s) named by the leading words (a|b alternatives expanded) and the rest of the line."""
    outs = []

    def walk(cmd, rest):
        if isinstance(cmd, click.Group) and rest:
            head = rest[0]
            names = head.split("|")
            if all(n in cmd.commands for n in names):
                for n in names:
                    walk(cmd.commands[n], rest[1:])
                return
        outs.append((cmd, rest))

    walk(main, words)
    return outs


def test_readme_is_at_most_250_lines():
    assert README.read_text().count("\n") <= 250


def test_every_launch_command_in_the_readme_exists_with_its_options():
    text = README.read_text()
    commands = _commands(text)
    assert len(commands) > 20  # the parser found them
    problems = []
    for line in commands:
        words = line.split()[1:]
        for cmd, rest in _resolve(words):
            if isinstance(cmd, click.Group):
                problems.append(f"{line!r}: '{rest[0] if rest else ''}' is not a subcommand of {cmd.name}")
                continue
            known = {o for p in cmd.params for o in getattr(p, "opts", [])} | {"--help", "-h"}
            for w in rest:
                opt = w.strip("[]().,").split("=")[0]
                if opt.startswith("--") and opt not in known:
                    problems.append(f"{line!r}: {cmd.name} has no option {opt}")
    assert not problems, "\n".join(problems)
