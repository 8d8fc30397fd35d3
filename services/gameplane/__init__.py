"""gameplane: a Kubernetes-native iGaming platform."""
__version__ = "0.1.0"
