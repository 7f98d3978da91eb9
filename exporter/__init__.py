"""messaging-exporter: is a messaging service reachable from here, through every resolver and
network, and if not, is it censorship or an outage."""

__version__ = "0.1.0"
