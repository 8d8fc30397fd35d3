"""The operator hands kopf the same credentials as its own client, in-cluster and from a kubeconfig."""

from __future__ import annotations

from pathlib import Path

import kubernetes
import pytest
import yaml

from gameplane_operator import kube


def _in_cluster_client(tmp_path: Path) -> kubernetes.client.ApiClient:
    token, ca = tmp_path / "token", tmp_path / "ca.crt"
    token.write_text("eyJ.pod-token.sig\n")
    ca.write_text("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n")
    cfg = kubernetes.client.Configuration()
    kubernetes.config.incluster_config.InClusterConfigLoader(
        token_filename=str(token), cert_filename=str(ca),
        environ={"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"},
    ).load_and_set(cfg)
    return kubernetes.client.ApiClient(cfg)


def test_in_cluster_token_reaches_kopf_without_its_scheme(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    client = _in_cluster_client(tmp_path)
    # the library keeps the in-cluster token as "bearer <token>" (lower case): the case that broke
    assert client.configuration.api_key["BearerToken"].startswith("bearer ")
    monkeypatch.setattr(kube, "load_api_client", lambda _: client)
    info = kube.connection_info(None)
    assert info["token"] == "eyJ.pod-token.sig"
    assert info["scheme"] == "Bearer" and info["server"] == "https://10.0.0.1:443"


def test_kubeconfig_token_reaches_kopf_without_its_scheme(tmp_path: Path) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "k", "cluster": {"server": "https://127.0.0.1:6443", "insecure-skip-tls-verify": True}}],
        "users": [{"name": "u", "user": {"token": "kubeconfig-token"}}],
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
    }))
    info = kube.connection_info(str(path))
    assert info["token"] == "kubeconfig-token" and info["insecure"] is True
