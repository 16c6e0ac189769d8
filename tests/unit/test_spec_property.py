"""Property: whatever the file holds, loading a spec returns a Spec or raises a SpecError or a
ConfigError whose every problem renders as printable UTF-8 text; never another exception.

Three generators: YAML-ish token soup (syntax, anchors, tags, interpolation), arbitrary data
dumped as YAML, and the valid flagship spec with random subtrees replaced (so the document
validators see near-valid input, not only shape errors).
"""

from __future__ import annotations

import copy
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deployer.errors import ConfigError, SpecError
from deployer.spec import Spec, load_spec

SPECS = Path(__file__).parent / "specs"
FLAGSHIP = yaml.safe_load((SPECS / "valid" / "mnist.yaml").read_text())
SETTINGS = settings(
    max_examples=150,
    deadline=None,  # a shared machine: time per example varies a lot
    database=None,  # no example database in the work tree; failures print their example
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

TOKENS = [
    "stack: s\n",
    "project: local-project\n",
    "region: us-central1\n",
    "bucket: {name: b-1}\n",
    "models:\n",
    "endpoints:\n",
    "batch_jobs:\n",
    "guards:\n",
    "versions:\n",
    "deployments:\n",
    "  ",
    "- ",
    "\n",
    "{",
    "}",
    "[",
    "]",
    ": ",
    ",",
    "&a ",
    "*a",
    "<<: ",
    "<<: *a\n",
    "'",
    '"',
    "${X}",
    "${X:-1}",
    "${UNSET}",
    "$$",
    "!!str ",
    "!!int ",
    "!!binary ",
    "!!python/object ",
    "!!timestamp ",
    "!!set ",
    "!custom ",
    "---\n",
    "...\n",
    "# c\n",
    "? ",
    "|\n",
    ">\n",
    "%YAML 1.1\n",
    "\t",
    "null",
    "~",
    "1e3",
    "0x1F",
    ".nan",
    "-.inf",
    "2020-13-45",
    "yes",
    "on",
    "x-a: &a ",
    "name",
    "model: m@v1",
    "traffic: 150",
    "machine_type: n1-standard-4",
    "accelerator: {type: NVIDIA_L4, count: 99}",
    "artifact: gs://",
    "artifact: ~nouser/x",
    'path: "a\\0b.jsonl"',
    "path: x.parquet",
    '"\\ud800"',
    "\ufeff",
    "\x85",
    "é",
    "0",
    "-1",
    "99999999999999999999999999",
    "labels: {A: B}",
]

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(
        [
            "m@v1",
            "mnist@v2",
            "gs://b/x",
            "gs://",
            "n1-standard-4",
            "g2-standard-8",
            "NVIDIA_L4",
            "${X}",
            "4h",
            "0h",
            "../artifacts/mnist/0001",
            "x.npz",
            "",
            "default",
            "s3://a/b",
        ]
    ),
)
DATA = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.one_of(st.text(max_size=12), st.sampled_from(list(FLAGSHIP))), inner, max_size=5
        ),
    ),
    max_leaves=30,
)


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    # Inside specs/ so the flagship's relative artifact paths resolve.
    with tempfile.TemporaryDirectory(dir=SPECS) as tmp:
        yield Path(tmp)


def check(path: Path, text: str | bytes, env: dict[str, str]) -> None:
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
    else:
        path.write_bytes(text)
    error: SpecError | ConfigError
    try:
        spec = load_spec(path, environ=env)
    except (SpecError, ConfigError) as exc:
        error = exc
    else:
        assert isinstance(spec, Spec)
        return
    if isinstance(error, SpecError):
        assert error.problems
        for problem in error.problems:
            assert problem.message and problem.fix and problem.field
    error.render().encode("utf-8")  # printable: no lone surrogate reaches the terminal


def paths_of(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(data, dict):
        for key, value in data.items():
            found += paths_of(value, (*prefix, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            found += paths_of(value, (*prefix, i))
    return found


def replaced(data: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    data[path[0]] = replaced(data[path[0]], path[1:], value)
    return data


ENV = st.dictionaries(st.sampled_from(["X", "GOOGLE_CLOUD_PROJECT"]), st.text(max_size=10))


@SETTINGS
@given(tokens=st.lists(st.sampled_from(TOKENS), max_size=40), env=ENV)
def test_yaml_token_soup_never_escapes_as_another_exception(
    workdir: Path, tokens: list[str], env: dict[str, str]
) -> None:
    check(workdir / "soup.yaml", "".join(tokens), env)


@SETTINGS
@given(raw=st.binary(max_size=200))
def test_arbitrary_bytes_never_escape_as_another_exception(workdir: Path, raw: bytes) -> None:
    check(workdir / "bytes.yaml", raw, {})


@SETTINGS
@given(data=DATA, env=ENV)
def test_arbitrary_data_never_escapes_as_another_exception(
    workdir: Path, data: Any, env: dict[str, str]
) -> None:
    check(workdir / "data.yaml", yaml.safe_dump(data, allow_unicode=True), env)


@SETTINGS
@given(data=st.data(), env=ENV)
def test_a_mutated_flagship_never_escapes_as_another_exception(
    workdir: Path, data: st.DataObject, env: dict[str, str]
) -> None:
    doc = copy.deepcopy(FLAGSHIP)
    for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
        where = data.draw(st.sampled_from(paths_of(doc)))
        doc = replaced(doc, where, data.draw(DATA))
    check(workdir / "mutated.yaml", yaml.safe_dump(doc, allow_unicode=True), env)
