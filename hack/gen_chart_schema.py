#!/usr/bin/env python3
"""Generate charts/gameplane/values.schema.json (the umbrella chart's strict schema).

    python hack/gen_chart_schema.py           # write it
    python hack/gen_chart_schema.py --check   # exit 1 when the committed file differs

The umbrella chart holds one block of gameplane-service values per service, so its schema is the
service chart's schema (charts/gameplane-service/values.schema.json) once per service of the
catalogue (services/gameplane/catalog.py), with the name fixed and, for a service that is not
built, `enabled` fixed to false; plus the few values of the umbrella's own (the platform Secret,
the development PostgreSQL and NATS, dashboards, the prometheus-adapter rules). Edit those sources, never the output:
tests/unit/test_chart_schema.py fails when the committed file is not what this script writes.
"""

from __future__ import annotations

import copy
import json
import re
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "services"))  # the catalogue is pure standard library
sys.path.insert(0, str(REPO))  # hack.generated

from gameplane import catalog  # noqa: E402
from hack import generated  # noqa: E402

SERVICE_SCHEMA = REPO / "charts" / "gameplane-service" / "values.schema.json"
UMBRELLA_CHART = REPO / "charts" / "gameplane" / "Chart.yaml"
OUTPUT = REPO / "charts" / "gameplane" / "values.schema.json"

Schema = dict[str, Any]

# The umbrella's own values (everything that is not a service block or `global`).
PLATFORM_VALUES: Schema = {
    "secrets": {
        "type": "object",
        "description": "the platform Secret (global.secretsName, default <release>-secrets)",
        "additionalProperties": False,
        "properties": {
            "create": {"type": "boolean", "description": "create the platform Secret"},
            "postgresPassword": {"type": "string", "description": "dev PostgreSQL password; empty generates one"},
            "serviceKeys": {
                "type": "object",
                "description": "each service's Ed25519 key pair; a service not listed gets one generated once",
                "additionalProperties": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["privateKey", "publicKey"],
                    "properties": {
                        "privateKey": {"type": "string", "description": "PKCS#8 PEM", "minLength": 1},
                        "publicKey": {"type": "string", "description": "SPKI or certificate PEM", "minLength": 1},
                        "previousPublicKeys": {"type": "array", "items": {"type": "string"},
                                               "description": "keys still trusted during a rotation"},
                    },
                },
            },
            "trustedKeys": {
                "type": "object",
                "description": "public keys of callers outside the chart (the back office, a test client)",
                "additionalProperties": {"type": "array", "items": {"type": "string", "minLength": 1}},
            },
        },
    },
    "postgres": {
        "type": "object",
        "description": "development PostgreSQL (not for production: use global.database.secretName)",
        "additionalProperties": False,
        "properties": {
            "enabled": {"type": "boolean", "description": "run the development PostgreSQL"},
            "image": {
                "type": "string",
                "description": "its image: postgres:17.6-alpine, or one built locally (gameplane/dev-postgres:17)",
                "minLength": 1,
            },
            "storageSize": {
                "type": "string",
                "description": "volume size; empty means emptyDir",
                "pattern": "^([0-9]+(Mi|Gi|Ti))?$",
            },
        },
    },
    "nats": {
        "type": "object",
        "description": "development NATS (not for production: use global.natsUrl)",
        "additionalProperties": False,
        "properties": {
            "enabled": {"type": "boolean", "description": "run the development NATS"},
            "image": {
                "type": "string",
                "description": "its image: nats:2.11-alpine, or one built locally (gameplane/dev-nats:<version>)",
                "minLength": 1,
            },
            "storageSize": {
                "type": "string",
                "description": "JetStream store volume size, e.g. 1Gi; empty: an emptyDir (a restart loses the stream)",
                "pattern": "^([0-9]+(Mi|Gi|Ti))?$",
            },
            "storageClassName": {"type": "string", "description": "StorageClass of that volume; empty: the default"},
        },
    },
    "dashboards": {
        "type": "object",
        "description": "Grafana dashboards",
        "additionalProperties": False,
        "properties": {"enabled": {"type": "boolean", "description": "create dashboard ConfigMaps"}},
    },
    "prometheusAdapter": {
        "type": "object",
        "description": "prometheus-adapter rules for the rpsTarget custom metric, as a ConfigMap",
        "additionalProperties": False,
        "properties": {
            "enabled": {"type": "boolean", "description": "create the adapter's rules ConfigMap"},
            "namespace": {"type": "string", "description": "the adapter's namespace; empty: the release's"},
            "configMapName": {"type": "string", "description": "empty: <release>-prometheus-adapter"},
        },
    },
}


def release() -> str:
    match = re.search(r'^appVersion:\s*"?([^"\s]+)"?', UMBRELLA_CHART.read_text(), re.MULTILINE)
    if not match:
        raise SystemExit(f"no appVersion in {UMBRELLA_CHART}")
    return match.group(1)


def service_block(svc: catalog.Service, service_schema: Schema, version: str) -> Schema:
    props = copy.deepcopy(service_schema["properties"])
    props["name"] = {"const": svc.name, "description": "the service name (fixed)"}
    # Helm copies the top-level `global` into every block before validating; it is checked there
    # (and by the service chart's own schema), so each copy would only repeat the same errors.
    props["global"] = {"type": "object", "description": "Helm's copy of the top-level global (validated there)"}
    if not svc.built:
        props["enabled"] = {
            "const": False,
            "description": (
                f"{svc.name} is not built in gameplane {version} and cannot be enabled yet: this release "
                "has no code for it (the image cannot run it). It becomes available in the release that builds it."
            ),
        }
    elif svc.kind == "simulator":
        props["enabled"] = {"type": "boolean", "description": f"run the {svc.name} simulator (development and tests)"}
    what = "simulator" if svc.kind == "simulator" else "service"
    return {
        "type": "object",
        "description": f"the {svc.name} {what}: {svc.summary} (values of the gameplane-service chart)",
        "additionalProperties": False,
        "required": ["name"],
        "properties": props,
    }


def render() -> str:
    service_schema: Schema = json.loads(SERVICE_SCHEMA.read_text())
    version = release()
    props: Schema = {svc.name: service_block(svc, service_schema, version) for svc in catalog.SERVICES}
    props.update(copy.deepcopy(PLATFORM_VALUES))
    props["global"] = copy.deepcopy(service_schema["properties"]["global"])
    schema: Schema = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "gameplane values",
        "description": (
            "the whole gameplane platform. GENERATED by hack/gen_chart_schema.py from "
            "charts/gameplane-service/values.schema.json and services/gameplane/catalog.py: do not edit"
        ),
        "type": "object",
        "additionalProperties": False,
        "properties": props,
        # The service blocks' $refs point here, exactly as in the service chart's own schema.
        "definitions": copy.deepcopy(service_schema.get("definitions", {})),
    }
    return json.dumps(schema, indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    return generated.main(OUTPUT, render, "gen_chart_schema.py", __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    sys.exit(main())
