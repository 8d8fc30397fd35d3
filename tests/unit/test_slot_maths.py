"""Fruit Fives: the stated RTP is derived exactly from the reels, and play matches it."""

from __future__ import annotations

import json
import random
from fractions import Fraction
from importlib import resources

import pytest

from gameplane.simulators.rgs import slot


def test_rtp_over_a_million_spins_is_within_half_a_point_of_the_stated_rtp() -> None:
    stated = float(slot.exact_rtp())
    sim = slot.simulate(1_000_000, seed=20261124)
    assert sim.spins == 1_000_000
    assert abs(sim.rtp - stated) < 0.005, (sim.rtp, stated)


def test_stated_rtp_is_the_catalog_rtp() -> None:
    assert slot.rtp_basis_points() == 9640
    seed = json.loads(resources.files("gameplane.games").joinpath("catalog_seed.json").read_text())
    entry = next(g for g in seed if g["game_id"] == slot.GAME_ID)
    assert entry["rtp_bp"] == slot.rtp_basis_points()


def test_no_spin_can_win_more_than_the_catalogued_maximum_multiplier() -> None:
    """games refuses wins above stake x max_win_multiplier: the game's own ceiling must sit below it.
    Ceiling: every line paying the best line pay (in line bets, stake/lines each) plus the best scatter pay."""
    ceiling = max(p for pays in slot.LINE_PAYS.values() for p in pays) + max(slot.SCATTER_PAYS.values())
    seed = json.loads(resources.files("gameplane.games").joinpath("catalog_seed.json").read_text())
    entry = next(g for g in seed if g["game_id"] == slot.GAME_ID)
    assert ceiling <= entry["max_win_multiplier"] < 10 * ceiling
    rng = random.Random(11)
    assert max(slot.spin(rng).win_amount(10) for _ in range(50_000)) <= 10 * entry["max_win_multiplier"]


def test_exact_rtp_splits_into_lines_and_scatters() -> None:
    assert slot.exact_rtp() == slot.line_rtp() + slot.scatter_rtp()
    dist = slot.scatter_distribution()
    assert sum(dist.values()) == 1
    # one scatter per 25-stop reel: a reel shows it on 3 stops of 25
    p = Fraction(3, 25)
    assert dist[5] == p ** 5


def test_simulate_pays_exactly_what_evaluate_pays_on_the_same_stops() -> None:
    """simulate()'s lookup tables and the game's own evaluate() are the same maths: replaying
    simulate's draws (five per spin, `int(random() * len(reel))`) through evaluate pays the same,
    to the line bet."""
    spins, seed = 20_000, 7
    rand = random.Random(seed).random
    won = 0
    paying = 0
    for _ in range(spins):
        out = slot.evaluate([int(rand() * len(reel)) for reel in slot.REELS])
        paid = out.line_pay_total + out.scatter_pay * len(slot.LINES)
        won += paid
        paying += paid > 0
    sim = slot.simulate(spins, seed)
    assert (sim.spins, sim.staked) == (spins, spins * len(slot.LINES))
    assert paying > spins // 10 and sim.won == won
    assert slot.simulate(spins, seed + 1).won != won  # another seed, other draws: the match is not vacuous


@pytest.mark.parametrize(("symbols", "expected"), [
    ("777BC", ("7", 3, 13)),
    ("77777", ("7", 5, 200)),
    ("W77LC", ("7", 3, 13)),          # wild completes the run
    ("WWW7C", ("7", 4, 50)),          # wilds count for the symbol they complete
    ("WWWCL", ("W", 3, 20)),          # ... unless pure wilds pay more
    ("WWWWW", ("W", 5, 300)),
    ("S7777", ("S", 0, 0)),           # a scatter never pays on a line
    ("77S77", ("7", 2, 0)),           # and breaks the run
    ("C7CCC", ("C", 1, 0)),
])
def test_line_pays(symbols: str, expected: tuple[str, int, int]) -> None:
    assert slot.line_pay(symbols) == expected


def test_win_amount_in_minor_units() -> None:
    out = slot.Outcome((0,) * 5, [], [slot.LineWin(0, "7", 3, 13), slot.LineWin(3, "C", 3, 3)], 3, 2)
    assert out.win_amount(100) == 100 // 10 * 16 + 100 * 2
    with pytest.raises(ValueError):
        out.win_amount(105)


def test_evaluate_reads_the_window_and_lines() -> None:
    out = slot.evaluate([0, 0, 0, 0, 0])
    assert out.window == [reel[:3] for reel in slot.REELS]
    for win in out.line_wins:
        rows = slot.LINES[win.line]
        symbols = [out.window[r][row] for r, row in enumerate(rows)]
        assert slot.line_pay(symbols)[2] == win.pay
