"""Parley: a horizontally scaled Socket.IO chat backend (gateway, persistence, presence)."""
