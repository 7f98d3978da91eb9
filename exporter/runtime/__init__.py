"""The running exporter: its lifecycle (`app`: start, reload, signals), the scheduler that
spreads probes over the interval (`scheduler`, on an injected `clock`), logs (`logs`), and
the process's memory housekeeping (`garbage`, `heap`).

May import: `exporter.model`, `exporter.units`, `exporter.config`, `exporter.probes`,
`exporter.judge`, `exporter.exposition`, `exporter.web`. Nothing imports it but `exporter.cli`.
"""
