"""TensorFlow Serving repository, warmup, batching file and REST/gRPC clients, against a real converted model.

No TensorFlow Serving binary exists here, so everything a server would read or send is checked with
TensorFlow and protobuf themselves: the SavedModel through TensorFlow's loader and `saved_model_cli`,
models.config / batching_parameters.txt parsed back into their protos, every warmup request run
against the loaded signature, and the answers the model itself produces, as a `PredictResponse` and as
the REST JSON TensorFlow Serving writes, decoded into the same Results as `model.predict`.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tftrt_yolo import serving
from tftrt_yolo.errors import InputError
from tftrt_yolo.metadata import METADATA_FILE

ASSETS = Path(importlib.util.find_spec("ultralytics").submodule_search_locations[0]) / "assets"
BUS, ZIDANE = ASSETS / "bus.jpg", ASSETS / "zidane.jpg"
LOW_CONF = 1e-4  # a random-init model scores ~1.6e-4: detections exist, so there is something to compare
ENV = {"YOLO_OFFLINE": "1", "YOLO_AUTOINSTALL": "false", "TF_CPP_MIN_LOG_LEVEL": "3"}


@pytest.fixture(scope="session")
def served_model(tmp_path_factory):
    """A random-init YOLOv8n detect model, 320 px, static batch 2 (about 20 s). Could move to conftest.py."""
    for k, v in ENV.items():
        os.environ.setdefault(k, v)
    import tftrt_yolo

    out = tmp_path_factory.mktemp("served")
    return tftrt_yolo.convert("yolov8n.yaml", imgsz=320, batch=2, output=out / "saved_models", verbose=False)


@pytest.fixture(scope="session")
def model(served_model):
    import tftrt_yolo

    return tftrt_yolo.load(served_model)


@pytest.fixture(scope="session")
def repo(served_model, tmp_path_factory):
    """A repository with the model as version 1 (stable) and a copy as version 2 (canary)."""
    second = tmp_path_factory.mktemp("second") / "yolov8n" / "2"
    shutil.copytree(served_model, second)
    root = tmp_path_factory.mktemp("repo") / "models"
    path = serving.write_model_repository(
        [served_model, second], root, version_policy="specific", labels={"stable": 1, "canary": 2}
    )
    assert path == root
    return root


# --------------------------------------------------------------------------- repository files


def test_repository_layout_and_models_config(repo, served_model):
    assert sorted(p.name for p in repo.iterdir()) == ["batching_parameters.txt", "models.config", "yolov8n"]
    for version in ("1", "2"):
        copy = repo / "yolov8n" / version
        assert (copy / "saved_model.pb").read_bytes() == (served_model / "saved_model.pb").read_bytes()
        assert (copy / METADATA_FILE).exists() and (copy / serving.WARMUP_FILE).exists()
    assert not (served_model / serving.WARMUP_FILE).exists()  # the source model is left alone

    config = serving.read_model_config(repo / "models.config")  # text_format.Parse into ModelServerConfig
    (entry,) = config.model_config_list.config
    assert entry.name == "yolov8n" and entry.base_path == "/models/yolov8n" and entry.model_platform == "tensorflow"
    assert list(entry.model_version_policy.specific.versions) == [1, 2]
    assert dict(entry.version_labels) == {"canary": 2, "stable": 1}


def test_signatures_through_tensorflow_loader_and_saved_model_cli(repo):
    import tensorflow as tf

    copy = repo / "yolov8n" / "1"
    loaded = tf.saved_model.load(str(copy))
    assert set(loaded.signatures) == {"serving_default", "predict_images"}
    spec = loaded.signatures["serving_default"].structured_input_signature[1]
    assert spec["images"].dtype == tf.string and spec["images"].shape.as_list() == [None]
    assert spec["conf"].shape.as_list() == [None] and spec["max_det"].dtype == tf.int32  # [N]: batchable

    cli = Path(sys.executable).parent / "saved_model_cli"
    text = subprocess.run(
        [str(cli), "show", "--dir", str(copy), "--tag_set", "serve", "--signature_def", "serving_default"],
        capture_output=True, text=True, check=True, env={**os.environ, **ENV},
    ).stdout
    lines = [line.strip() for line in text.splitlines()]
    i = lines.index("inputs['images'] tensor_info:")
    assert lines[i + 1 : i + 3] == ["dtype: DT_STRING", "shape: (-1)"]
    for name in ("boxes", "scores", "classes", "num_detections", "image_sizes"):
        assert f"outputs['{name}']" in text
    assert "Method name is: tensorflow/serving/predict" in text


def test_warmup_requests_parse_and_run_against_the_model(repo):
    import tensorflow as tf

    copy = repo / "yolov8n" / "1"
    logs = serving.read_warmup_requests(copy / serving.WARMUP_FILE)  # PredictionLog.FromString per record
    seen = []
    loaded = tf.saved_model.load(str(copy))
    for log in logs:
        request = log.predict_log.request
        assert request.model_spec.name == "yolov8n"
        inputs = {k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()}
        n = int(inputs["images"].shape[0])
        outputs = loaded.signatures[request.model_spec.signature_name](**inputs)
        assert outputs["num_detections"].shape == [n] and outputs["image_sizes"].numpy().min() > 0
        seen.append((request.model_spec.signature_name, n))
    assert sorted(seen) == [("predict_images", 1), ("predict_images", 2), ("serving_default", 1), ("serving_default", 2)]
    jpeg = tf.make_ndarray(logs[-1].predict_log.request.inputs["images"])[0]
    assert jpeg[:3] == b"\xff\xd8\xff" and max(tf.io.decode_jpeg(jpeg).shape[:2]) == 320  # a real photo, fit to 320


def test_batching_file_parses_and_the_command_enables_it(repo):
    params = serving.read_batching_parameters(repo / "batching_parameters.txt")
    assert params.max_batch_size.value == 2 and list(params.allowed_batch_sizes) == [2]  # static batch 2
    assert params.batch_timeout_micros.value == 1000 and params.num_batch_threads.value == 4
    assert params.pad_variable_length_inputs is False
    for signature in serving.signature_defs(repo / "yolov8n" / "1").values():  # every input has a batch axis
        assert all(t.tensor_shape.dim and t.tensor_shape.dim[0].size == -1 for t in signature.inputs.values())
    command = serving.serve_command(repo)
    assert "--enable_batching" in command and "--batching_parameters_file=/models/batching_parameters.txt" in command
    assert command.startswith("docker run --rm \\\n  --gpus all") and serving.SERVING_IMAGE in command
    assert f"-v {repo}:/models" in command and "--model_config_file=/models/models.config" in command


def test_in_place_repository_local_paths_and_merging(tmp_path, served_model):
    output = tmp_path / "saved_models"
    shutil.copytree(served_model.parent.parent, output)  # saved_models/yolov8n/1, as convert wrote it
    repo = serving.write_model_repository([output / "yolov8n" / "1"], output, serving_root=None, batching=False)
    assert (output / "yolov8n" / "1" / serving.WARMUP_FILE).exists()  # added to the model in place
    assert not list(output.glob(".tmp-*")) and not (output / "batching_parameters.txt").exists()
    assert serving.read_model_config(repo / "models.config").model_config_list.config[0].base_path == (
        f"{output}/yolov8n"
    )
    assert serving.serve_command(repo) == (
        f"tensorflow_model_server --port=8500 --rest_api_port=8501 --model_config_file={output}/models.config"
    )
    with pytest.raises(InputError, match="serving_root"):
        serving.serve_command(repo, docker=True)

    # a second model joins the same repository; the first model's entry is kept
    serving.write_model_repository([served_model], output, names=["other"], serving_root=None, batching=False,
                                   warmup=False)
    names = [c.name for c in serving.read_model_config(output / "models.config").model_config_list.config]
    assert names == ["yolov8n", "other"]


def test_repository_refuses_what_tensorflow_serving_would_refuse(tmp_path, served_model, repo):
    with pytest.raises(InputError, match="already exists"):
        serving.write_model_repository([served_model], repo)
    two = tmp_path / "m" / "2"
    shutil.copytree(served_model, two)
    with pytest.raises(InputError, match="does not serve"):  # latest serves only v2: a label on v1 fails to load
        serving.write_model_repository([served_model, two], tmp_path / "r1", names=["m", "m"],
                                       labels={"stable": 1}, warmup=False)
    assert not (tmp_path / "r1").exists()  # refused before anything was written
    with pytest.raises(InputError, match="per model name"):
        serving.write_model_repository([served_model, two], tmp_path / "r2", names=["a", "b"], labels={"stable": 1})
    with pytest.raises(InputError, match="not written here: b"):
        serving.write_model_repository([served_model], tmp_path / "r2", names=["a"], labels={"b": {"stable": 1}})

    other = tmp_path / "big" / "yolov8n" / "7"  # same network, metadata says batch 8
    shutil.copytree(served_model, other)
    meta = json.loads((other / METADATA_FILE).read_text())
    (other / METADATA_FILE).write_text(json.dumps({**meta, "batch": 8}))
    with pytest.raises(InputError, match="one batching_parameters_file"):
        serving.write_model_repository([served_model, other], tmp_path / "r3", warmup=False)
    assert not (tmp_path / "r3" / "yolov8n").exists()  # checked before anything was copied

    compiled = tmp_path / "xla" / "yolov8n" / "1"  # metadata says backend xla
    shutil.copytree(served_model, compiled)
    (compiled / METADATA_FILE).write_text(json.dumps({**meta, "backend": "xla"}))
    with pytest.raises(InputError, match="backend='xla'.*TensorFlow Serving 2.17.*backend='tensorflow'"):
        serving.write_model_repository([compiled], tmp_path / "r4", warmup=False)
    assert not (tmp_path / "r4").exists()


# --------------------------------------------------------------------------- requests


def test_rest_body_follows_the_columnar_format():
    assert serving.rest_url("http://h:8501/", "yolov8n") == "http://h:8501/v1/models/yolov8n:predict"
    assert serving.rest_url("http://h:8501", "m", version=3) == "http://h:8501/v1/models/m/versions/3:predict"
    assert serving.rest_url("http://h:8501", "m", label="canary") == "http://h:8501/v1/models/m/labels/canary:predict"
    with pytest.raises(InputError):
        serving.rest_url("http://h", "m", version=1, label="stable")

    jpeg = BUS.read_bytes()
    text = json.dumps(serving.rest_predict_body([jpeg, jpeg], conf=0.5, iou=0.6, max_det=100))
    body = json.loads(text)
    assert set(body) == {"signature_name", "inputs"} and body["signature_name"] == "serving_default"
    assert set(body["inputs"]) == {"images", "conf", "iou", "max_det"}
    assert [base64.b64decode(x["b64"]) for x in body["inputs"]["images"]] == [jpeg, jpeg]
    assert all(set(x) == {"b64"} for x in body["inputs"]["images"])  # TensorFlow Serving's binary form
    assert '"max_det": [100, 100]' in text and '"conf": [0.5, 0.5]' in text  # per image; DT_INT32 as JSON integers
    with pytest.raises(InputError):
        serving.rest_predict_body([jpeg], conf=2.0)


def test_grpc_request_protos():
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    jpeg = ZIDANE.read_bytes()
    request = serving.predict_request([jpeg], model_name="yolov8n", conf=0.3, iou=0.5, max_det=10, label="canary")
    request = predict_pb2.PredictRequest.FromString(request.SerializeToString())
    assert request.model_spec.name == "yolov8n" and request.model_spec.version_label == "canary"
    assert request.model_spec.signature_name == "serving_default" and not request.model_spec.HasField("version")
    images = request.inputs["images"]
    assert images.dtype == tf.string.as_datatype_enum and [d.size for d in images.tensor_shape.dim] == [1]
    assert tf.make_ndarray(images).tolist() == [jpeg]
    assert tf.make_ndarray(request.inputs["conf"]).dtype == np.float32
    assert [d.size for d in request.inputs["conf"].tensor_shape.dim] == [1]  # one per image
    assert tf.make_ndarray(request.inputs["max_det"]).tolist() == [10]
    assert request.inputs["max_det"].dtype == tf.int32.as_datatype_enum

    pixels = np.zeros((2, 4, 6, 3), np.uint8)
    request = serving.predict_request(pixels, model_name="m", signature_name="predict_images", version=2)
    assert request.model_spec.version.value == 2
    assert tf.make_ndarray(request.inputs["images"]).shape == (2, 4, 6, 3)


# --------------------------------------------------------------------------- responses


def _serve_rest(model, body: dict) -> str:
    """What TensorFlow Serving does with a columnar REST body: decode it, run the signature, write JSON."""
    import tensorflow as tf

    inputs = body["inputs"]
    images = [base64.b64decode(x["b64"]) for x in inputs["images"]]
    outputs = model._serve(images=tf.constant(images), conf=tf.constant(inputs["conf"], tf.float32),
                           iou=tf.constant(inputs["iou"], tf.float32), max_det=tf.constant(inputs["max_det"], tf.int32))
    return json.dumps({"outputs": {k: v.numpy().tolist() for k, v in outputs.items()}})


def _predict_response(outputs: dict):
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    response = predict_pb2.PredictResponse()
    for name, value in outputs.items():
        response.outputs[name].CopyFrom(tf.make_tensor_proto(value))
    return predict_pb2.PredictResponse.FromString(response.SerializeToString())


def _assert_same(results, expected):
    assert len(results) == len(expected)
    for r, e in zip(results, expected):
        assert r.task == e.task and r.orig_shape == e.orig_shape and len(r) == len(e)
        np.testing.assert_allclose(r.boxes, e.boxes, atol=1e-3)
        np.testing.assert_allclose(r.scores, e.scores, rtol=1e-5)
        np.testing.assert_array_equal(r.classes, e.classes)
        assert r.boxes.dtype == np.float32 and r.classes.dtype == np.int32 and r.boxes.shape[1:] == (4,)
        assert r.to_dict()["detections"] == e.to_dict()["detections"]


@pytest.mark.parametrize("conf", [LOW_CONF, 0.99])  # detections, and none (an empty detection axis)
def test_responses_decode_to_the_results_of_model_predict(model, conf):
    items = [(str(BUS), BUS.read_bytes()), (str(ZIDANE), ZIDANE.read_bytes())]
    expected = model.predict([BUS, ZIDANE], conf=conf, max_det=20)
    assert (len(expected[0]) > 0) == (conf == LOW_CONF)

    outputs = model.predict_encoded([e for _, e in items], conf=conf, iou=0.7, max_det=20)
    grpc_results = serving.decode_predict_response(_predict_response(outputs), items=items, names=model.names)
    _assert_same(grpc_results, expected)

    body = serving.rest_predict_body([e for _, e in items], conf=conf, max_det=20)
    rest_results = serving.decode_rest_response(_serve_rest(model, body), items=items, names=model.names)
    _assert_same(rest_results, expected)
    assert rest_results[0].plot().shape == (1080, 810, 3)

    rows = {"predictions": [{k: v[i].tolist() for k, v in outputs.items()} for i in range(2)]}
    _assert_same(serving.decode_rest_response(json.dumps(rows), items=items, names=model.names), expected)


def test_clients_split_requests_by_batch(model, served_model):
    """The client loop (not the network): 3 images, the model's batch 2 -> requests of 2 and 1."""
    import tensorflow as tf

    sent = []
    rest = serving.RestClient("http://localhost:8501", "yolov8n", label="stable", model_dir=served_model)
    assert rest.url == "http://localhost:8501/v1/models/yolov8n/labels/stable:predict" and rest.batch_size == 2

    def post(data):
        sent.append(len(json.loads(data)["inputs"]["images"]))
        return _serve_rest(model, json.loads(data)).encode()

    rest._post = post
    _assert_same(rest.predict([BUS, ZIDANE, BUS], conf=LOW_CONF, max_det=5),
                 model.predict([BUS, ZIDANE, BUS], conf=LOW_CONF, max_det=5))
    assert sent == [2, 1]

    grpc_client = serving.GrpcClient("localhost:8500", "yolov8n", version=1, model_dir=served_model)

    def predict(request):
        assert request.model_spec.version.value == 1
        inputs = {k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()}
        return _predict_response({k: v.numpy() for k, v in model._serve(**inputs).items()})

    grpc_client._predict = predict
    _assert_same(grpc_client.predict(str(ZIDANE), conf=LOW_CONF, max_det=5),
                 model.predict(ZIDANE, conf=LOW_CONF, max_det=5))


def test_clients_send_pixels_to_predict_images(model, served_model):
    """signature_name="predict_images": one uint8 RGB batch per request, frames as they are and files decoded
    by the client as the graph decodes them; results as `predict`'s."""
    import cv2
    import tensorflow as tf

    def run(inputs):
        assert inputs["images"].dtype == tf.uint8 and inputs["images"].shape[-1] == 3
        return {k: v.numpy() for k, v in model._serve_arrays(**inputs).items()}

    rest = serving.RestClient("http://localhost:8501", "yolov8n", model_dir=served_model,
                              signature_name="predict_images")

    def post(data):
        body = json.loads(data)
        assert body["signature_name"] == "predict_images"
        inputs = {k: tf.constant(np.asarray(v, np.uint8 if k == "images" else None)) for k, v in body["inputs"].items()}
        inputs["max_det"] = tf.cast(inputs["max_det"], tf.int32)
        inputs["conf"], inputs["iou"] = (tf.cast(inputs[k], tf.float32) for k in ("conf", "iou"))
        return json.dumps({"outputs": {k: v.tolist() for k, v in run(inputs).items()}}).encode()

    rest._post = post
    grpc_client = serving.GrpcClient("localhost:8500", "yolov8n", model_dir=served_model,
                                     signature_name="predict_images")
    grpc_client._predict = lambda request: _predict_response(
        run({k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()}))
    frames = [cv2.imread(str(BUS))] * 3
    for client in (rest, grpc_client):
        _assert_same(client.predict(frames, conf=LOW_CONF, max_det=5), model.predict(frames, conf=LOW_CONF, max_det=5))
        _assert_same(client.predict(str(BUS), conf=LOW_CONF, max_det=5), model.predict(BUS, conf=LOW_CONF, max_det=5))
        with pytest.raises(InputError, match="one size per call"):
            client.predict([BUS, ZIDANE])


def test_decoding_of_every_task_and_errors():
    from tftrt_yolo.tasks import SPECS

    for spec in SPECS.values():
        assert serving.infer_task(list(spec.outputs) + ["image_sizes"]) == spec.name
    items = [("a", None), ("b", None)]
    empty = {"boxes": [[], []], "scores": [[], []], "classes": [[], []], "num_detections": [0, 0],
             "masks": [[], []], "image_sizes": [[30, 40], [50, 20]]}
    (a, b) = serving.decode_rest_response({"outputs": empty}, items=items)
    assert a.task == "segment" and a.masks.shape == (0, 30, 40) and b.boxes.shape == (0, 4)
    pose = {"boxes": [[[0, 0, 4, 4]]], "scores": [[0.9]], "classes": [[0]], "num_detections": [1],
            "keypoints": [[[[1, 2, 0.5]] * 17]], "image_sizes": [[8, 8]]}
    (p,) = serving.decode_rest_response({"outputs": pose}, items=items[:1])
    assert p.task == "pose" and p.keypoints.shape == (1, 17, 3) and p.to_dict()["detections"][0]["name"] == "0"
    cls = {"probs": [[0.1, 0.7, 0.2]], "top5_classes": [[1, 2, 0]], "top5_scores": [[0.7, 0.2, 0.1]],
           "image_sizes": [[8, 8]]}
    (c,) = serving.decode_rest_response({"outputs": cls}, items=items[:1], names={0: "x", 1: "y", 2: "z"})
    assert c.task == "classify" and c.to_dict()["top5"][0] == {"class": 1, "name": "y", "conf": 0.7}

    with pytest.raises(serving.ServingError, match="Servable not found"):
        serving.decode_rest_response('{"error": "Servable not found for request: Latest(x)"}', items=items)
    with pytest.raises(serving.ServingError, match="2 were sent"):
        serving.decode_rest_response({"outputs": cls}, items=items)
    with pytest.raises(serving.ServingError, match="not those of a tftrt_yolo model"):
        serving.decode_rest_response({"outputs": {"y": [1], "image_sizes": [[1, 1]]}}, items=items[:1])


def test_serve_config_command_line(tmp_path, served_model):
    out = subprocess.run(
        [sys.executable, "-m", "tftrt_yolo", "serve-config", f"--models={served_model}", f"--repo={tmp_path / 'r'}",
         "--nowarmup"],
        capture_output=True, text=True, env={**os.environ, **ENV}, timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert f"TensorFlow Serving model repository written to {tmp_path / 'r'}" in out.stdout
    assert "yolov8n: /models/yolov8n (latest)" in out.stdout
    assert "docker run --rm \\\n  --gpus all" in out.stdout and "--model_config_file=/models/models.config" in out.stdout
    assert "--enable_batching" in out.stdout and "--batching_parameters_file=/models/batching_parameters.txt" in out.stdout

    bad = subprocess.run(
        [sys.executable, "-m", "tftrt_yolo", "serve-config", f"--models={served_model}", f"--repo={tmp_path / 'r'}"],
        capture_output=True, text=True, env={**os.environ, **ENV}, timeout=120,
    )
    assert bad.returncode == 2 and "already exists" in bad.stderr and "Traceback" not in bad.stderr
