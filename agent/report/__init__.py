"""The report: the one document per run, its JSON Schema, text rendering and the Nagios line."""
