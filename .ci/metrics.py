"""Reads a running Tenantry's /metrics with Prometheus's own Python client parser: the text
must parse, and carry every series family an operator alerts on. Used by fuzz.py after the
fuzzing runs, when every kind of request has been answered."""

import urllib.request

from prometheus_client.parser import text_string_to_metric_families

FAMILIES = {
    "tenantry_http_requests": "counter",
    "tenantry_http_request_duration_seconds": "histogram",
    "tenantry_jobs_queued": "gauge",
    "tenantry_jobs_oldest_due_age_seconds": "gauge",
    "tenantry_outbox_pending_events": "gauge",
    "tenantry_db_connections_in_use": "gauge",
    "tenantry_db_connections_idle": "gauge",
    "tenantry_db_connections_waiting": "gauge",
    "tenantry_password_hash_places_taken": "gauge",
    "tenantry_password_hash_places": "gauge",
    "tenantry_rate_limit_redis_fallbacks": "counter",
}


def check(base, token):
    req = urllib.request.Request(base + "/metrics", headers={"authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=30) as res:
        text = res.read().decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    missing = [n for n in FAMILIES if n not in families]
    wrong = [f"{n}: {families[n].type}" for n, t in FAMILIES.items()
             if n in families and families[n].type != t]
    if missing or wrong:
        raise SystemExit(f"/metrics lacks {missing}, mistypes {wrong}:\n{text[:4000]}")
    routes = {s.labels.get("route") for s in families["tenantry_http_requests"].samples}
    if "/api/v1/invitations/{id}" not in routes:
        raise SystemExit(f"/metrics names no route template: {sorted(r for r in routes if r)}")
    jobs = families.get("tenantry_jobs")
    ran = sorted({s.labels["job"] for s in jobs.samples}) if jobs else []
    print(f"/metrics parsed: {len(families)} families, {len(routes)} routes, jobs run: {ran}")
