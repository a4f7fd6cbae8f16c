"""The look format: validation that names fields, versioning, and the published JSON Schema."""

from __future__ import annotations

import json

import jsonschema
import pytest

from facetory_cam.looks.schema import SCHEMA_VERSION, LookError, dump_look, json_schema, parse_look

GOOD = {
    "schema_version": 1,
    "name": "berry",
    "tags": ["evening"],
    "intensity": 0.8,
    "layers": {
        "lipstick": {"color": "#7A1F3D", "finish": "gloss", "gloss": 0.4},
        "eyeliner": {"wing_length": 0.05, "wing_angle": 25},
        "texture": {"image": "paint.png", "blend": "multiply"},
    },
    "background": {"mode": "blur", "blur": 0.7},
}


def test_a_good_look_parses_and_round_trips() -> None:
    look = parse_look(GOOD)
    assert look.layers.lipstick is not None and look.layers.lipstick.color == "#7a1f3d"
    assert look.layers.lipstick.color.rgb == pytest.approx((0x7A / 255, 0x1F / 255, 0x3D / 255))
    assert look.layers.eyeliner is not None and look.layers.eyeliner.color == "#1a1414"  # default
    assert parse_look(dump_look(look)) == look


@pytest.mark.parametrize(
    ("patch", "field", "why"),
    [
        ({"layers": {"lipstick": {"color": "red"}}}, "layers.lipstick.color", "pattern"),
        (
            {"layers": {"lipstick": {"color": "#aa0000", "opacity": 1.5}}},
            "layers.lipstick.opacity",
            "less than or equal",
        ),
        ({"layers": {"lipstik": {"color": "#aa0000"}}}, "layers.lipstik", "Extra inputs"),
        ({"layers": {"lipstick": {"color": "#aa0000", "finish": "velvet"}}}, "layers.lipstick.finish", "matte"),
        ({"intensity": -0.1}, "intensity", "greater than or equal"),
        ({"name": ""}, "name", "at least 1"),
        ({"background": {"mode": "image", "image": " "}}, "background.image", "empty path"),
    ],
)
def test_errors_name_the_field(patch: dict, field: str, why: str) -> None:
    doc = {"name": "x", **patch}
    with pytest.raises(LookError) as err:
        parse_look(doc)
    assert field in str(err.value) and why in str(err.value)


def test_bad_documents() -> None:
    with pytest.raises(LookError, match="not JSON"):
        parse_look("{name: oops")
    with pytest.raises(LookError, match="JSON object"):
        parse_look("[1, 2]")
    with pytest.raises(LookError, match="schema_version 2 is not supported"):
        parse_look({"schema_version": 2, "name": "future"})


def test_published_schema_agrees_with_the_models() -> None:
    schema = json_schema()
    assert schema["properties"]["schema_version"]["const"] == SCHEMA_VERSION
    validator = jsonschema.Draft202012Validator(schema)
    validator.validate(json.loads(dump_look(parse_look(GOOD))))
    bad = {"name": "x", "layers": {"lipstick": {"color": "red"}}}
    assert list(validator.iter_errors(bad))
