"""The command that serves a repository: `docker run` of the TensorFlow Serving image, or `tensorflow_model_server`."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from tftrt_yolo.errors import InputError
from tftrt_yolo.serving.batching import BATCHING_FILE
from tftrt_yolo.serving.repository import CONFIG_FILE, CONTAINER_ROOT, read_model_config

SERVING_IMAGE = "tensorflow/serving:2.17.0-gpu"  # the last TensorFlow Serving with TF-TRT ops (2.18 dropped them)
GRPC_PORT, REST_PORT = 8500, 8501


def serve_command(
    repo: str | os.PathLike,
    *,
    docker: bool | None = None,
    gpu: bool = True,
    image: str = SERVING_IMAGE,
    grpc_port: int = GRPC_PORT,
    rest_port: int = REST_PORT,
) -> str:
    """The command that serves `repo`: `docker run` of the TensorFlow Serving image when the
    config's base paths are under /models, else `tensorflow_model_server` on this machine.
    `grpc_port` / `rest_port` are the ports on this machine.

    `--enable_batching` is added when `batching_parameters.txt` exists. Warmup is on by default in
    the server.
    """
    repo = Path(repo).absolute()
    config = read_model_config(repo / CONFIG_FILE)
    root = CONTAINER_ROOT if docker or (docker is None and _base_paths_under(config, CONTAINER_ROOT)) else str(repo)
    if not _base_paths_under(config, root):
        raise InputError(
            f"the base paths in {repo / CONFIG_FILE} are not under {root}: write the repository with "
            f"serving_root={'None' if root == str(repo) else repr(CONTAINER_ROOT)} for this command"
        )
    flags = [f"--model_config_file={root}/{CONFIG_FILE}"]
    if (repo / BATCHING_FILE).exists():
        flags += ["--enable_batching", f"--batching_parameters_file={root}/{BATCHING_FILE}"]
    if root != CONTAINER_ROOT:
        ports = [f"--port={grpc_port}", f"--rest_api_port={rest_port}"]
        return " ".join(["tensorflow_model_server", *(shlex.quote(f) for f in ports + flags)])
    # the image's entrypoint runs tensorflow_model_server --port=8500 --rest_api_port=8501 "$@"
    run = ["docker run --rm", "--gpus all" if gpu else "", f"-p {grpc_port}:{GRPC_PORT} -p {rest_port}:{REST_PORT}",
           f"-v {shlex.quote(f'{repo}:{CONTAINER_ROOT}')}", image]
    return " \\\n  ".join(part for part in [*run, *flags] if part)


def _base_paths_under(config, root: str) -> bool:
    return all(c.base_path.startswith(root.rstrip("/") + "/") for c in config.model_config_list.config)
