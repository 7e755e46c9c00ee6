"""What generated requests must respect that a schema cannot say, for schemathesis runs."""

from datetime import datetime, timedelta, timezone

import schemathesis


@schemathesis.hook
def before_call(context, case, kwargs):
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
