"""A TensorFlow Serving model repository: `<repo>/<name>/<version>/` folders and `models.config`.

Copies are staged in a hidden folder inside the repository and renamed into
place, and the config files are replaced atomically, so a server polling the
repository never sees half a model.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from tftrt_yolo.errors import InputError
from tftrt_yolo.files import staging_dir, version_dirs
from tftrt_yolo.metadata import ModelMetadata, read_metadata
from tftrt_yolo.serving.batching import BATCHING_FILE, batching_parameters, batching_text
from tftrt_yolo.serving.warmup import WARMUP_FILE, warmup_jpeg, write_warmup_requests

CONFIG_FILE = "models.config"
CONTAINER_ROOT = "/models"  # where the tensorflow/serving image looks for models
VERSION_POLICIES = ("latest", "all", "specific")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclasses.dataclass(frozen=True)
class _Entry:
    source: Path
    name: str
    version: int
    metadata: ModelMetadata


def write_model_repository(
    models: Sequence[str | os.PathLike] | str | os.PathLike,
    repo: str | os.PathLike,
    *,
    names: Sequence[str] | None = None,
    version_policy: str = "latest",
    labels: Mapping[str, int] | Mapping[str, Mapping[str, int]] | None = None,
    batching: bool = True,
    warmup: bool = True,
    serving_root: str | None = CONTAINER_ROOT,
    batch_timeout_micros: int = 1000,
    num_batch_threads: int = 4,
    max_enqueued_batches: int = 100,
    warmup_image: str | os.PathLike | bytes | None = None,
) -> Path:
    """Put converted models into a TensorFlow Serving model repository and return its folder.

    Each model becomes `repo/NAME/VERSION`; a folder already in place is kept, not copied. Copies
    are staged in a hidden folder inside `repo` and renamed into place, so a server polling `repo`
    never sees half a model. `models.config` keeps the entries of other models already in `repo`.

    Args:
        models: SavedModel folders written by `tftrt_yolo.convert` (`output/NAME/VERSION`), or one.
        repo: the repository folder (created when missing).
        names: one model name per model (default: the name of each model's parent folder).
        version_policy: `latest` (serve the newest version), `all` or `specific` (every version in
            the repository).
        labels: label -> version (`{"stable": 1, "canary": 2}`), or model name -> such a mapping.
        batching: write `batching_parameters.txt` (all models must share their batch).
        warmup: write warmup records into each copied version.
        serving_root: where the server sees `repo` (`/models` in the tensorflow/serving container;
            None: this machine's absolute path).
        batch_timeout_micros, num_batch_threads, max_enqueued_batches: the batching parameters.
        warmup_image: the image of the warmup requests (path or encoded bytes; default:
            Ultralytics' bus.jpg).

    Raises InputError for anything TensorFlow Serving would refuse (a name unusable in URLs, two
    models in one version folder, an existing version, labels on versions not served, ...).

    Example::

        from tftrt_yolo import serving

        repo = serving.write_model_repository(["saved_models/yolov8n/1"], "serving", labels={"stable": 1})
        print(serving.serve_command(repo))  # docker run ... tensorflow/serving:2.17.0-gpu ...
    """
    models = [models] if isinstance(models, (str, os.PathLike)) else list(models)
    if not models:
        raise InputError("no models given: pass one or more SavedModel folders written by tftrt_yolo.convert")
    if version_policy not in VERSION_POLICIES:
        raise InputError(f"version_policy must be one of {', '.join(VERSION_POLICIES)}, got {version_policy!r}")
    if names is not None and len(names) != len(models):
        raise InputError(f"got {len(names)} names for {len(models)} models: pass one name per model")
    repo = Path(repo).absolute()
    if repo.exists() and not repo.is_dir():
        raise InputError(f"{repo} is a file: pass a folder for the model repository")
    root = str(repo) if serving_root is None else serving_root.rstrip("/") or "/"
    entries = _plan(models, names, repo)
    touched = list(dict.fromkeys(e.name for e in entries))
    labels = _labels_by_name(labels, touched)
    if batching:  # one batching file serves every model of the server: all must share the batch
        served = {p.resolve(): read_metadata(p) for p in _existing_model_dirs(repo, touched)}
        served.update({e.source.resolve(): e.metadata for e in entries})
        _check_same_batch(served)
    versions = {n: sorted({*_versions_on_disk(repo / n), *(e.version for e in entries if e.name == n)}) for n in touched}
    config = _merged_config(repo, root, versions, version_policy, labels)  # checked before anything is written
    image = warmup_jpeg(warmup_image, max(e.metadata.info.imgsz for e in entries)) if warmup else None

    with staging_dir(repo) as stage:
        staged = []
        for e in entries:
            destination = repo / e.name / str(e.version)
            if destination.exists():  # the model is already in place (_plan checked it is this one)
                if warmup:
                    tmp = write_warmup_requests(e.source, image, model_name=e.name, path=stage / f"{e.name}-{e.version}")
                    os.replace(tmp, destination / WARMUP_FILE)
                continue
            target = stage / e.name / str(e.version)
            shutil.copytree(e.source, target)
            if warmup:
                write_warmup_requests(target, image, model_name=e.name)
            staged.append((target, destination))
        for target, destination in staged:  # publish: one rename per version
            destination.parent.mkdir(parents=True, exist_ok=True)
            target.rename(destination)

    _write_atomically(repo / CONFIG_FILE, config_text(config))
    if batching:
        params = batching_parameters(
            entries[0].metadata,
            batch_timeout_micros=batch_timeout_micros,
            num_batch_threads=num_batch_threads,
            max_enqueued_batches=max_enqueued_batches,
        )
        _write_atomically(repo / BATCHING_FILE, batching_text(params))
    return repo


def _plan(models, names, repo: Path) -> list[_Entry]:
    """Name and version of each model in the repository, refusing to overwrite anything."""
    entries, planned = [], {}
    for i, source in enumerate(models):
        source = Path(source)
        metadata = read_metadata(source)  # checks saved_model.pb and our metadata are there
        if metadata.backend == "xla":
            raise InputError(
                f"{source} was converted with backend='xla': TensorFlow Serving 2.17 has no XLA compiler for GPUs "
                "and turns XLA off on CPUs, so it would fail every request; convert the model for serving with "
                "backend='tensorflow' or backend='tensorrt'"
            )
        name = names[i] if names is not None else source.absolute().parent.name
        if not _NAME.match(name or ""):
            raise InputError(
                f"model name {name!r} (from {source}) is not usable in TensorFlow Serving URLs: use letters, "
                "digits, '_', '.' and '-' (pass names=...)"
            )
        used = planned.setdefault(name, set(_versions_on_disk(repo / name)))
        version = int(source.name) if source.name.isdigit() and int(source.name) > 0 else max(used, default=0) + 1
        destination = repo / name / str(version)
        if any(e.name == name and e.version == version for e in entries):
            raise InputError(
                f"two models would become {name}/{version}: give them different names (names=...) "
                "or different version folders"
            )
        if destination.exists() and destination.resolve() != source.resolve():
            raise InputError(
                f"{destination} already exists and a server may be serving it: write the new model under "
                "another version folder (convert(..., version=N)) or remove the old one first"
            )
        used.add(version)
        entries.append(_Entry(source, name, version, metadata))
    return entries


def _existing_model_dirs(repo: Path, extra_names: Iterable[str] = ()) -> list[Path]:
    """Version folders of the models in `repo`'s models.config (and of `extra_names`) now on disk."""
    names = list(extra_names)
    if (repo / CONFIG_FILE).exists():
        names += [c.name for c in read_model_config(repo / CONFIG_FILE).model_config_list.config]
    return [repo / n / str(v) for n in dict.fromkeys(names) for v in _versions_on_disk(repo / n)]


def _labels_by_name(labels, touched: list[str]) -> dict[str, dict[str, int]]:
    if not labels:
        return {}
    if all(isinstance(v, Mapping) for v in labels.values()):
        unknown = set(labels) - set(touched)
        if unknown:
            raise InputError(f"labels name models not written here: {', '.join(sorted(unknown))}")
        nested = {n: dict(v) for n, v in labels.items()}
    elif len(touched) == 1:
        nested = {touched[0]: dict(labels)}
    else:
        raise InputError(
            "with several models, pass labels per model name: {'yolov8n': {'stable': 1, 'canary': 2}}"
        )
    for name, mapping in nested.items():
        for label, version in mapping.items():
            if not _NAME.match(str(label)) or str(label).isdigit():
                raise InputError(f"version label {label!r} of {name}: use a word such as stable or canary")
            if not isinstance(version, int) or isinstance(version, bool) or version < 1:
                raise InputError(f"version label {label}={version!r} of {name}: the version must be an integer >= 1")
    return nested


def _check_same_batch(served: Mapping[Path, ModelMetadata]) -> None:
    if len({(m.batch, m.dynamic) for m in served.values()}) > 1:
        described = ", ".join(f"{p.parent.name}/{p.name}: {_describe_batch(m)}" for p, m in served.items())
        raise InputError(
            "TensorFlow Serving applies one batching_parameters_file to every model, but these models were "
            f"converted for different batches ({described}): write them to separate repositories, convert "
            "them with the same batch, or pass batching=False (--nobatching)"
        )


def _describe_batch(m: ModelMetadata) -> str:
    return f"{'dynamic up to' if m.dynamic else 'static'} {m.batch}"


def _versions_on_disk(model_root: Path) -> list[int]:
    """The version numbers TensorFlow Serving sees in `model_root` (positive integers), ascending."""
    return [int(p.name) for p in version_dirs(model_root) if int(p.name) > 0]


def _merged_config(repo: Path, root: str, versions: Mapping[str, list[int]], version_policy, labels):
    """models.config: the entries of `repo`'s other models, and one per name in `versions` (its versions)."""
    from tensorflow_serving.config import model_server_config_pb2

    config = model_server_config_pb2.ModelServerConfig()
    old = {}
    if (repo / CONFIG_FILE).exists():
        old = {c.name: c for c in read_model_config(repo / CONFIG_FILE).model_config_list.config}
    for name in dict.fromkeys([*old, *versions]):  # keep the order: existing models first
        if name not in versions:
            config.model_config_list.config.add().CopyFrom(old[name])
            continue
        merged = dict(old[name].version_labels) if name in old else {}
        merged.update(labels.get(name, {}))
        loaded = versions[name][-1:] if version_policy == "latest" else versions[name]
        for label, version in merged.items():
            if version not in loaded:
                raise InputError(
                    f"label {label} of {name} points at version {version}, which the {version_policy!r} policy "
                    f"does not serve (it serves {', '.join(map(str, loaded))}): TensorFlow Serving refuses labels "
                    "on versions it has not loaded; pass version_policy='specific' (--version_policy=specific)"
                )
        entry = config.model_config_list.config.add()
        entry.name = name
        entry.base_path = f"{root.rstrip('/')}/{name}"
        entry.model_platform = "tensorflow"
        if version_policy == "latest":
            entry.model_version_policy.latest.num_versions = 1
        elif version_policy == "all":
            entry.model_version_policy.all.SetInParent()
        else:
            entry.model_version_policy.specific.versions.extend(versions[name])
        for label, version in sorted(merged.items()):
            entry.version_labels[label] = version
    return config


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def config_text(config) -> str:
    from google.protobuf import text_format

    return text_format.MessageToString(config)


def read_model_config(path: str | os.PathLike):
    """Parse a `models.config` (text-format `ModelServerConfig`) as TensorFlow Serving does."""
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    try:
        return text_format.Parse(Path(path).read_text(), model_server_config_pb2.ModelServerConfig())
    except text_format.ParseError as e:
        raise InputError(f"{path} is not a text-format ModelServerConfig: {e}") from None
