"""Where served versions live: TF Serving's folder layout, or MLflow's model registry.

`FolderRepository(base)` reads `<base>/<name>/<version>/export.json` with the artifacts beside
it and labels in `<base>/<name>/labels.json` as {"champion": "3"} (the folder a container
mounts); `RegistryRepository(names)` reads the registry through `workbench.deploy.registry`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from workbench.errors import ServingError
from workbench.files import read_json

EXPORT_FILE = "export.json"
LABELS_FILE = "labels.json"
_REF = re.compile(r"^(?P<name>[^@/:\s]+)(?:@(?P<label>[^@/:\s]+)|/(?P<version>[^@/:\s]+))?$")


def parse_ref(ref: str) -> tuple[str, str | None, str | None]:
    """ "digits" -> ("digits", None, None); "digits@champion" -> (name, "champion", None);
    "digits/3" -> (name, None, "3")."""
    match = _REF.match(ref.strip()) if isinstance(ref, str) else None
    if match is None:
        raise ServingError(
            f"Model reference {ref!r} is not NAME, NAME@LABEL or NAME/VERSION; e.g. "
            "'digits', 'digits@champion' or 'digits/3'."
        )
    return match["name"], match["label"], match["version"]


class ModelRepository(Protocol):
    """Where model versions live. Versions are complete export folders; labels name versions."""

    def names(self) -> list[str]:
        """The models it holds."""

    def versions(self, name: str) -> list[str]:
        """The model's complete versions, oldest first."""

    def labels(self, name: str) -> dict[str, str]:
        """{label: version}, e.g. {"champion": "3", "challenger": "4"}."""

    def folder(self, name: str, version: str) -> Path:
        """A local export folder of that version (export.json and its artifacts)."""


class FolderRepository:
    """TF Serving's model base path: `<base>/<name>/<version>/` (a number) holding an export
    folder, and `<base>/<name>/labels.json` ({"champion": "3"}). A version counts once its
    export.json exists (the exporter writes it last)."""

    def __init__(self, base: str | Path) -> None:
        self.base = Path(base)
        if not self.base.is_dir():
            raise ServingError(
                f"Model folder {str(self.base)!r} does not exist; expected TF Serving's layout "
                "<folder>/<name>/<version>/export.json (mount or create it first)."
            )

    def __repr__(self) -> str:
        return f"FolderRepository({str(self.base)!r})"

    def names(self) -> list[str]:
        return sorted(p.name for p in self.base.iterdir() if p.is_dir() and self.versions(p.name))

    def versions(self, name: str) -> list[str]:
        folder = self.base / name
        if not folder.is_dir():
            return []
        found = [
            p.name for p in folder.iterdir() if p.name.isdigit() and (p / EXPORT_FILE).is_file()
        ]
        return sorted(found, key=int)

    def labels(self, name: str) -> dict[str, str]:
        path = self.base / name / LABELS_FILE
        if not path.is_file():
            return {}
        try:
            labels = read_json(path)
        except ValueError as e:
            raise ServingError(
                f'{path} is not valid JSON ({e}); expected {{"champion": "3"}}.'
            ) from None
        if not isinstance(labels, dict) or not all(
            isinstance(v, str | int) and not isinstance(v, bool) for v in labels.values()
        ):
            raise ServingError(f'{path} holds {labels!r}; expected {{"champion": "3"}}.')
        return {str(k): str(v) for k, v in labels.items()}

    def folder(self, name: str, version: str) -> Path:
        return self.base / name / version


class RegistryRepository:
    """MLflow's model registry (`workbench.deploy.registry`): the versions of the named models,
    their aliases as labels, and a verified local copy of each version's export folder."""

    def __init__(self, names: Sequence[str]) -> None:
        self._names = list(names)

    def __repr__(self) -> str:
        return f"RegistryRepository({self._names!r})"

    @staticmethod
    def _registry():
        from workbench.deploy import registry

        return registry

    def names(self) -> list[str]:
        return list(self._names)

    def versions(self, name: str) -> list[str]:
        """Complete versions only: a registration that did not finish is never served."""
        return [v.version for v in self._registry().list_versions(name) if v.complete]

    def labels(self, name: str) -> dict[str, str]:
        return dict(self._registry().aliases(name))

    def folder(self, name: str, version: str) -> Path:
        return Path(self._registry().resolve(f"{name}/{version}").path)
