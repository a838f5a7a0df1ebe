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
