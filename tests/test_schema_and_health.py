"""The OpenAPI schema is complete enough for a generated client; /healthz checks its services."""

import yaml


def test_openapi_schema_lists_every_contract_path(client, db):
    response = client.get("/api/schema/")
    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    paths = set(schema["paths"])
    for path in [
        "/api/v1/teams/",
        "/api/v1/teams/{slug}/members/",
        "/api/v1/llm-models/",
        "/api/v1/llm-models/{id}/",
        "/api/v1/prompts/",
        "/api/v1/prompts/{slug}/",
        "/api/v1/prompts/{slug}/versions/",
        "/api/v1/prompts/{slug}/versions/{number}/",
        "/api/v1/prompts/{slug}/versions/{number}/diff/",
        "/api/v1/prompts/{slug}/versions/{number}/render",
        "/api/v1/prompts/{slug}/resolve",
        "/api/v1/prompts/{slug}/kill-switch",
    ]:
        assert path in paths, path
    push = schema["paths"]["/api/v1/prompts/{slug}/versions/"]["post"]
    assert {"200", "201", "400"} <= set(push["responses"])
    assert "bearerAuth" in schema["components"]["securitySchemes"]


def test_api_docs_page_renders(client, db):
    assert client.get("/api/docs/").status_code == 200


def test_redoc_is_served_from_this_app_with_no_inline_script_and_no_other_host(client, db):
    response = client.get("/api/redoc/")
    assert response.status_code == 200
    page = response.content.decode()
    assert '<script src="/static/drf_spectacular_sidecar/redoc/bundles/redoc.standalone.js">' in page
    assert '<script src="/static/js/redoc-offline.js">' in page
    assert page.count("<script") == page.count("<script src=") == 2
    assert "googleapis" not in page and "gstatic" not in page and "https://" not in page
    policy = dict(part.strip().split(" ", 1) for part in response["Content-Security-Policy"].split(";"))
    assert policy["script-src"] == "'self'"
    assert policy["worker-src"] == "blob:"  # Redoc's search index, built from its own bundled code
    assert policy["img-src"] == "'self' data:" and policy["connect-src"] == "'self'"


def test_the_schema_and_both_docs_pages_need_a_sign_in_in_production(tmp_path):
    """The same rule for all three (drf-spectacular's SERVE_PERMISSIONS): asked with no session and
    no token under DJANGO_ENV=production, each refuses."""
    import json
    import os
    import subprocess
    import sys

    from django.conf import settings

    script = (
        "import json, django; django.setup()\n"
        "from django.test import Client\n"
        "client = Client()\n"
        "print(json.dumps({path: client.get(path, secure=True, HTTP_HOST='promptledger.example.org').status_code\n"
        "                  for path in ('/api/schema/', '/api/docs/', '/api/redoc/')}))\n"
    )
    env = {**os.environ, "DJANGO_ENV": "production", "SECRET_KEY": "test-only-" + "k" * 50,
           "ALLOWED_HOSTS": "promptledger.example.org", "DJANGO_SETTINGS_MODULE": "config.settings",
           "PROMPTLEDGER_VAR_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", script], env=env, cwd=settings.BASE_DIR, capture_output=True,
                          text=True, timeout=60, check=True)
    statuses = json.loads(done.stdout.strip().splitlines()[-1])
    assert statuses == {"/api/schema/": 401, "/api/docs/": 401, "/api/redoc/": 401}, done.stderr


def test_healthz_reports_database_and_broker(client, db):
    response = client.get("/healthz")
    body = response.json()
    assert body["checks"]["database"]["ok"] is True
    assert response.status_code == (200 if body["checks"]["broker"]["ok"] else 503)


def test_unknown_api_path_is_a_json_404(client, db):
    response = client.get("/api/v1/nothing-here/")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_schema_validates_against_openapi_3_with_no_warnings(db, tmp_path):
    from django.core.management import call_command

    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    assert "openapi: 3" in out.read_text()


def test_options_on_every_kind_of_endpoint_answers_without_a_500(api_for, prompt, version):
    client = api_for("owner")
    for path in ("/api/v1/prompts/loan-letter/gate", "/api/v1/prompts/", "/api/v1/prompts/loan-letter/versions/",
                 "/api/v1/deploy-requests/", "/api/v1/eval-runs/"):
        response = client.options(path)
        assert response.status_code == 200, (path, response.content)
        assert "actions" not in response.json() and response.json()["schema"] == "/api/schema/"


def test_a_body_over_the_limit_is_a_413_before_it_is_read_on_the_api_and_in_the_browser(api_for, cast, settings):
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.test import Client

    settings.PROMPTLEDGER_MAX_REQUEST_BYTES = 2000
    api = api_for("author")
    api.post("/api/v1/suites/", {"slug": "big", "name": "Big", "team": "payments"}, format="json")
    line = '{"vars": {"name": "A"}, "assertions": [{"type": "contains", "value": "A"}]}\n'
    big = api.post("/api/v1/suites/big/cases/", data=line * 100, content_type="application/x-ndjson")
    assert big.status_code == 413
    assert big.json()["code"] == "payload_too_large" and "limit is 2,000 bytes" in big.json()["detail"]
    small = api.post("/api/v1/suites/big/cases/", data=line * 3, content_type="application/x-ndjson")
    assert small.status_code == 201

    browser = Client()
    browser.force_login(cast["author"])
    upload = SimpleUploadedFile("cases.jsonl", (line * 100).encode(), content_type="application/x-ndjson")
    page = browser.post("/evals/suites/big/", {"file": upload})
    assert page.status_code == 413
    assert "Split the file" in page.content.decode()
