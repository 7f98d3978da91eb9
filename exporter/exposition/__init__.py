"""What Prometheus scrapes: the snapshot of results (`store`) and the custom collector that
renders it (`collector`, with its deflated text blocks in `deflate`).

May import: `exporter.model.observation`, `exporter.units`, `exporter.config`.
"""
