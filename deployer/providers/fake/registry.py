"""`FakeRegistry`: the `Registry` part of FakeProvider, in memory.

Stores what it is told and records each call (see the package docstring for what it keeps
and what it leaves to the contract suite). Must not: import any SDK.
"""

from __future__ import annotations

from deployer import errors
from deployer.providers import Labels, Operation, VersionRequest
from deployer.providers.fake.base import FakeBase, _Model, _Version
from deployer.state import DEFAULT_ALIAS, ObservedVersion


class FakeRegistry(FakeBase):
    def list_versions(self, model_id: str) -> tuple[ObservedVersion, ...]:
        with self._recorded("list_versions", model_id=model_id):
            m = self.models.get(model_id)
            return tuple(
                ObservedVersion(
                    f"{self._parent()}/models/{model_id}",
                    v.version_id,
                    tuple(v.aliases),
                    tuple(sorted(v.labels.items())),
                    v.artifact_uri,
                    v.container_image,
                    v.description,
                )
                for v in (m.versions.values() if m else ())
            )

    def model_version(self, model_id: str, alias: str) -> str | None:
        with self._recorded("model_version", model_id=model_id, alias=alias):
            m = self.models.get(model_id)
            for v in m.versions.values() if m else ():
                if alias in (v.version_id, *v.aliases):
                    return f"{self._parent()}/models/{model_id}@{v.version_id}"
            return None

    def upload_version(self, req: VersionRequest) -> Operation:
        args = {"model_id": req.model_id, "parent_exists": req.parent_exists}
        with self._recorded("upload_version", **args, labels=dict(req.labels)):
            if req.parent_exists:
                m = self._model(req.model_id)
            elif req.model_id in self.models:
                raise errors.AlreadyExists(f"model {req.model_id} already exists")
            else:
                m = self.models[req.model_id] = _Model(req.model_id, req.display_name)
            m.display_name, m.description = req.display_name, req.model_description
            vid = str(m.next_version)
            m.next_version += 1
            aliases = [a for a in req.aliases if a != DEFAULT_ALIAS]
            if not m.versions or DEFAULT_ALIAS in req.aliases:
                aliases.insert(0, DEFAULT_ALIAS)
            v = _Version(
                vid,
                aliases,
                dict(req.labels),
                req.artifact_uri,
                req.container_image,
                req.description,
            )
            self._take_aliases(m, aliases, keep=None)
            m.versions[vid] = v
            return self._op(result=f"{self._parent()}/models/{req.model_id}@{vid}")

    def update_model(self, model_id: str, display_name: str, description: str) -> None:
        with self._recorded("update_model", model_id=model_id):
            m = self._model(model_id)
            m.display_name, m.description = display_name, description

    def update_version(
        self, model_id: str, version_id: str, description: str, labels: Labels
    ) -> None:
        with self._recorded("update_version", model_id=model_id, version_id=version_id):
            v = self._version(model_id, version_id)
            v.description, v.labels = description, dict(labels)

    def merge_aliases(
        self, model_id: str, version_id: str, add: tuple[str, ...], remove: tuple[str, ...]
    ) -> None:
        args = {"model_id": model_id, "version_id": version_id, "add": add, "remove": remove}
        with self._recorded("merge_aliases", **args):
            v = self._version(model_id, version_id)
            self._take_aliases(self.models[model_id], add, keep=v)
            v.aliases = [a for a in v.aliases if a not in remove]
            v.aliases += [a for a in add if a not in v.aliases]

    def delete_version(self, model_id: str, version_id: str) -> Operation:
        with self._recorded("delete_version", model_id=model_id, version_id=version_id):
            self._version(model_id, version_id)
            del self.models[model_id].versions[version_id]
            return self._op()

    def delete_model(self, model_id: str) -> Operation:
        with self._recorded("delete_model", model_id=model_id):
            self._model(model_id)
            del self.models[model_id]
            return self._op()
