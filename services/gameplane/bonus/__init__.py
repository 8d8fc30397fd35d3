"""The bonus service: campaigns, versioned offers, grants and their wagering."""
