"""Read CT log lists: Chrome's v3 JSON and Apple's list, from a file or a URL, with the
detached signature checked where the list publishes one and downloads cached on disk.

* Chrome v3: https://www.gstatic.com/ct/log_list/v3/log_list.json, schema
  https://www.gstatic.com/ct/log_list/v3/log_list_schema.json. Google signs the list:
  ``log_list.sig`` beside it is an RSA PKCS#1 v1.5 signature with SHA-256 over the JSON
  bytes, made with the key ``log_list_pubkey.pem`` (:data:`GOOGLE_LOG_LIST_KEY_PEM`).
* Apple: https://valid.apple.com/ct/log_list/current_log_list.json, schema
  https://valid.apple.com/ct/log_list/schema_versions/log_list_schema_v5.json. The same
  shape as Chrome's, plus ``assetVersion``/``assetVersionV2``, a ``version`` in each state
  and ``tls_only`` on logs; every log has a ``state`` and there is no
  ``log_list_timestamp``. Apple publishes no detached signature: only HTTPS vouches for it.

This module is the public face and renders a log as JSON (:func:`log_to_json`); the code is
in :mod:`~pinwarden.ct._loglist_parse` (the formats), :mod:`~pinwarden.ct._loglist_fetch`
(files, downloads, signatures) and :mod:`~pinwarden.ct._loglist_cache` (the cache, the
default list, its age).
"""

from __future__ import annotations

import base64
from datetime import datetime, timezone
from typing import Any

from pinwarden.ct._loglist_cache import (
    MAX_AGE,
    cache_path,
    cached_log_list,
    default_cache_dir,
    default_log_list,
    staleness_warning,
)
from pinwarden.ct._loglist_fetch import (
    APPLE_LOG_LIST_URL,
    CHROME_ALL_LOGS_LIST_URL,
    CHROME_LOG_LIST_URL,
    GOOGLE_LOG_LIST_KEY_PEM,
    load_log_list,
    published_signature_url,
    verify_signature,
)
from pinwarden.ct._loglist_parse import KINDS, detect_kind, parse_log_list
from pinwarden.ct.logs import Log

__all__ = [
    "APPLE_LOG_LIST_URL",
    "CHROME_ALL_LOGS_LIST_URL",
    "CHROME_LOG_LIST_URL",
    "GOOGLE_LOG_LIST_KEY_PEM",
    "KINDS",
    "MAX_AGE",
    "cache_path",
    "cached_log_list",
    "default_cache_dir",
    "default_log_list",
    "detect_kind",
    "load_log_list",
    "log_to_json",
    "parse_log_list",
    "published_signature_url",
    "staleness_warning",
    "verify_signature",
]


def _iso(when: datetime | None) -> str | None:
    return None if when is None else when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def log_to_json(log: Log) -> dict[str, Any]:
    """One log as the documented JSON object (``docs/json.md``, "CT log")."""
    interval = None
    if log.temporal_interval is not None:
        start, end = log.temporal_interval
        interval = {"start_inclusive": _iso(start), "end_exclusive": _iso(end)}
    final = None
    if log.final_tree_head is not None:
        final = {
            "tree_size": log.final_tree_head.tree_size,
            "sha256_root_hash": base64.b64encode(log.final_tree_head.sha256_root_hash).decode(),
        }
    return {
        "description": log.description,
        "operator": log.operator,
        "log_id": log.log_id_b64,
        "key": base64.b64encode(log.key).decode("ascii"),
        "api": "static-ct-api" if log.tiled else "rfc6962",
        "url": log.url,
        "submission_url": log.submission_url,
        "monitoring_url": log.monitoring_url,
        "mmd": log.mmd,
        "state": log.state.value if log.state is not None else None,
        "state_since": _iso(log.state_since),
        "final_tree_head": final,
        "temporal_interval": interval,
        "previous_operators": [
            {"name": p.name, "end_time": _iso(p.end_time)} for p in log.previous_operators
        ],
        "log_type": log.log_type,
    }
