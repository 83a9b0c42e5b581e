"""What TF-TRT converted: a report read from a converted network's `saved_model.pb`, or from the
graph TF-TRT's segmenter returns in a dry run.

TF-TRT converts the network alone (see `tensorrt`): pre- and post-processing are
not part of what it sees, so they are not part of this report.

The builder starts at the signature's outputs in the top-level graph and follows
every function a node names (PartitionedCall/StatefulPartitionedCall `f`, While
`cond`/`body`, If/Case branches, any other function attribute), each function
once, so every op of the graph is counted once. A `TRTEngineOp` counts as one
engine; the ops of its native segment (the library function its `segment_func`
names, which TF-TRT keeps as the fallback) count as converted. Every other op
stayed in TensorFlow and is listed by op type with the likely reason.

The converted share counts compute ops only: the op types in `EXCLUDED_OPS`
(constants, identities, arguments, calls, variable reads, asserts, the TF1 loop
plumbing that freezing lowers a tf.while_loop into) do no math, and TF-TRT
folds, drops or never converts them, so counting them would make the share mean
little. They are reported as one total.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import struct
from pathlib import Path

from tftrt_yolo.errors import InputError
from tftrt_yolo.files import read_saved_model

EXCLUDED_OPS = frozenset(
    {
        "Const", "Identity", "IdentityN", "NoOp", "Placeholder", "PlaceholderWithDefault",
        "_Arg", "_Retval", "_DeviceArg", "_DeviceRetval", "PartitionedCall", "StatefulPartitionedCall",
        "VarHandleOp", "ReadVariableOp", "StopGradient", "Snapshot", "Assert", "PrintV2",
        "Enter", "Exit", "Merge", "Switch", "NextIteration", "LoopCond",  # TF1 loop plumbing (frozen graphs)
    }
)  # fmt: skip
CONTROL_FLOW_OPS = frozenset({"While", "StatelessWhile", "If", "StatelessIf", "Case", "StatelessCase"})
NMS_OPS = frozenset(
    {"NonMaxSuppression", "NonMaxSuppressionV2", "NonMaxSuppressionV3", "NonMaxSuppressionV4",
     "NonMaxSuppressionV5", "NonMaxSuppressionWithOverlaps"}
)  # fmt: skip
ENGINE_OP = "TRTEngineOp"
ENGINE_ASSET_PREFIX = "trt-serialized-engine."  # TrtGraphConverterV2.save() names engine files so

_STRING_PREFIXES = ("Decode", "Encode", "String", "Regex", "StaticRegex", "Substr", "AsString", "ReadFile")
REASONS = {
    "combined_nms": "TF-TRT converts CombinedNonMaxSuppression only through the BatchedNMS plugin with "
    "top_k <= 4096 (YOLOv8 at 640 has 8400 candidates); TF_TRT_ALLOW_NMS_TOPK_OVERRIDE=1 forces it "
    "with top_k clipped to 4096, losing candidates",
    "nms": "per-image NMS has no TF-TRT converter (only CombinedNonMaxSuppression has one); runs in TensorFlow",
    "string": "string/image-decoding op: TensorRT has no string tensors",
    "control_flow": "control flow / TensorList op: no TF-TRT converter (the ops inside loop bodies are "
    "counted on their own; TF-TRT can convert them once freezing lowers the loop)",
    "no_converter": "no TF-TRT converter for this op in this TensorFlow",
    "not_segmented": "has a TF-TRT converter: its segment was smaller than minimum_segment_size, or the "
    "converter rejected a dtype/shape/attribute (TF_TRT_SHOW_DETAILED_REPORT=1 at conversion says which)",
    "unknown": "no TF-TRT converter, or its segment was smaller than minimum_segment_size",
}


@dataclasses.dataclass(frozen=True)
class Engine:
    """One TRTEngineOp and the ops it replaced."""

    name: str
    precision_mode: str
    dynamic_shape: bool  # explicit-batch ("dynamic shape") mode; False: implicit batch
    profile_strategy: str
    max_cached_engines: int
    allow_build_at_runtime: bool  # False: a missing engine runs the native segment, never builds
    calibrated: bool  # an INT8 calibration table is stored in the node
    serialized: bool  # assets/trt-serialized-engine.<name> holds at least one built engine
    ops: dict[str, int]  # op type -> count in the native segment (empty if it was removed)

    @property
    def compute_ops(self) -> int:
        return sum(n for op, n in self.ops.items() if op not in EXCLUDED_OPS)


@dataclasses.dataclass(frozen=True)
class StayedOp:
    """Ops of one type that stayed in TensorFlow for one reason."""

    op: str
    count: int
    reason: str


@dataclasses.dataclass(frozen=True)
class ConversionReport:
    signature: str
    engines: tuple[Engine, ...]
    stayed: tuple[StayedOp, ...]  # compute ops left in TensorFlow, most frequent first
    excluded: dict[str, int]  # EXCLUDED_OPS seen outside engines (not in the share)
    engine_assets: tuple[str, ...]  # files named trt-serialized-engine.* in assets/
    dry_run: bool = False  # TF-TRT's segmentation only: no engine was built, nothing was saved

    @property
    def problems(self) -> list[str]:
        """What keeps the network from running as one TensorRT engine (empty for a YOLOv8 network)."""
        found = []
        if len(self.engines) != 1:
            found.append(f"{len(self.engines)} engines instead of one holding the whole network")
        left = sorted(s.op for s in self.stayed if s.op in ("Conv2D", "DepthwiseConv2dNative", "MatMul"))
        if left:
            found.append(f"{', '.join(left)} left in TensorFlow")
        if not self.dry_run and any(not e.serialized for e in self.engines):
            found.append("engines without a built, serialized TensorRT engine: serving would build them at runtime")
        return found

    @property
    def converted_ops(self) -> int:
        return sum(e.compute_ops for e in self.engines)

    @property
    def tensorflow_ops(self) -> int:
        return sum(s.count for s in self.stayed)

    @property
    def converted_share(self) -> float:
        total = self.converted_ops + self.tensorflow_ops
        return self.converted_ops / total if total else 0.0

    def to_dict(self) -> dict:
        return dataclasses.asdict(self) | {
            "converted_ops": self.converted_ops,
            "tensorflow_ops": self.tensorflow_ops,
            "converted_share": self.converted_share,
        }

    @classmethod
    def from_dict(cls, data: dict) -> ConversionReport:
        return cls(
            signature=data["signature"],
            engines=tuple(Engine(**e) for e in data["engines"]),
            stayed=tuple(StayedOp(**s) for s in data["stayed"]),
            excluded=dict(data["excluded"]),
            engine_assets=tuple(data["engine_assets"]),
            dry_run=data.get("dry_run", False),
        )

    def format(self) -> str:
        lines = [
            "TF-TRT conversion report (the network; pre- and post-processing run in TensorFlow, in fp32, by design)",
            f"TensorRT engines: {len(self.engines)}, serialized engine files in assets/: {len(self.engine_assets)}",
            f"Compute ops converted: {self.converted_ops} of {self.converted_ops + self.tensorflow_ops} "
            f"({self.converted_share:.1%}); {sum(self.excluded.values())} bookkeeping ops not counted",
        ]
        if self.dry_run:
            lines.insert(1, "DRY RUN: TF-TRT's own segmentation ran here; no TensorRT engine was built, nothing written")
        lines += [f"WARNING: {p}" for p in self.problems]
        if self.engines:
            rows = [("Engine", "Precision", "Shapes", "Builds at runtime", "Serialized", "Ops inside")]
            for e in self.engines:
                top = sorted(((n, op) for op, n in e.ops.items() if op not in EXCLUDED_OPS), reverse=True)
                inside = f"{e.compute_ops}: " + ", ".join(f"{op} x{n}" for n, op in top[:6]) + (
                    ", ..." if len(top) > 6 else ""
                ) if e.ops else "native segment removed"
                shapes = f"dynamic ({e.profile_strategy})" if e.dynamic_shape else "implicit batch"
                precision = e.precision_mode + (" calibrated" if e.calibrated else "")
                yes = {True: "yes", False: "no"}
                rows.append((e.name, precision, shapes, yes[e.allow_build_at_runtime], yes[e.serialized], inside))
            lines += ["", *_table(rows)]
        if self.stayed:
            lines += ["", f"Ops left in TensorFlow ({self.tensorflow_ops}), by reason:"]
            by_reason: dict[str, list[StayedOp]] = {}
            for op in self.stayed:
                by_reason.setdefault(op.reason, []).append(op)
            for reason, ops in sorted(by_reason.items(), key=lambda kv: -sum(o.count for o in kv[1])):
                lines.append(f"- {reason}:")
                lines.append("    " + ", ".join(f"{o.op} x{o.count}" for o in ops))
        return "\n".join(lines)

    __str__ = format


def _table(rows) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1] for r in rows]


def _reason(op: str, converters: frozenset[str] | None) -> str:
    if op == "CombinedNonMaxSuppression":
        return REASONS["combined_nms"]
    if op in NMS_OPS:
        return REASONS["nms"]
    if op.startswith(_STRING_PREFIXES):
        return REASONS["string"]
    if op in CONTROL_FLOW_OPS or op.startswith(("TensorList", "TensorArray")):
        return REASONS["control_flow"]
    if converters is None:
        return REASONS["unknown"]
    return REASONS["not_segmented"] if op in converters else REASONS["no_converter"]


def registered_converters() -> frozenset[str] | None:
    """The op types this TensorFlow's TF-TRT can convert, or None where TF-TRT is absent."""
    try:
        from tensorflow.compiler.tf2tensorrt import _pywrap_py_utils
    except ImportError:
        return None
    return frozenset(_pywrap_py_utils.get_registered_op_converters())


def build_report(
    saved_model_dir: str | os.PathLike, signature: str = "serving_default", converters: frozenset[str] | None = None
) -> ConversionReport:
    """Read `saved_model_dir/saved_model.pb` and report what TF-TRT converted in `signature`.

    `converters`: op types with a TF-TRT converter, used to explain ops left in TensorFlow;
    default: this TensorFlow's registry (`registered_converters()`).
    """
    root = Path(saved_model_dir)
    proto = read_saved_model(root)
    graphs = [m for m in proto.meta_graphs if "serve" in m.meta_info_def.tags] or list(proto.meta_graphs)
    meta = next((m for m in graphs if signature in m.signature_def), None)
    if meta is None:
        found = sorted({k for m in proto.meta_graphs for k in m.signature_def if not k.startswith("__")})
        raise InputError(f"{root} has no signature {signature!r} (it has: {', '.join(found) or 'none'})")
    assets = root / "assets"
    built = {p.name: engine_instances(p) for p in assets.glob(ENGINE_ASSET_PREFIX + "*")} if assets.is_dir() else {}
    outputs = [t.name for t in meta.signature_def[signature].outputs.values()]
    return _report(meta.graph_def, outputs, signature, converters, built, dry_run=False)


def report_from_graph_def(graph_def, outputs: list[str], converters: frozenset[str] | None = None) -> ConversionReport:
    """The report of a graph as TF-TRT's segmenter returns it (`tensorrt.segment_network`): a dry run."""
    return _report(graph_def, outputs, "serving_default", converters, {}, dry_run=True)


def _report(graph_def, outputs, signature, converters, built: dict[str, int], dry_run: bool) -> ConversionReport:
    """Walk back from `outputs` through the graph and every function it calls, counting each op once."""
    converters = registered_converters() if converters is None else converters
    library = {f.signature.name: f for f in graph_def.library.function}
    top = {n.name: n for n in graph_def.node}
    stayed: collections.Counter = collections.Counter()
    excluded: collections.Counter = collections.Counter()
    engines: list[Engine] = []
    done_functions: set[str] = set()

    def visit(node) -> None:
        if node.op == ENGINE_OP:
            engines.append(_engine(node, library, built))
            return
        if node.op in EXCLUDED_OPS:
            excluded[node.op] += 1
        else:
            stayed[node.op, _reason(node.op, converters)] += 1
        for name in _called_functions(node):
            if name in library and name not in done_functions:
                done_functions.add(name)
                for inner in library[name].node_def:
                    visit(inner)

    pending = [t.split(":")[0] for t in outputs]
    seen: set[str] = set()
    while pending:
        name = pending.pop().lstrip("^")
        if name in seen or name not in top:
            continue
        seen.add(name)
        visit(top[name])
        pending += [i.split(":")[0] for i in top[name].input]

    return ConversionReport(
        signature=signature,
        engines=tuple(sorted(engines, key=lambda e: e.name)),
        stayed=tuple(StayedOp(op, n, reason) for (op, reason), n in sorted(stayed.items(), key=lambda x: (-x[1], x[0]))),
        excluded=dict(sorted(excluded.items())),
        engine_assets=tuple(sorted(built)),
        dry_run=dry_run,
    )


def engine_names(saved_model_dir: str | os.PathLike) -> set[str]:
    """The engine (resource) names of every TRTEngineOp anywhere in a SavedModel."""
    proto = read_saved_model(saved_model_dir)
    return {node.name.split("/")[-1] for meta in proto.meta_graphs for node in all_nodes(meta) if node.op == ENGINE_OP}


def all_nodes(meta_graph):
    """Every node of a MetaGraph: the top-level graph's and those of each function in its library."""
    yield from meta_graph.graph_def.node
    for function in meta_graph.graph_def.library.function:
        yield from function.node_def


def engine_instances(path: str | os.PathLike) -> int:
    """How many built engines a serialized TF-TRT engine file holds (a TFRecord of TRTEngineInstance protos);
    0 where there is no such file."""
    if not Path(path).is_file():
        return 0
    data, offset, count = Path(path).read_bytes(), 0, 0
    while offset + 12 <= len(data):
        (length,) = struct.unpack_from("<Q", data, offset)
        offset += 12 + length + 4  # length and its crc, the record, its crc
        count += offset <= len(data)
    return count


def _called_functions(node) -> list[str]:
    names = []
    for value in node.attr.values():
        if value.HasField("func"):
            names.append(value.func.name)
        elif value.HasField("list"):
            names += [f.name for f in value.list.func]
    return [n for n in names if n]


def _engine(node, library, built: dict[str, int]) -> Engine:
    attr = node.attr
    segment = attr["segment_func"].func.name if "segment_func" in attr else ""
    ops = collections.Counter(n.op for n in library[segment].node_def) if segment in library else {}
    name = node.name.split("/")[-1]  # TF-TRT's canonical engine name
    return Engine(
        name=name,
        precision_mode=attr["precision_mode"].s.decode(),
        dynamic_shape=not attr["_use_implicit_batch"].b if "_use_implicit_batch" in attr else False,
        profile_strategy=attr["profile_strategy"].s.decode() if "profile_strategy" in attr else "",
        max_cached_engines=attr["max_cached_engines_count"].i if "max_cached_engines_count" in attr else 1,
        allow_build_at_runtime=attr["_allow_build_at_runtime"].b if "_allow_build_at_runtime" in attr else True,
        calibrated=bool(attr["calibration_data"].s) if "calibration_data" in attr else False,
        serialized=built.get(ENGINE_ASSET_PREFIX + name, 0) > 0,
        ops=dict(sorted(ops.items())),
    )
