"""The webhook worker: Parley's events as signed HTTP POSTs to configured endpoints."""
