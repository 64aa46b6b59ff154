"""The one JSON answer of the HTTP triggers (the Dataverse webhook, health, the Authorize.Net webhook).

`default=str` keeps any Decimal or GUID in an outcome's data readable as text instead of failing the answer after
the work was done.
"""
from __future__ import annotations

import json
from typing import Any, Mapping

import azure.functions as func


def json_response(status: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body, default=str), status_code=status, mimetype="application/json",
                             headers=dict(headers or {}))
