"""The access review in the browser (under /compliance/): the report, its CSV and JSON downloads, the
sign-off form and the history of sign-offs. Thin: the report is ``risk.access_review.build``, a
sign-off is ``services.sign_off_access_review``, and a refusal re-renders the page with the
service's own words and status (the comment kept)."""

import json

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from approvals import browser_signing
from core import access
from core.errors import DomainError, ValidationFailed
from core.pages import registry_page

from . import access_review, services
from .forms import AccessReviewSignOffForm
from .models import AccessReviewSignOff

FORMATS = {"csv": "text/csv; charset=utf-8", "json": "application/json"}
HISTORY = 20


def _periods(current):
    """The current quarter and the four before it, newest first."""
    year, quarter = int(current[:4]), int(current[-1])
    periods = []
    for _ in range(5):
        periods.append(f"{year}-Q{quarter}")
        year, quarter = (year, quarter - 1) if quarter > 1 else (year - 1, 4)
    return periods


@registry_page
@require_http_methods(["GET", "POST"])
def access_review_page(request, actor):
    report = access_review.build(actor=actor)
    fingerprint = access_review.fingerprint(report)
    current = access_review.current_period()
    form = AccessReviewSignOffForm(
        request.POST or None, periods=_periods(current), initial={"period": current, "fingerprint": fingerprint}
    )
    status, error = 200, None
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            try:
                signed = services.sign_off_access_review(
                    actor=actor, period=data["period"], comment=data["comment"], fingerprint=data["fingerprint"],
                    signature=browser_signing.signature(request.session, actor, data.get("password"),
                                                        what="the access review"),
                )
            except DomainError as exc:
                for field, errors in exc.field_errors.items():
                    for message in errors:
                        form.add_error(field if field in form.fields else None, message)
                status, error = exc.status, exc
                if exc.code == "report_changed":  # sign what is on the page now
                    form.data = form.data.copy()
                    form.data["fingerprint"] = fingerprint
            else:
                messages.success(request, f"Access review {signed.period} signed off ({signed.user_count} accounts).")
                return redirect("compliance:access-review")
        else:
            status = 400
    context = {
        "section": "audit", "report": report, "fingerprint": fingerprint, "form": form, "error": error,
        "may_sign": access.may(actor, "access_review.sign_off"),
        "needs_password": browser_signing.needs_password(request.session, actor, services.REVIEW_SIGNING),
        "idp_reauth_url": browser_signing.idp_reauth_url(request.session, request.path),
        "history": AccessReviewSignOff.objects.defer("report")[:HISTORY],
        "rows": [{**p, "approve": access_review.approve_text(p["can_approve"])} for p in report["users"]],
    }
    return render(request, "risk/access_review.html", context, status=status)


@registry_page
@require_GET
def access_review_export(request, actor):
    kind = request.GET.get("format", "csv")
    if kind not in FORMATS:
        raise ValidationFailed(f"no export format '{kind[:20]}'", field_errors={"format": ["csv or json"]})
    report = access_review.build(actor=actor)
    fingerprint = access_review.fingerprint(report)
    if kind == "csv":
        body = access_review.as_csv(report)
    else:
        body = json.dumps({"fingerprint": fingerprint, "report": report}, indent=2)
    response = HttpResponse(body, content_type=FORMATS[kind])
    name = f"access-review-{report['as_of']}-{fingerprint[:12]}.{kind}"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["X-Report-Fingerprint"] = fingerprint
    return response
