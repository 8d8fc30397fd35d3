"""The local cluster's tooling (builds from source, the control plane, the real node, the images).

Scripts here run as `python hack/<name>.py` and import one another as `hack.<name>`; tests and
benches import them the same way (the repository root is on their path), so each module exists
once per process.
"""
