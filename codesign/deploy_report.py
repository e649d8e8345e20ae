"""Markdown for deployments: ``<out>/report.md`` and the search report's "deployed" tables.

Plain functions from deploy.json data (:func:`codesign.deploy.summarize`) to lines of markdown.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

STAGES = ("transfer_in", "compute", "postproc", "writeback")


def _f(v: float | None, fmt: str = ".3f") -> str:
    if v is None:
        return "n/a"
    text = format(v, fmt)
    return text.replace("-", "+", 1) if text.startswith("-") and float(text.replace(",", "")) == 0 else text


def latency_rows(name: str, d: Mapping[str, Any]) -> str:
    """One '| config | ... |' row of the deployed table."""
    lat = d["latency_ms"]
    return (f"| {name} | {wa_text(d)} | {d['n_images']} | {'yes' if d['bit_exact'] else 'NO'} | "
            f"{_f(lat['measured_total'])} | {_f(lat['measured_overlay'])} | {_f(lat['measured_ps'])} | "
            f"{_f(lat['measured_dma_driver'])} | {_f(lat['predicted_sum'])} | {_f(lat['prediction_error_pct'], '+.2f')} | "
            f"{_f(lat['a9_estimate_total'])} | {_f(d['top1'], '.2f')} |")


LATENCY_HEADER = [
    "| config | W/A | images | bit-exact | end-to-end (ms) | overlay (ms) | PS (ms) | DMA/driver (ms) | "
    "predicted sum (ms) | prediction error vs overlay + bus (%) | end-to-end, A9 estimate (ms) | top-1 (%) |",
    "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
]


def wa_text(d: Mapping[str, Any]) -> str:
    """'8/8' for a uniform deployment, 'mixed (6x4b, 4x8b)' otherwise."""
    pairs = {(v["w_bits"], v["a_bits"]) for v in d["bitconfig"].values()}
    if len(pairs) == 1:
        w, a = pairs.pop()
        return f"{w}/{a}"
    counts: dict[int, int] = {}
    for v in d["bitconfig"].values():
        counts[v["w_bits"]] = counts.get(v["w_bits"], 0) + 1
    return "mixed (" + ", ".join(f"{n}x{b}b" for b, n in sorted(counts.items())) + ")"


def layer_table(d: Mapping[str, Any]) -> list[str]:
    """Per layer: bits, engine, path, predicted vs measured cycles and the stage split."""
    lines = ["| layer | W/A | out bits | engine | path | jobs | predicted cycles | measured cycles | error (%) | "
             "transfer-in | compute | post-proc | write-back | predicted bus | measured bus | error with bus (%) |",
             "|---|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in d["layers"]:
        m = r["measured_cycles"]
        lines.append(f"| {r['layer']} | {r['w_bits']}/{r['a_bits']} | {r['out_bits']} | {r['engine']} | {r['path']} | "
                     f"{r['jobs']} | {_f(r['predicted_cycles'], ',.0f')} | {m['total']:,.0f} | "
                     f"{_f(r['error_pct'], '+.2f')} | " + " | ".join(f"{m[s]:,.0f}" for s in STAGES)
                     + f" | {_f(r['predicted_bus_cycles'], ',.0f')} | {_f(r['bus_cycles'], ',.0f')} | "
                     f"{_f(r['error_with_bus_pct'], '+.2f')} |")
    pred = [r["predicted_cycles"] for r in d["layers"]]
    meas = sum(r["measured_cycles"]["total"] for r in d["layers"])
    if pred and None not in pred:
        lines.append(f"| **total** | | | | | | {sum(pred):,.0f} | {meas:,.0f} | "
                     f"{100 * (sum(pred) - meas) / meas:+.2f} | | | | | | | |")
    return lines


def notes(d: Mapping[str, Any]) -> list[str]:
    """How each latency figure was obtained."""
    out = [f"- **{k}**: {v}" for k, v in d["latency_notes"].items() if v]
    return out


def deploy_markdown(d: Mapping[str, Any]) -> str:
    """report.md of one deployment."""
    lat = d["latency_ms"]
    run = d["run"]
    lines = [
        f"# Deployment: {d['model']} on the {d['board']} board",
        "",
        f"Command: `{d.get('command') or 'codesign.deploy.deploy()'}`",
        f"Overlay {d['overlay']} (config hash {d['config_hash']}; engines {d['engines']}), device {d['device']}, "
        f"clock {d['clock_mhz']:g} MHz; images: {d['images']}; img2col {d['img2col']}"
        + (f"; **{d['batch']} images per layer job** (throughput; per-image figures are the batch's / {d['batch']})"
           if d.get("batch", 1) > 1 else "") + ".",
        "",
        f"**{d['n_images']} images, every layer's output bit-exact against the golden model: "
        f"{'yes' if d['bit_exact'] else 'NO'}.** Top-1 from the accelerator's outputs: "
        f"{_f(d['top1'], '.2f')} %.",
        "",
        "Latency per image (mean):",
        "",
        "| measured end-to-end | overlay (counters) | PS ops | DMA/bus | driver | predicted (table sum) | "
        "error of the prediction vs overlay + bus | error vs overlay alone | end-to-end with A9 estimate for CPU parts |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {_f(lat['measured_total'])} ms | {_f(lat['measured_overlay'])} ms | {_f(lat['measured_ps'])} ms | "
        f"{_f(lat['measured_bus'])} ms | {_f(lat['measured_driver'])} ms | {_f(lat['predicted_sum'])} ms | "
        f"{_f(lat['prediction_error_pct'], '+.2f')} % | {_f(lat['prediction_error_overlay_pct'], '+.2f')} % | "
        f"{_f(lat['a9_estimate_total'])} ms |",
        "",
        *notes(d),
        "",
        "## Per layer (cycles per image; stages overlap, so they do not add up to the total)",
        "",
        *layer_table(d),
        "",
        "## Ops on the CPU",
        "",
        "| node | kind | host ms |",
        "|---|---|---:|",
        *[f"| {p['node']} | {p['kind']} | {p['host_ms']:.4f} |" for p in d["ps_ops"]],
        "",
        f"This invocation ran {run['images_run_now']} image(s) in {run['wall_s']:.1f} s"
        + (f" ({run['images_per_s']:.2f} images/s of the {d['board']} board)" if run["images_per_s"] else "")
        + ".",
        "",
    ]
    return "\n".join(lines)


def _pct_lower(new: float, ref: float) -> str:
    if not ref:
        return "n/a"
    dlt = 100 * (1 - new / ref)
    return f"{abs(dlt):.1f} % {'lower' if dlt >= 0 else 'higher'}"


def search_section(deployed: Mapping[str, Mapping[str, Any]], ohq: str, ref: str) -> list[str]:
    """The search report's "Deployed" tables: configs side by side, OHQ vs INT8, OHQ per layer."""
    first = next(iter(deployed.values()))
    lines = ["## Deployed (whole network on the overlay, bit-exact)", "",
             f"Board {first['board']}, overlay {first['overlay']}, {first['n_images']} images ({first['images']}); "
             "per-config details in `deployed/<config>/report.md`.", "", *LATENCY_HEADER]
    lines += [latency_rows(name, d) for name, d in deployed.items()]
    if ohq in deployed and ref in deployed:
        a, b = deployed[ohq]["latency_ms"], deployed[ref]["latency_ms"]
        t1a, t1b = deployed[ohq]["top1"], deployed[ref]["top1"]
        lines += ["", f"OHQ vs {ref}, deployed: end-to-end {_pct_lower(a['measured_total'], b['measured_total'])}, "
                  f"overlay {_pct_lower(a['measured_overlay'], b['measured_overlay'])}"
                  + (f", top-1 {t1a - t1b:+.2f} points" if t1a is not None and t1b is not None else "") + "."]
    lines += ["", *notes(first), "", f"### {ohq}: per layer, deployed", "", *layer_table(deployed[ohq]), ""]
    return lines


__all__ = ["deploy_markdown", "latency_rows", "layer_table", "search_section", "wa_text"]
