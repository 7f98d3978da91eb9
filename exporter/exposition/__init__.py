"""What Prometheus scrapes: the snapshot of results (`store`) and the custom collector that
renders it (`collector`, with its deflated text blocks in `deflate`). The store keeps each
tuple's last observation compact (`compact`): no other package knows about deflated bytes or
interned strings.

May import: `exporter.model.observation`, `exporter.units`, `exporter.config`.
"""
