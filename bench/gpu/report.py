#!/usr/bin/env python3
"""Writes report.md and report.json of one bench/gpu/run from the raw outputs in its work folder.

usage: report.py WORKDIR OUTDIR CUDA_STATUS CUDA_REASON TOTAL_SECONDS
Standard library only (the GPU machine's python3 has PyTorch, this needs nothing of it).
"""
import json
import os
import re
import sys


def read(work, name):
    try:
        with open(os.path.join(work, name), encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def jsonl(text):
    rows = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                rows.append(json.loads(line))
            except ValueError:
                pass
    return rows


def step_status(rc, cuda_available):
    if rc == 0:
        return "ok"
    if rc in (124, 137):
        return "ran out of time"
    if rc == 127:
        return "not run (command missing)"
    if not cuda_available:
        return f"exit {rc} (cuda unavailable)"
    return f"FAILED (exit {rc})"


def fmt(v, digits=3):
    return "-" if v is None else f"{v:.{digits}f}"


def main(argv):
    work, out, cuda_status, cuda_reason, total = argv[1], argv[2], argv[3], argv[4], int(argv[5])
    cuda = cuda_status == "available"
    env = dict(line.split(" ", 1) for line in read(work, "environment.txt").splitlines() if " " in line)

    steps = []
    for line in read(work, "steps.tsv").splitlines():
        name, rc, ms, budget, log = line.split("\t")
        steps.append({"step": name, "exit": int(rc), "seconds": int(ms) / 1000, "budget_seconds": int(budget),
                      "status": step_status(int(rc), cuda),
                      "stderr_tail": read(work, name + ".stderr").strip().splitlines()[-3:]})

    verify_text = read(work, "verify.txt")
    verify = {"summary": [l for l in verify_text.splitlines() if l.startswith("verify:")],
              "failures": [l.rstrip() for l in verify_text.splitlines() if re.search(r"\s(FAIL|ERROR)\b", l)][:50]}
    m = re.search(r"verify: cuda: (\d+) passed, (\d+) failed, (\d+) errors, (\d+) unsupported", verify_text)
    if m:
        verify.update(passed=int(m.group(1)), failed=int(m.group(2)), errors=int(m.group(3)), unsupported=int(m.group(4)))

    parity_rows = jsonl(read(work, "parity.jsonl"))
    parity = {"cases": [r for r in parity_rows if not r.get("summary")],
              "summary": next((r for r in parity_rows if r.get("summary")), None)}

    tests_text = read(work, "device-tests.txt")
    counts = {k.replace(" ", "_"): int(n) for n, k in re.findall(r"\[\s*(\d+) (tests (?:found|successful|failed|aborted|skipped))\s*\]", tests_text)}
    device_tests = {"counts": counts,
                    "failures": [l.strip() for l in tests_text.splitlines() if "\u2718" in l][:50]}

    recur = [r for r in jsonl(read(work, "bench-recur.jsonl")) if "ms_median" in r]
    torch_rows = jsonl(read(work, "bench-pytorch.jsonl"))
    torch_status = next((r for r in torch_rows if r.get("available") is False), None)
    torch = [r for r in torch_rows if "ms_median" in r]

    report = {"cuda": {"status": cuda_status, "reason": cuda_reason}, "environment": env, "total_seconds": total,
              "steps": steps, "devices": read(work, "devices.txt").splitlines(), "verify": verify, "parity": parity,
              "device_tests": device_tests,
              "bench": {"recur_cuda": recur, "pytorch_cudnn": torch,
                        "pytorch_status": torch_status}}
    with open(os.path.join(out, "report.json"), "w", encoding="utf-8") as f:
        json.dump(report, f, indent=1)

    md = ["# recur GPU check", ""]
    md.append(f"- date: {env.get('date', '?')}; host: {env.get('host', '?')}; {env.get('cpus', '?')} CPUs")
    md.append(f"- GPU (nvidia-smi): {env.get('nvidia-smi', '?')}")
    md.append(f"- dist: {env.get('built', '?')}; {env.get('jdk', '?')}")
    md.append(f"- **cuda: {cuda_status}**: {cuda_reason}")
    md.append(f"- wall time: {total} s (budget 450 s)")
    md += ["", "## Steps", "", "| step | result | seconds | budget |", "|---|---|---|---|"]
    for s in steps:
        md.append(f"| {s['step']} | {s['status']} | {s['seconds']:.1f} | {s['budget_seconds']} |")
    md += ["", "## recur devices", "", "```", read(work, "devices.txt").rstrip(), "```"]
    md += ["", "## recur verify --backend cuda", ""]
    if verify["summary"]:
        md += [f"    {l}" for l in verify["summary"]]
    else:
        said = [l for l in read(work, "verify.stderr").splitlines() if l.strip() and "incubator" not in l]
        md.append("no summary; it said: " + (said[-1] if said else "nothing"))
    if verify["failures"]:
        md += ["", "Failing rows (first 50):", "", "```"] + verify["failures"] + ["```"]
    md += ["", "## PyTorch fixtures through cuda", ""]
    if parity["summary"]:
        s = parity["summary"]
        if s.get("available"):
            md.append(f"{s['passed']} passed, {s['failed']} failed (tolerance {s['tolerance']}, {s['seconds']} s) on {s['device']}")
        else:
            md.append(f"not run: {s.get('reason')}")
    bad = [c for c in parity["cases"] if not c.get("ok")]
    for c in bad:
        md.append(f"- {c['suite']} {c['case']}: " + "; ".join(c["failures"][:3]))
    md += ["", "## Device test suites, cuda rows (JUnit: kernels, trainers, decoders, the cuda backend)", ""]
    if counts:
        md.append(f"{counts.get('tests_successful', 0)} passed, {counts.get('tests_failed', 0)} failed, "
                  f"{counts.get('tests_aborted', 0)} skipped (other backends' rows, or cuda unavailable) of "
                  f"{counts.get('tests_found', 0)} found")
    else:
        said = [l for l in read(work, "device-tests.stderr").splitlines() if l.strip() and "incubator" not in l]
        md.append("no summary; it said: " + (said[-1] if said else "nothing"))
    if device_tests["failures"]:
        md += ["", "Failing tests (first 50):", "", "```"] + device_tests["failures"] + ["```"]
    md += ["", "## Timings (median ms; host = until results are back on the host, events = CUDA events)", "",
           "Both sides copy the inputs up and the results back inside every run. PyTorch / recur > 1: recur is faster.", ""]
    if torch_status:
        md.append(f"PyTorch: {torch_status.get('reason')}")
        md.append("")
    by = {(r["name"], r["mode"]): r for r in torch}
    md.append("| workload | mode | recur cuda host | recur cuda events | PyTorch cuDNN host | PyTorch events | PyTorch / recur (host) | recur GFLOP/s |")
    md.append("|---|---|---|---|---|---|---|---|")
    for r in recur:
        t = by.get((r["name"], r["mode"]))
        ratio = t["ms_median"] / r["ms_median"] if t and r["ms_median"] > 0 else None
        md.append(f"| {r['name']} | {r['mode']} | {fmt(r['ms_median'])} | {fmt(r.get('ms_device_median'))} | "
                  f"{fmt(t['ms_median']) if t else '-'} | {fmt(t.get('ms_device_median')) if t else '-'} | "
                  f"{fmt(ratio, 2)} | {fmt(r.get('gflops'), 1)} |")
    if not recur:
        md.append("| (no recur timings: see the bench steps above) | | | | | | | |")
    if torch:
        sg = next((t for t in torch if t["mode"] == "sgemm"), None)
        if sg:
            md += ["", f"PyTorch sgemm M=1600 N=1024 K=256: {sg['ms_median']:.3f} ms, {sg['gflops']} GFLOP/s ({sg['blas']}, torch {sg['torch']})"]
    md += ["", "Raw outputs of every step: logs.tar.gz."]
    with open(os.path.join(out, "report.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(md) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
