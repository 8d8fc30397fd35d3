"""The operator's failure, drift and certificate metrics without a cluster: which applies count as
drift corrections (pure, over objects prepared as the operator prepares them), a reconcile whose
API server cannot be reached (a real client against a port nobody listens on) counting as an
error of its stage, and the expiry of real certificates in the Secrets a platform references.
The same metrics against the real control plane: tests/cluster/test_operator.py."""

from __future__ import annotations

import base64
import copy
import datetime as dt
import socket
from collections.abc import Iterator
from typing import Any

import kubernetes
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import NameOID
from prometheus_client import REGISTRY
from urllib3.exceptions import MaxRetryError

from gameplane_operator import certs, handlers, metrics
from gameplane_operator.config import Config
from gameplane_operator.desired import applied_hash, drifted, key, prepare, up_to_date
from gameplane_operator.kube import Kube
from gameplane_operator.reconcile import Applied, reconcile
from gameplane_operator.refs import secret_refs
from gameplane_operator.render import Capabilities, Renderer
from gameplane_operator.scheduler import Scheduler

PLATFORM: dict[str, Any] = {
    "apiVersion": "gameplane.io/v1alpha1",
    "kind": "GamingPlatform",
    "metadata": {"name": "demo", "namespace": "casino", "uid": "u-1", "generation": 1},
    "spec": {"version": "0.1.0"},
}


def deployment(replicas: int) -> dict[str, Any]:
    (obj,) = prepare([{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "demo-players"},
                       "spec": {"replicas": replicas}}], PLATFORM)  # fmt: skip
    return obj


def sample(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


def test_a_deleted_object_the_last_reconcile_left_is_a_drift_correction() -> None:
    want = deployment(1)
    assert drifted(None, want, last=applied_hash(want))
    # negative controls: the first reconcile creates it; a changed render creates it anew
    assert not drifted(None, want, last=None)
    assert not drifted(None, want, last=applied_hash(deployment(2)))


def test_a_hand_edited_object_is_a_drift_correction_and_a_new_render_is_not() -> None:
    want = deployment(1)
    scaled = copy.deepcopy(want)
    scaled["spec"]["replicas"] = 4  # kubectl scale: our hash stays on it
    assert not up_to_date(scaled, want)
    assert drifted(scaled, want, last=None)  # even with no memory of the last reconcile (a restart)
    assert drifted(scaled, want, last=applied_hash(want))
    older = deployment(2)  # the spec asked for 2 before: the render changed, nobody else did
    assert not up_to_date(older, want)
    assert not drifted(older, want, last=applied_hash(older))


def test_what_a_reconcile_leaves_is_remembered_by_hash() -> None:
    want = deployment(1)
    done = Applied(applied=1, pruned=0, rendered=[want], caps=Capabilities("v1.37.2", ()))
    assert done.hashes() == {key(want): applied_hash(want)}
    assert done.drifted == []


def test_every_stage_and_child_kind_is_exported_from_the_start() -> None:
    for stage in metrics.STAGES:
        assert REGISTRY.get_sample_value("gameplane_operator_reconcile_errors_total", {"stage": stage}) is not None
    for kind in ("Deployment", "Service", "ConfigMap", "Secret", "HorizontalPodAutoscaler"):
        assert REGISTRY.get_sample_value("gameplane_operator_drift_corrections_total", {"kind": kind}) is not None


def test_the_slow_reconcile_threshold_is_inside_the_histogram() -> None:
    # histogram_quantile never answers above the highest finite bucket: the alert's 30 s must be below it.
    for le in ("30.0", "60.0"):
        assert sample("gameplane_operator_reconcile_duration_seconds_bucket", le=le) is not None, le


@pytest.fixture
def unreachable() -> Iterator[kubernetes.client.ApiClient]:
    """A real API client whose server refuses every connection (a port just closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = kubernetes.client.Configuration()
    cfg.host = f"http://127.0.0.1:{port}"
    cfg.retries = 0
    api = kubernetes.client.ApiClient(cfg)
    yield api
    api.close()


async def test_a_reconcile_that_cannot_read_the_api_fails_at_stage_other(unreachable: Any) -> None:
    renderer = Renderer(Config())
    try:
        outcome, applied = await reconcile(Kube(unreachable), renderer, PLATFORM)
    finally:
        renderer.close()
    assert (outcome.ok, outcome.reason, outcome.stage, applied) == (False, "ApplyFailed", "other", None)
    assert renderer.renders == 0  # it stopped before helm


async def test_every_failed_pass_counts_as_a_reconcile_error(unreachable: Any) -> None:
    config = Config()
    kube = Kube(unreachable)
    rt = handlers.Runtime(config=config, kube=kube, renderer=Renderer(config),
                          scheduler=Scheduler(handlers.run_platform, 1, 0.01, 60))  # fmt: skip
    before = {s: sample("gameplane_operator_reconcile_errors_total", stage=s) or 0 for s in metrics.STAGES}
    saved, handlers.RT = handlers.RT, rt
    try:
        with pytest.raises(MaxRetryError) as raised:  # as before: kopf and the scheduler retry it
            await handlers.run_platform(("casino", "demo"), True)
    finally:
        handlers.RT = saved
        rt.renderer.close()
    assert "Connection refused" in str(raised.value)
    after = {s: sample("gameplane_operator_reconcile_errors_total", stage=s) or 0 for s in metrics.STAGES}
    assert {s: after[s] - before[s] for s in metrics.STAGES} == {
        "render": 0, "apply": 0, "prune": 0, "status": 0, "other": 1}


def certificate(not_after: dt.datetime, name: str = "casino.example") -> str:
    """A real self-signed certificate, base64 PEM as a Secret's data holds it."""
    key = Ed25519PrivateKey.generate()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(not_after - dt.timedelta(days=90))
            .not_valid_after(not_after).sign(key, None))  # fmt: skip
    return base64.b64encode(cert.public_bytes(serialization.Encoding.PEM)).decode()


EXPIRES = dt.datetime(2027, 3, 1, 12, 0, tzinfo=dt.UTC)


def test_the_expiry_of_a_certificate_in_a_secret_is_read_and_nothing_else() -> None:
    leaf, ca = certificate(EXPIRES), certificate(EXPIRES + dt.timedelta(days=3650), "ca")
    chain = base64.b64encode(base64.b64decode(leaf) + base64.b64decode(ca)).decode()
    found = certs.seen({"tls.crt": chain, "tls.key": "c2VjcmV0", "ca.crt": ca})
    assert found.keys == {"tls.crt", "tls.key", "ca.crt"}
    assert found.expiries == {"tls.crt": EXPIRES.timestamp(),  # the leaf: first in the chain
                              "ca.crt": (EXPIRES + dt.timedelta(days=3650)).timestamp()}  # fmt: skip
    # negative controls: not a certificate (as a test Secret may hold), not base64, no *.crt key
    assert certs.seen({"tls.crt": base64.b64encode(b"c").decode(), "x.crt": "%%%"}).expiries == {}
    assert certs.seen({"url": leaf}).expiries == {}
    assert certs.seen(None) == certs.SecretSeen(frozenset())


def test_only_referenced_certificate_keys_are_exported_and_forgotten_with_them() -> None:
    ns, name = "casino", "casino"
    spec = {"gateway": {"host": "c.example", "ingress": {"enabled": True, "tlsSecretName": "casino-tls"}},
            "providers": [{"name": "acme", "baseUrl": "https://acme", "secretRef": {"name": "acme-keys"}}]}
    config = Config()
    rt = handlers.Runtime(config=config, kube=None, renderer=Renderer(config),  # type: ignore[arg-type]
                          scheduler=Scheduler(handlers.run_platform, 1, 0.01, 60))  # fmt: skip
    # the shape of kopf's index: key -> the values stored under it
    rt.indexes["gp_secrets"] = {(ns, "casino-tls"): [certs.seen({"tls.crt": certificate(EXPIRES), "tls.key": "eA=="})],
                                (ns, "acme-keys"): [certs.seen({"acme.crt": certificate(EXPIRES)})]}
    labels = {"platform_namespace": ns, "platform": name, "secret": "casino-tls", "key": "tls.crt"}
    saved, handlers.RT = handlers.RT, rt
    try:
        handlers._export_expiries(rt, (ns, name), secret_refs(spec))
        assert sample("gameplane_operator_certificate_expiry_timestamp_seconds", **labels) == EXPIRES.timestamp()
        # a provider's Secret is mounted whole: its *.crt is not the platform's certificate to watch
        assert sample("gameplane_operator_certificate_expiry_timestamp_seconds", **{**labels,
                      "secret": "acme-keys", "key": "acme.crt"}) is None  # fmt: skip
        spec["gateway"]["ingress"]["enabled"] = False
        handlers._export_expiries(rt, (ns, name), secret_refs(spec))
        assert sample("gameplane_operator_certificate_expiry_timestamp_seconds", **labels) is None
        handlers._export_expiries(rt, (ns, name), secret_refs({**spec, "gateway": {
            "ingress": {"enabled": True, "tlsSecretName": "casino-tls"}}}))  # fmt: skip
        assert sample("gameplane_operator_certificate_expiry_timestamp_seconds", **labels) == EXPIRES.timestamp()
        handlers._forget(rt, (ns, name))  # the platform deleted
        assert sample("gameplane_operator_certificate_expiry_timestamp_seconds", **labels) is None
    finally:
        handlers.RT = saved
        rt.renderer.close()
