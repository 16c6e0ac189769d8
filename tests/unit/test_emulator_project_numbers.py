"""The emulator names Vertex resources by project number: `project_number` is stable and
12 digits, a number stays itself, and `by_number` rewrites names and request paths alike."""

from __future__ import annotations

import pytest

from deployer.emulator.context import project_number
from deployer.emulator.vertex.names import by_number, parse_model_name, parse_parent


def test_a_project_id_has_one_stable_twelve_digit_number_and_a_number_is_itself() -> None:
    number = project_number("test-project")
    assert number == project_number("test-project")
    assert len(number) == 12 and number.isdigit() and number[0] != "0"
    assert project_number("other-project") != number
    assert project_number("123456789012") == "123456789012"


@pytest.mark.parametrize(
    "text",
    [
        "projects/{}/locations/us-central1",
        "projects/{}/locations/us-central1/models/m@2",
        "/v1/projects/{}/locations/us-central1/endpoints/e:predict",
        "/ui/projects/{}/locations/us-central1/operations/9",
        "projects/{}",
    ],
)
def test_by_number_replaces_the_project_id_wherever_a_name_carries_it(text: str) -> None:
    number = project_number("my-project")
    assert by_number(text.format("my-project")) == text.format(number)
    assert by_number(text.format(number)) == text.format(number)


def test_names_without_a_project_pass_unchanged() -> None:
    for text in ("/storage/v1/b/x/o/projects/p", "models/m", "", "/v1/operations/1"):
        assert by_number(text) == text


def test_parsed_names_are_by_number() -> None:
    number = project_number("p")
    assert parse_parent("projects/p/locations/l") == f"projects/{number}/locations/l"
    parsed = parse_model_name("projects/p/locations/l/models/m%40v1")
    assert (parsed.parent, parsed.model_id, parsed.version) == (
        f"projects/{number}/locations/l",
        "m",
        "v1",
    )
