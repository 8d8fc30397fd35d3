"""PSP adapters, built from settings: `build(name, settings) -> PspAdapter`.

PLACEHOLDER written by the payments helper: the psp helper's module (with the `simpsp` and
`cardgw` adapters) replaces it on merge. Until then no adapter is registered here and payments is
given its adapters by the caller (tests pass them to `build_app(adapters=...)`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gameplane.payments.adapters.base import PspAdapter

REGISTRY: dict[str, Callable[[str, Any], PspAdapter]] = {}


def build(name: str, settings: Any) -> PspAdapter:
    """`settings`: anything with `base_url`, `secret` and `api_key` (payments passes its PspConfig)."""
    try:
        factory = REGISTRY[name]
    except KeyError:
        raise LookupError(f"no PSP adapter named {name!r}; known: {', '.join(sorted(REGISTRY)) or 'none'}") from None
    return factory(name, settings)
