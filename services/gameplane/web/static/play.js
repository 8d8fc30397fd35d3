// The game frame's companion: after each round the studio's page posts {type: "gameplane.round"};
// the balance shown is then read again from this site's /balance (the wallet's own figure): the
// number inside the message is never trusted. Reality checks: a prompt every N minutes of the
// session with the session time and net position, read from the site.
(function () {
  "use strict";
  var play = document.getElementById("play");
  var shown = document.getElementById("balance");
  if (!play || !shown) { return; }
  var rgsOrigin = play.dataset.rgsOrigin;
  var sessionId = play.dataset.session;
  var pending = null;

  function refreshBalance() {
    // Rounds can end faster than the wallet answers: one read at a time, the latest wins.
    if (pending) { pending.again = true; return; }
    pending = { again: false };
    var currency = shown.dataset.currency || "";
    fetch("/balance?currency=" + encodeURIComponent(currency), { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { if (!r.ok) { throw new Error(String(r.status)); } return r.json(); })
      .then(function (b) { shown.textContent = b.display; shown.dataset.total = String(b.total); })
      .catch(function () { shown.textContent = "unavailable"; })
      .finally(function () {
        var again = pending.again; pending = null;
        if (again) { refreshBalance(); }
      });
  }

  window.addEventListener("message", function (event) {
    if (event.origin !== rgsOrigin) { return; }
    var data = event.data;
    if (!data || data.type !== "gameplane.round") { return; }
    shown.dataset.rounds = String(Number(shown.dataset.rounds || 0) + 1);
    refreshBalance();
  });

  var minutes = Number(play.dataset.realityMinutes || 0);
  var dialog = document.getElementById("reality");
  if (minutes > 0 && dialog && typeof dialog.showModal === "function") {
    var started = Date.parse(play.dataset.started);
    var shownChecks = Math.floor((Date.now() - started) / (minutes * 60000));
    var check = function () {
      var due = Math.floor((Date.now() - started) / (minutes * 60000));
      if (due <= shownChecks || dialog.open) { return; }
      shownChecks = due;
      fetch("/play/" + encodeURIComponent(sessionId) + "/reality", { credentials: "same-origin", cache: "no-store" })
        .then(function (r) { return r.json(); })
        .then(function (r) {
          document.getElementById("reality-minutes").textContent = String(r.minutes);
          document.getElementById("reality-net").textContent = r.net_display;
          dialog.showModal();
        });
    };
    document.getElementById("reality-continue").addEventListener("click", function () { dialog.close(); });
    window.setInterval(check, 5000);
  }
}());
