"""Client TLS contexts for the engines (Kafka, Cassandra): certificate and host name verified,
against a PEM CA bundle or the system CAs, TLS 1.2 at least."""

from __future__ import annotations

import ssl


def client_context(ca_file: str = "") -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=ca_file or None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context
