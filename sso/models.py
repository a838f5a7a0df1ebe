"""Who a person is at the identity provider: the (issuer, subject) pair their account is linked
to, what groups the IdP last said they had, and when it last vouched for them."""

from django.conf import settings
from django.db import models


class Identity(models.Model):
    """The link between an account and an IdP subject. One per account and one per subject: the
    username may change at the IdP, the subject may not."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="sso_identity")
    issuer = models.CharField(max_length=255)
    subject = models.CharField(max_length=255)
    groups = models.JSONField(default=list, blank=True)
    first_seen_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField()
    last_auth_time = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "identities"
        constraints = [models.UniqueConstraint(fields=["issuer", "subject"], name="sso_identity_subject_unique")]

    def __str__(self):
        return f"{self.user} = {self.subject} at {self.issuer}"
