"""`python -m gameplane.payments` serves; `python -m gameplane.payments reconcile --date YYYY-MM-DD`
runs one day's reconciliation against the configured PSPs, database and wallet, prints the
mismatches as JSON and exits 1 when there are any."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import date

from gameplane.kit.app import serve
from gameplane.payments.app import build_app
from gameplane.payments.settings import PaymentsSettings


async def _reconcile(day: date, psp: str | None) -> int:
    from gameplane.payments.reconcile import reconcile_day

    app = build_app(PaymentsSettings(nats_url=None))
    rt = app.state.runtime
    await rt.start()
    try:
        run = await reconcile_day(rt, day, [psp] if psp else None)
    finally:
        await rt.stop()
    print(run.model_dump_json(indent=2))
    return 1 if run.mismatches else 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] == "reconcile":
        parser = argparse.ArgumentParser(prog="python -m gameplane.payments reconcile")
        parser.add_argument("--date", required=True, type=date.fromisoformat, help="the settlement day, YYYY-MM-DD")
        parser.add_argument("--psp", default=None)
        ns = parser.parse_args(args[1:])
        return asyncio.run(_reconcile(ns.date, ns.psp))
    settings = PaymentsSettings()
    serve(build_app(settings), settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
