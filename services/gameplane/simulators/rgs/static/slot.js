// Fruit Fives' play page: one spin per press through the simulator's JSON endpoint, then the
// reels, balance and free spins from its answer, and a round message to the framing casino site.
"use strict";

(function () {
  const slot = document.getElementById("slot");
  if (!slot) return;
  const token = slot.dataset.token;
  const parentOrigin = slot.dataset.parent;
  const currency = slot.dataset.currency;
  const form = document.getElementById("spin-form");
  const stake = document.getElementById("stake");
  const button = document.getElementById("spin");
  const balance = document.getElementById("balance");
  const result = document.getElementById("result");
  const reels = document.getElementById("reels");
  const free = document.getElementById("free-spins");
  const freeCount = document.getElementById("free-count");
  const names = {W: "Wild", S: "Scatter", 7: "Seven", B: "Bar", L: "Bell", P: "Plum", O: "Orange", M: "Lemon",
                 C: "Cherry"};
  let ended = false;

  // Integer minor units to "12.34 EUR", as the server renders it (no floating point on money).
  function money(minor) {
    const sign = minor < 0 ? "-" : "";
    const abs = Math.abs(minor);
    return `${sign}${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, "0")} ${currency}`;
  }

  function showBalance(minor) {
    balance.dataset.balance = String(minor);
    balance.textContent = money(minor);
  }

  function showFreeSpins(left) {
    freeCount.textContent = String(left);
    free.hidden = !(left > 0);
    button.textContent = left > 0 ? "Play free spin" : "Spin";
  }

  function showReels(columns) {
    reels.querySelectorAll(".reel").forEach((reel, i) => {
      reel.querySelectorAll(".sym").forEach((cell, row) => {
        const symbol = columns[i][row];
        cell.className = `sym sym-${symbol}`;
        cell.textContent = names[symbol] || symbol;
      });
    });
  }

  function outcome(body, round) {
    if (body.stopped) return body.stopped_reason;
    if (!round) return "No spin was played.";
    if (round.status === "rolled_back") return "The spin could not be completed and was cancelled; your stake is back.";
    if (round.status === "win_pending") return "Your win is on its way; the balance will show it shortly.";
    if (round.status === "refused") return "The casino refused this free spin.";
    const said = round.win > 0 ? `you won ${money(round.win)}.` : "no win this time.";
    return round.free_spin_award_id ? `Free spin: ${said}` : said.charAt(0).toUpperCase() + said.slice(1);
  }

  async function spin() {
    button.disabled = true;
    reels.setAttribute("aria-busy", "true");
    reels.classList.add("spinning");
    result.textContent = "Spinning…";
    try {
      const response = await fetch(`/sessions/${encodeURIComponent(token)}/spins`, {
        method: "POST",
        headers: {"content-type": "application/json", "accept": "application/json"},
        body: JSON.stringify({count: 1, stake: Number(stake.value), include_rounds: true}),
      });
      const body = await response.json();
      if (!response.ok) {
        result.textContent = body.detail || body.title || "The spin was refused.";
        return;
      }
      const round = body.rounds[body.rounds.length - 1];
      if (round && round.window.length) showReels(round.window);
      showBalance(body.balance);
      showFreeSpins(body.free_spins_left);
      result.textContent = outcome(body, round);
      ended = body.session_ended;
      if (round && parentOrigin && window.parent !== window) {
        window.parent.postMessage({type: slot.dataset.messageType, balance: body.balance, currency: body.currency,
                                   round_id: round.round_id}, parentOrigin);
      }
    } catch (error) {
      result.textContent = "The game server did not answer. Try again; a spin in doubt is settled or cancelled.";
    } finally {
      reels.classList.remove("spinning");
      reels.setAttribute("aria-busy", "false");
      button.disabled = ended;
      stake.disabled = ended;
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!button.disabled) spin();
  });
  showFreeSpins(Number(freeCount.textContent));
})();
