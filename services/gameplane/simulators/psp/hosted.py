"""The hosted payment page: plain HTML with one form, so a browser, or any HTTP client posting the
form, can pay, be declined or cancel."""

from __future__ import annotations

from html import escape

from gameplane.kit.money import exponent
from gameplane.simulators.psp.store import Payment


def _amount(p: Payment) -> str:
    exp = exponent(p.currency)
    return f"{p.amount / 10**exp:.{exp}f} {p.currency}" if exp else f"{p.amount} {p.currency}"


def page(p: Payment, *, error: str | None = None) -> str:
    brand = "SimPSP" if p.dialect == "simpsp" else "CardGW Checkout"
    if p.status != "open":
        body = f"<p id=\"status\" data-status=\"{escape(p.status)}\">This payment is {escape(p.status)}.</p>"
    else:
        err = f"<p id=\"error\" role=\"alert\">{escape(error)}</p>" if error else ""
        body = f"""{err}
<form id="payment-form" method="post" action="/pay/{escape(p.psp_reference)}">
  <fieldset><legend>Pay with</legend>
    <label><input type="radio" name="method" value="card" checked> Card</label>
    <label><input type="radio" name="method" value="ewallet"> E-wallet</label>
  </fieldset>
  <label>Card number <input name="card_number" inputmode="numeric" autocomplete="cc-number"
         placeholder="4242 4242 4242 4242"></label>
  <label>E-wallet account <input name="wallet_account" type="email" placeholder="you@example.com"></label>
  <button type="submit" name="action" value="pay">Pay {escape(_amount(p))}</button>
  <button type="submit" name="action" value="cancel" formnovalidate>Cancel</button>
</form>"""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{brand}: pay {escape(_amount(p))}</title></head>
<body><h1>{brand}</h1>
<p>Payment <code>{escape(p.psp_reference)}</code>: <strong id="amount">{escape(_amount(p))}</strong></p>
{body}
</body></html>"""
