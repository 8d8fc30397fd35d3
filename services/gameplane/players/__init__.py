"""players: accounts, credentials, KYC state and responsible-gaming settings (`python -m gameplane.players`)."""
