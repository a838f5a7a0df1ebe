"""The demo's eval evidence: one small team suite per Tier-0/1/2 demo prompt, the gate that uses
it, and the versions it is run on, for ``bootstrap_demo``.

Plain data only. Every case passes on the offline provider, which answers with the rendered user
message (or, for a version with a response schema, a JSON object built from the schema), so the
assertions check what a version puts in front of the model: the names, amounts and wording its
template must carry, and what it must leave out. A case's variables are those every version it
is run on declares (later versions add variables with defaults, never required ones).
"""


def _contains(value):
    return {"type": "contains", "value": value}


def _lacks(value, ignore_case=True):
    return {"type": "not_contains", "value": value, "ignore_case": ignore_case}


def _case(description, variables, *assertions):
    return {"description": description, "vars": variables, "assertions": list(assertions)}


_FAST = {"type": "max_latency_ms", "value": 5000}

_LOAN = [
    _case(
        "A decline names the customer and every reason, in plain words",
        {"customer_name": "Ada Lovelace", "decision": "declined", "amount": 12500,
         "reasons": ["Existing credit commitments are high compared with income", "Short address history"]},
        _contains("Ada Lovelace"), _contains("Short address history"), _lacks("credit score"),
    ),
    _case(
        "An approval offers no appeal",
        {"customer_name": "Charles Babbage", "decision": "approved", "amount": 4000, "reasons": []},
        _contains("Decision: approved"), _lacks("appeal"), _FAST,
    ),
    _case(
        "A referral with no reasons prints no empty list",
        {"customer_name": "Mary Somerville", "decision": "referred", "amount": 25000, "reasons": []},
        _contains("Decision: referred"), _lacks("Reasons, in order of importance", ignore_case=False),
    ),
]

_FRAUD = [
    _case(
        "The hold names the merchant and the amount",
        {"customer_name": "Grace Hopper", "merchant": "ELECTRO-WORLD ONLINE", "amount": 1899.99,
         "signals": ["First purchase from this merchant"]},
        _contains("ELECTRO-WORLD ONLINE"), _contains("1899.99"), _lacks("PIN", ignore_case=False),
    ),
    _case(
        "Signals are described, and the customer is told how to confirm",
        {"customer_name": "Alan Turing", "merchant": "SKYLINE AIR", "amount": 640,
         "signals": ["Shipping address differs from home address", "Unusual time of day"]},
        _contains("Shipping address differs from home address"),
        _contains("confirm or deny the payment in the app"), _FAST,
    ),
    _case(
        "No card number or password is asked for",
        {"customer_name": "Joan Clarke", "merchant": "GIFTCARDS4U", "amount": 250, "signals": ["Gift card merchant"]},
        _lacks("card number"), _lacks("password"),
    ),
]

_DISCHARGE = [
    _case(
        "Doses are copied exactly",
        {"patient_name": "Mary Seacole", "diagnosis": "Community-acquired pneumonia",
         "medications": [{"name": "Amoxicillin", "dose": "500 mg", "frequency": "three times a day for 5 days"}]},
        _contains("Amoxicillin 500 mg three times a day for 5 days"), _contains("Community-acquired pneumonia"),
    ),
    _case(
        "The summary uses the agreed headings",
        {"patient_name": "Elizabeth Blackwell", "diagnosis": "Cellulitis, left leg",
         "medications": [{"name": "Flucloxacillin", "dose": "1 g", "frequency": "four times a day"}]},
        _contains("Diagnosis, Treatment, Medications, Follow-up"), _FAST,
    ),
    _case(
        "Follow-up is carried over when given",
        {"patient_name": "James Barry", "diagnosis": "Asthma exacerbation", "follow_up": "Asthma clinic in 2 weeks",
         "medications": [{"name": "Prednisolone", "dose": "40 mg", "frequency": "once a day for 5 days"}]},
        _contains("Follow-up: Asthma clinic in 2 weeks"),
    ),
]

_TRIAGE = [
    _case(
        "The claim summary reaches the model",
        {"claim_summary": "Day-case knee arthroscopy", "procedure_codes": ["W85.1"], "amount": 3120},
        _contains("Day-case knee arthroscopy"), _lacks("approve payment"),
    ),
    _case(
        "High-value claims carry the clinical-review rule",
        {"claim_summary": "Hip replacement", "procedure_codes": ["W37.1", "Z84.1"], "amount": 12000},
        _contains("clinical-review"), _contains("12000"),
    ),
    _case(
        "Procedure codes are listed",
        {"claim_summary": "Cataract surgery", "procedure_codes": ["C75.1", "C71.2"], "amount": 2100},
        _contains("C75.1, C71.2"), _FAST,
    ),
]

_FOI = [
    _case(
        "The request is quoted and the records listed",
        {"requester_name": "J. Bloggs", "request_text": "How much did the council spend on pothole repairs in 2023?",
         "found_records": ["Highways maintenance spend 2023 (summary)"], "deadline": "14 June 2024"},
        _contains("pothole repairs in 2023"), _contains("Highways maintenance spend 2023"),
    ),
    _case(
        "Withheld records name their exemption",
        {"requester_name": "A. Resident", "request_text": "Copies of the waste contract",
         "found_records": ["Waste collection contract 2021"], "deadline": "2 July 2024",
         "exemptions": [{"section": "43(2)", "reason": "commercial interests of the contractor"}]},
        _contains("section 43(2)"),
    ),
]

_BENEFITS = [
    _case(
        "An eligible resident sees the weekly reduction",
        {"resident_name": "Sam Taylor", "household": {"adults": 1, "children": 2, "weekly_income": 310.5},
         "eligible": True, "weekly_reduction": 18.75},
        _contains("Weekly reduction: £18.75"), _contains("Sam Taylor"),
    ),
    _case(
        "A resident who is not eligible is told so, with no amount",
        {"resident_name": "Priya Shah", "household": {"adults": 2, "children": 0, "weekly_income": 820},
         "eligible": False},
        _contains("Decision: not eligible"), _lacks("Weekly reduction"), _FAST,
    ),
    _case(
        "Children are counted, never named",
        {"resident_name": "Tom Evans", "household": {"adults": 1, "children": 3, "weekly_income": 240},
         "eligible": True, "weekly_reduction": 22},
        _contains("3 child(ren)"),
    ),
]

_SUPPORT = [
    _case(
        "The question reaches the model with the customer's name",
        {"customer_name": "Alan", "question": "How do I raise my contactless limit?"},
        _contains("contactless limit"), _contains("Alan"),
    ),
    _case(
        "Nothing about a specific account is echoed back",
        {"customer_name": "Rosalind", "question": "Why was I charged twice yesterday?"},
        _lacks("sort code"), _FAST,
    ),
]

_DISPUTE = [
    _case(
        "The case reference and the last four digits only",
        {"customer_name": "Katherine Johnson", "case_ref": "CD-204417", "card_last4": "4242"},
        _contains("CD-204417"), _contains("card ending 4242"), _contains("15 working days"),
    ),
]

_INBOX = [
    _case(
        "Every message reaches the summary",
        {"messages": [{"sent_at": "2024-06-01 08:12", "text": "Still short of breath since Friday."},
                      {"sent_at": "2024-06-01 09:40", "text": "Can I take paracetamol with my inhaler?"}]},
        _contains("short of breath"), _contains("paracetamol"),
    ),
]

_COMPLAINT_SHAPE = {
    "type": "object",
    "properties": {
        "department": {"enum": ["waste", "housing", "roads", "parking", "council-tax", "other"]},
        "contains_personal_data": {"type": "boolean"},
    },
    "required": ["department", "severity", "contains_personal_data"],
}

_COMPLAINT = [
    _case(
        "The answer is a routing decision in the agreed shape",
        {"complaint": "The streetlight outside 12 Mill Lane has been out for three weeks."},
        {"type": "json_schema", "value": _COMPLAINT_SHAPE}, _lacks("Mill Lane"),
    ),
    _case(
        "A missed bin collection is routed, and nothing personal comes back",
        {"complaint": "My green bin was missed again on Tuesday; I'm at 4 Orchard Close."},
        {"type": "json_schema", "value": _COMPLAINT_SHAPE}, _lacks("Orchard Close"), _FAST,
    ),
]


# Per prompt slug: the suite, its cases, the gate over it, and the versions run for the demo: those
# the demo's deploy requests put live and those live where they go (the gate's baseline). The other
# prompts get a suite and a gate but no runs yet, so their gates show what is missing; the hosted
# model of ``foi-response`` could not be run here anyway (the demo has no API key).
GATES = {
    "loan-decision-letter": {"cases": _LOAN, "min_pass_rate": 1.0, "max_regression": 0.0, "runs": [3, 4]},
    "fraud-hold-explanation": {"cases": _FRAUD, "min_pass_rate": 1.0, "max_regression": 0.0, "runs": [2, 3]},
    "discharge-summary": {"cases": _DISCHARGE, "min_pass_rate": 1.0, "max_regression": 0.0, "runs": [3, 4]},
    "claim-triage": {"cases": _TRIAGE, "min_pass_rate": 0.9, "max_regression": 0.05, "runs": [2, 3]},
    "foi-response": {"cases": _FOI, "min_pass_rate": 0.9, "max_regression": 0.05, "runs": []},
    "council-tax-reduction-explainer": {
        "cases": _BENEFITS, "min_pass_rate": 0.9, "max_regression": 0.05, "runs": [3, 4],
    },
    "support-reply": {"cases": _SUPPORT, "min_pass_rate": 0.8, "max_regression": 0.1, "runs": []},
    "card-dispute-acknowledgement": {"cases": _DISPUTE, "min_pass_rate": 0.8, "max_regression": 0.1, "runs": []},
    "patient-inbox-summary": {"cases": _INBOX, "min_pass_rate": 0.8, "max_regression": 0.1, "runs": []},
    "complaint-router": {"cases": _COMPLAINT, "min_pass_rate": 0.8, "max_regression": 0.1, "runs": [2, 3]},
}


def suite_slug(prompt_slug):
    return f"{prompt_slug}-core"
