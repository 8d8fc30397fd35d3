"""Contracts between services: event models and internal API models. Services never import one
another; they import these. A change to a contract is a change to this package."""
