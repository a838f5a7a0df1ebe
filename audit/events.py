"""One function per audit event type, called explicitly by the service that makes the change,
inside its transaction. Payloads name what changed; they never carry a secret (no token, password
hash or provider key), only public identifiers such as a token's prefix."""

from .services import record


def _prompt_ctx(prompt):
    return {"team": prompt.team.slug, "prompt": prompt.slug}


def _changes(before, after):
    return {k: {"before": before[k], "after": after[k]} for k in after if before.get(k) != after[k]}


# --- access ----------------------------------------------------------------------------------------
def login(actor):
    return record(actor=actor, action="auth.login", target_type="user", target_id=actor.user.pk)


def logout(actor):
    return record(actor=actor, action="auth.logout", target_type="user", target_id=actor.user.pk)


def login_failed(actor, *, username):
    return record(
        actor=actor, action="auth.login_failed", target_type="user", target_id="", data={"username": username}
    )


def login_locked_out(actor, *, username, minutes):
    return record(actor=actor, action="auth.locked_out", target_type="user", target_id="",
                  data={"username": username, "minutes": minutes})


def token_issued(actor, token):
    return record(
        actor=actor,
        action="token.issued",
        target_type="api_token",
        target_id=token.pk,
        data={
            "for_user": token.user.get_username(),
            "prefix": token.prefix,
            "scopes": token.scopes,
            "name": token.name,
            "expires_at": token.expires_at,
        },
    )


def token_revoked(actor, token):
    return record(
        actor=actor,
        action="token.revoked",
        target_type="api_token",
        target_id=token.pk,
        data={"for_user": token.user.get_username(), "prefix": token.prefix},
    )


# --- accounts ---------------------------------------------------------------------------------------
def user_created(actor, user):
    data = {"username": user.get_username(), "email": user.email, "has_password": user.has_usable_password()}
    return record(actor=actor, action="user.created", target_type="user", target_id=user.pk, data=data)


def user_flags_changed(actor, user, *, before, after):
    return record(actor=actor, action="user.flags_changed", target_type="user", target_id=user.pk,
                  data={"username": user.get_username(), **_changes(before, after)})


def user_password_set(actor, user):
    return record(actor=actor, action="user.password_set", target_type="user", target_id=user.pk,
                  data={"username": user.get_username()})


# --- teams -----------------------------------------------------------------------------------------
def team_created(actor, team):
    return record(
        actor=actor,
        action="team.created",
        target_type="team",
        target_id=team.slug,
        team=team.slug,
        data={"name": team.name},
    )


def membership_changed(actor, membership, *, before_role):
    action = "membership.added" if before_role is None else "membership.changed"
    return record(
        actor=actor,
        action=action,
        target_type="membership",
        target_id=membership.pk,
        team=membership.team.slug,
        data={"username": membership.user.get_username(), "role": {"before": before_role, "after": membership.role}},
    )


def membership_removed(actor, *, team, username, role):
    return record(
        actor=actor,
        action="membership.removed",
        target_type="membership",
        target_id="",
        team=team.slug,
        data={"username": username, "role": {"before": role, "after": None}},
    )


def site_role_changed(actor, *, username, role, granted):
    return record(actor=actor, action="site_role.granted" if granted else "site_role.revoked", target_type="user",
                  target_id=username, data={"username": username, "role": role})


# --- the model register ------------------------------------------------------------------------------
def _model_state(entry):
    return {
        "owner": entry.owner.get_username(),
        "status": entry.status,
        "failure_modes": entry.failure_modes,
        "last_reviewed_at": entry.last_reviewed_at,
        "next_review_due": entry.next_review_due,
    }


def llm_model_registered(actor, entry):
    return record(
        actor=actor,
        action="llm_model.registered",
        target_type="llm_model",
        target_id=entry.pk,
        data={"provider": entry.provider, "model_id": entry.model_id, **_model_state(entry)},
    )


def llm_model_updated(actor, entry, *, before):
    return record(
        actor=actor,
        action="llm_model.updated",
        target_type="llm_model",
        target_id=entry.pk,
        data={"provider": entry.provider, "model_id": entry.model_id, "changes": _changes(before, _model_state(entry))},
    )


model_state = _model_state


# --- prompts ---------------------------------------------------------------------------------------
def prompt_state(prompt):
    return {
        "name": prompt.name,
        "description": prompt.description,
        "tier": prompt.tier,
        "owner": prompt.owner.get_username(),
        "tags": prompt.tags,
        "data_categories": prompt.data_categories,
    }


def prompt_created(actor, prompt):
    return record(
        actor=actor,
        action="prompt.created",
        target_type="prompt",
        target_id=prompt.slug,
        **_prompt_ctx(prompt),
        data=prompt_state(prompt),
    )


def prompt_updated(actor, prompt, *, before):
    return record(
        actor=actor,
        action="prompt.updated",
        target_type="prompt",
        target_id=prompt.slug,
        **_prompt_ctx(prompt),
        data={"changes": _changes(before, prompt_state(prompt))},
    )


def version_created(actor, version):
    return record(
        actor=actor,
        action="version.created",
        target_type="prompt_version",
        target_id=f"{version.prompt.slug}@{version.number}",
        **_prompt_ctx(version.prompt),
        data={
            "number": version.number,
            "content_hash": version.content_hash,
            "parent": version.parent.number if version.parent else None,
            "model": f"{version.model_config['provider']}:{version.model_config['name']}",
            "message": version.change_note,
        },
    )


def _number(version):
    return version.number if version is not None else None


def deployment_changed(actor, pointer, *, before):
    return record(
        actor=actor,
        action="deployment.changed",
        target_type="deployment",
        target_id=f"{pointer.prompt.slug}@{pointer.environment.slug}",
        **_prompt_ctx(pointer.prompt),
        data={
            "environment": pointer.environment.slug,
            "from_version": before.get("version"),
            "to_version": _number(pointer.version),
            "canary": {
                "before": {"version": before.get("canary_version"), "percent": before.get("canary_percent")},
                "after": {"version": _number(pointer.canary_version), "percent": pointer.canary_percent},
            },
        },
    )


def kill_switch_changed(actor, pointer, *, was_disabled):
    return record(
        actor=actor,
        action="kill_switch.changed",
        target_type="deployment",
        target_id=f"{pointer.prompt.slug}@{pointer.environment.slug}",
        **_prompt_ctx(pointer.prompt),
        data={
            "environment": pointer.environment.slug,
            "disabled": {"before": was_disabled, "after": pointer.disabled},
            "reason": pointer.disabled_reason,
        },
    )


# --- the audit trail itself -------------------------------------------------------------------------
def audit_exported(actor, *, format, filters):
    return record(
        actor=actor,
        action="audit.exported",
        target_type="audit_export",
        target_id=format,
        data={"format": format, "filters": filters},
    )


def audit_key_rotated(actor, *, old_key_id, new_key_id, old_public_key, new_public_key, key_source):
    """The audit signing key changed: checkpoints from here on are signed by ``new_key_id``, and
    ``old_key_id`` is retired (its public key listed outside the database, so older ones verify)."""
    return record(
        actor=actor,
        action="audit.key_rotated",
        target_type="audit_signing_key",
        target_id=new_key_id,
        data={
            "old_key_id": old_key_id,
            "new_key_id": new_key_id,
            "old_public_key": old_public_key,
            "new_public_key": new_public_key,
            "key_source": key_source,
        },
    )


# --- webhooks --------------------------------------------------------------------------------------
# A webhook's URL may carry a token in its path or query, so events record its scheme and host and a
# fingerprint (which changes when the URL does); the signing secret is never recorded.
def webhook_state(subscription):
    import hashlib

    return {
        "team": subscription.team.slug if subscription.team_id else None,
        "url": subscription.display_url,
        "url_sha256": hashlib.sha256(subscription.url.encode()).hexdigest()[:16],
        "events": list(subscription.events),
        "active": subscription.active,
        "description": subscription.description,
    }


def _webhook_ctx(subscription):
    return {"target_type": "webhook", "target_id": subscription.pk, "team": webhook_state(subscription)["team"]}


def webhook_created(actor, subscription):
    return record(actor=actor, action="webhook.created", **_webhook_ctx(subscription), data=webhook_state(subscription))


def webhook_updated(actor, subscription, *, before):
    return record(
        actor=actor,
        action="webhook.updated",
        **_webhook_ctx(subscription),
        data={"changes": _changes(before, webhook_state(subscription))},
    )


def webhook_deleted(actor, subscription):
    return record(actor=actor, action="webhook.deleted", **_webhook_ctx(subscription), data=webhook_state(subscription))


def webhook_secret_rotated(actor, subscription):
    return record(actor=actor, action="webhook.secret_rotated", **_webhook_ctx(subscription), data={})


def webhook_test_sent(actor, delivery):
    return record(
        actor=actor,
        action="webhook.test_sent",
        **_webhook_ctx(delivery.subscription),
        data={"delivery": str(delivery.uuid)},
    )


def webhook_redelivered(actor, delivery, *, original):
    return record(
        actor=actor,
        action="webhook.redelivered",
        **_webhook_ctx(delivery.subscription),
        data={"delivery": str(delivery.uuid), "redelivery_of": str(original.uuid), "event": delivery.event},
    )


# What the audit log calls these actions, and the prefixes it offers as one filter choice
# (core.vocabulary; described when the app starts).
LABELS = {
    "auth.login": "Signed in",
    "auth.logout": "Signed out",
    "auth.login_failed": "Sign-in failed",
    "auth.locked_out": "Sign-in locked out",
    "user.created": "Account created",
    "user.flags_changed": "Account flags changed",
    "user.password_set": "Password set",
    "token.issued": "Token issued",
    "token.revoked": "Token revoked",
    "team.created": "Team created",
    "membership.added": "Member added",
    "membership.changed": "Member's role changed",
    "membership.removed": "Member removed",
    "site_role.granted": "Site role granted",
    "site_role.revoked": "Site role revoked",
    "llm_model.registered": "Model registered",
    "llm_model.updated": "Model updated",
    "prompt.created": "Prompt created",
    "prompt.updated": "Prompt edited",
    "version.created": "Version created",
    "deployment.changed": "Deployment changed",
    "kill_switch.changed": "Kill switch changed",
    "audit.exported": "Audit trail exported",
    "audit.key_rotated": "Audit signing key rotated",
    "webhook.created": "Webhook created",
    "webhook.updated": "Webhook changed",
    "webhook.deleted": "Webhook deleted",
    "webhook.secret_rotated": "Webhook secret rotated",
    "webhook.test_sent": "Webhook test sent",
    "webhook.redelivered": "Webhook redelivered",
}
GROUPS = {
    "auth.": "Sign-ins and sign-outs",
    "user.": "Accounts",
    "token.": "API tokens",
    "membership.": "Team membership",
    "site_role.": "Site roles",
    "llm_model.": "Model register",
    "prompt.": "Prompt details",
    "webhook.": "Webhooks",
}
