"""The one price table: US dollars per million input and output tokens, per (provider, model id).

Every completion gets a cost from here, so every run has one. A model missing from the table
(a self-hosted OpenAI-compatible server, a model released after this table was written) costs
0.0: ``is_priced()`` says so, and the first unpriced call of each model logs a warning, so a
zero is never mistaken for a free model without a trace. The offline provider is always free.
Prices are list prices for standard (non-batch, uncached) requests; update them here only.
"""

import logging
import threading

log = logging.getLogger(__name__)

# (provider, exact model id) -> (USD per million input tokens, USD per million output tokens)
PRICES: dict[tuple[str, str], tuple[float, float]] = {
    ("openai", "gpt-4o-mini-2024-07-18"): (0.15, 0.60),
    ("openai", "gpt-4o-2024-08-06"): (2.50, 10.00),
    ("openai", "gpt-4o-2024-11-20"): (2.50, 10.00),
    ("openai", "gpt-4.1-2025-04-14"): (2.00, 8.00),
    ("openai", "gpt-4.1-mini-2025-04-14"): (0.40, 1.60),
    ("openai", "gpt-4.1-nano-2025-04-14"): (0.10, 0.40),
    ("openai", "gpt-5-2025-08-07"): (1.25, 10.00),
    ("openai", "gpt-5-mini-2025-08-07"): (0.25, 2.00),
    ("anthropic", "claude-3-5-sonnet-20241022"): (3.00, 15.00),
    ("anthropic", "claude-3-5-haiku-20241022"): (0.80, 4.00),
    ("anthropic", "claude-3-7-sonnet-20250219"): (3.00, 15.00),
    ("anthropic", "claude-sonnet-4-20250514"): (3.00, 15.00),
    ("anthropic", "claude-sonnet-4-5-20250929"): (3.00, 15.00),
    ("anthropic", "claude-haiku-4-5-20251001"): (1.00, 5.00),
    ("offline", "offline-echo-1"): (0.0, 0.0),
    ("offline", "offline-judge-1"): (0.0, 0.0),
}

_warned: set[tuple[str, str]] = set()
_warned_lock = threading.Lock()


def is_priced(provider: str, model: str) -> bool:
    """True when the table knows the model (every offline model counts as priced: it is free)."""
    return provider == "offline" or (provider, model) in PRICES


def cost(provider: str, model: str, input_tokens: int, output_tokens: int) -> float:
    """The cost in USD of one call; 0.0 (and one warning per model) when the model is not priced."""
    price = PRICES.get((provider, model))
    if price is None:
        if provider != "offline":
            with _warned_lock:
                first = (provider, model) not in _warned
                _warned.add((provider, model))
            if first:
                log.warning("no price for %s:%s in evals.pricing.PRICES; its calls are costed at 0", provider, model)
        return 0.0
    per_input, per_output = price
    return round((input_tokens * per_input + output_tokens * per_output) / 1_000_000, 10)
