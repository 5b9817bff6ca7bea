"""``python -m pinwarden``: the command line."""

from pinwarden.cli import run

run()
