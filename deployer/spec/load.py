"""Reading a spec file: YAML (bounded) -> located data with `${VAR}` filled -> the frozen `Spec`.

Owns `load_spec`: it reads the file, parses the YAML with libyaml where available,
refuses documents nested too deep or whose aliases expand too far (before expanding
them), records each field's line, interpolates `${VAR}` / `${VAR:-default}` / `$$`
from the environment, and hands the data to `deployer.spec.document`, which validates
it and builds the frozen spec. Every problem is collected first and raised at once as
a `SpecError` naming file, line, field and fix.

Must not: validate the document's shape or rules (the document models do), do I/O
beyond reading the spec and checking local paths, or call an API.
"""

from __future__ import annotations

import contextlib
import gc
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deployer.errors import ConfigError, SpecError
from deployer.spec.model import Spec
from deployer.spec.problems import Findings, Located, Path_

if TYPE_CHECKING:
    import yaml

# A spec nests a handful of levels; this leaves room for anchors under `x-*` keys.
MAX_DEPTH = 100
# Aliases may grow the document to this many times its written size (or this floor):
# anchors for shared settings stay cheap, an alias bomb is refused before it expands.
ALIAS_GROWTH = 10
ALIAS_FLOOR = 100_000

_ENV_REF = re.compile(r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}")
_YAML_FIX = (
    "fix the YAML at that line (indentation, a missing ':' or an unclosed quote "
    "or bracket are the usual causes)"
)


def load_spec(
    path: str | Path,
    *,
    environ: Mapping[str, str] | None = None,
    check_artifacts: bool = True,
) -> Spec:
    """Read, interpolate and fully validate a spec file; raise `SpecError` listing every problem.

    `environ` defaults to `os.environ`. Relative artifact and input paths are
    resolved against the spec file's directory. `check_artifacts=False` skips
    the filesystem checks of local artifacts and batch inputs (e.g. for `plan`
    on a machine that does not hold them).
    """
    file = str(path)
    source = Path(path)
    env = os.environ if environ is None else environ
    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"spec file {file!r} does not exist",
            hint="pass the path of a YAML spec, e.g. configs/mnist.yaml",
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read spec file {file!r}: {exc}") from exc

    findings = Findings(file, base_dir=source.resolve().parent, check_artifacts=check_artifacts)
    with _gc_paused():
        return _load(text, source, findings, env)


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a spec loads.

    Loading makes hundreds of thousands of small, acyclic objects (YAML nodes, dicts,
    pydantic models); on a large spec the collector's repeated passes over them cost
    more than the load itself, and grow faster than the spec (measured: composing
    10,000 batch jobs took 2.9 s of CPU with it, 0.4 s without). Reference counting
    frees them all anyway.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _load(text: str, source: Path, findings: Findings, env: Mapping[str, str]) -> Spec:
    data = read_yaml(text, findings, env)
    if findings.problems and data is None:
        raise SpecError(findings.problems)
    if data is None or (isinstance(data, str) and not data.strip()):
        findings.add(
            (),
            "the spec file is empty",
            "write a spec; `deployer schema` prints every field",
            line=1,
        )
        raise SpecError(findings.problems)
    if not isinstance(data, dict):
        findings.add(
            (),
            f"the top level must be a mapping (key: value), not a {type(data).__name__}",
            "start the file with `stack: NAME`, then project, region, bucket, models",
            line=1,
        )
        raise SpecError(findings.problems)

    # Top-level `x-*` keys hold YAML anchors for reuse (as in docker compose); not part of the spec.
    data = Located(
        ((k, v) for k, v in data.items() if not (isinstance(k, str) and k.startswith("x-"))), ()
    )
    from deployer.spec import document  # lazily: pydantic stays off the CLI's fast path

    doc = document.validate(data, findings)
    if findings.problems or doc is None:
        raise SpecError(findings.problems)
    return doc.to_spec(source=source)


def read_yaml(text: str, findings: Findings, env: Mapping[str, str]) -> Any:
    """Parse YAML into plain data (mappings as `Located`), recording positions, filling ${VAR}.

    Returns None (with the problem in `findings`) when the YAML does not parse or its
    aliases would expand it past the bound; stops descending below MAX_DEPTH levels.
    """
    import yaml  # lazily: modules that only need the dataclasses (plan, apply) skip it

    try:
        node = _compose(text, findings)
        if node is None:
            return None
        loader = yaml.SafeLoader("")  # a constructor for scalars and `<<` merges
        try:
            # Without an anchor (`&`) there is no alias to expand: skip measuring.
            if "&" in text and not _aliases_within_bound(node, loader, findings):
                return None
            return _to_data(node, (), loader, findings, env)
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:  # e.g. a `<<` merge of a scalar, an unknown `!!tag`
        _yaml_problem(exc, findings)
        return None
    except RecursionError:
        # Only reachable through merge chains (`<<`) nested past Python's stack.
        _too_deep(findings, None)
        return None


def _compose(text: str, findings: Findings) -> yaml.Node | None:
    import yaml

    fast = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return _compose_with(fast, text)
    except yaml.YAMLError as fast_error:
        # libyaml words its errors differently: report the pure-Python parser's message.
        error: yaml.YAMLError = fast_error
        try:
            _compose_with(yaml.SafeLoader, text)
        except yaml.YAMLError as pure_error:
            error = pure_error
        except RecursionError:
            mark = getattr(fast_error, "problem_mark", None)
            _too_deep(findings, mark.line + 1 if mark is not None else None)
            return None
        _yaml_problem(error, findings)
        return None
    except RecursionError:  # the pure-Python composer, without libyaml
        _too_deep(findings, None)
        return None


def _compose_with(loader_class: Any, text: str) -> yaml.Node | None:
    loader = loader_class(text)
    try:
        node: yaml.Node | None = loader.get_single_node()
        return node
    finally:
        loader.dispose()


def _yaml_problem(exc: Exception, findings: Findings) -> None:
    import yaml

    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        detail = exc.problem or exc.context or ""
        if exc.context and exc.context_mark and exc.problem_mark:
            detail += f" ({exc.context} at line {exc.context_mark.line + 1})"
        line = mark.line + 1 if mark else None
        findings.add(("(yaml)",), f"YAML syntax error: {detail}", _YAML_FIX, line=line)
    else:
        findings.add(("(yaml)",), f"YAML error: {exc}", "fix the YAML syntax")


def _too_deep(findings: Findings, line: int | None) -> None:
    findings.add(
        ("(yaml)",),
        f"the YAML nests more than {MAX_DEPTH} levels deep",
        "a spec nests a few levels (e.g. endpoints[].deployments[].accelerator): flatten it",
        line=line,
    )


def _children(node: yaml.Node, loader: yaml.SafeLoader) -> list[Any]:
    import yaml

    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)  # resolves `<<: *anchor` merges (in place, once)
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _aliases_within_bound(root: yaml.Node, loader: yaml.SafeLoader, findings: Findings) -> bool:
    """Measure the document as its aliases would expand it, without expanding it.

    Sizes are memoised per node, so the walk is linear in the nodes as written however
    often an alias repeats them, and iterative, so any depth is safe.
    """
    size: dict[int, int] = {}
    open_: set[int] = set()  # nodes whose subtree is being measured (a cycle comes back to one)
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            size[key] = 1 + sum(size.get(id(k), 0) for k in _children(node, loader))
            open_.discard(key)
        elif key not in size and key not in open_:  # else: an alias already measured, or a cycle
            open_.add(key)
            stack.append((node, True))
            stack.extend((k, False) for k in _children(node, loader))
    written, expanded = len(size), size[id(root)]
    limit = max(ALIAS_FLOOR, ALIAS_GROWTH * written)
    if expanded <= limit:
        return True
    findings.add(
        ("(yaml)",),
        f"YAML aliases would expand this document to {expanded:,} nodes "
        f"({written:,} as written; at most {limit:,} are accepted)",
        "use anchors and aliases only for shared settings; a document that multiplies "
        "itself through nested aliases is refused before it is expanded",
        line=1,
    )
    return False


def _to_data(
    node: yaml.Node,
    path: Path_,
    loader: yaml.SafeLoader,
    findings: Findings,
    env: Mapping[str, str],
    parents: frozenset[int] = frozenset(),
) -> Any:
    import yaml

    if len(path) > MAX_DEPTH:
        _too_deep(findings, node.start_mark.line + 1)
        return None
    if id(node) in parents:
        findings.add(
            path,
            "a YAML alias refers to a node that contains it (a cycle)",
            "expand the alias by hand; specs cannot be recursive",
            line=node.start_mark.line + 1,
        )
        return None
    parents = parents | {id(node)}
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)  # resolves `<<: *anchor` merges
        out = Located(path=path)
        for key_node, value_node in node.value:
            key = _key(key_node, loader)
            here = (*path, key)
            mark = key_node.start_mark
            if key in out:
                findings.add(
                    here,
                    f"duplicate key {key!r} in this mapping",
                    "keep one of them (YAML would silently drop the first)",
                    line=mark.line + 1,
                )
            findings.positions[here] = (mark.line + 1, mark.column)
            out[key] = _to_data(value_node, here, loader, findings, env, parents)
        return out
    if isinstance(node, yaml.SequenceNode):
        items = []
        for i, item in enumerate(node.value):
            mark = item.start_mark
            findings.positions[(*path, i)] = (mark.line + 1, mark.column)
            items.append(_to_data(item, (*path, i), loader, findings, env, parents))
        return items
    try:
        value = _scalar(node, loader)
    except ValueError as exc:
        findings.add(
            path,
            f"cannot read {node.value!r} as a {node.tag.rsplit(':', 1)[-1]} ({exc})",
            f"quote it to keep it as text: '{node.value}'",
            line=node.start_mark.line + 1,
        )
        return None
    if isinstance(value, str) and "$" in value:
        return _interpolate(value, path, findings, env)
    return value


def _key(node: yaml.Node, loader: yaml.SafeLoader) -> str:
    import yaml

    # YAML 1.1 reads `on:`/`yes:` as booleans and `1:` as an int: keep the text as typed.
    if isinstance(node, yaml.ScalarNode):
        return str(node.value)
    try:
        return str(_scalar(node, loader))  # a list or mapping as a key: never a spec key
    except ValueError:
        return f"(a {node.id} key)"


def _scalar(node: yaml.Node, loader: yaml.SafeLoader) -> Any:
    """The value of a scalar node; ValueError when PyYAML cannot read it.

    PyYAML's constructors let plain Python errors escape on odd explicitly tagged or
    implicitly typed scalars (`!!int` on nothing: IndexError, `!!timestamp x`:
    AttributeError, `2020-13-45`: ValueError); they become one spec problem here.
    """
    try:
        return loader.construct_object(node, deep=True)
    except (ArithmeticError, AttributeError, LookupError, TypeError, ValueError) as exc:
        raise ValueError(str(exc) or type(exc).__name__) from exc


def _interpolate(value: str, path: Path_, findings: Findings, env: Mapping[str, str]) -> str:
    def repl(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"  # `$$` escapes a literal dollar sign
        name, default = m["name"], m["default"]
        got = env.get(name)
        if default is not None:
            return got if got else default  # like the shell: empty counts as unset for :-
        if got is None:
            findings.add(
                path,
                f"environment variable {name} is not set",
                f"export {name}=..., or write ${{{name}:-default}} in the spec",
            )
            return ""
        return got

    return _ENV_REF.sub(repl, value)
