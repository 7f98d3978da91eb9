"""What people and tools read over HTTP besides /metrics: the server and its endpoints
(`server`), the status page, its JSON API and badges (`statuspage`, with the banner, the
resolvers and the 24-hour strips in `glance`), and the pages and tables of probes (`render`).

May import: `exporter.model.observation`, `exporter.units`, `exporter.config`, `exporter.judge`,
`exporter.exposition`.
"""
