"""What only a laptop or a test needs, never a pod: embedded PostgreSQL and NATS (infra), the
in-process platform of the service tests (inprocess), the `gameplane up` process harness of the
system tests and benches (harness), and test helpers (testing).

Installed with the `dev` extra; the service image has neither this package's dependencies nor a
reason to import it.
"""
