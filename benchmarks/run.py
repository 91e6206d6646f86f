"""Benchmark the daily job at a clinic network's scale.

For each scale (persons in the demo clinic) it generates the demo, then runs each stage of the daily
job as its own `patientbase` process — load, build, check, export call-list, export segments, report —
and records the wall time and the peak memory (max RSS of that process, from wait4). It also times a
single hand-written DuckDB SQL script (benchmarks/reference.sql) that computes the same core marts
straight from the raw tables, so the project's cost is shown as a ratio to the simplest fast way.

    python benchmarks/run.py --scales 10000 100000 1000000 [--out benchmarks/results]

Writes <out>/latest.json and <out>/latest.md (the table README shows). Timings are measured and
reported here, never asserted by tests.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

STAGES = [
    ("load", ["load", "demo"]),
    ("build", ["build"]),
    ("check", ["check"]),
    ("export call-list", ["export", "call-list"]),
    ("export segments", ["export", "segments"]),
    ("report", ["report"]),
]


def run_stage(args: list[str], cwd: Path, env: dict) -> dict:
    """Run one child process; return wall seconds, peak RSS (MB) and the exit code."""
    start = time.perf_counter()
    proc = subprocess.Popen(args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - start
    return {
        "seconds": round(seconds, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),  # Linux reports KiB
        "exit_code": proc.returncode,
        "tail": output.decode(errors="replace").strip().splitlines()[-3:],
    }


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "patientbase.cli", *args]


def reference(workdir: Path, env: dict) -> dict:
    """Time benchmarks/reference.sql on a copy of the loaded warehouse (raw tables only are read)."""
    code = (
        "import duckdb, sys, time\n"
        "con = duckdb.connect(sys.argv[1])\n"
        "sql = open(sys.argv[2], encoding='utf-8').read()\n"
        "start = time.perf_counter()\n"
        "con.execute(sql)\n"
        "print(f'reference {time.perf_counter() - start:.2f} s')\n"
    )
    warehouse = workdir / "reference_copy.duckdb"  # not "reference": the catalog would clash with the schema
    shutil.copyfile(workdir / "patientbase.duckdb", warehouse)
    result = run_stage([sys.executable, "-c", code, str(warehouse), str(HERE / "reference.sql")], workdir, env)
    warehouse.unlink(missing_ok=True)
    return result


def bench_scale(persons: int, keep: Path | None) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix=f"pb-bench-{persons}-", dir=keep))
    env = dict(os.environ, PATIENTBASE_WAREHOUSE=str(workdir / "patientbase.duckdb"))
    (workdir / "patientbase.yml").write_text("admins: [OP1, OP2, OP3]\n", encoding="utf-8")
    stages = {"generate": run_stage(cli("demo", "--patients", str(persons), "--out", "demo"), workdir, env)}
    counts = {}
    for name in ("patients", "visits", "payments"):
        with (workdir / "demo" / f"{name}.csv").open("rb") as fh:
            counts[name] = sum(1 for _ in fh) - 1
    for stage, args in STAGES:
        stages[stage] = run_stage(cli(*args), workdir, env)
        if stages[stage]["exit_code"] != 0:
            print(f"  {stage} failed: {stages[stage]['tail']}", file=sys.stderr)
    stages["reference (DuckDB SQL)"] = reference(workdir, env)
    size_mb = (workdir / "patientbase.duckdb").stat().st_size / 2**20
    if keep is None:
        shutil.rmtree(workdir, ignore_errors=True)
    daily = sum(stages[s]["seconds"] for s in ("load", "build", "check", "export call-list", "export segments"))
    return {
        "persons": persons,
        "rows": counts,
        "warehouse_mb": round(size_mb, 1),
        "stages": stages,
        "daily_job_seconds": round(daily, 1),
        "daily_job_peak_rss_mb": max(stages[s]["peak_rss_mb"] for s in ("load", "build", "check", "export call-list", "export segments")),
        "build_to_reference": round(stages["build"]["seconds"] / max(stages["reference (DuckDB SQL)"]["seconds"], 0.01), 1),
    }


def machine() -> dict:
    mem = ""
    with open("/proc/meminfo") as fh:
        mem = f"{int(fh.readline().split()[1]) / 2**20:.0f} GiB"
    cpu = platform.processor() or platform.machine()
    with open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {"cpus": os.cpu_count(), "memory": mem, "cpu": cpu, "python": platform.python_version(),
            "os": platform.platform()}


def markdown(report: dict) -> str:
    m = report["machine"]
    lines = [
        f"Run {report['started']} on {m['cpus']} cores ({m['cpu']}), {m['memory']}, Python {m['python']}.",
        "",
        "| persons | visits | stage | wall s | peak RSS MB |",
        "|---:|---:|---|---:|---:|",
    ]
    for scale in report["scales"]:
        first = True
        for stage, res in scale["stages"].items():
            head = f"| {scale['persons']:,} | {scale['rows']['visits']:,} " if first else "| | "
            flag = "" if res["exit_code"] == 0 else " (failed)"
            lines.append(f"{head}| {stage}{flag} | {res['seconds']:.1f} | {res['peak_rss_mb']:,.0f} |")
            first = False
        lines.append(
            f"| | | **daily job** (load + build + check + exports) | **{scale['daily_job_seconds']:.1f}** | "
            f"**{scale['daily_job_peak_rss_mb']:,.0f}** |"
        )
        lines.append(f"| | | build ÷ reference SQL | {scale['build_to_reference']}× | |")
    if len(report["scales"]) > 1:
        lines.append("")
        for small, big in zip(report["scales"], report["scales"][1:]):
            ratio = big["daily_job_seconds"] / max(small["daily_job_seconds"], 0.01)
            data = big["rows"]["visits"] / max(small["rows"]["visits"], 1)
            lines.append(f"- {data:.1f}× the visits cost {ratio:.1f}× the daily-job time "
                         f"({small['persons']:,} → {big['persons']:,} persons).")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--keep", type=Path, help="keep the work folders under this directory")
    args = parser.parse_args()
    report = {"started": dt.datetime.now().isoformat(timespec="seconds"), "machine": machine(), "scales": []}
    for persons in args.scales:
        print(f"== {persons:,} persons", flush=True)
        result = bench_scale(persons, args.keep)
        for stage, res in result["stages"].items():
            print(f"  {stage:<24} {res['seconds']:>8.1f} s {res['peak_rss_mb']:>9,.0f} MB", flush=True)
        report["scales"].append(result)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.json").write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    (args.out / "latest.md").write_text(markdown(report), encoding="utf-8")
    print(markdown(report))


if __name__ == "__main__":
    main()
