"""What goes over the network: one probe of one tuple (`probe`: DNS, TCP, TLS, HTTP, the
throughput download, QUIC), the DNS transports (`dns`, one module per transport),
localisation on the path (`path`), and the seam every socket leaves the machine through
(`network`). HTTP/1.1 is spoken in one place (`http`), and every private name of dnspython
and aioquic is used through one module (`compat`). Probes return observations
(`exporter.model.observation`), facts only; they judge nothing.

May import: `exporter.model.observation`, `exporter.units`, `exporter.config`.
"""
