"""The configuration: what to probe, where and how, as frozen dataclasses (`model`), and the
probe matrix it expands into (`matrix`); the web server's TLS and auth config (`web`).

Read strictly from YAML by `loader` (the public face), with the work in small modules:
`yamlfile` (the strict YAML reading both configs share), `decoding` (the error collector and
the key tables: each key declared once), `errors`, `scalars`, `options`, `resolvers`,
`networks`, `sections`, `endpoints`, `rules` (across keys and the matrix) and `document` (the
top level). The shipped blockpage fingerprints are the `blocklists` package.

May import: `exporter.model`, `exporter.units`. Nothing here opens a socket.
"""
