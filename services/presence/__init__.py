"""Presence: who is online across every gateway pod (multi-device, crash-safe via heartbeats)."""
