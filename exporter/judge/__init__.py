"""Blocking or outage: the pure judgement of a round of observations (`verdict`, with
`difference` comparing pages), the service-level answer (`summary`), and the little state
across rounds the judgement is handed as data (`history`, `changes`). No I/O.

May import: `exporter.model.observation`, `exporter.units`, `exporter.config`.
"""
