"""Fruit Fives: a 5-reel, 3-row, 10-line slot with wilds and scatters.

The maths is the game: reel strips, paytable and lines below fully determine the return to player.
`exact_rtp()` derives the RTP from them without sampling:

* Line wins. A stop on a reel is uniform, so the symbol under any row of that reel has the
  strip's symbol frequencies, and reels are independent. Every line therefore has the same pay
  distribution; enumerating the 9^5 symbol 5-tuples weighted by their per-reel counts gives the
  expected pay of one line in line bets, which is exactly the line part of the RTP
  (10 lines x E[pay] x stake/10 divided by the stake).
* Scatter wins. Pay on the number of scatters anywhere in the 3x5 window; the per-reel
  distribution of visible scatters comes from walking every stop, then the reels are convolved.

No money here: pays are multiples of the line bet (lines) or of the total stake (scatters).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from itertools import product

GAME_ID = "fruit-fives"
TITLE = "Fruit Fives"

WILD = "W"
SCATTER = "S"
SYMBOLS = "WS7BLPOMC"  # wild, scatter, seven, bar, bell, plum, orange, lemon, cherry
SYMBOL_NAMES = {"W": "Wild", "S": "Scatter", "7": "Seven", "B": "Bar", "L": "Bell", "P": "Plum", "O": "Orange",
                "M": "Lemon", "C": "Cherry"}
ROWS = 3
# The stakes the game offers (minor units; each splits over the 10 lines). The platform may allow
# fewer in a currency (its catalogue's stake range) and refuses the others.
STAKES: tuple[int, ...] = (10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)

REELS: tuple[str, ...] = (
    "7O7OLOMLWCPMPCBBPSCMWLWMC",
    "WCMOCPBPCLOBWMLOPCM7SWL7M",
    "MW7OM7LWCLWOCPBMPSPLCOBCM",
    "CPOMMOPCWCOLL7W7PLMWCSBBM",
    "P7LOWCMLW7WLOCMPCBMPCBSMO",
)

# Row (0 = top) of the symbol each line reads on reels 1..5.
LINES: tuple[tuple[int, int, int, int, int], ...] = (
    (1, 1, 1, 1, 1),
    (0, 0, 0, 0, 0),
    (2, 2, 2, 2, 2),
    (0, 1, 2, 1, 0),
    (2, 1, 0, 1, 2),
    (0, 0, 1, 2, 2),
    (2, 2, 1, 0, 0),
    (1, 0, 0, 0, 1),
    (1, 2, 2, 2, 1),
    (1, 0, 1, 2, 1),
)

# Pays for 3, 4 and 5 of a kind from the leftmost reel, in line bets.
LINE_PAYS: dict[str, tuple[int, int, int]] = {
    "W": (20, 60, 300),
    "7": (13, 50, 200),
    "B": (10, 30, 120),
    "L": (7, 20, 80),
    "P": (5, 13, 50),
    "O": (4, 10, 40),
    "M": (3, 8, 25),
    "C": (3, 7, 20),
}
# Pays for scatters anywhere in the window, in total stakes.
SCATTER_PAYS: dict[int, int] = {3: 2, 4: 10, 5: 50}


def line_pay(symbols: Sequence[str]) -> tuple[str, int, int]:
    """(paying symbol, run length, pay in line bets) of one line read left to right.

    Wild substitutes for every symbol but the scatter. A run of leading wilds may pay more as
    wilds than as the symbol it completes, so both are valued and the larger is paid.
    """
    first = symbols[0]
    if first == SCATTER:
        return SCATTER, 0, 0
    target = next((s for s in symbols if s != WILD), WILD)
    if target == SCATTER:
        target = WILD
    run = 0
    for s in symbols:
        if s == target or s == WILD:
            run += 1
        else:
            break
    wilds = 0
    while wilds < len(symbols) and symbols[wilds] == WILD:
        wilds += 1
    best = (target, run, LINE_PAYS[target][run - 3] if run >= 3 else 0)
    if wilds >= 3 and LINE_PAYS[WILD][wilds - 3] > best[2]:
        best = (WILD, wilds, LINE_PAYS[WILD][wilds - 3])
    return best if best[2] else (best[0], best[1], 0)


def window(stops: Sequence[int]) -> list[str]:
    """The visible 3 symbols of each reel (a column per reel, top row first)."""
    return [''.join(reel[(stop + r) % len(reel)] for r in range(ROWS)) for reel, stop in zip(REELS, stops, strict=True)]


@dataclass(frozen=True)
class LineWin:
    line: int
    symbol: str
    count: int
    pay: int  # line bets


@dataclass(frozen=True)
class Outcome:
    stops: tuple[int, ...]
    window: list[str]
    line_wins: list[LineWin]
    scatters: int
    scatter_pay: int  # total stakes

    @property
    def line_pay_total(self) -> int:
        return sum(w.pay for w in self.line_wins)

    def win_amount(self, stake: int) -> int:
        """Win in minor units for a stake in minor units; the stake must split evenly over the lines."""
        if stake % len(LINES):
            raise ValueError(f"stake {stake} does not split over {len(LINES)} lines")
        return stake // len(LINES) * self.line_pay_total + stake * self.scatter_pay


def evaluate(stops: Sequence[int]) -> Outcome:
    cols = window(stops)
    wins = []
    for i, rows in enumerate(LINES):
        sym, count, pay = line_pay([cols[reel][row] for reel, row in enumerate(rows)])
        if pay:
            wins.append(LineWin(i, sym, count, pay))
    scatters = sum(col.count(SCATTER) for col in cols)
    return Outcome(tuple(stops), cols, wins, scatters, SCATTER_PAYS.get(scatters, 0))


def spin(rng: random.Random) -> Outcome:
    return evaluate([rng.randrange(len(reel)) for reel in REELS])


# ---- exact maths --------------------------------------------------------------------------------

def line_rtp() -> Fraction:
    counts = [{s: reel.count(s) for s in SYMBOLS} for reel in REELS]
    total = 1
    for reel in REELS:
        total *= len(reel)
    expected = 0
    for combo in product(SYMBOLS, repeat=len(REELS)):
        weight = 1
        for reel_counts, s in zip(counts, combo, strict=True):
            weight *= reel_counts[s]
            if not weight:
                break
        if weight:
            expected += weight * line_pay(combo)[2]
    return Fraction(expected, total)


def scatter_distribution() -> dict[int, Fraction]:
    """P(n scatters visible in the window), exact."""
    dist: dict[int, Fraction] = {0: Fraction(1)}
    for reel in REELS:
        per_reel: dict[int, int] = {}
        for stop in range(len(reel)):
            n = sum(reel[(stop + r) % len(reel)] == SCATTER for r in range(ROWS))
            per_reel[n] = per_reel.get(n, 0) + 1
        nxt: dict[int, Fraction] = {}
        for have, p in dist.items():
            for n, c in per_reel.items():
                nxt[have + n] = nxt.get(have + n, Fraction(0)) + p * Fraction(c, len(reel))
        dist = nxt
    return dist


def scatter_rtp() -> Fraction:
    return sum((p * SCATTER_PAYS.get(n, 0) for n, p in scatter_distribution().items()), Fraction(0))


def exact_rtp() -> Fraction:
    return line_rtp() + scatter_rtp()


def rtp_basis_points() -> int:
    """Certified RTP as the catalog stores it (basis points, rounded down)."""
    rtp = exact_rtp()
    return rtp.numerator * 10000 // rtp.denominator


# ---- fast simulation (no HTTP, no money) ----------------------------------------------------------

@dataclass(frozen=True)
class Simulation:
    spins: int
    staked: int  # line bets
    won: int  # line bets

    @property
    def rtp(self) -> float:
        return self.won / self.staked


def simulate(spins: int, seed: int) -> Simulation:
    """Play `spins` spins with a seeded RNG, using the same `line_pay` through a lookup table.

    Each reel stop is pre-reduced to its three row codes (symbol index scaled by the reel's
    base-9 place) and its visible scatter count, so a spin costs five random draws, ten table
    lookups and no allocation beyond a small list.
    """
    base = len(SYMBOLS)
    index = {s: i for i, s in enumerate(SYMBOLS)}
    table = [0] * base ** len(REELS)
    for combo in product(SYMBOLS, repeat=len(REELS)):
        code = 0
        for s in combo:
            code = code * base + index[s]
        table[code] = line_pay(combo)[2]
    lines = len(LINES)
    scatter_table = [SCATTER_PAYS.get(n, 0) * lines for n in range(ROWS * len(REELS) + 1)]
    stops: list[list[tuple[tuple[int, int, int], int]]] = []
    for r, reel in enumerate(REELS):
        place = base ** (len(REELS) - 1 - r)
        per_stop = []
        for stop in range(len(reel)):
            rows = [reel[(stop + k) % len(reel)] for k in range(ROWS)]
            per_stop.append(((index[rows[0]] * place, index[rows[1]] * place, index[rows[2]] * place),
                             rows.count(SCATTER)))
        stops.append(per_stop)
    s0, s1, s2, s3, s4 = stops
    n0, n1, n2, n3, n4 = (len(r) for r in REELS)
    rand = random.Random(seed).random
    won = 0
    for _ in range(spins):
        a, sa = s0[int(rand() * n0)]
        b, sb = s1[int(rand() * n1)]
        c, sc = s2[int(rand() * n2)]
        d, sd = s3[int(rand() * n3)]
        e, se = s4[int(rand() * n4)]
        won += scatter_table[sa + sb + sc + sd + se]
        for r0, r1, r2, r3, r4 in LINES:
            won += table[a[r0] + b[r1] + c[r2] + d[r3] + e[r4]]
    return Simulation(spins, spins * lines, won)
