"""Who people are to Promptledger: teams, their members' roles, site-wide roles and API tokens.
Their tables keep the names they had in ``registry`` (the rows never moved)."""

from django.conf import settings
from django.db import models


class SiteRole(models.Model):
    """A site-wide role: ``admin`` (everything), ``compliance`` (read all, export audit),
    ``risk`` (the model risk register)."""

    ADMIN, COMPLIANCE, RISK = "admin", "compliance", "risk"
    ROLE_CHOICES = [(ADMIN, "Admin"), (COMPLIANCE, "Compliance"), (RISK, "Risk")]

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="site_roles")
    role = models.CharField(max_length=16, choices=ROLE_CHOICES)

    class Meta:
        db_table = "registry_siterole"
        constraints = [models.UniqueConstraint(fields=["user", "role"], name="site_role_unique")]

    def __str__(self):
        return f"{self.user} is {self.role}"


class Team(models.Model):
    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "registry_team"
        ordering = ["slug"]

    def __str__(self):
        return self.name


class Membership(models.Model):
    """A user's role in a team; roles are ordered, each including the ones before it."""

    VIEWER, AUTHOR, APPROVER, OWNER = "viewer", "author", "approver", "owner"
    ROLE_CHOICES = [(VIEWER, "Viewer"), (AUTHOR, "Author"), (APPROVER, "Approver"), (OWNER, "Owner")]
    RANK = {VIEWER: 0, AUTHOR: 1, APPROVER: 2, OWNER: 3}

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=ROLE_CHOICES)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "registry_membership"
        ordering = ["team__slug", "user__username"]
        constraints = [models.UniqueConstraint(fields=["team", "user"], name="membership_unique")]

    def __str__(self):
        return f"{self.user} is {self.role} of {self.team}"


class APIToken(models.Model):
    """A scoped bearer token. Only the sha256 of the secret is stored; the secret is shown once."""

    SCOPES = ["prompts:read", "prompts:write", "evals:run", "deploy", "audit:read"]

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=16, db_index=True)
    key_hash = models.CharField(max_length=64, unique=True)
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "registry_apitoken"
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.prefix}… ({self.user})"
