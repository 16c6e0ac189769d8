"""BatchPredictionJob.instance_config on one instance, as the emulator's batch runner applies it."""

from __future__ import annotations

import json
from types import SimpleNamespace

from deployer.emulator.vertex.batch_runner import InstanceShaper


def _config(**kw: object) -> SimpleNamespace:
    base = {"key_field": "", "included_fields": [], "excluded_fields": [], "instance_type": ""}
    return SimpleNamespace(**{**base, **kw})


ROW = b'{"id": 7, "a": 1, "b": 2, "c": 3}'


def test_no_config_passes_the_instance_through() -> None:
    assert InstanceShaper(_config())(ROW) == (ROW, (b"instance", ROW))


def test_key_field_is_echoed_as_key_and_not_sent() -> None:
    sent, (field, echo) = InstanceShaper(_config(key_field="id"))(ROW)
    assert json.loads(sent) == {"a": 1, "b": 2, "c": 3}
    assert (field, json.loads(echo)) == (b"key", 7)


def test_excluded_fields_are_dropped_and_the_original_echoed() -> None:
    sent, (field, echo) = InstanceShaper(_config(excluded_fields=["b"]))(ROW)
    assert json.loads(sent) == {"id": 7, "a": 1, "c": 3}
    assert (field, echo) == (b"instance", ROW)


def test_array_follows_the_included_fields_order() -> None:
    shaper = InstanceShaper(_config(instance_type="array", included_fields=["c", "a"]))
    assert json.loads(shaper(ROW)[0]) == [3, 1]


def test_non_objects_are_left_alone() -> None:
    assert InstanceShaper(_config(key_field="id"))(b"[1, 2]")[0] == b"[1, 2]"
