"""The wire contract shared by every service: message model, ids, tokens, settings."""
