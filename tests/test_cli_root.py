"""The root command: help, version, and the one-line error contract."""

from conftest import run_cli


def test_help_lists_verbs():
    r = run_cli("--help")
    assert r.returncode == 0
    for verb in ("models", "plugins"):
        assert verb in r.stdout


def test_no_args_shows_help():
    r = run_cli()
    assert "Usage" in (r.stdout + r.stderr)


def test_version():
    r = run_cli("--version")
    assert r.returncode == 0 and r.stdout.startswith("medsyn ")
