"""`gameplane load`'s pure parts: the mix, the schedule it gives, and the summary's arithmetic."""

from __future__ import annotations

import http.server
import itertools
import json
import threading
from collections import Counter

import pytest

from gameplane.cli.loadstats import MixError, Stats, parse_mix, percentile, schedule


def test_mix_names_weights_and_unnamed_actions_weigh_nothing():
    assert parse_mix("deposit=2, play=5") == {"deposit": 2, "play": 5, "withdraw": 0}
    assert parse_mix("withdraw=1,") == {"deposit": 0, "play": 0, "withdraw": 1}


@pytest.mark.parametrize("bad", ["", "deposit=0,play=0", "spin=3", "play", "play=1.5", "play=-1", "play=x"])
def test_a_mix_that_cannot_be_scheduled_is_refused(bad: str):
    with pytest.raises(MixError):
        parse_mix(bad)


def test_every_window_of_the_schedule_holds_each_action_its_weight():
    weights = {"deposit": 1, "play": 4, "withdraw": 2}
    actions = list(itertools.islice(schedule(weights), 7 * 20))
    for start in range(0, len(actions), 7):
        assert Counter(actions[start:start + 7]) == Counter({"deposit": 1, "play": 4, "withdraw": 2})


def test_the_schedule_spreads_the_heavy_action_instead_of_bursting_it():
    actions = list(itertools.islice(schedule({"deposit": 1, "play": 4, "withdraw": 1}), 60))
    longest = max(len(list(run)) for _, run in itertools.groupby(actions))
    assert longest <= 2  # 4 of 6 are plays; a naive schedule would run 4 in a row
    assert actions[:6].count("deposit") == 1  # a short run still deposits


def test_an_action_weighing_nothing_never_runs():
    actions = set(itertools.islice(schedule({"deposit": 0, "play": 3, "withdraw": 0}), 50))
    assert actions == {"play"}


def test_nearest_rank_percentiles():
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert percentile(values, 50) == 50.0
    assert percentile(values, 95) == 95.0
    assert percentile(values, 100) == 100.0
    assert percentile([7.0], 95) == 7.0
    assert percentile([], 50) is None


def test_summary_counts_errors_by_kind_and_only_5xx_as_server_errors():
    stats = Stats()
    for ms in (10, 20, 30, 40):
        stats.record("play", ms / 1000)
    stats.record("play", 0.5, error="503 dependency-unavailable")
    stats.record("deposit", 0.1, error="422 validation-error")
    stats.record("deposit", 0.2, error="ConnectTimeout")
    stats.record("withdraw", 0.05, outcome="review")
    stats.record("register", 2.0)  # sign-up comes before the timed phase: not in the rate
    summary = stats.summary(elapsed=4.0)
    assert summary["actions_done"] == 9 and summary["errors"] == 3
    assert summary["server_errors"] == 1  # a 4xx or a lost connection is not the platform's 5xx
    assert summary["rate_per_s"] == 2.0
    assert summary["actions"]["play"] == {"count": 5, "ok": 4, "errors": 1, "p50_ms": 30.0, "p95_ms": 500.0}
    assert summary["actions"]["withdraw"]["ok"] == 1
    assert summary["errors_by_kind"] == {"play 503 dependency-unavailable": 1, "deposit 422 validation-error": 1,
                                         "deposit ConnectTimeout": 1}
    assert summary["outcomes"] == {"withdraw review": 1}


def test_an_empty_run_summarises_without_dividing_by_zero():
    summary = Stats().summary(elapsed=0.0)
    assert summary["actions_done"] == 0 and summary["rate_per_s"] == 0.0 and summary["actions"] == {}


def test_the_command_refuses_a_bad_mix_or_a_missing_platform_without_a_traceback(tmp_path):
    from typer.testing import CliRunner

    from gameplane.cli.main import app

    runner = CliRunner()
    bad_mix = runner.invoke(app, ["load", "--mix", "spin=1", "--data-dir", str(tmp_path)])
    assert bad_mix.exit_code == 2 and "--mix" in bad_mix.output and bad_mix.exception is not None
    assert isinstance(bad_mix.exception, SystemExit)
    nothing = runner.invoke(app, ["load", "--data-dir", str(tmp_path / "none")])
    assert nothing.exit_code == 2 and "gameplane up" in nothing.output
    assert isinstance(nothing.exception, SystemExit)


class _Failing(http.server.BaseHTTPRequestHandler):
    """A platform that answers every request 503 problem+json, as a gateway with its upstreams down."""

    def _answer(self) -> None:
        body = json.dumps({"type": "https://gameplane.io/problems/service-unavailable", "status": 503,
                           "detail": "players unreachable"}).encode()
        self.send_response(503)
        self.send_header("content-type", "application/problem+json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args: object) -> None:
        pass


def test_a_failing_platform_is_counted_not_fatal_and_the_command_exits_1(tmp_path):
    # Negative control for the system test's "no 5xx": the summary does see a platform's 5xx.
    from typer.testing import CliRunner

    from gameplane.cli.main import app
    from gameplane.devtools import localsecrets

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Failing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    localsecrets.write(tmp_path, {"services": {"gateway": url, "rgs": url, "psp": url}})
    try:
        result = CliRunner().invoke(app, ["load", "--data-dir", str(tmp_path), "--players", "3", "--duration", "1",
                                          "--json"])
    finally:
        server.shutdown()
    assert result.exit_code == 1, result.output
    summary = json.loads(result.stdout[result.stdout.index("{"):])
    assert list(summary["actions"]) == ["register"]  # nobody got in: no login, no action after
    assert {k: summary["actions"]["register"][k] for k in ("count", "ok", "errors")} == {"count": 3, "ok": 0,
                                                                                       "errors": 3}
    assert summary["errors_by_kind"] == {"register 503 service-unavailable": 3}
    assert summary["error_examples"] == {"register 503 service-unavailable": "players unreachable"}
    assert summary["server_errors"] == 3


def test_a_gateway_given_alone_is_enough_to_run_against_a_cluster(tmp_path):
    # A platform in a cluster has no local secrets file: --gateway alone runs (here against a
    # platform answering 503, which the summary counts), where no platform at all is refused above.
    from typer.testing import CliRunner

    from gameplane.cli.main import app

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Failing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        result = CliRunner().invoke(app, ["load", "--data-dir", str(tmp_path / "none"), "--gateway", url,
                                          "--players", "2", "--duration", "1", "--json"])
    finally:
        server.shutdown()
    assert result.exit_code == 1, result.output
    summary = json.loads(result.stdout[result.stdout.index("{"):])
    assert summary["target"] == {"gateway": url, "rgs": None, "psp": None}
    assert summary["actions"]["register"]["count"] == 2
