"""``python -m jdl.cli``: the same as the ``jdl`` command."""

from jdl.cli.main import run

if __name__ == "__main__":
    run()
