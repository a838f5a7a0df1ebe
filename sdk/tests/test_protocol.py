"""The protocol code the server runs too (it imports these modules from this package; there is no
second copy): the content hash, canary buckets, webhook signatures and the template rules. Known
answers are pinned, so a change that would make a client and a server disagree fails here first."""

import hashlib
import hmac
import json

import pytest

from promptledger import client as pl
from promptledger import templates
from promptledger.canary import canary_bucket
from promptledger.prompt import Prompt
from promptledger.prompt_files import content_hash
from promptledger.webhooks import REPLAY_WINDOW_SECONDS, sign, verify_signature

CONTENT = {
    "messages": [{"role": "system", "content": "Write to {{ name }}."}],
    "variables": {"name": {"type": "string", "required": True}},
    "model": {"provider": "offline", "name": "offline-echo-1", "params": {"temperature": 0}, "response_schema": None},
}


def prompt(content, variables=None):
    return Prompt(slug="x", environment="production", number=1, content_hash="h", variables=variables or {},
                  messages=[{"role": "system", "content": content}], model={})


def test_the_content_hash_is_sha256_of_the_canonical_json_whatever_the_key_order():
    canonical = json.dumps(CONTENT, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert content_hash(CONTENT) == hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    assert content_hash(CONTENT) == "a2393a76e1c7ba984f2012c65c1884d823b34e07dc78e98a724f775826099d83"
    assert content_hash(dict(reversed(list(CONTENT.items())))) == content_hash(CONTENT)
    accented = {**CONTENT, "messages": [{"role": "system", "content": "Écris à {{ name }}."}]}
    assert content_hash(accented) == hashlib.sha256(
        json.dumps(accented, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    ).hexdigest()


def test_a_unit_always_lands_in_the_same_canary_bucket():
    assert [canary_bucket("support-reply", "production", unit) for unit in ("customer-1", "customer-2", "42")] == [
        51, 19, 82,
    ]
    buckets = {canary_bucket("support-reply", "production", f"customer-{n}") for n in range(2000)}
    assert buckets == set(range(100))  # every bucket is reachable
    units = [f"customer-{n}" for n in range(50)]
    here = [canary_bucket("support-reply", "production", unit) for unit in units]
    assert [canary_bucket("support-reply", "staging", unit) for unit in units] != here  # the environment counts
    assert [canary_bucket("other-prompt", "production", unit) for unit in units] != here  # and the prompt


def test_a_signature_is_hmac_sha256_over_the_timestamp_and_the_raw_body():
    body = b'{"id":"e1","event":"deployment.changed"}'
    expected = hmac.new(b"whsec_test", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert sign("whsec_test", "1700000000", body) == f"sha256={expected}"
    assert sign("whsec_test", "1700000000", body.decode()) == sign("whsec_test", "1700000000", body)


def test_a_signature_verifies_only_for_the_same_body_secret_and_a_fresh_timestamp():
    body, now = b'{"id":"e1"}', 1_700_000_000
    header = sign("whsec_test", str(now), body)
    assert verify_signature("whsec_test", now, body, header, now=now + REPLAY_WINDOW_SECONDS)
    assert not verify_signature("whsec_test", now, body, header, now=now + REPLAY_WINDOW_SECONDS + 1)  # replayed
    assert not verify_signature("whsec_test", now, body + b" ", header, now=now)  # re-serialized
    assert not verify_signature("another", now, body, header, now=now)
    assert not verify_signature("whsec_test", "not a number", body, header, now=now)
    assert not verify_signature("whsec_test", now, body, header.replace("sha256=", "md5="), now=now)
    assert verify_signature("whsec_test", now, body, header, tolerance=None)  # a stored request


def test_a_template_using_an_undeclared_variable_is_refused_naming_its_line():
    declared = templates.normalize_variables({"name": {"type": "string"}})
    with pytest.raises(templates.TemplateError) as refused:
        templates.check_messages([{"role": "system", "content": "Hello {{ name }},\n{{ nickname }}"}], declared)
    assert refused.value.field_errors == {
        "messages[0].content": ["line 2: 'nickname' is not a declared variable (declared: name)"]
    }


def test_declarations_get_their_full_form():
    assert templates.normalize_variables({"name": {}, "tone": {"type": "string", "default": "warm"}}) == {
        "name": {"type": "string", "required": True},
        "tone": {"type": "string", "required": False, "default": "warm"},
    }
    with pytest.raises(templates.TemplateError) as refused:
        templates.normalize_variables({"n": {"type": "text"}})
    assert "variables.n.type" in refused.value.field_errors


@pytest.mark.parametrize(("values", "field", "says"), [
    ({}, "variables.name", "'name' is required (string)"),
    ({"name": 42}, "variables.name", "'name' must be of type string, got integer"),
    ({"name": "Ada", "nickname": "A"}, "variables.nickname", "'nickname' is not declared by this version"),
])
def test_a_missing_mistyped_or_undeclared_variable_is_a_render_error_naming_it(values, field, says):
    with pytest.raises(pl.RenderError) as refused:
        prompt("Write to {{ name }}.", {"name": {"type": "string", "required": True}}).render(**values)
    assert refused.value.code == "invalid"
    assert says in refused.value.field_errors[field][0]


def test_the_sandbox_stops_a_template_on_the_client_too():
    with pytest.raises(pl.RenderError) as refused:
        prompt("{{ ''.__class__.__mro__ }}").render()
    assert refused.value.code == "render_error"


@pytest.mark.parametrize("content", [
    "{% for i in range(1000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}",  # loop turns
    "{% for i in range(20000) %}{{ 'x' * 90 }}{% endfor %}",  # output
    "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(1) }}",  # recursion
    "{{ 2 ** 100000000 }}",  # a huge power
])
def test_the_render_budget_stops_an_expensive_template(content):
    with pytest.raises(pl.RenderError) as refused:
        prompt(content).render()
    assert refused.value.code == "template_too_expensive"
