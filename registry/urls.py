"""Browser routes of the registry, plus the section still to come (approvals; evals has its own, in
``evals.urls``). A prompt's History tab shows the audit log's rows for the prompt; its setup pages
(a new prompt, settings, gate, kill switch) are in ``views_setup`` and ``views_kill_switch``."""
from django.urls import path

from . import access_views, views, views_kill_switch, views_setup

app_name = "registry"
urlpatterns = [
    path("", views.prompt_list, name="prompt-list"),
    # "new-prompt/", not "prompts/new/": a prompt may be slugged "new".
    path("new-prompt/", views_setup.prompt_new, name="prompt-new"),
    path("prompts/<slug:slug>/", views.prompt_detail, name="prompt-detail"),
    path("prompts/<slug:slug>/settings/", views_setup.prompt_settings, name="prompt-settings"),
    path("prompts/<slug:slug>/settings/approvers/", views_setup.prompt_approvers, name="prompt-approvers"),
    path("prompts/<slug:slug>/settings/tier/", views_setup.prompt_tier, name="prompt-tier"),
    path("prompts/<slug:slug>/gate/", views_setup.prompt_gate, name="prompt-gate"),
    path("prompts/<slug:slug>/kill-switch/", views_kill_switch.kill_switch, name="kill-switch"),
    path("prompts/<slug:slug>/versions/new/", views.version_new, name="version-new"),
    path("prompts/<slug:slug>/versions/<int:number>/", views.version_detail, name="version-detail"),
    path("prompts/<slug:slug>/diff/", views.version_diff, name="version-diff"),
    path("prompts/<slug:slug>/history/", views.prompt_history, name="prompt-history"),
    path("teams/", access_views.team_list, name="team-list"),
    path("teams/<slug:slug>/", access_views.team_detail, name="team-detail"),
    path("teams/<slug:slug>/members/", access_views.team_member_save, name="team-member-save"),
    path("teams/<slug:slug>/members/remove/", access_views.team_member_remove, name="team-member-remove"),
    path("settings/tokens/", access_views.token_list, name="token-list"),
    path("settings/tokens/<int:token_id>/revoke/", access_views.token_revoke, name="token-revoke"),
    path("settings/people/", access_views.people, name="people"),
    path("settings/people/grant/", access_views.site_role_grant, name="site-role-grant"),
    path("settings/people/revoke/", access_views.site_role_revoke, name="site-role-revoke"),
]
