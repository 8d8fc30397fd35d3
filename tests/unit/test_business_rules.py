"""The business recording rules are generated from contracts.kpis: the committed file is what
hack/gen_business_rules.py writes now, and every rule the dashboard reads exists."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "observability" / "prometheus" / "rules" / "business-rules.yaml"
DASHBOARD = REPO / "observability" / "grafana" / "dashboards" / "gameplane-business.json"


def test_the_committed_recording_rules_are_current() -> None:
    r = subprocess.run([sys.executable, str(REPO / "hack" / "gen_business_rules.py"), "--check"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_every_recording_rule_the_dashboard_reads_is_recorded() -> None:
    recorded = {rule["record"] for g in yaml.safe_load(RULES.read_text())["groups"] for rule in g["rules"]}
    assert "currency:gameplane_ngr:increase1d" in recorded
    exprs = [t["expr"] for p in json.loads(DASHBOARD.read_text())["panels"] for t in p.get("targets", [])]
    used = {word.split("{")[0] for e in exprs for word in e.replace("(", " ").split() if ":gameplane_" in word}
    assert used and used <= recorded, used - recorded
    for kpi in ("ggr", "ngr", "hold_pct", "rtp", "deposits"):
        assert any(f":gameplane_{kpi}:" in u for u in used), kpi
