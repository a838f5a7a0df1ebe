"""``{% evidence_pack_button dr %}``: the request page's "Download evidence pack" link, offered only
to who may download it (``evidence_pack.export``) and only for a request that went live (the
builder's own ``unavailable_reason``), so the page never offers what the API would refuse."""

from django import template

from core import access
from core.auth import actor_from

from ..evidence.builder import unavailable_reason

register = template.Library()


@register.inclusion_tag("risk/evidence/_button.html", takes_context=True)
def evidence_pack_button(context, dr):
    request = context.get("request")
    offered = (
        request is not None
        and not unavailable_reason(dr)
        and access.may(actor_from(request), "evidence_pack.export", team=dr.prompt.team)
    )
    return {"dr": dr, "offered": offered}
