"""`python -m exporter`: the same as the `messaging-exporter` command."""

from exporter.cli import main

if __name__ == "__main__":  # importing the module (pkgutil, pydoc, a test) must not start it
    raise SystemExit(main())
