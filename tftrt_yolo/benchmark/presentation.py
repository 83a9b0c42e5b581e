"""A BenchmarkTable for people: a Markdown section and a bar plot."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tftrt_yolo.validate import headline


def markdown(table, title: str | None = None) -> str:
    """`table` as a Markdown section (what BenchmarkTable.to_markdown returns)."""
    m = table.machine
    lines = [
        f"### {title or Path(table.model).name} ({table.task})",
        "",
        f"batch {table.batch}, imgsz {table.imgsz}, {table.warmup} warm-up + {table.iterations} timed calls per "
        f"timing; {m.get('summary', '')}. Latency in ms per image (call time / batch); img/s from the trimmed "
        f"mean. Accuracy: `val` on {_val_text(table)} of `{Path(table.data).name if table.data else 'demo data'}`.",
        "",
    ]
    metric_names = table.metric_names()
    header = ["Runtime", "End-to-end mean (min-max)", "trimmed", "median", "p99", "img/s",
              "Network mean (min-max)", "trimmed", "p99", *metric_names]
    lines += ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    notes: list[str] = []

    def note(text: str) -> str:  # long "unavailable: ..." reasons become numbered notes under the table
        if len(text) <= 40:
            return text
        if text not in notes:
            notes.append(text)
        return f"{text.split(':', 1)[0]} [{notes.index(text) + 1}]"

    for r in table.rows:
        if not r.ok:
            cells = [r.name, note(r.status)] + [""] * (len(header) - 2)
            lines.append("| " + " | ".join(_md(c) for c in cells) + " |")
            continue
        e, n = r.end_to_end, r.network
        cells = [r.name]
        cells += [f"{e.mean:.1f} ({e.min:.1f}-{e.max:.1f})", f"{e.trimmed_mean:.1f}", f"{e.median:.1f}",
                  f"{e.p99:.1f}", f"{e.images_per_second:.1f}"] if e else ["n/a"] * 5
        if n is not None:
            cells += [f"{n.mean:.1f} ({n.min:.1f}-{n.max:.1f})", f"{n.trimmed_mean:.1f}", f"{n.p99:.1f}"]
        else:
            cells += [note(r.network_status), "", ""]
        if r.val is not None:
            cells += [f"{v:.4f}" for v in headline(r.val).values()]
        else:
            cells += [note(r.val_status)] + [""] * (len(metric_names) - 1)
        lines.append("| " + " | ".join(_md(c) for c in cells) + " |")
    if notes:
        lines += [""] + [f"[{i}] {_md(text)}  " for i, text in enumerate(notes, 1)]
    speeds = [(r.name, r.ultralytics_speed) for r in table.rows if r.ok and r.ultralytics_speed]
    if speeds:
        lines += ["", "Ultralytics' own per-image breakdown of its end-to-end calls (ms): "
                  + "; ".join(f"{name}: preprocess {s['preprocess']:.1f}, inference {s['inference']:.1f}, "
                              f"postprocess {s['postprocess']:.1f}" for name, s in speeds) + "."]
    goals = table.goals()
    if goals:
        lines += ["", "| Goal | SavedModel row | Measured | Met |", "|---|---|---:|:---:|"]
        lines += [f"| {g['goal']} | {g['row']} | {g['text']} | {'yes' if g['met'] else 'NO'} |" for g in goals]
    return "\n".join(lines) + "\n"


def _val_text(table) -> str:
    return f"the first {table.val_images} val images" if table.val_images else "all val images"


def plot(table, path: str | Path) -> Path:
    """`table` as a PNG (what BenchmarkTable.plot writes)."""
    import tftrt_yolo._ultralytics  # noqa: F401 - sets matplotlib's config dir, as Ultralytics'
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    names = [r.name for r in table.rows]
    y = np.arange(len(table.rows))
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.55 * len(table.rows)), dpi=110)
    height = 0.38
    top = 1.0
    for offset, key, colour, label in ((-height / 2, "end_to_end", "#1f77b4", "end-to-end"),
                                       (height / 2, "network", "#ff7f0e", "network only")):
        for i, r in enumerate(table.rows):
            s = getattr(r, key) if r.ok else None
            if s is None:
                continue
            ax.barh(y[i] + offset, s.mean, height, color=colour, label=label if i == _first(table.rows, key) else None)
            ax.errorbar(s.mean, y[i] + offset, xerr=[[s.mean - s.min], [s.max - s.mean]], fmt="none",
                        ecolor="black", capsize=3, lw=1)
            ax.text(s.max, y[i] + offset, f" {s.mean:.1f}", va="center", fontsize=8)
            top = max(top, s.max)
    for i, r in enumerate(table.rows):
        if not r.ok:
            ax.text(top * 0.01, y[i], r.status[:90] + ("..." if len(r.status) > 90 else ""), va="center",
                    fontsize=7, color="#777777")
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.set_xlim(0, top * 1.15)
    ax.set_xlabel(f"ms per image at batch {table.batch} (bar: mean, whiskers: min-max)")
    ax.set_title(f"{Path(table.model).name} ({table.task}), batch {table.batch}, imgsz {table.imgsz}\n"
                 f"{table.machine.get('summary', '')}", fontsize=9)
    ax.grid(axis="x", alpha=0.3)
    if any(r.ok for r in table.rows):
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12 - 0.25 / len(table.rows)), ncol=2, fontsize=8,
                  frameon=False)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
    return path


def _first(rows, key) -> int:
    return next((i for i, r in enumerate(rows) if r.ok and getattr(r, key) is not None), -1)


def _md(cell: str) -> str:
    return str(cell).replace("|", "\\|").replace("\n", " ")

