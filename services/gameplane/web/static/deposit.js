// Back from the payment page: the PSP's webhook may land a moment after the player does. Reload
// until the deposit is credited or final (a few tries, then the page says to look in the cashier).
(function () {
  "use strict";
  var state = document.getElementById("deposit-state");
  if (!state || !state.dataset.reference) { return; }
  if (state.dataset.state !== "pending" && !(state.dataset.state === "succeeded" && !state.textContent.match(/in your balance/))) { return; }
  var tries = 0;
  var poll = function () {
    tries += 1;
    fetch("/cashier/payments/" + encodeURIComponent(state.dataset.reference), { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.json(); })
      .then(function (p) {
        if ((p.state === "succeeded" && p.credited) || (p.state !== "pending" && p.state !== "succeeded")) {
          window.location.reload();
        } else if (tries < 60) { window.setTimeout(poll, 500); }
      });
  };
  window.setTimeout(poll, 300);
}());
