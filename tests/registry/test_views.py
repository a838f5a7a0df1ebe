"""The browser pages through Django's test client: sign-in, what each page shows, who sees what,
and the new-version form putting each service error next to its field."""

import html
import json
import re

import pytest

from core.actors import Actor
from registry.models import Environment, PromptVersion
from registry.services import create_version, set_deployment, set_kill_switch
from tests.factories import PromptFactory, version_body

PROMPT = "/prompts/loan-letter/"
NEW = "/prompts/loan-letter/versions/new/"


@pytest.fixture
def as_user(client, cast):
    def sign_in(username):
        client.force_login(cast[username])
        return client

    return sign_in


@pytest.fixture
def two_versions(cast, prompt, version):
    second, _ = create_version(
        actor=Actor(user=cast["author"]),
        prompt=prompt,
        **{**version_body("Dear {{ name }},\nThank you."), "message": "warmer opening"},
    )
    return version, second


def text(response):
    return html.unescape(response.content.decode())


def form_data(llm, *, contents=("Write to {{ name }}.",), roles=None, variables=None, **extra):
    """A POST body for the new-version form, one message row per content."""
    roles = roles or ["system"] * len(contents)
    data = {
        "messages-TOTAL_FORMS": str(len(contents)),
        "messages-INITIAL_FORMS": str(len(contents)),
        "messages-MIN_NUM_FORMS": "0",
        "messages-MAX_NUM_FORMS": "1000",
        "variables": json.dumps(variables if variables is not None else {"name": {"type": "string", "required": True}}),
        "llm_model": str(llm.pk),
        "params": '{"temperature": 0}',
        "response_schema": "",
        "message": "from the browser",
    }
    for index, (role, content) in enumerate(zip(roles, contents, strict=True)):
        data[f"messages-{index}-role"] = role
        data[f"messages-{index}-content"] = content
    data.update(extra)
    return data


def errors_of(response, field_id):
    """The error texts rendered for the field whose input has ``field_id``."""
    match = re.search(rf'<ul class="field-errors" id="{field_id}_errors">(.*?)</ul>', response.content.decode(), re.S)
    return [html.unescape(li) for li in re.findall(r"<li>(.*?)</li>", match.group(1), re.S)] if match else []


# --- signing in and out ---------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/", PROMPT, NEW, "/prompts/loan-letter/diff/", "/evals/", "/audit/"])
def test_pages_send_anonymous_visitors_to_the_login_page(client, prompt, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


def test_login_page_has_labelled_fields(client, db):
    body = text(client.get("/accounts/login/"))
    assert '<label for="id_username">Username</label>' in body
    assert '<label for="id_password">Password</label>' in body


def test_signing_in_lands_on_the_prompt_list(client, cast):
    response = client.post("/accounts/login/", {"username": "author", "password": "correct-horse-battery"})
    assert response.status_code == 302
    assert response["Location"] == "/"


def test_wrong_password_is_explained_on_the_login_page(client, cast):
    response = client.post("/accounts/login/", {"username": "author", "password": "nope"})
    assert response.status_code == 200
    assert "enter a correct username and password" in text(response)


def test_logout_is_a_post_button_that_ends_the_session(as_user):
    client = as_user("author")
    body = text(client.get("/"))
    assert re.search(r'<form method="post" action="/accounts/logout/">', body)
    response = client.post("/accounts/logout/")
    assert response.status_code == 302
    assert client.get("/").status_code == 302


# --- layout ---------------------------------------------------------------------------------------


def test_navigation_marks_the_current_section(as_user):
    client = as_user("author")
    body = text(client.get("/approvals/"))
    assert '<a href="/approvals/" aria-current="page">Approvals</a>' in body
    assert '<a href="/" aria-current="page">' not in body
    assert 'class="skip-link" href="#main"' in body


# --- prompt list ----------------------------------------------------------------------------------


def test_prompt_list_shows_only_prompts_the_user_can_see(as_user, prompt, cast):
    PromptFactory(slug="growth-hook", team=cast["other_team"], owner=cast["outsider"])
    body = text(as_user("viewer").get("/"))
    assert "loan-letter" in body
    assert "growth-hook" not in body
    assert "loan-letter" not in text(as_user("outsider").get("/"))


def test_prompt_list_shows_tier_badge_data_categories_and_latest_version(as_user, version):
    body = text(as_user("viewer").get("/"))
    assert 'class="badge tier tier-1"' in body
    assert ">PII<" in body and ">Financial<" in body
    assert '<a href="/prompts/loan-letter/versions/1/">v1</a>' in body


def test_prompt_list_filters_by_data_category(as_user, prompt, cast):
    PromptFactory(slug="faq-answer", team=cast["team"], owner=cast["owner"], data_categories=[])
    body = text(as_user("viewer").get("/?data_category=pii"))
    assert "loan-letter" in body
    assert "faq-answer" not in body
    assert "1 prompt matches these filters" in body


@pytest.mark.parametrize(
    ("query", "shown"),
    [("tier=1", "loan-letter"), ("tier=3", "faq-answer"), ("tag=letters", "loan-letter"), ("q=faq", "faq-answer")],
)
def test_prompt_list_filters_by_tier_tag_team_and_search(as_user, prompt, cast, query, shown):
    PromptFactory(slug="faq-answer", team=cast["team"], owner=cast["owner"], tier=3, tags=["faq"])
    body = text(as_user("viewer").get(f"/?{query}"))
    hidden = {"loan-letter", "faq-answer"} - {shown}
    assert f">{shown}<" in body
    assert all(f">{slug}<" not in body for slug in hidden)


def test_prompt_list_filters_by_team(as_user, prompt, cast):
    PromptFactory(slug="growth-hook", team=cast["other_team"], owner=cast["outsider"])
    client = as_user("admin")
    assert ">growth-hook<" in text(client.get("/"))
    body = text(client.get("/?team=payments"))
    assert ">loan-letter<" in body and ">growth-hook<" not in body


def test_an_invalid_filter_value_is_ignored(as_user, prompt):
    response = as_user("viewer").get("/?tier=9")
    assert response.status_code == 200
    assert "loan-letter" in text(response)


def test_prompt_list_paginates_by_25(as_user, cast):
    for n in range(30):
        PromptFactory(slug=f"prompt-{n:02d}", team=cast["team"], owner=cast["owner"])
    client = as_user("viewer")
    first, second = text(client.get("/?team=payments")), text(client.get("/?team=payments&page=2"))
    assert "prompt-24" in first and "prompt-25" not in first
    assert "prompt-25" in second and "Page 2 of 2" in second
    assert 'href="?team=payments&amp;page=2"' in client.get("/?team=payments").content.decode()


def test_prompt_list_explains_an_empty_result(as_user, prompt):
    body = text(as_user("viewer").get("/?q=nothing-like-this"))
    assert "No prompts match these filters" in body
    assert 'href="/">Clear filters</a>' in body


def test_prompt_list_says_how_to_start_when_there_are_no_prompts(as_user, cast):
    body = text(as_user("viewer").get("/"))
    assert "No prompts yet" in body
    assert "promptledger push" in body


def test_htmx_filter_requests_get_only_the_results(as_user, prompt):
    response = as_user("viewer").get("/?data_category=pii", HTTP_HX_REQUEST="true")
    body = text(response)
    assert "loan-letter" in body
    assert "<html" not in body
    assert "HX-Request" in response["Vary"]


def test_prompt_list_query_count_does_not_grow_with_prompts(as_user, cast, django_assert_max_num_queries):
    client = as_user("viewer")
    for n in range(12):
        PromptFactory(slug=f"p-{n}", team=cast["team"], owner=cast["owner"], tags=["t"])
    with django_assert_max_num_queries(12):
        assert client.get("/").status_code == 200


# --- prompt page ----------------------------------------------------------------------------------


def test_prompt_page_shows_details_environments_and_timeline(as_user, cast, prompt, two_versions):
    first, second = two_versions
    owner = Actor(user=cast["owner"])
    production = Environment.objects.get(slug="production")
    set_deployment(actor=owner, prompt=prompt, environment=production, version=first,
                   canary_version=second, canary_percent=10)
    set_kill_switch(actor=owner, prompt=prompt, environment=Environment.objects.get(slug="staging"),
                    disabled=True, reason="leaking ids")
    body = text(as_user("author").get(PROMPT))
    assert 'class="badge tier tier-1"' in body
    assert "Payments" in body and "(owner)" in body
    assert ">PII<" in body and ">letters<" in body
    for env in ("Development", "Staging", "Production"):
        assert f'<th scope="row">{env}</th>' in body
    assert "to 10%" in body
    assert "Disabled" in body and "leaking ids" in body
    assert "warmer opening" in body and "first" in body
    assert second.content_hash[:12] in body
    assert "canary 10% in production" in body and "live in production" in body
    assert 'href="/prompts/loan-letter/versions/new/"' in body
    assert 'action="/prompts/loan-letter/diff/"' in body


def test_prompt_page_of_a_prompt_with_no_versions_invites_the_first(as_user, prompt):
    body = text(as_user("author").get(PROMPT))
    assert "No versions yet" in body
    assert "Nothing deployed" in body


def test_prompt_of_another_team_is_a_404_page(as_user, prompt):
    response = as_user("outsider").get(PROMPT)
    assert response.status_code == 404
    assert "Not found" in text(response)


def test_compliance_reads_every_prompt(as_user, version):
    assert as_user("compliance").get(PROMPT).status_code == 200


# --- version page ---------------------------------------------------------------------------------


def test_version_page_shows_messages_variables_model_hash_parent_and_author(as_user, two_versions):
    _, second = two_versions
    body = text(as_user("viewer").get("/prompts/loan-letter/versions/2/"))
    assert '<pre class="template">Dear {{ name }},\nThank you.</pre>' in body
    assert "<code>name</code>" in body and "string" in body
    assert "offline-echo-1" in body and '"temperature": 0' in body
    assert second.content_hash in body
    assert '<a href="/prompts/loan-letter/versions/1/">Version 1</a>' in body
    assert "(author)" in body


def test_unknown_version_is_a_404_page(as_user, version):
    response = as_user("viewer").get("/prompts/loan-letter/versions/9/")
    assert response.status_code == 404
    assert "has no version 9" in text(response)


# --- diff -----------------------------------------------------------------------------------------


def test_diff_page_shows_both_versions_side_by_side(as_user, two_versions):
    body = text(as_user("viewer").get("/prompts/loan-letter/diff/?from=1&to=2"))
    assert 'class="diff-replace"' in body
    assert 'class="diff-insert"' in body
    assert "<del>" in body and "<ins>" in body
    assert "Thank you." in body
    assert "Message 1 (system): changed" in body
    assert '<option value="1" selected>Version 1</option>' in body


def test_diff_page_defaults_to_the_latest_version_against_its_parent(as_user, two_versions):
    body = text(as_user("viewer").get("/prompts/loan-letter/diff/"))
    assert '<option value="2" selected>Version 2</option>' in body
    assert "changed line" in body


def test_diff_with_an_unknown_version_is_a_404_and_bad_numbers_a_400(as_user, two_versions):
    client = as_user("viewer")
    assert client.get("/prompts/loan-letter/diff/?from=1&to=7").status_code == 404
    response = client.get("/prompts/loan-letter/diff/?from=one&to=2")
    assert response.status_code == 400
    assert "from must be a version number" in text(response)


# --- new version ----------------------------------------------------------------------------------


def test_new_version_form_starts_from_the_latest_version(as_user, cast, two_versions):
    response = as_user("author").get(NEW)
    body = text(response)
    assert response.status_code == 200
    assert "Dear {{ name }},\nThank you.</textarea>" in body
    assert f'<option value="{cast["llm"].pk}" selected>' in body
    assert '<label for="id_variables">Variables</label>' in body
    assert "saving writes version 3" in body


def test_new_version_form_can_start_from_an_older_version(as_user, two_versions):
    body = text(as_user("author").get(f"{NEW}?from=1"))
    assert "Write to {{ name }}.</textarea>" in body


def test_undeclared_variable_is_shown_next_to_its_template(as_user, cast, version):
    response = as_user("author").post(NEW, form_data(cast["llm"], contents=["Hello {{ nme }}"]))
    assert response.status_code == 200
    errors = errors_of(response, "id_messages-0-content")
    assert errors == ["line 1: 'nme' is not a declared variable (declared: name)"]
    body = text(response)
    assert "Hello {{ nme }}</textarea>" in body  # the input is kept
    assert 'aria-describedby="id_messages-0-content_errors"' in body
    assert "The version was not saved: 1 problem to fix" in body
    assert PromptVersion.objects.count() == 1


def test_error_in_the_second_message_lands_on_the_second_row(as_user, cast, version):
    data = form_data(cast["llm"], contents=["Hi {{ name }}", "Bye {{ who }}"], roles=["system", "user"])
    response = as_user("author").post(NEW, data)
    assert errors_of(response, "id_messages-0-content") == []
    assert errors_of(response, "id_messages-1-content")[0].startswith("line 1: 'who'")


def test_removed_rows_do_not_shift_errors(as_user, cast, version):
    data = form_data(cast["llm"], contents=["gone", "Bye {{ who }}"], **{"messages-0-DELETE": "on"})
    response = as_user("author").post(NEW, data)
    assert errors_of(response, "id_messages-1-content")[0].startswith("line 1: 'who'")


def test_bad_variable_declaration_is_shown_next_to_variables(as_user, cast, version):
    data = form_data(cast["llm"], variables={"name": {"type": "text"}})
    errors = errors_of(as_user("author").post(NEW, data), "id_variables")
    assert errors == ["name.type: 'text' is not a type; allowed: string, number, integer, boolean, object, array"]


def test_malformed_json_is_named_with_its_line(as_user, cast, version):
    data = form_data(cast["llm"], params='{"temperature": }')
    errors = errors_of(as_user("author").post(NEW, data), "id_params")
    assert errors and errors[0].startswith("not valid JSON") and "line 1" in errors[0]


def test_params_that_are_not_an_object_are_refused_next_to_params(as_user, cast, version):
    errors = errors_of(as_user("author").post(NEW, form_data(cast["llm"], params="[1]")), "id_params")
    assert errors == ['params is an object, e.g. {"temperature": 0}']


def test_empty_template_is_refused_next_to_it(as_user, cast, version):
    response = as_user("author").post(NEW, form_data(cast["llm"], contents=["   "]))
    assert errors_of(response, "id_messages-0-content") == ["content is a non-empty string"]


def test_saving_a_new_version_redirects_to_its_page(as_user, cast, version):
    client = as_user("author")
    response = client.post(NEW, form_data(cast["llm"], contents=["Dear {{ name }}, welcome."]))
    assert response.status_code == 302
    assert response["Location"] == "/prompts/loan-letter/versions/2/"
    made = PromptVersion.objects.get(number=2)
    assert made.author == cast["author"] and made.change_note == "from the browser"
    assert "Version 2 saved." in text(client.get(response["Location"]))


def test_identical_content_points_to_the_existing_version(as_user, cast, version):
    client = as_user("author")
    response = client.post(NEW, form_data(cast["llm"]), follow=True)
    assert response.redirect_chain[-1][0] == "/prompts/loan-letter/versions/1/"
    assert "matches the existing version 1" in text(response)
    assert PromptVersion.objects.count() == 1


def test_browser_line_endings_do_not_change_the_content(as_user, cast, two_versions):
    data = form_data(cast["llm"], contents=["Dear {{ name }},\r\nThank you."])
    response = as_user("author").post(NEW, data, follow=True)
    assert "matches the existing version 2" in text(response)


def test_add_message_keeps_the_input_and_adds_a_row(as_user, cast, version):
    data = form_data(cast["llm"], contents=["Kept {{ name }}"], add_message="1")
    response = as_user("author").post(NEW, data)
    body = text(response)
    assert "Kept {{ name }}</textarea>" in body
    assert 'name="messages-1-content"' in body
    assert "not saved" not in body
    assert PromptVersion.objects.count() == 1


def test_viewer_submitting_a_version_gets_a_403_page_with_the_reason(as_user, cast, version):
    response = as_user("viewer").post(NEW, form_data(cast["llm"], contents=["Other {{ name }}"]))
    assert response.status_code == 403
    assert "this needs the 'author' role in team 'payments'; you are 'viewer'" in text(response)


def test_outsider_cannot_open_the_form(as_user, version):
    assert as_user("outsider").get(NEW).status_code == 404


def test_new_version_button_is_offered_only_to_authors(client, cast, prompt, version):
    client.force_login(cast["viewer"])
    assert "New version" not in client.get("/prompts/loan-letter/").content.decode()
    client.force_login(cast["author"])
    assert "New version" in client.get("/prompts/loan-letter/").content.decode()
