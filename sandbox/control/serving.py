"""What each DeployedModel is serving, recorded on disk so a restarted control plane serves exactly that again.

A DeployedModel's spec says what is wanted; this record says what answers: the generation, the image
and the staged copy of the artifact its pods load. After `down`/`up`, a control plane that died, or a
pod that crashed, the record is what is started again: same generation, same bytes, even when a later
spec failed or the bucket was overwritten since.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sandbox.control.pods import Key


@dataclass
class ServingRecord:
    generation: int
    image: str
    artifact_location: str
    artifact_dir: str
    """The staged copy of the artifact (under the run folder) that the pods of this generation load."""
    replicas: int
    server_args: list[str] = field(default_factory=list)
    """The model server's flags from the container's command/args (what a restarted pod is started with)."""

    def staged(self) -> bool:
        return Path(self.artifact_dir).is_dir()


class ServingRecords:
    """One JSON file per DeployedModel under ``state/serving/``; written atomically."""

    def __init__(self, root: Path, artifacts_root: Path) -> None:
        self.root = root
        self.artifacts_root = artifacts_root
        root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: Key) -> Path:
        return self.root / f"{key[1]}__{key[2]}.json"

    def artifact_dir(self, key: Key, generation: int) -> Path:
        return self.artifacts_root / key[1] / key[2] / f"gen-{generation}"

    def load(self, key: Key) -> ServingRecord | None:
        try:
            return ServingRecord(**json.loads(self._path(key).read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def save(self, key: Key, record: ServingRecord) -> None:
        tmp = self._path(key).with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(record), indent=2))
        tmp.replace(self._path(key))

    def prune(self, key: Key) -> None:
        """Drop the staged copies of every generation but the one recorded as serving (all, if none is)."""
        record = self.load(key)
        for folder in self.artifact_dir(key, 0).parent.glob("gen-*"):
            if record is None or folder != Path(record.artifact_dir):
                shutil.rmtree(folder, ignore_errors=True)

    def forget(self, key: Key) -> None:
        self._path(key).unlink(missing_ok=True)

    def delete(self, key: Key) -> None:
        """The DeployedModel is gone: forget its record and every staged copy."""
        self.forget(key)
        shutil.rmtree(self.artifact_dir(key, 0).parent, ignore_errors=True)
