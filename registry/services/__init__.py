"""Every state change of the registry: each function checks permission and writes its change in
one transaction. Callers pass keyword arguments and an ``Actor``; failures are ``DomainError``s."""

from .deployments import set_deployment, set_kill_switch
from .llm_models import create_llm_model, update_llm_model
from .prompts import FirstVersionRefused, create_prompt, create_prompt_with_first_version, create_version, update_prompt
from .teams import add_member, create_team, grant_site_role, remove_member, revoke_site_role
from .tokens import issue_token, revoke_token
from .users import create_user, set_password, set_user_flags

__all__ = [
    "add_member",
    "create_llm_model",
    "FirstVersionRefused",
    "create_prompt",
    "create_prompt_with_first_version",
    "create_team",
    "create_user",
    "create_version",
    "grant_site_role",
    "issue_token",
    "remove_member",
    "revoke_site_role",
    "revoke_token",
    "set_deployment",
    "set_kill_switch",
    "set_password",
    "set_user_flags",
    "update_llm_model",
    "update_prompt",
]
