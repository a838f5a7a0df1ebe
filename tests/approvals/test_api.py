"""The approval flow's API contract: status codes, error codes that say why, the checklist."""

from approvals.models import DeployRequest
from audit.models import AuditEvent

URL = "/api/v1/deploy-requests/"


def open_request(client, **overrides):
    body = {"prompt": "loan-letter", "version": 2, "environment": "production", "rationale": "friendlier"}
    return client.post(URL, {**body, **overrides}, format="json")


def test_a_request_is_opened_approved_by_two_named_approvers_and_deployed(flow, api_for):
    owner = api_for("owner")
    created = open_request(owner)
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["status"] == "pending" and body["base_version"] == 1 and body["deployable"] is False
    checks = {c["key"]: c for c in body["checklist"]}
    assert checks["approvals"]["met"] is False and checks["approvals"]["code"] == "insufficient_approvals"
    assert checks["gate"]["met"] is True and checks["model"]["met"] is True
    rid = body["id"]
    early = owner.post(f"{URL}{rid}/deploy")
    assert early.status_code == 403 and early.json()["code"] == "insufficient_approvals"
    for name in ("approver", "approver2"):
        answer = api_for(name).post(f"{URL}{rid}/approve", {"comment": "ok"}, format="json")
        assert answer.status_code == 200, answer.json()
    assert answer.json()["status"] == "approved" and answer.json()["deployable"] is True
    deployed = owner.post(f"{URL}{rid}/deploy")
    assert deployed.status_code == 200 and deployed.json()["status"] == "deployed"
    again = owner.post(f"{URL}{rid}/deploy")
    assert again.status_code == 409 and again.json()["code"] == "stale_request"
    resolved = owner.get("/api/v1/prompts/loan-letter/resolve", {"environment": "production"})
    assert resolved.json()["version"] == 2


def test_the_api_refuses_the_author_with_author_cannot_approve(flow, api_for):
    rid = open_request(api_for("owner")).json()["id"]
    refused = api_for("author").post(f"{URL}{rid}/approve", {}, format="json")
    assert refused.status_code == 403
    assert refused.json()["code"] == "author_cannot_approve"
    assert "authored" in refused.json()["detail"]


def test_refusals_carry_their_codes(flow, api_for):
    rid = open_request(api_for("approver")).json()["id"]
    assert api_for("approver").post(f"{URL}{rid}/approve").json()["code"] == "self_approval"
    assert api_for("approver3").post(f"{URL}{rid}/approve").json()["code"] == "not_named_approver"
    api_for("approver2").post(f"{URL}{rid}/approve")
    twice = api_for("approver2").post(f"{URL}{rid}/approve")
    assert twice.status_code == 409 and twice.json()["code"] == "already_approved"
    reject = api_for("approver2").post(f"{URL}{rid}/reject", {"comment": ""}, format="json")
    assert reject.status_code == 400 and reject.json()["code"] == "comment_required"
    no_scope = api_for("approver2", scopes=["prompts:read"]).post(f"{URL}{rid}/withdraw-decision")
    assert no_scope.status_code == 403 and no_scope.json()["code"] == "scope_missing"


def test_bad_requests_name_the_field(flow, api_for):
    owner = api_for("owner")
    missing = owner.post(URL, {"prompt": "loan-letter", "environment": "production", "rationale": "x"}, format="json")
    assert missing.status_code == 400 and "version" in missing.json()["field_errors"]
    unknown = open_request(owner, version=99)
    assert unknown.status_code == 400 and unknown.json()["code"] == "unknown_version"
    env = open_request(owner, environment="moon")
    assert env.status_code == 400 and "environment" in env.json()["field_errors"]
    canary = open_request(owner, canary_percent=100)
    assert canary.status_code == 400 and "canary_percent" in canary.json()["field_errors"]
    hidden = api_for("outsider").post(URL, {"prompt": "loan-letter", "version": 2, "environment": "production",
                                            "rationale": "x"}, format="json")
    assert hidden.status_code == 404
    assert DeployRequest.objects.count() == 0


def test_waiting_for_me_lists_the_inbox(flow, api_for):
    rid = open_request(api_for("owner")).json()["id"]
    mine = api_for("approver").get(URL, {"waiting_for": "me"}).json()
    assert [r["id"] for r in mine["results"]] == [rid]
    assert api_for("approver3").get(URL, {"waiting_for": "me"}).json()["results"] == []
    assert api_for("author").get(URL, {"waiting_for": "me"}).json()["results"] == []
    api_for("approver").post(f"{URL}{rid}/approve")
    assert api_for("approver").get(URL, {"waiting_for": "me"}).json()["results"] == []
    by_status = api_for("viewer").get(URL, {"status": "pending", "prompt": "loan-letter"}).json()
    assert [r["id"] for r in by_status["results"]] == [rid]
    assert api_for("outsider").get(URL).json()["results"] == []


def test_named_approvers_are_set_with_the_prompt_patch_and_shown(flow, api_for):
    owner = api_for("owner")
    patched = owner.patch("/api/v1/prompts/loan-letter/", {"approvers": ["approver3"]}, format="json")
    assert patched.status_code == 200, patched.json()
    assert patched.json()["approvers"] == ["approver3"]
    bad = owner.patch("/api/v1/prompts/loan-letter/", {"approvers": ["viewer"]}, format="json")
    assert bad.status_code == 400 and bad.json()["code"] == "not_eligible_approver"
    group = owner.post("/api/v1/teams/payments/approver-groups/",
                       {"slug": "letters", "name": "Letters", "members": ["approver"]}, format="json")
    assert group.status_code == 200, group.json()
    with_group = owner.patch("/api/v1/prompts/loan-letter/", {"approver_groups": ["letters"]}, format="json")
    assert with_group.json()["approver_groups"] == ["letters"]
    assert api_for("author").patch("/api/v1/prompts/loan-letter/", {"approvers": []}, format="json").status_code == 403
    assert AuditEvent.objects.filter(action="prompt.approvers_changed").count() == 3


def test_tier_policies_are_read_by_all_and_edited_by_admins(flow, api_for):
    listed = api_for("viewer").get("/api/v1/tier-policies/").json()
    assert [p["tier"] for p in listed] == [0, 1, 2, 3]
    assert listed[0]["required_approvals"] == 2 and listed[0]["named_approvers_only"] is True
    denied = api_for("owner").patch("/api/v1/tier-policies/1/", {"required_approvals": 2}, format="json")
    assert denied.status_code == 403
    unexplained = api_for("admin").patch("/api/v1/tier-policies/1/", {"required_approvals": 2}, format="json")
    assert unexplained.status_code == 400
    assert unexplained.json()["field_errors"] == {"reason": ["this field is required"]}
    edited = api_for("admin").patch(
        "/api/v1/tier-policies/1/", {"required_approvals": 2, "reason": "two eyes on tier 1"}, format="json"
    )
    assert edited.status_code == 200 and edited.json()["version"] == 2
    bad = api_for("admin").patch(
        "/api/v1/tier-policies/1/", {"allowed_model_statuses": ["gold"], "reason": "r"}, format="json"
    )
    assert bad.status_code == 400 and "allowed_model_statuses" in bad.json()["field_errors"]


def test_break_glass_and_tier_change_over_the_api(flow, api_for):
    owner = api_for("owner")
    rid = open_request(owner).json()["id"]
    api_for("approver").post(f"{URL}{rid}/approve")
    api_for("approver2").post(f"{URL}{rid}/approve")
    owner.post(f"{URL}{rid}/deploy")
    no_reason = owner.post("/api/v1/prompts/loan-letter/break-glass",
                           {"environment": "production", "version": 1, "reason": "bad"}, format="json")
    assert no_reason.status_code == 400 and no_reason.json()["code"] == "reason_required"
    glass = owner.post("/api/v1/prompts/loan-letter/break-glass",
                       {"environment": "production", "version": 1, "reason": "wrong amounts in letters"},
                       format="json")
    assert glass.status_code == 201, glass.json()
    assert glass.json()["break_glass"] is True and glass.json()["review_status"] == "pending"
    signed = api_for("approver").post(f"{URL}{glass.json()['id']}/sign-review", {"comment": "ok"}, format="json")
    assert signed.status_code == 200
    lower = owner.post(URL, {"prompt": "loan-letter", "kind": "tier_change", "tier": 1, "rationale": "internal"},
                       format="json")
    assert lower.status_code == 201 and lower.json()["target_tier"] == 1
    direct = owner.patch("/api/v1/prompts/loan-letter/", {"tier": 1}, format="json")
    assert direct.status_code == 403 and direct.json()["code"] == "tier_lowering_needs_approval"
    rollback = owner.post(URL, {"prompt": "loan-letter", "kind": "rollback", "environment": "production",
                                "rationale": "back"}, format="json")
    assert rollback.status_code == 201 and rollback.json()["version"] == 2
