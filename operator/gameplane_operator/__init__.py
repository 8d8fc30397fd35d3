"""The gameplane operator: GamingPlatform -> a running platform, rendered from the Helm charts.

See docs/operator.md; handlers.py is the entry point for kopf, __main__.py for the command.
"""
