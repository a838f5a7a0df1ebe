"""Template rules: sandbox, strict undefined, declared and typed variables."""

import pytest

from core.errors import ValidationFailed
from registry import rendering

DECL = rendering.normalize_variables(
    {
        "name": {"type": "string"},
        "amount": {"type": "number"},
        "count": {"type": "integer", "required": False, "default": 1},
        "vip": {"type": "boolean", "required": False},
        "items": {"type": "array", "required": False, "default": []},
    }
)


def test_declarations_get_defaults_for_required():
    assert DECL["name"] == {"type": "string", "required": True}
    assert DECL["count"] == {"type": "integer", "required": False, "default": 1}


def test_bad_default_type_is_named():
    with pytest.raises(ValidationFailed) as err:
        rendering.normalize_variables({"n": {"type": "integer", "default": "three"}})
    assert "variables.n.default" in err.value.field_errors


def test_render_applies_defaults_and_loops():
    out = rendering.render(
        [
            {
                "role": "user",
                "content": "{{ name }} owes {{ amount }} x{{ count }}{% for i in items %} {{ i }}{% endfor %}",
            }
        ],
        DECL,
        {"name": "Ada", "amount": 12.5, "items": ["a", "b"]},
    )
    assert out[0]["content"] == "Ada owes 12.5 x1 a b"


@pytest.mark.parametrize(
    ("values", "field", "fragment"),
    [
        ({"amount": 1}, "variables.name", "required"),
        ({"name": "A", "amount": "1"}, "variables.amount", "must be of type number, got string"),
        ({"name": "A", "amount": 1, "count": True}, "variables.count", "got boolean"),
        ({"name": "A", "amount": 1, "extra": 1}, "variables.extra", "not declared"),
    ],
)
def test_bad_values_are_named(values, field, fragment):
    with pytest.raises(ValidationFailed) as err:
        rendering.render([{"role": "user", "content": "{{ name }}"}], DECL, values)
    assert fragment in " ".join(err.value.field_errors[field])


def test_sandbox_refuses_python_internals():
    decl = rendering.normalize_variables({"name": {"type": "string"}})
    with pytest.raises(ValidationFailed) as err:
        rendering.render(
            [{"role": "user", "content": "{{ name.__class__.__mro__[1].__subclasses__() }}"}], decl, {"name": "x"}
        )
    assert err.value.code == "render_error"


def test_undeclared_variable_names_line_and_variable():
    with pytest.raises(ValidationFailed) as err:
        rendering.check_messages([{"role": "system", "content": "a\nb\n{{ secret }}"}], {"name": {}})
    assert err.value.field_errors["messages[0].content"] == [
        "line 3: 'secret' is not a declared variable (declared: name)"
    ]


def test_loop_variables_are_not_mistaken_for_undeclared():
    rendering.check_messages([{"role": "user", "content": "{% for i in items %}{{ i }}{% endfor %}"}], DECL)


@pytest.mark.parametrize(
    "text",
    [
        "Plain text.",
        "Braces alone: { } }} %} #} { {name} }",
        "A dash and percent: {-%, 100% sure",
        "Trailing newlines are kept\n\n",
        "\nleading newline, tabs\tand unicode: é ✓",
    ],
)
def test_text_without_template_syntax_renders_as_jinja_renders_it(text):
    from promptledger import templates

    out = rendering.render([{"role": "system", "content": text}], {}, {})
    assert out == [{"role": "system", "content": templates._env.from_string(text).render()}]
    assert out[0]["content"] == text


def test_carriage_returns_are_normalised_as_in_any_template():
    out = rendering.render([{"role": "user", "content": "one\r\ntwo\rthree"}], {}, {})
    assert out[0]["content"] == "one\ntwo\nthree"


def test_a_declared_variable_named_like_a_global_wins_and_other_globals_stay():
    decl = rendering.normalize_variables({"range": {"type": "string"}, "n": {"type": "integer"}})
    content = "{{ range }} {{ dict(a=n)['a'] }}"
    out = rendering.render([{"role": "user", "content": content}], decl, {"range": "r", "n": 3})
    assert out[0]["content"] == "r 3"


def test_values_of_one_render_do_not_reach_the_next():
    decl = rendering.normalize_variables({"name": {"type": "string"}})
    content = "{% set greeting = 'Hi ' ~ name %}{{ greeting }}"
    first = rendering.render([{"role": "user", "content": content}], decl, {"name": "Ada"})
    second = rendering.render([{"role": "user", "content": content}], decl, {"name": "Bo"})
    assert (first[0]["content"], second[0]["content"]) == ("Hi Ada", "Hi Bo")


def test_plain_text_counts_toward_the_output_budget(monkeypatch):
    from promptledger import templates

    monkeypatch.setattr(templates, "MAX_OUTPUT_CHARS", 10)
    assert rendering.render([{"role": "system", "content": "0123456789"}], {}, {})[0]["content"] == "0123456789"
    with pytest.raises(ValidationFailed) as err:
        rendering.render([{"role": "system", "content": "01234"}, {"role": "user", "content": "567890"}], {}, {})
    assert err.value.code == "template_too_expensive"
    assert "messages[1].content" in err.value.field_errors
