"""`gameplane-operator`: run the operator (kopf) with its liveness endpoint and metrics.

    gameplane-operator [--namespace NS ...] [--workers N] [--health-port P] [--metrics-port P]

Flags become GAMEPLANE_OPERATOR_* settings (config.py), read when the operator starts.
"""

from __future__ import annotations

import argparse
import logging
import os

import kopf


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="gameplane-operator", description=__doc__.splitlines()[0])
    parser.add_argument("--namespace", action="append", default=[], help="watch only this namespace (repeatable)")
    parser.add_argument("--workers", type=int, default=int(os.environ.get("GAMEPLANE_OPERATOR_WORKERS", "4")))
    parser.add_argument("--health-port", type=int, default=8080, help="kopf liveness endpoint (/healthz); 0 = off")
    parser.add_argument("--metrics-port", type=int, default=9090, help="Prometheus /metrics; 0 = off")
    parser.add_argument("--bind", default=os.environ.get("GAMEPLANE_OPERATOR_BIND", "0.0.0.0"),
                        help="address of both endpoints")  # fmt: skip
    args = parser.parse_args(argv)

    logging.basicConfig(
        level=os.environ.get("GAMEPLANE_OPERATOR_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if logging.getLogger().level > logging.DEBUG:
        # kopf logs every handled child event at INFO ("Handler ... succeeded"): thousands a minute.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    os.environ["GAMEPLANE_OPERATOR_WORKERS"] = str(args.workers)
    os.environ["GAMEPLANE_OPERATOR_METRICS_PORT"] = str(args.metrics_port)
    os.environ["GAMEPLANE_OPERATOR_METRICS_HOST"] = args.bind

    from . import handlers  # noqa: F401  (registers the handlers with kopf)

    kopf.run(
        standalone=True,  # one replica (Recreate): no peering objects to keep
        clusterwide=not args.namespace,
        namespaces=args.namespace,
        liveness_endpoint=f"http://{args.bind}:{args.health_port}/healthz" if args.health_port else None,
    )


if __name__ == "__main__":
    main()
