"""One function per audit event type of single sign-on, called by sso.identities inside its
change. Role changes the IdP's groups cause are recorded by the registry's own services (actor
``system``, request id ``oidc``); these events say who was linked and who was refused."""

from audit.services import record

SOURCE = "oidc"


def identity_linked(actor, identity, *, created_account):
    return record(
        actor=actor, action="sso.identity_linked", target_type="user", target_id=identity.user_id,
        data={"source": SOURCE, "username": identity.user.get_username(), "issuer": identity.issuer,
              "subject": identity.subject, "created_account": created_account},
    )


def sign_in_refused(actor, *, issuer, subject, username, reason):
    return record(
        actor=actor, action="sso.sign_in_refused", target_type="user", target_id="",
        data={"source": SOURCE, "issuer": issuer, "subject": subject, "username": username, "reason": reason},
    )


def roles_synced(actor, identity, *, groups, changes):
    return record(
        actor=actor, action="sso.roles_synced", target_type="user", target_id=identity.user_id,
        data={"source": SOURCE, "username": identity.user.get_username(), "groups": groups, "changes": changes},
    )


# What the audit log calls these actions, and the prefixes it offers as one filter choice
# (core.vocabulary; described when the app starts).
LABELS = {
    "sso.identity_linked": "IdP identity linked",
    "sso.roles_synced": "Roles synced from the IdP",
    "sso.sign_in_refused": "IdP sign-in refused",
}
GROUPS = {
    "sso.": "Single sign-on",
}
