"""What generated requests must respect that a schema cannot say, for schemathesis runs."""

import hashlib
import json
import re
from datetime import datetime, timedelta, timezone

import schemathesis

KEY = re.compile(r"^[\x21-\x7E]{1,255}$")


@schemathesis.hook
def before_call(context, case, kwargs):
    expire_api_keys_tomorrow(case)
    one_key_per_request(case)


def one_key_per_request(case):
    """An `Idempotency-Key` the generator repeats with another body is refused (422
    `idempotency_key_reused`), for a reason no schema states. A well-formed key gets the
    request's digest (method, path, body) appended, so a repeated request still replays its
    first answer and a new one is new; a malformed key is left for the checks."""
    headers = case.headers or {}
    name = next((h for h in headers if h.lower() == "idempotency-key"), None)
    if name is None or not isinstance(headers[name], str) or not KEY.match(headers[name]):
        return
    request = [case.operation.method.upper(), case.operation.path, case.path_parameters, case.body]
    digest = hashlib.sha256(json.dumps(request, sort_keys=True, default=repr).encode()).hexdigest()[:16]
    case.headers = dict(headers, **{name: f"{headers[name][:200]}-{digest}"})


def expire_api_keys_tomorrow(case):
    """An API key's `expires_at` must lie in the future, within three years. A date-time the
    generator drew (or the examples phase filled in) is moved to a day from now, so the rest
    of the body is what gets tested; anything else there is left to the checks."""
    operation = case.operation
    if operation.path != "/api/v1/api-keys" or operation.method.upper() != "POST":
        return
    body = case.body
    if not isinstance(body, dict) or not isinstance(body.get("expires_at"), str):
        return
    try:
        datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))
    except ValueError:
        return
    tomorrow = datetime.now(timezone.utc) + timedelta(days=1)
    case.body = dict(body, expires_at=tomorrow.strftime("%Y-%m-%dT%H:%M:%SZ"))
