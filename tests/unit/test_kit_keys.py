"""Key formats of the service identities: PEM keys, Helm's certificates, key sets, JWKS."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from cryptography.x509.oid import NameOID

from gameplane.kit.app import MissingIdentity, Runtime
from gameplane.kit.keys import InvalidKey, KeySet, SigningKey, load_public, read_key_set, thumbprint
from gameplane.kit.settings import ServiceSettings, settings_config


class WalletLike(ServiceSettings):
    model_config = settings_config("walletlike")


def certificate(key: SigningKey) -> str:
    """What Helm's genSelfSignedCertWithKey makes of an ed25519 key: a self-signed certificate."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gameplane-wallet")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public)
            .serial_number(1).not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
            .sign(key.private, None))
    return cert.public_bytes(Encoding.PEM).decode()


def test_the_kid_is_the_public_keys_rfc7638_thumbprint():
    # RFC 8037 appendix A.3: the thumbprint of its Ed25519 example key
    import base64

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    x = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
    public = Ed25519PublicKey.from_public_bytes(base64.urlsafe_b64decode(x + "="))
    assert thumbprint(public) == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


def test_a_private_key_round_trips_and_a_certificate_or_spki_gives_its_public_key():
    key = SigningKey.generate()
    assert SigningKey.from_pem(key.pem()).kid == key.kid
    assert thumbprint(load_public(key.public_pem())) == key.kid
    assert thumbprint(load_public(certificate(key))) == key.kid


def test_other_key_types_are_refused():
    ec = generate_private_key(SECP256R1())
    with pytest.raises(InvalidKey, match="not Ed25519"):
        SigningKey.from_pem(ec.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode())
    with pytest.raises(InvalidKey):
        load_public("-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n")


def test_one_key_cannot_belong_to_two_services():
    key = SigningKey.generate()
    with pytest.raises(InvalidKey, match="both"):
        KeySet.of({"games": [key.public], "wallet": [key.public]})


def test_key_set_from_a_file_and_inline_and_as_jwks(tmp_path):
    games, wallet = SigningKey.generate(), SigningKey.generate()
    path = tmp_path / "public-keys.json"
    path.write_text(json.dumps({"games": [certificate(games)]}))
    keys = read_key_set({"wallet": [wallet.public_pem()]}, path)
    assert {k: v.owner for k, v in keys.keys.items()} == {games.kid: "games", wallet.kid: "wallet"}
    jwks = keys.owned_by("games").jwks()
    assert [k["kid"] for k in jwks["keys"]] == [games.kid] and "d" not in jwks["keys"][0]
    assert set(KeySet.from_jwks("games", jwks).keys) == {games.kid}


def test_a_service_without_its_key_refuses_to_start():
    with pytest.raises(MissingIdentity, match="GP_WALLETLIKE_SERVICE_KEY"):
        Runtime("walletlike", WalletLike(service_key=None, service_key_file=None, nats_url=None))
    with pytest.raises(MissingIdentity, match="unusable service key"):
        Runtime("walletlike", WalletLike(service_key="not a key", nats_url=None))
    ok = SigningKey.generate()  # negative control
    assert Runtime("walletlike", WalletLike(service_key=ok.pem(), nats_url=None)).identity.kid == ok.kid


def test_no_default_secret_or_key_is_left_in_the_settings():
    for name, field in ServiceSettings.model_fields.items():
        assert "change-me" not in str(field.default), name
    assert ServiceSettings.model_fields["service_key"].default is None
    assert not {"service_token_secret", "player_token_secret"} & set(ServiceSettings.model_fields)


def test_a_service_trusts_its_own_key_and_refuses_a_set_that_gives_it_to_another():
    own, other = SigningKey.generate(), SigningKey.generate()
    rt = Runtime("walletlike", WalletLike(service_key=own.pem(), public_keys={"games": [other.public_pem()]},
                                          nats_url=None))
    assert rt.trusted_keys.keys[own.kid].owner == "walletlike"
    with pytest.raises(MissingIdentity, match="listed as 'games'"):
        Runtime("walletlike", WalletLike(service_key=own.pem(), public_keys={"games": [own.public_pem()]},
                                         nats_url=None))
