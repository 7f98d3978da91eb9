"""`python -m exporter`: the same as the `messaging-exporter` command."""

from exporter.cli import main

raise SystemExit(main())
