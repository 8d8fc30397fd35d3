"""The player site: server-rendered pages on the platform's public API (through the gateway)."""
