"""`python -m gameplane.cli` is the `gameplane` command (used where the script is not on PATH)."""

from gameplane.cli.main import app

app(prog_name="gameplane")
