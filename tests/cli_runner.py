"""Running ``xpann`` in-process for the CLI tests."""

from click.testing import CliRunner

from xpann_cli.main import cli


def run(*args, ok=True):
    """Run ``xpann ARGS``; with ``ok`` the command must succeed, else it must fail cleanly."""
    result = CliRunner().invoke(cli, [str(a) for a in args])
    if ok:
        assert result.exit_code == 0, result.output
    else:
        assert result.exit_code != 0, result.output
        assert "Traceback" not in result.output
        assert isinstance(result.exception, SystemExit), repr(result.exception)  # a message, not a crash
    return result
