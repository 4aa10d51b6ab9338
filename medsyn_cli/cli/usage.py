"""A command or group run without arguments: its usage on stderr and exit code 2.

Typer's ``no_args_is_help`` prints the whole help to stdout (through rich), which a script would take
for a result. medsyn keeps stdout for results, so a bare ``medsyn train`` (or ``medsyn``, ``medsyn
data``, ...) prints the usage line, the sub-commands of a group and where the help is, on stderr.
"""

from __future__ import annotations

from typing import Any


def bare_usage(app: Any, argv: list[str], prog: str = "medsyn") -> str | None:
    """The text to print when ``argv`` names a command or group that needs arguments and gives none;
    None when ``argv`` has arguments to parse (the normal path)."""
    import typer

    cmd = typer.main.get_command(app)
    ctx = cmd.make_context(prog, [], resilient_parsing=True)
    rest = list(argv)
    while rest and hasattr(cmd, "commands") and rest[0] in cmd.commands:
        name = rest.pop(0)
        cmd = cmd.commands[name]
        ctx = cmd.make_context(name, [], parent=ctx, resilient_parsing=True)
    if rest or not getattr(cmd, "no_args_is_help", False):
        return None
    lines = [cmd.get_usage(ctx).rstrip()]
    if hasattr(cmd, "commands"):
        lines.append(f"Commands: {', '.join(n for n, c in cmd.commands.items() if not c.hidden)}")
    option = ctx.help_option_names[0] if ctx.help_option_names else "--help"
    lines.append(f"Try '{ctx.command_path} {option}' for help and examples.")
    lines.append("medsyn: error: missing arguments" if ctx.parent else "medsyn: error: missing command")
    return "\n".join(lines)
