"""How the registry reaches the apps built on it without importing them: they register here when
they start (``AppConfig.ready``).

- ``announce(event, **data)``: the registry tells listeners what changed, inside the change's own
  transaction (webhooks turns ``version_created``, ``deployment_changed`` and
  ``kill_switch_changed`` into deliveries in that transaction).
- ``provided(name)``: a function another app supplies for a question the registry or a lower app
  asks (approvals answers ``named_approvers`` and ``set_named_approvers`` for prompts, and
  ``gate_required`` for the gate; risk answers ``deploy_requirements``, the register's items of a
  deploy's checklist, which approvals' deploy check asks for; evals answers ``gate_config``,
  ``set_gate``, ``gate_suites`` and ``gate_verdict`` for the registry's gate page; sso answers
  ``idp_account``, whether an account signs in at the IdP, and ``idp_reauth_url``, where its
  approvals send it to sign in again), or None when no installed app supplies it.
"""

from collections import defaultdict

_LISTENERS = defaultdict(list)
_PROVIDERS = {}
EVENTS = ("version_created", "deployment_changed", "kill_switch_changed")


def listen(event, listener):
    if event not in EVENTS:
        raise ValueError(f"the registry announces no '{event}'; it announces {', '.join(EVENTS)}")
    if listener not in _LISTENERS[event]:
        _LISTENERS[event].append(listener)


def announce(event, **data):
    for listener in _LISTENERS[event]:
        listener(**data)


def provide(name, function):
    _PROVIDERS[name] = function


def provided(name):
    return _PROVIDERS.get(name)
