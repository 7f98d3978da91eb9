"""The facts and types every layer shares: observations (`observation`: what a probe saw),
the judgement of a round (`judgement`: verdicts, findings, service states) and the
exporter's own figures (`stats`). Pure data.

May import: `exporter.units` only. Everything else may import it.
"""
