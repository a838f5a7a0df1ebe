"""The demo world that ``bootstrap_demo`` loads: three teams (a retail bank's lending team, a
hospital's care team, a city council's citizen services), the model register, and a dozen prompts
with their version histories.

Plain data only; the command turns it into service calls. Each version names the team role of its
author (never an approver, so approvers stay eligible to approve it later) and each prompt carries
``sample`` variables that render its newest version.
"""

TEAMS = [
    ("lending", "Lending (retail bank)"),
    ("care", "Care (St Brigid's hospital)"),
    ("citizen", "Citizen services (city council)"),
]

# (username suffix, membership role); a second approver per team, because Tier-0 needs two.
TEAM_SEATS = [
    ("owner", "owner"),
    ("approver", "approver"),
    ("approver-2", "approver"),
    ("author", "author"),
    ("viewer", "viewer"),
]

# (username, site role, is Django superuser)
SITE_USERS = [
    ("admin", "admin", True),
    ("compliance", "compliance", False),
    ("risk", "risk", False),
]

OFFLINE = {"provider": "offline", "name": "offline-echo-1", "params": {"temperature": 0}, "response_schema": None}
GPT = {
    "provider": "openai",
    "name": "gpt-4o-mini-2024-07-18",
    "params": {"temperature": 0.2, "max_tokens": 800},
    "response_schema": None,
}
CLAUDE = {
    "provider": "anthropic",
    "name": "claude-3-5-sonnet-20241022",
    "params": {"temperature": 0.3, "max_tokens": 1000},
    "response_schema": None,
}

# (provider, model_id, status, failure modes)
LLM_MODELS = [
    (
        "offline",
        "offline-echo-1",
        "approved",
        "Deterministic echo of the rendered prompt; no model behind it. For demos, tests and evals "
        "without API keys. Never for customer-facing output.",
    ),
    (
        "offline",
        "offline-judge-1",
        "approved",
        "Deterministic judge for demos and tests: scores an answer from the rubric's words without a "
        "model. Never evidence for a real release.",
    ),
    (
        "openai",
        "gpt-4o-mini-2024-07-18",
        "approved",
        "Occasionally invents policy or account details when context is thin; number formatting drifts "
        "(thousands separators, currency). Mitigated by eval suites on every tiered prompt.",
    ),
    (
        "anthropic",
        "claude-3-5-sonnet-20241022",
        "restricted",
        "Under evaluation: verbose on short-answer tasks; refusal rate on medical wording not yet "
        "measured. Restricted to Tier-3 prompts until the review completes.",
    ),
    (
        "openai",
        "gpt-3.5-turbo-0613",
        "retired",
        "Shut down by the provider. Kept in the register for the audit trail of past versions.",
    ),
]


def _schema(properties, required):
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


def _with_schema(model, schema):
    return {**model, "response_schema": schema}


def _v(by, note, messages, variables, model=OFFLINE):
    return {"by": by, "note": note, "messages": messages, "variables": variables, "model": model}


def _sys(text):
    return {"role": "system", "content": text}


def _user(text):
    return {"role": "user", "content": text}


# --- Lending ----------------------------------------------------------------------------------

_LOAN_VARS = {
    "customer_name": {"type": "string", "description": "As printed on the account"},
    "decision": {"type": "string", "description": "approved, declined or referred"},
    "amount": {"type": "number", "description": "Amount applied for, in GBP"},
    "reasons": {"type": "array", "description": "Reason codes with plain-English text"},
}
_LOAN_SYS_1 = (
    "You write loan decision letters for Northbank's retail customers. Be clear, polite and factual. "
    "Never promise an outcome the decision does not state."
)
_LOAN_SYS_3 = (
    _LOAN_SYS_1 + " Follow the Consumer Duty: explain every reason in plain English, say what the "
    "customer can do next, and never mention credit-scoring internals or third-party data by name."
)
_LOAN_USER_1 = (
    "Write a letter to {{ customer_name }} about their loan application for £{{ amount }}.\n"
    "Decision: {{ decision }}.\nReasons:\n{% for r in reasons %}- {{ r }}\n{% endfor %}"
)
_LOAN_USER_2 = (
    "Write a letter to {{ customer_name }} about their loan application for £{{ amount | round(2) }}.\n"
    "Decision: {{ decision }}.\n"
    "{% if reasons %}Reasons, in order of importance:\n"
    "{% for r in reasons %}{{ loop.index }}. {{ r }}\n{% endfor %}{% endif %}"
)
_LOAN_USER_4 = (
    _LOAN_USER_2 + "{% if decision != 'approved' %}Tell them they may appeal within {{ appeal_days }} days "
    "by replying to this letter or calling 0800 000 0000.{% endif %}\n"
    "{% if vulnerable %}The customer has a vulnerability flag: offer a call back from the support team "
    "and avoid urgency.{% endif %}"
)
_LOAN_VARS_4 = {
    **_LOAN_VARS,
    "appeal_days": {"type": "integer", "default": 30},
    "vulnerable": {"type": "boolean", "default": False, "description": "Customer has a vulnerability flag"},
}

_FRAUD_VARS = {
    "customer_name": {"type": "string"},
    "merchant": {"type": "string"},
    "amount": {"type": "number"},
    "signals": {"type": "array", "description": "Why the transaction was held"},
}
_FRAUD_SYS = (
    "You explain to a bank customer why a card payment was held for a fraud check. Never reveal "
    "detection thresholds or model internals. Never ask for a PIN, password or full card number."
)
_FRAUD_USER_1 = (
    "{{ customer_name }}'s payment of £{{ amount }} to {{ merchant }} was held.\nSignals:\n"
    "{% for s in signals %}- {{ s }}\n{% endfor %}Explain why in two short paragraphs."
)
_FRAUD_USER_2 = (
    "{{ customer_name }}'s payment of £{{ amount | round(2) }} to {{ merchant }} was held.\n"
    "Signals (describe them in everyday words, not codes):\n{% for s in signals %}- {{ s }}\n{% endfor %}"
    "Explain why in two short paragraphs, then say how to confirm or deny the payment in the app."
)
_FRAUD_USER_3 = (
    _FRAUD_USER_2 + "\n{% if channel == 'sms' %}Keep it under 300 characters and include no links.{% endif %}"
)

_SUPPORT_VARS = {
    "customer_name": {"type": "string"},
    "question": {"type": "string"},
}
_SUPPORT_SYS_1 = "You answer Northbank customer support messages. Be brief and friendly."
_SUPPORT_SYS_2 = (
    "You answer Northbank customer support messages. Be brief and friendly. If the question is about "
    "a specific transaction, ask the customer to use secure messaging in the app instead."
)
_SUPPORT_SYS_3 = (
    _SUPPORT_SYS_2 + " Do not give financial advice; point to the relevant help article instead."
)
_SUPPORT_USER_1 = "Customer {{ customer_name }} asks: {{ question }}"
_SUPPORT_USER_3 = (
    "Customer {{ customer_name }} asks: {{ question }}\n"
    "{% if articles %}Relevant help articles:\n{% for a in articles %}- {{ a.title }} ({{ a.url }})\n{% endfor %}"
    "{% endif %}"
)
_SUPPORT_VARS_3 = {**_SUPPORT_VARS, "articles": {"type": "array", "default": []}}
_SUPPORT_USER_5 = _SUPPORT_USER_3 + "Answer in {{ language }}."
_SUPPORT_VARS_5 = {**_SUPPORT_VARS_3, "language": {"type": "string", "default": "English"}}

_CATEGORY_SCHEMA = _schema(
    {
        "category": {"type": "string", "enum": ["groceries", "travel", "bills", "eating-out", "shopping", "other"]},
        "confidence": {"type": "number"},
    },
    ["category", "confidence"],
)
_TXN_VARS = {"description": {"type": "string"}, "amount": {"type": "number"}}
_TXN_USER_1 = "Categorise this card transaction: '{{ description }}' for £{{ amount }}. Answer with one word."
_TXN_USER_2 = (
    "Categorise this card transaction: '{{ description }}' for £{{ amount }}"
    "{% if mcc %} (merchant category code {{ mcc }}){% endif %}.\n"
    'Answer as JSON: {"category": ..., "confidence": 0..1}.'
)
_TXN_VARS_2 = {**_TXN_VARS, "mcc": {"type": "string", "default": ""}}

_DISPUTE_VARS = {
    "customer_name": {"type": "string"},
    "case_ref": {"type": "string"},
    "card_last4": {"type": "string", "description": "Last four digits only"},
}
_DISPUTE_USER_1 = (
    "Acknowledge card dispute {{ case_ref }} for {{ customer_name }} (card ending {{ card_last4 }}). "
    "Say we will reply within 15 working days."
)
_DISPUTE_USER_2 = (
    "Acknowledge card dispute {{ case_ref }} for {{ customer_name }} (card ending {{ card_last4 }}). "
    "Say we will reply within {{ sla_days }} working days{% if provisional_credit %} and that a temporary "
    "credit has been added to their account while we investigate{% endif %}."
)
_DISPUTE_VARS_2 = {
    **_DISPUTE_VARS,
    "sla_days": {"type": "integer", "default": 15},
    "provisional_credit": {"type": "boolean", "default": False},
}

# --- Care ---------------------------------------------------------------------------------------

_DISCHARGE_VARS = {
    "patient_name": {"type": "string"},
    "diagnosis": {"type": "string"},
    "medications": {"type": "array", "description": "Objects with name, dose, frequency"},
}
_DISCHARGE_SYS_1 = (
    "You draft hospital discharge summaries for the patient's GP. Use only the facts given. A clinician "
    "reviews and signs every summary before it is sent."
)
_DISCHARGE_SYS_3 = (
    _DISCHARGE_SYS_1 + " Never change, round or infer a medication dose: copy it exactly. If a dose is "
    "missing, write 'DOSE NOT RECORDED' so the reviewer sees it."
)
_DISCHARGE_USER_1 = (
    "Patient: {{ patient_name }}\nDiagnosis: {{ diagnosis }}\nMedications on discharge:\n"
    "{% for m in medications %}- {{ m.name }} {{ m.dose }} {{ m.frequency }}\n{% endfor %}"
)
_DISCHARGE_USER_2 = (
    _DISCHARGE_USER_1 + "{% if follow_up %}Follow-up: {{ follow_up }}\n{% endif %}"
    "Write the summary under the headings Diagnosis, Treatment, Medications, Follow-up."
)
_DISCHARGE_VARS_2 = {**_DISCHARGE_VARS, "follow_up": {"type": "string", "default": ""}}
_DISCHARGE_USER_4 = (
    _DISCHARGE_USER_2 + "\n{% if allergies %}Allergies (list them first, in bold):\n"
    "{% for a in allergies %}- {{ a }}\n{% endfor %}{% endif %}"
)
_DISCHARGE_VARS_4 = {**_DISCHARGE_VARS_2, "allergies": {"type": "array", "default": []}}

_TRIAGE_SCHEMA = _schema(
    {
        "queue": {"type": "string", "enum": ["auto-approve", "clinical-review", "fraud-review", "reject"]},
        "reason": {"type": "string"},
    },
    ["queue", "reason"],
)
_TRIAGE_VARS = {
    "claim_summary": {"type": "string"},
    "procedure_codes": {"type": "array"},
    "amount": {"type": "number"},
}
_TRIAGE_SYS = (
    "You triage insurance claims for St Brigid's billing office into queues. You never approve or reject "
    "payment yourself; you only pick the queue a human works from."
)
_TRIAGE_USER_1 = (
    "Claim: {{ claim_summary }}\nCodes: {{ procedure_codes | join(', ') }}\nAmount: £{{ amount }}\n"
    "Pick a queue: auto-approve, clinical-review, fraud-review or reject."
)
_TRIAGE_USER_2 = (
    _TRIAGE_USER_1 + "\nClaims above £{{ review_threshold }} always go to clinical-review."
)
_TRIAGE_VARS_2 = {**_TRIAGE_VARS, "review_threshold": {"type": "number", "default": 5000}}
_TRIAGE_USER_3 = (
    _TRIAGE_USER_2 + "\n{% if prior_claims %}Prior claims in the last 90 days:\n"
    "{% for c in prior_claims %}- {{ c.date }}: {{ c.codes | join(', ') }} (£{{ c.amount }})\n{% endfor %}"
    "{% endif %}Answer as JSON with queue and reason."
)
_TRIAGE_VARS_3 = {**_TRIAGE_VARS_2, "prior_claims": {"type": "array", "default": []}}

_REMINDER_VARS = {
    "patient_first_name": {"type": "string"},
    "clinic": {"type": "string"},
    "when": {"type": "string", "description": "Date and time, already formatted"},
}
_REMINDER_USER_1 = (
    "Write a friendly SMS reminding {{ patient_first_name }} of their appointment at {{ clinic }} on "
    "{{ when }}. Under 160 characters. Do not mention the reason for the visit."
)
_REMINDER_USER_2 = (
    _REMINDER_USER_1 + "{% if directions %} Add: {{ directions }}{% endif %} End with 'Reply C to cancel'."
)
_REMINDER_VARS_2 = {**_REMINDER_VARS, "directions": {"type": "string", "default": ""}}

_INBOX_VARS = {"messages": {"type": "array", "description": "Patient portal messages, oldest first"}}
_INBOX_SYS_1 = "Summarise a patient's portal messages for the nurse who will answer them."
_INBOX_SYS_2 = (
    _INBOX_SYS_1 + " Flag anything that sounds urgent (chest pain, breathing, bleeding, self-harm) on the "
    "first line as URGENT."
)
_INBOX_USER_1 = "{% for m in messages %}[{{ m.sent_at }}] {{ m.text }}\n{% endfor %}"
_INBOX_USER_3 = (
    _INBOX_USER_1 + "{% if max_words %}Use at most {{ max_words }} words.{% endif %}"
)
_INBOX_VARS_3 = {**_INBOX_VARS, "max_words": {"type": "integer", "default": 120}}

# --- Citizen services ---------------------------------------------------------------------------

_FOI_VARS = {
    "requester_name": {"type": "string"},
    "request_text": {"type": "string"},
    "found_records": {"type": "array", "description": "Titles of records found"},
}
_FOI_SYS_1 = (
    "You draft Freedom of Information responses for the city council's information governance team. "
    "Quote the request, list what was found, and cite the Freedom of Information Act 2000."
)
_FOI_SYS_2 = (
    _FOI_SYS_1 + " Never include personal data of third parties; where records were withheld, name the "
    "exemption (e.g. section 40(2)) and explain the public interest test in one paragraph."
)
_FOI_USER_1 = (
    "Request from {{ requester_name }}: \"{{ request_text }}\"\nRecords found:\n"
    "{% for r in found_records %}- {{ r }}\n{% endfor %}"
)
_FOI_USER_2 = (
    _FOI_USER_1 + "{% if exemptions %}Withheld under:\n{% for e in exemptions %}- section {{ e.section }}: "
    "{{ e.reason }}\n{% endfor %}{% endif %}"
)
_FOI_VARS_2 = {**_FOI_VARS, "exemptions": {"type": "array", "default": []}}
_FOI_USER_3 = _FOI_USER_2 + "The statutory deadline is {{ deadline }}; {% if late %}apologise for the delay.{% endif %}"
_FOI_VARS_3 = {**_FOI_VARS_2, "deadline": {"type": "string"}, "late": {"type": "boolean", "default": False}}

_BENEFITS_VARS = {
    "resident_name": {"type": "string"},
    "household": {"type": "object", "description": "adults, children, weekly_income"},
    "eligible": {"type": "boolean"},
}
_BENEFITS_SYS_1 = (
    "You explain council tax reduction decisions to residents in plain English (reading age 9). "
    "The decision is already made; explain it, do not re-decide it."
)
_BENEFITS_SYS_3 = (
    _BENEFITS_SYS_1 + " Do not mention the children's names or ages; refer to 'the children in your home'."
)
_BENEFITS_USER_1 = (
    "Resident: {{ resident_name }}\nHousehold: {{ household.adults }} adult(s), {{ household.children }} "
    "child(ren), weekly income £{{ household.weekly_income }}\n"
    "Decision: {% if eligible %}eligible{% else %}not eligible{% endif %}"
)
_BENEFITS_USER_2 = (
    _BENEFITS_USER_1 + "{% if eligible %}\nWeekly reduction: £{{ weekly_reduction | round(2) }}{% endif %}"
)
_BENEFITS_VARS_2 = {**_BENEFITS_VARS, "weekly_reduction": {"type": "number", "default": 0}}
_BENEFITS_USER_4 = (
    _BENEFITS_USER_2 + "\nExplain how to ask for a review within {{ review_days }} days"
    "{% if language != 'English' %}, and write the whole letter in {{ language }}{% endif %}."
)
_BENEFITS_VARS_4 = {
    **_BENEFITS_VARS_2,
    "review_days": {"type": "integer", "default": 30},
    "language": {"type": "string", "default": "English"},
}

_COMPLAINT_SCHEMA = _schema(
    {
        "department": {"type": "string", "enum": ["waste", "housing", "roads", "parking", "council-tax", "other"]},
        "severity": {"type": "integer", "minimum": 1, "maximum": 3},
        "contains_personal_data": {"type": "boolean"},
    },
    ["department", "severity", "contains_personal_data"],
)
_COMPLAINT_VARS = {"complaint": {"type": "string"}}
_COMPLAINT_USER_1 = "Route this resident complaint to a department and rate its severity 1-3:\n{{ complaint }}"
_COMPLAINT_USER_2 = (
    _COMPLAINT_USER_1 + "\nSeverity 3 means a risk to someone's safety (e.g. a dangerous pothole, no heating "
    "for a vulnerable tenant). Answer as JSON."
)
_COMPLAINT_USER_3 = (
    _COMPLAINT_USER_2 + "\n{% if previous_refs %}The resident has complained before: "
    "{{ previous_refs | join(', ') }}. Raise severity by one if it is the same issue.{% endif %}"
)
_COMPLAINT_VARS_3 = {**_COMPLAINT_VARS, "previous_refs": {"type": "array", "default": []}}

_PLAIN_VARS = {"text": {"type": "string"}}
_PLAIN_USER_1 = "Rewrite this council notice in plain English for a reading age of 9:\n\n{{ text }}"
_PLAIN_USER_2 = (
    "Rewrite this council notice in plain English for a reading age of {{ reading_age }}. Keep every date, "
    "amount and deadline exactly as written.\n\n{{ text }}"
)
_PLAIN_VARS_2 = {**_PLAIN_VARS, "reading_age": {"type": "integer", "default": 9}}


PROMPTS = [
    {
        "slug": "loan-decision-letter",
        "team": "lending",
        "name": "Loan decision letter",
        "tier": 0,
        "tags": ["letters", "lending", "customer-facing"],
        "data_categories": ["pii", "financial"],
        "description": "The letter a customer receives after a personal loan decision. Regulated communication.",
        "versions": [
            _v("author", "First draft from the letters working group.", [_sys(_LOAN_SYS_1), _user(_LOAN_USER_1)],
               _LOAN_VARS),
            _v("author", "Number the reasons and round the amount; skip the list when there are none.",
               [_sys(_LOAN_SYS_1), _user(_LOAN_USER_2)], _LOAN_VARS),
            _v("owner", "Consumer Duty wording after the compliance review (CD-2024-17).",
               [_sys(_LOAN_SYS_3), _user(_LOAN_USER_2)], _LOAN_VARS),
            _v("author", "Appeal window and vulnerable-customer handling (complaint ref C-8812).",
               [_sys(_LOAN_SYS_3), _user(_LOAN_USER_4)], _LOAN_VARS_4),
        ],
        "sample": {
            "customer_name": "Ada Lovelace",
            "decision": "declined",
            "amount": 12500,
            "reasons": ["Existing credit commitments are high compared with income", "Short address history"],
            "vulnerable": True,
        },
    },
    {
        "slug": "fraud-hold-explanation",
        "team": "lending",
        "name": "Fraud hold explanation",
        "tier": 0,
        "tags": ["fraud", "customer-facing"],
        "data_categories": ["pii", "financial", "pci"],
        "description": "Explains to a customer why a card payment was held for a fraud check.",
        "versions": [
            _v("author", "Initial version for the in-app message.", [_sys(_FRAUD_SYS), _user(_FRAUD_USER_1)],
               _FRAUD_VARS),
            _v("author", "Describe signals in everyday words and tell people how to confirm in the app.",
               [_sys(_FRAUD_SYS), _user(_FRAUD_USER_2)], _FRAUD_VARS),
            _v("owner", "SMS channel: short, and no links (smishing guidance from the fraud team).",
               [_sys(_FRAUD_SYS), _user(_FRAUD_USER_3)],
               {**_FRAUD_VARS, "channel": {"type": "string", "default": "app"}}),
        ],
        "sample": {
            "customer_name": "Grace Hopper",
            "merchant": "ELECTRO-WORLD ONLINE",
            "amount": 1899.99,
            "signals": ["First purchase from this merchant", "Shipping address differs from home address"],
            "channel": "sms",
        },
    },
    {
        "slug": "support-reply",
        "team": "lending",
        "name": "Support reply",
        "tier": 2,
        "tags": ["support", "customer-facing"],
        "data_categories": ["pii"],
        "description": "Drafts a reply to a customer's support message; an agent edits and sends it.",
        "versions": [
            _v("author", "First version.", [_sys(_SUPPORT_SYS_1), _user(_SUPPORT_USER_1)], _SUPPORT_VARS),
            _v("author", "Send transaction questions to secure messaging.",
               [_sys(_SUPPORT_SYS_2), _user(_SUPPORT_USER_1)], _SUPPORT_VARS),
            _v("author", "Ground answers in help articles; no financial advice.",
               [_sys(_SUPPORT_SYS_3), _user(_SUPPORT_USER_3)], _SUPPORT_VARS_3),
            _v("owner", "Move to gpt-4o-mini (canary in production before the switch).",
               [_sys(_SUPPORT_SYS_3), _user(_SUPPORT_USER_3)], _SUPPORT_VARS_3, GPT),
            _v("author", "Answer in the customer's language.",
               [_sys(_SUPPORT_SYS_3), _user(_SUPPORT_USER_5)], _SUPPORT_VARS_5, GPT),
        ],
        # Production runs v3 with v4 (the model upgrade) on a 10% canary; staging tries v5.
        "deploy": {"production": 3, "staging": 5, "development": 5},
        "canary": {"environment": "production", "version": 4, "percent": 10},
        "sample": {
            "customer_name": "Alan",
            "question": "How do I raise my contactless limit?",
            "articles": [{"title": "Card limits", "url": "https://help.example.test/limits"}],
            "language": "Welsh",
        },
    },
    {
        "slug": "transaction-categoriser",
        "team": "lending",
        "name": "Transaction categoriser",
        "tier": 3,
        "tags": ["classification", "internal"],
        "data_categories": ["financial"],
        "description": "Puts card transactions into spending categories for the budgeting view.",
        "versions": [
            _v("author", "One-word categories.", [_user(_TXN_USER_1)], _TXN_VARS),
            _v("author", "Structured output with a confidence, and use the merchant category code.",
               [_user(_TXN_USER_2)], _TXN_VARS_2, _with_schema(OFFLINE, _CATEGORY_SCHEMA)),
        ],
        "sample": {"description": "TESCO STORES 2041", "amount": 54.2, "mcc": "5411"},
    },
    {
        "slug": "card-dispute-acknowledgement",
        "team": "lending",
        "name": "Card dispute acknowledgement",
        "tier": 2,
        "tags": ["letters", "disputes", "customer-facing"],
        "data_categories": ["pii", "financial", "pci"],
        "description": "Acknowledges a card dispute and states the service level.",
        "versions": [
            _v("author", "First version.", [_user(_DISPUTE_USER_1)], _DISPUTE_VARS),
            _v("author", "Configurable SLA; mention provisional credit when given.",
               [_user(_DISPUTE_USER_2)], _DISPUTE_VARS_2),
        ],
        "sample": {"customer_name": "Katherine Johnson", "case_ref": "CD-204417", "card_last4": "4242",
                   "provisional_credit": True},
    },
    {
        "slug": "discharge-summary",
        "team": "care",
        "name": "Discharge summary",
        "tier": 0,
        "tags": ["clinical", "letters"],
        "data_categories": ["pii", "phi"],
        "description": "Drafts the discharge summary sent to the patient's GP. Clinician-reviewed.",
        "versions": [
            _v("author", "Pilot on the cardiology ward.", [_sys(_DISCHARGE_SYS_1), _user(_DISCHARGE_USER_1)],
               _DISCHARGE_VARS),
            _v("author", "Standard headings and follow-up, as agreed with the GP liaison group.",
               [_sys(_DISCHARGE_SYS_1), _user(_DISCHARGE_USER_2)], _DISCHARGE_VARS_2),
            _v("owner", "Never alter doses; flag missing ones (incident INC-3391).",
               [_sys(_DISCHARGE_SYS_3), _user(_DISCHARGE_USER_2)], _DISCHARGE_VARS_2),
            _v("author", "List allergies first.", [_sys(_DISCHARGE_SYS_3), _user(_DISCHARGE_USER_4)],
               _DISCHARGE_VARS_4),
        ],
        "sample": {
            "patient_name": "Mary Seacole",
            "diagnosis": "Community-acquired pneumonia",
            "medications": [
                {"name": "Amoxicillin", "dose": "500 mg", "frequency": "three times a day for 5 days"},
                {"name": "Paracetamol", "dose": "1 g", "frequency": "up to four times a day"},
            ],
            "follow_up": "Chest X-ray in 6 weeks",
            "allergies": ["Penicillin (rash)"],
        },
    },
    {
        "slug": "claim-triage",
        "team": "care",
        "name": "Insurance claim triage",
        "tier": 1,
        "tags": ["billing", "classification"],
        "data_categories": ["phi", "financial"],
        "description": "Routes incoming insurance claims to the right billing work queue.",
        "versions": [
            _v("author", "First version.", [_sys(_TRIAGE_SYS), _user(_TRIAGE_USER_1)], _TRIAGE_VARS),
            _v("author", "High-value claims always get clinical review.",
               [_sys(_TRIAGE_SYS), _user(_TRIAGE_USER_2)], _TRIAGE_VARS_2),
            _v("owner", "Consider prior claims; structured JSON answer.", [_sys(_TRIAGE_SYS), _user(_TRIAGE_USER_3)],
               _TRIAGE_VARS_3, _with_schema(OFFLINE, _TRIAGE_SCHEMA)),
        ],
        "sample": {
            "claim_summary": "Day-case knee arthroscopy",
            "procedure_codes": ["W85.1", "Z84.6"],
            "amount": 3120.0,
            "prior_claims": [{"date": "2024-05-02", "codes": ["W85.1"], "amount": 2900}],
        },
    },
    {
        "slug": "appointment-reminder",
        "team": "care",
        "name": "Appointment reminder SMS",
        "tier": 3,
        "tags": ["sms", "patient-facing"],
        "data_categories": ["pii", "location"],
        "description": "The SMS sent two days before an outpatient appointment.",
        "versions": [
            _v("author", "First version.", [_user(_REMINDER_USER_1)], _REMINDER_VARS),
            _v("author", "Directions and a cancel keyword (did-not-attend rate project).",
               [_user(_REMINDER_USER_2)], _REMINDER_VARS_2),
        ],
        "sample": {"patient_first_name": "Florence", "clinic": "Outpatients B", "when": "Tue 4 Jun, 10:30",
                   "directions": "Enter by the Elm Street doors."},
    },
    {
        "slug": "patient-inbox-summary",
        "team": "care",
        "name": "Patient inbox summary",
        "tier": 2,
        "tags": ["clinical", "internal"],
        "data_categories": ["pii", "phi"],
        "description": "Summarises a patient's portal messages for the nurse on the inbox rota.",
        "versions": [
            _v("author", "First version.", [_sys(_INBOX_SYS_1), _user(_INBOX_USER_1)], _INBOX_VARS),
            _v("author", "Flag urgent symptoms on the first line.", [_sys(_INBOX_SYS_2), _user(_INBOX_USER_1)],
               _INBOX_VARS),
            _v("author", "Word limit.", [_sys(_INBOX_SYS_2), _user(_INBOX_USER_3)], _INBOX_VARS_3),
        ],
        "kill_switch": {
            "environment": "production",
            "reason": "INC-3420: a summary dropped an URGENT flag in clinical review; off until the eval "
            "suite covers urgent-symptom recall.",
        },
        "sample": {"messages": [{"sent_at": "2024-06-01 08:12", "text": "Still short of breath since Friday."}]},
    },
    {
        "slug": "foi-response",
        "team": "citizen",
        "name": "Freedom of Information response",
        "tier": 1,
        "tags": ["letters", "information-governance"],
        "data_categories": ["pii", "legal"],
        "description": "Drafts the council's answer to an FOI request for the information governance officer.",
        "versions": [
            _v("author", "First version.", [_sys(_FOI_SYS_1), _user(_FOI_USER_1)], _FOI_VARS, GPT),
            _v("owner", "Third-party personal data and exemptions (ICO decision notice review).",
               [_sys(_FOI_SYS_2), _user(_FOI_USER_2)], _FOI_VARS_2, GPT),
            _v("author", "State the statutory deadline and apologise when late.",
               [_sys(_FOI_SYS_2), _user(_FOI_USER_3)], _FOI_VARS_3, GPT),
        ],
        "sample": {
            "requester_name": "J. Bloggs",
            "request_text": "How much did the council spend on pothole repairs in 2023?",
            "found_records": ["Highways maintenance spend 2023 (summary)"],
            "exemptions": [{"section": "43(2)", "reason": "commercial interests of the contractor"}],
            "deadline": "14 June 2024",
        },
    },
    {
        "slug": "council-tax-reduction-explainer",
        "team": "citizen",
        "name": "Council tax reduction explainer",
        "tier": 1,
        "tags": ["letters", "benefits", "customer-facing"],
        "data_categories": ["pii", "financial", "minors"],
        "description": "Explains a council tax reduction decision to the resident in plain English.",
        "versions": [
            _v("author", "First version.", [_sys(_BENEFITS_SYS_1), _user(_BENEFITS_USER_1)], _BENEFITS_VARS),
            _v("author", "Show the weekly reduction when eligible.",
               [_sys(_BENEFITS_SYS_1), _user(_BENEFITS_USER_2)], _BENEFITS_VARS_2),
            _v("owner", "Never name or age children (data protection officer's advice).",
               [_sys(_BENEFITS_SYS_3), _user(_BENEFITS_USER_2)], _BENEFITS_VARS_2),
            _v("author", "Review rights, and letters in the resident's language.",
               [_sys(_BENEFITS_SYS_3), _user(_BENEFITS_USER_4)], _BENEFITS_VARS_4),
        ],
        "sample": {
            "resident_name": "Sam Taylor",
            "household": {"adults": 1, "children": 2, "weekly_income": 310.5},
            "eligible": True,
            "weekly_reduction": 18.75,
            "language": "Polish",
        },
    },
    {
        "slug": "complaint-router",
        "team": "citizen",
        "name": "Complaint router",
        "tier": 2,
        "tags": ["classification", "internal"],
        "data_categories": ["pii", "location"],
        "description": "Routes resident complaints to a department and rates their severity.",
        "versions": [
            _v("author", "First version.", [_user(_COMPLAINT_USER_1)], _COMPLAINT_VARS),
            _v("author", "Define severity 3; JSON answer.", [_user(_COMPLAINT_USER_2)], _COMPLAINT_VARS,
               _with_schema(OFFLINE, _COMPLAINT_SCHEMA)),
            _v("author", "Repeat complaints raise severity.", [_user(_COMPLAINT_USER_3)], _COMPLAINT_VARS_3,
               _with_schema(OFFLINE, _COMPLAINT_SCHEMA)),
        ],
        "sample": {"complaint": "The streetlight outside 12 Mill Lane has been out for three weeks.",
                   "previous_refs": ["CR-1182"]},
    },
    {
        "slug": "plain-language-rewrite",
        "team": "citizen",
        "name": "Plain language rewrite",
        "tier": 3,
        "tags": ["accessibility", "internal"],
        "data_categories": [],
        "description": "Rewrites public notices in plain English. No personal data.",
        "versions": [
            _v("author", "First version.", [_user(_PLAIN_USER_1)], _PLAIN_VARS),
            _v("author", "Configurable reading age; keep dates and amounts verbatim. Trying Claude.",
               [_user(_PLAIN_USER_2)], _PLAIN_VARS_2, CLAUDE),
        ],
        # v2 runs on a model the register still restricts: tried in development only.
        "deploy": {"production": 1, "staging": 1, "development": 2},
        "sample": {"text": "Residents are hereby notified that refuse collection shall be suspended on 26 December."},
    },
]


def default_deploy(version_count):
    """Production one version behind the newest; staging and development on the newest."""
    newest = version_count
    return {"production": max(1, newest - 1), "staging": newest, "development": newest}
