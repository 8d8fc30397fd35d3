"""The Grafana dashboards (observability/grafana/dashboards/*.json) are valid, portable and fed.

Portable: every panel and query reads the `datasource` variable (no datasource UID of one Grafana
written in), template variables ask Prometheus with label_values. Valid: every target expression,
its variables substituted as Grafana would, is parsed by the real `promtool` (Debian's prometheus
package) as the expression of a recording rule. Fed: every metric a panel reads is one the code
exports (its name as a string literal in services/ or operator/), one a rule file records, or one
Prometheus makes itself. That the panels show data on a running platform is the live tier's proof
(tests/system/test_live_prometheus.py); these checks catch the typo, the missing suffix and the
renamed metric without it. A panel a runbook names on a dashboard is on that dashboard.
Negative controls show each check can fail.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.unit.test_promtool import promtool

REPO = Path(__file__).resolve().parents[2]
DASHBOARDS = REPO / "observability" / "grafana" / "dashboards"
RULES = REPO / "observability" / "prometheus" / "rules"
CODE = (REPO / "services", REPO / "operator")
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}

# What Grafana puts in place of its own variables, and a value for each of the dashboards' variables
# (a multi-value variable becomes a regex alternation, of which one value is a valid case).
BUILT_IN_VARIABLES = {"__rate_interval": "5m", "__interval": "1m", "__range": "1h", "__range_s": "3600",
                      "__range_ms": "3600000", "__interval_ms": "60000"}
VARIABLE_VALUES = {"datasource": "prometheus", "namespace": "demo", "service": "wallet",
                   "slo": "player-api-latency", "job": "demo-gameplane-operator"}
# Series Prometheus makes itself rather than scrapes.
PROMETHEUS_BUILT_INS = {"up", "scrape_duration_seconds", "scrape_samples_scraped", "ALERTS", "ALERTS_FOR_STATE"}
# What the Prometheus Operator puts on every target of a ServiceMonitor, hence on every scraped series
# (the services' own `service` label wins by honorLabels; the operator's series get the target's).
TARGET_LABELS = frozenset({"job", "namespace", "pod", "container", "endpoint", "instance", "service"})
# The dashboards the issue asks for, by uid (the uids are in URLs, the operator's status and runbooks).
REQUIRED = {"gameplane-overview", "gameplane-red", "gameplane-wallet", "gameplane-business",
            "gameplane-providers-payments", "gameplane-slo", "gameplane-operator"}

PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool",
                "offset", "inf", "nan", "atan2"}


def dashboards() -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text()) for p in sorted(DASHBOARDS.glob("*.json"))}


def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every panel, rows' nested panels included."""
    for panel in items:
        yield panel
        yield from panels(panel.get("panels", []))


def targets(doc: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(a name for the target, its expression) for every target of every panel."""
    for panel in panels(doc["panels"]):
        for t in panel.get("targets", []):
            yield f"{doc['uid']} panel {panel['id']} {t['refId']} ({panel['title']})", t["expr"]


def substitute(expr: str, values: dict[str, str] | None = None) -> str:
    """The expression as Grafana sends it, for one value of each variable."""
    known = BUILT_IN_VARIABLES | (VARIABLE_VALUES if values is None else values)

    def value(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        if name not in known:
            raise KeyError(f"unknown variable ${name} in {expr!r}")
        return known[name]

    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)", value, expr)


def overlaps(a: dict[str, int], b: dict[str, int]) -> bool:
    return (a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"]
            and a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"])


def test_the_issue_s_dashboards_exist_with_unique_uids_and_titles() -> None:
    docs = dashboards()
    uids = [d["uid"] for d in docs.values()]
    titles = [d["title"] for d in docs.values()]
    assert REQUIRED <= set(uids), REQUIRED - set(uids)
    assert len(set(uids)) == len(uids) and len(set(titles)) == len(titles)
    for name, doc in docs.items():
        assert name == f"{doc['uid']}.json", name  # the chart names the ConfigMap after the file
        assert len(doc["uid"]) <= 40 and re.fullmatch(r"[a-z0-9-]+", doc["uid"]), name  # Grafana's uid limit
        assert doc["schemaVersion"] >= 39, name
        assert doc["title"].startswith("gameplane / "), name


def test_panels_have_unique_ids_and_do_not_overlap_on_the_grid() -> None:
    for name, doc in dashboards().items():
        top = doc["panels"]
        ids = [p["id"] for p in panels(top)]
        assert len(ids) == len(set(ids)), name
        for i, p in enumerate(top):
            pos = p["gridPos"]
            assert pos["x"] >= 0 and pos["w"] > 0 and pos["x"] + pos["w"] <= 24, (name, p["title"])
            clash = [q["title"] for q in top[i + 1:] if overlaps(pos, q["gridPos"])]
            assert not clash, (name, p["title"], clash)
        assert all(p.get("targets") for p in panels(top) if p["type"] != "row"), name  # no panel without a query


def datasource_refs(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every `datasource` value and every `uid` below the dashboard's own, anywhere in the JSON."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "datasource" or (k == "uid" and path):
                yield f"{path}.{k}", v
            if k != "datasource":
                yield from datasource_refs(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from datasource_refs(v, f"{path}[{i}]")


def portability_problems(doc: dict[str, Any]) -> list[str]:
    variables = {v["name"]: v for v in doc["templating"]["list"]}
    ds = variables.get("datasource", {})
    problems = [] if ds.get("type") == "datasource" and ds.get("query") == "prometheus" else [
        "no `datasource` variable of type datasource for prometheus"]
    problems += [f"{where} = {value!r}" for where, value in datasource_refs(doc)
                 if value != DATASOURCE and not where.startswith(".templating.list[0].")]
    for p in panels(doc["panels"]):
        if p["type"] != "row" and "datasource" not in p:
            problems.append(f"panel {p['title']!r} has no datasource")
    for v in variables.values():
        if v["type"] == "query" and not re.match(r"label_values\(", v.get("query", "")):
            problems.append(f"variable {v['name']} does not query with label_values")
        if v["type"] == "query" and v.get("datasource") != DATASOURCE:
            problems.append(f"variable {v['name']} does not use the datasource variable")
    return problems


def test_every_panel_query_and_variable_reads_the_datasource_variable() -> None:
    for name, doc in dashboards().items():
        assert portability_problems(doc) == [], name


def test_a_dashboard_with_a_grafana_s_own_datasource_uid_is_reported() -> None:
    doc = dashboards()["gameplane-red.json"]
    doc["panels"][1]["datasource"] = {"type": "prometheus", "uid": "P1809F7CD0C75ACF3"}
    doc["panels"][1]["targets"][0]["datasource"] = {"uid": "P1809F7CD0C75ACF3"}
    doc["templating"]["list"][1]["query"] = "up"
    problems = portability_problems(doc)
    assert len(problems) == 3 and "P1809F7CD0C75ACF3" in problems[0] and "label_values" in problems[2], problems


def test_every_variable_an_expression_uses_is_defined() -> None:
    for name, doc in dashboards().items():
        defined = {v["name"] for v in doc["templating"]["list"]}
        for what, expr in targets(doc):
            used = {a or b for a, b in re.findall(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)", expr)}
            assert used - set(BUILT_IN_VARIABLES) <= defined, (name, what)
        for v in doc["templating"]["list"]:
            used = set(re.findall(r"\$(\w+)", v.get("query", "")))
            assert used <= defined - {v["name"]}, (name, v["name"])


def unparsable(exprs: dict[str, str], tmp_path: Path) -> str:
    """promtool's complaints about `exprs` (record name -> expression) as recording rules; "" when none."""
    rules = {"groups": [{"name": "dashboards", "rules": [{"record": r, "expr": e} for r, e in exprs.items()]}]}
    (tmp_path / "dashboards.yaml").write_text(yaml.safe_dump(rules, sort_keys=False))
    r = promtool("check", "rules", "dashboards.yaml", cwd=tmp_path)
    return "" if r.returncode == 0 else r.stdout + r.stderr


def record_name(what: str) -> str:
    uid, _, panel, ref = what.split()[:4]
    return f"gameplane_dashboard:{uid.replace('-', '_')}:panel_{panel}_{ref}"


def test_every_target_expression_is_valid_promql(tmp_path: Path) -> None:
    exprs = {record_name(what): substitute(expr) for doc in dashboards().values() for what, expr in targets(doc)}
    assert len(exprs) >= 80  # every dashboard's targets, not a few
    assert unparsable(exprs, tmp_path) == ""


def test_a_broken_expression_is_reported_by_promtool(tmp_path: Path) -> None:
    exprs = {"gameplane_dashboard:ok:panel_1_A": substitute('sum by (service) (rate(x_total{service=~"$service"}'
                                                            "[$__rate_interval]))"),
             "gameplane_dashboard:bad:panel_2_A": "sum by (service) (rate(x_total[5m])",
             "gameplane_dashboard:bad:panel_3_A": "rate(x_total)"}
    out = unparsable(exprs, tmp_path)
    assert "panel_2_A" in out and "panel_3_A" in out and "panel_1_A" not in out, out
    with pytest.raises(KeyError, match=r"\$shard"):
        substitute('x{shard="$shard"}')


def metrics_in(expr: str) -> set[str]:
    """Metric names an expression selects (not functions, keywords, labels or durations)."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # label values
    e = re.sub(r"\{[^}]*\}", " ", e)  # label matchers
    e = re.sub(r"\[[^\]]*\]", " ", e)  # ranges and subqueries
    e = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)  # label lists
    e = re.sub(r"\boffset\s+\S+", " ", e)
    names = re.findall(r"(?<![\w.:])([A-Za-z_:][\w:]*)(?![\w:])(?!\s*\()", e)
    return {n for n in names if n not in PROMQL_WORDS}


def exported_names() -> tuple[set[str], list[re.Pattern[str]]]:
    """Metric names written as string literals in the code, and names made by formatting ("..._{}_...")."""
    names: set[str] = set()
    patterns: list[re.Pattern[str]] = []
    for root in CODE:
        for path in root.rglob("*.py"):
            text = path.read_text()
            names |= set(re.findall(r"[\"'](gameplane_[a-z0-9_]+)[\"']", text))
            patterns += [re.compile(re.escape(f).replace(r"\{\}", "[a-z0-9_]+"))
                         for f in re.findall(r"[\"'](gameplane_[a-z0-9_]*\{\}[a-z0-9_{}]*)[\"']", text)]
    return names, patterns


def recorded_names() -> set[str]:
    return {rule["record"] for path in RULES.glob("*.yaml")
            for g in yaml.safe_load(path.read_text())["groups"] for rule in g["rules"] if "record" in rule}


def undefined(used: set[str], names: set[str], patterns: list[re.Pattern[str]], recorded: set[str]) -> set[str]:
    """Of `used`, what nothing exports (as itself, a histogram's series or a counter's _total), records or makes."""

    def defined(m: str) -> bool:
        forms = {m, re.sub(r"_(bucket|sum|count)$", "", m), m.removesuffix("_total")}
        return bool(forms & (names | recorded | PROMETHEUS_BUILT_INS)) or any(
            p.fullmatch(f) for p in patterns for f in forms)

    return {m for m in used if not defined(m)}


def test_every_metric_a_panel_reads_is_exported_recorded_or_made_by_prometheus() -> None:
    names, patterns = exported_names()
    recorded = recorded_names()
    used_all: set[str] = set()
    for name, doc in dashboards().items():
        used = {m for _, expr in targets(doc) for m in metrics_in(expr)}
        used_all |= used
        assert undefined(used, names, patterns, recorded) == set(), name
    # the check looked at the kinds of names it claims to: built-in, exported, formatted, recorded, pending
    assert {"up", "gameplane_http_requests_total", "gameplane_analytics_ftd_total",
            "currency:gameplane_ggr:increase1d", "gameplane_slo:error_ratio:rate1h"} <= used_all


def test_a_panel_reading_a_metric_nobody_exports_is_reported() -> None:
    names, patterns = exported_names()
    assert any(p.fullmatch("gameplane_analytics_stakes_minor_total") for p in patterns)  # formatted names seen
    expr = ('sum by (service) (rate(gameplane_http_request_duration_seconds_bucket{service="x"}[5m])) '
            "/ on (slo) group_left () gameplane_slo:objective:ratio + gameplane_analytics_wins_minor_total "
            "+ gameplane_wallet_fast_batch_size_count + time() + gameplane_http_request_duration_seconds_bukket "
            "+ gameplane_risk_decision_total + gameplane_analytics_stakes_minor + up offset 5m")
    assert undefined(metrics_in(expr), names, patterns, recorded_names()) == {
        "gameplane_http_request_duration_seconds_bukket", "gameplane_risk_decision_total",
        "gameplane_analytics_stakes_minor"}


def test_metric_names_are_read_from_expressions_not_from_functions_labels_or_values() -> None:
    expr = ("histogram_quantile(0.99, sum by (service, le) "
            '(rate(a_bucket{service=~"b|c",le="0.25"}[$__rate_interval])))'
            " / on (slo) group_left () (1 - max by (slo) (d:e:f)) and topk(3, g) unless h offset 10m > bool 0")
    assert metrics_in(substitute(expr)) == {"a_bucket", "d:e:f", "g", "h"}


def declared_labels() -> dict[str, frozenset[str]]:
    """Label names of every metric the code declares under a literal name (prometheus_client's
    Counter/Gauge/Histogram/Summary(name, documentation, labelnames)), read from the source."""
    out: dict[str, frozenset[str]] = {}
    for root in CODE:
        for path in root.rglob("*.py"):
            tree = ast.parse(path.read_text())
            assigned = {t.id: n.value for n in tree.body if isinstance(n, ast.Assign)
                        for t in n.targets if isinstance(t, ast.Name)}
            for node in ast.walk(tree):
                if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name | ast.Attribute)):
                    continue
                kind = node.func.id if isinstance(node.func, ast.Name) else node.func.attr
                if kind not in {"Counter", "Gauge", "Histogram", "Summary"} or not node.args:
                    continue
                if not (isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
                    continue
                labels = node.args[2] if len(node.args) > 2 else next(
                    (k.value for k in node.keywords if k.arg == "labelnames"), None)
                if isinstance(labels, ast.Name):
                    labels = assigned.get(labels.id)
                out[node.args[0].value] = frozenset(
                    e.value for e in getattr(labels, "elts", []) if isinstance(e, ast.Constant))
    return out


Labels = Callable[[str], frozenset[str] | None]


def labels_of(declared: dict[str, frozenset[str]]) -> Labels:
    """metric name -> the labels its series carry once scraped, or None when not known from a declaration
    (a recorded series, a formatted name)."""

    def known(metric: str) -> frozenset[str] | None:
        if metric in PROMETHEUS_BUILT_INS:
            return TARGET_LABELS
        base = re.sub(r"_(bucket|sum|count)$", "", metric)
        for form in (metric, metric.removesuffix("_total"), base):
            if form in declared:
                return TARGET_LABELS | declared[form] | ({"le"} if metric.endswith("_bucket") else set())
        return None

    return known


def label_problems(expr: str, known: Labels) -> list[str]:
    """Labels an expression matches or groups by that its metrics do not carry. Matchers are checked per
    selector; a grouping label must be on some metric of the expression (checked only when all are known)."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    problems = []
    for metric, matchers in re.findall(r"([A-Za-z_:][\w:]*)\s*\{([^}]*)\}", e):
        labels = known(metric)
        for label in re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", matchers) if labels is not None else []:
            if label not in labels:
                problems.append(f"{metric} has no label {label}")
    sets = [known(m) for m in metrics_in(expr)]
    if sets and all(s is not None for s in sets):
        have = frozenset().union(*sets)
        for clause in re.findall(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)", e):
            problems += [f"no metric has label {lb}" for lb in re.split(r"[,\s]+", clause.strip())
                         if lb and lb not in have]
    return problems


def test_every_label_a_panel_or_variable_uses_is_on_its_metric() -> None:
    declared = declared_labels()
    assert declared["gameplane_http_requests_total"] == {"service", "method", "route", "status"}
    known = labels_of(declared)
    checked = 0
    for name, doc in dashboards().items():
        for what, expr in targets(doc):
            assert label_problems(substitute(expr), known) == [], (name, what)
            checked += 1
        for v in doc["templating"]["list"]:
            m = re.fullmatch(r"label_values\((.+), *(\w+)\)", v.get("query", ""))
            if m:
                selector, label = substitute(m.group(1)), m.group(2)
                assert label_problems(selector, known) == [], (name, v["name"])
                (metric,) = metrics_in(selector)
                assert label in (known(metric) or {label}), (name, v["name"])
    assert checked >= 80


def test_a_panel_grouping_or_matching_by_a_label_its_metric_lacks_is_reported() -> None:
    known = labels_of(declared_labels())
    expr = ('sum by (tier, psp) (rate(gameplane_payments_webhook_rejections_total{reason="bad"}[5m])) '
            '+ on (service) histogram_quantile(0.99, sum by (le) (rate(gameplane_risk_decision_seconds_bucket'
            '{namespace="x"}[5m]))) + sum by (kind) (gameplane_games_rounds_total{outcome="ok"})')
    assert sorted(label_problems(expr, known)) == [
        "gameplane_games_rounds_total has no label outcome",
        "gameplane_payments_webhook_rejections_total has no label reason", "no metric has label tier"]
    # a recorded series' labels are not known here: its expression is not judged by grouping
    assert label_problems("sum by (anything) (currency:gameplane_ggr:increase1d)", known) == []


def panels_by_dashboard() -> dict[str, set[str]]:
    return {d["title"]: {p["title"] for p in panels(d["panels"])} for d in dashboards().values()}


def misplaced_panels(text: str, boards: dict[str, set[str]]) -> list[str]:
    """Panels a runbook names on a dashboard ('dashboard "<title>", panel *<panel>*') that are not on it
    (tests/unit/test_alert_runbooks.py checks that each title and panel exists somewhere)."""
    text = " ".join(text.split())
    out = []
    pattern = r'[Dd]ashboard "([^"]+)",? (?:service `[^`]+`, )?(?:the )?panels? \*([^*]+)\*(?: and \*([^*]+)\*)?'
    for m in re.finditer(pattern, text):
        board = boards.get(m.group(1))
        if board is None:
            out.append(f"no dashboard {m.group(1)!r}")
            continue
        out += [f"panel {p!r} is not on {m.group(1)!r}" for p in m.groups()[1:] if p and p not in board]
    return out


def test_a_panel_a_runbook_names_on_a_dashboard_is_on_that_dashboard() -> None:
    boards = panels_by_dashboard()
    named = 0
    for page in sorted((REPO / "docs" / "runbooks").glob("*.md")):
        text = page.read_text()
        named += len(re.findall(r'[Dd]ashboard "[^"]+",? (?:service `[^`]+`, )?(?:the )?panels? \*',
                                " ".join(text.split())))
        assert misplaced_panels(text, boards) == [], page.name
    assert named >= 10  # the references are there to check


def test_a_runbook_naming_a_panel_on_the_wrong_dashboard_is_reported() -> None:
    text = ('Dashboard "gameplane / services (RED)", panel *Reconciliation breaches found by the latest run\n'
            '(must be 0)*; dashboard "gameplane / wallet and ledger", panels *Requests per second* and '
            '*Time since the latest reconciliation run*; dashboard "gameplane / RED", panel *Latency p50 / p99*.')
    assert misplaced_panels(text, panels_by_dashboard()) == [
        "panel 'Reconciliation breaches found by the latest run (must be 0)' is not on 'gameplane / services (RED)'",
        "panel 'Requests per second' is not on 'gameplane / wallet and ledger'", "no dashboard 'gameplane / RED'"]


def test_the_architecture_document_lists_every_dashboard() -> None:
    text = (REPO / "docs" / "architecture.md").read_text()
    missing = [d["title"] for d in dashboards().values() if f"`{d['title']}`" not in text]
    assert missing == []
