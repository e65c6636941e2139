"""The one place that turns the settings into Kafka client options (aiokafka).

``kafka_options(settings)`` gives the keyword arguments every ``AIOKafkaProducer``,
``AIOKafkaConsumer`` and ``AIOKafkaAdminClient`` of the services is built with: the bootstrap
servers and, from ``PARLEY_KAFKA_SECURITY_PROTOCOL/SASL_MECHANISM/USERNAME/PASSWORD/
TLS_CA_FILE``, the SASL credentials and a TLS context that verifies the brokers' certificates
and host names. Callers add only their role's options (acks, group, client id, ...).
"""

from __future__ import annotations

from typing import Any

from .settings import Settings
from .tls import client_context


def kafka_options(settings: Settings) -> dict[str, Any]:
    protocol = settings.kafka_security_protocol
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap,
        "security_protocol": protocol,
    }
    if protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = client_context(settings.kafka_tls_ca_file)
    if protocol.startswith("SASL_"):
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism
        options["sasl_plain_username"] = settings.kafka_username
        options["sasl_plain_password"] = settings.kafka_password
    return options
