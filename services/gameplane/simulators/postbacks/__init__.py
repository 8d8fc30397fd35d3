"""The affiliate postback simulator: an affiliate's tracking server receiving the platform's postbacks."""
