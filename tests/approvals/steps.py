"""Steps the separation-of-duties, checklist and lifecycle tests share, on top of the ``flow``
fixture (tests/approvals/conftest.py): open a request, decide on it as members of the cast, expect
a refusal by its code."""

import pytest

from approvals import services
from core.errors import DomainError

from .conftest import act


def open_for(flow, version, environment, by="owner", **kw):
    """``by`` asks to put ``version`` live in ``environment``."""
    return services.open_request(
        actor=act(flow[by]), prompt=version.prompt, version=version, environment=environment,
        rationale="friendlier letter", **kw,
    )


def open_v2(flow, environment, by="owner", **kw):
    return open_for(flow, flow["v2"], environment, by=by, **kw)


def approve_by(flow, request, *names):
    for name in names:
        services.approve(actor=act(flow[name]), request=request)


def deploy(flow, request, by="owner"):
    return services.deploy(actor=act(flow[by]), request=request)


def refused(code, fn, *args, **kwargs):
    """Call ``fn``, expect a ``DomainError`` with ``code``, and return it."""
    with pytest.raises(DomainError) as caught:
        fn(*args, **kwargs)
    assert caught.value.code == code, caught.value.detail
    return caught.value


def name_approvers(flow, *names, groups=None):
    from approvals import administration

    return administration.set_named_approvers(
        actor=act(flow["owner"]), prompt=flow["v2"].prompt, approvers=list(names), approver_groups=groups
    )


def usernames(user_ids):
    """The usernames of a set of user ids, to compare with the cast by name."""
    from django.contrib.auth import get_user_model

    return set(get_user_model().objects.filter(pk__in=user_ids).values_list("username", flat=True))
