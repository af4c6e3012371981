"""The pure engine: frozen facts in, verdicts out. Imports no boto3, botocore, dns, scapy, socket, http, ssl, subprocess or requests (tests/engine/test_purity.py)."""
