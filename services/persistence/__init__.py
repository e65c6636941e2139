"""Persistence: the durable message log (Kafka) and the message store (Cassandra / SQLite)."""
