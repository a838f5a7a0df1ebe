"""Who is acting: a signed-in user, a user's scoped API token, or the system itself.

Services take an ``Actor`` and never a request, so the browser, the API, the CLI and management
commands all meet the same checks.
"""

from dataclasses import dataclass, field

from . import logs
from .models import APIToken, SiteRole


@dataclass
class Actor:
    user: object | None
    token: APIToken | None = None
    system: bool = False
    request_id: str = ""
    ip: str = ""
    user_agent: str = ""
    client_request_id: str = ""  # what the client sent as X-Request-ID, cleaned; never our id
    authenticated_at: object | None = None  # a browser session's last sign-in or password (session_auth)
    _site_roles: frozenset | None = field(default=None, repr=False)

    @classmethod
    def for_system(cls, reason="system"):
        """The system acting, for ``reason``. Inside a request, or a task that carries the id of the
        request that queued it (core.logs), its events carry that id, so an eval run's completion
        leads back to the request that started it; elsewhere (a management command) the reason."""
        return cls(user=None, system=True, request_id=logs.request_id() or reason)

    @property
    def kind(self):
        if self.system:
            return "system"
        return "token" if self.token is not None else "user"

    @property
    def username(self):
        return self.user.get_username() if self.user is not None else "system"

    def has_scope(self, scope):
        """A browser session carries every scope; a token only those it was issued with."""
        if self.system or self.token is None:
            return True
        return scope in (self.token.scopes or [])

    @property
    def site_roles(self):
        if self._site_roles is None:
            if self.user is None:
                self._site_roles = frozenset()
            else:
                roles = set(SiteRole.objects.filter(user=self.user).values_list("role", flat=True))
                if self.user.is_superuser:
                    roles.add(SiteRole.ADMIN)
                self._site_roles = frozenset(roles)
        return self._site_roles

    @property
    def is_admin(self):
        return self.system or SiteRole.ADMIN in self.site_roles

    @property
    def reads_everything(self):
        return self.system or bool(self.site_roles & {SiteRole.ADMIN, SiteRole.COMPLIANCE, SiteRole.RISK})
