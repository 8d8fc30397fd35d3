"""From rendered manifests to the exact objects the operator applies, and whether a live object
already matches one (so that an unchanged platform costs no write at all). Pure functions."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from typing import Any

from .config import HASH_ANNOTATION, PLATFORM_LABEL

Obj = dict[str, Any]
Key = tuple[str, str, str]  # (apiVersion group, kind, name)


def key(obj: Obj) -> Key:
    """Identity of an object within one platform's namespace: (apiVersion group, kind, name)."""
    group = obj["apiVersion"].rsplit("/", 1)[0] if "/" in obj["apiVersion"] else ""
    return group, obj["kind"], obj["metadata"]["name"]


def prepare(rendered: list[Obj], platform: Obj) -> list[Obj]:
    """Attach ownership and the applied-hash to each rendered object.

    Secrets' stringData becomes data, because the API server stores only data: comparing and
    owning the same field the server keeps is what makes an unchanged Secret a no-op.
    """
    meta = platform["metadata"]
    owner = {
        "apiVersion": platform["apiVersion"],
        "kind": platform["kind"],
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }
    out = []
    for doc in rendered:
        obj = copy.deepcopy(doc)
        if obj["kind"] == "Secret" and "stringData" in obj:
            data = obj.setdefault("data", {})
            for k, v in obj.pop("stringData").items():
                data[k] = base64.b64encode(str(v).encode()).decode()
        m = obj.setdefault("metadata", {})
        m["namespace"] = meta["namespace"]
        m.setdefault("labels", {})[PLATFORM_LABEL] = meta["name"]
        m["ownerReferences"] = [owner]
        # The hash covers what we rendered: when it changes, fields we dropped must be released too,
        # which only an apply does (a subset check alone cannot see a removed field).
        digest = hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:20]
        m.setdefault("annotations", {})[HASH_ANNOTATION] = digest
        out.append(obj)
    return out


def _empty(v: Any) -> bool:
    return v is None or v == {} or v == []


def contains(live: Any, desired: Any) -> bool:
    """Whether `live` already holds every field of `desired` with the same value.

    Extra live fields (server defaults, status, other managers' fields) are fine; empty desired
    maps and lists match an absent field, since the server drops some of them.
    """
    if isinstance(desired, dict):
        if not isinstance(live, dict):
            return _empty(desired) and live is None
        return all(
            (_empty(v) and _empty(live.get(k))) or (k in live and contains(live[k], v)) for k, v in desired.items()
        )
    if isinstance(desired, list):
        if not isinstance(live, list) or len(live) != len(desired):
            return _empty(desired) and _empty(live)
        return all(contains(a, b) for a, b in zip(live, desired, strict=True))
    if isinstance(desired, bool) or isinstance(live, bool):
        return live is desired
    if isinstance(desired, int | float) and isinstance(live, int | float):
        return live == desired
    return live == desired or (live is not None and str(live) == str(desired))


def up_to_date(live: Obj | None, desired: Obj) -> bool:
    if live is None:
        return False
    if applied_hash(live) != applied_hash(desired):
        return False
    return contains(live, desired)


def applied_hash(obj: Obj | None) -> str | None:
    ann = ((obj or {}).get("metadata") or {}).get("annotations") or {}
    return ann.get(HASH_ANNOTATION)


def drifted(live: Obj | None, desired: Obj, last: str | None) -> bool:
    """Whether an object that needs an apply needs it because someone else changed or deleted it,
    not because the render changed. `last` is the hash this object had in the operator's last
    successful reconcile of the platform (None when it was not there, or none ran yet).

    Edited: the live object carries the hash of the current render, so the operator applied this
    very content, and it no longer matches. Deleted: it is gone though the last reconcile left it
    with the same hash. (Deleted while the operator was not running is not counted: nothing
    remembers it was there.)"""
    want = applied_hash(desired)
    if live is None:
        return last is not None and last == want
    return applied_hash(live) == want or last == want
