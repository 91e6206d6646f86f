"""Benchmark the daily job at a clinic network's scale.

For each scale (persons in the demo clinic) it generates the demo, then runs each stage of the job as
its own `patientbase` process — load, build, check, export call-list, export segments, report — and
records the wall time and the peak memory (max RSS of that process, from wait4), twice:

- **first day**: the first import of the whole history into an empty warehouse (every phone number is
  parsed with libphonenumber, once);
- **next day**: the daily job proper. Every export file changed overnight (each gets one more row at its
  end, as full-snapshot MIS exports do), so each is hashed whole and read from its new line (the
  loader's tail read); the warehouse, its phone cache and yesterday's marts exist, and the build
  recomputes everything.

Then, on the same data: `load --force` (every export read whole, as before tail reads), the pandas
notebook an analyst would write for RFM and cohorts (benchmarks/notebook.py), and one more day as
users run it: `patientbase run` in one process (load, build, predict, check, the list's arms, summary,
call list, segment files, report), where the stage-by-stage sum counts dbt's start-up again for the
standalone `export call-list`.

It also times a single hand-written DuckDB SQL script (benchmarks/reference.sql) that computes the
same core marts straight from the raw tables, so the project's cost is shown as a ratio to the
simplest fast way: once against the whole build (42 models, a few times the reference's work) and once
against a build of only what the reference computes (`build --select` the lineage of dim_patients,
rfm_scores, cohort_revenue and call_list_candidates, their tests included).

    python benchmarks/run.py --scales 10000 100000 1000000 [--out benchmarks/results]

With `--engines duckdb postgres spark` it also runs the daily job as a user runs it, one `patientbase run`
process a day (first day, next day), on each engine (`engine:` in the workspace's patientbase.yml;
PostgreSQL: the server of `--pg-host/--pg-port/--pg-user`, a fresh database per scale; Spark: the
in-process session, its warehouse in the work folder), at `--engine-scales` (default: every scale;
`--spark-scales` limits Spark further). One process a day because on PostgreSQL and Spark a standalone
`predict` or `export call-list` builds a whole new version (runner/engine.py), which `run` does once.
Peak memory is the patientbase process's: a PostgreSQL server's own memory is not in it; Spark's JVM is.
The reference script is DuckDB SQL and runs on DuckDB only.

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
    ("predict", ["predict"]),
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


DAILY = ("load", "build", "predict", "check", "export call-list", "export segments")

#: What benchmarks/reference.sql computes, as a dbt selection (each mart with everything upstream).
CORE_MARTS = ("+dim_patients", "+rfm_scores", "+cohort_revenue", "+call_list_candidates")

#: The first column of each export is its key: the next day's extra row copies the last row under a new
#: key (visit_services has no key of its own: its copy is one more service line of the same visit).
NEW_KEY_FILES = ("patients.csv", "visits.csv", "payments.csv", "treatment_plans.csv", "calls.csv")


def next_day(folder: Path) -> None:
    """Make every export look like the next morning's full snapshot: one more row at the end (the
    loader reads only such new lines). The new service line belongs to the new visit: a new line of an
    old visit and service would make the loader read the whole export (runner/load.py)."""
    new_visit = None
    for path in sorted(folder.glob("*.csv"), key=lambda p: p.name != "visits.csv"):
        with path.open("rb") as fh:  # only the tail: reading a 1 GB file here would inflate the
            fh.seek(max(path.stat().st_size - 65536, 0))  # children's peak RSS (they fork from us)
            data = fh.read()
        last = data.rstrip(b"\r\n").rsplit(b"\n", 1)[-1]
        if path.name in NEW_KEY_FILES:
            key, rest = last.split(b",", 1)
            last = key + b"N" + b"," + rest
            if path.name == "visits.csv":
                new_visit = key + b"N"
        elif path.name == "visit_services.csv" and new_visit:
            last = new_visit + b"," + last.split(b",", 1)[1]
        elif path.name == "marketing_spend.csv":  # key (month, channel): the same channel's next month
            month, rest = last.split(b",", 1)
            day = dt.date.fromisoformat(month.decode())
            month = (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1).isoformat().encode()
            last = month + b"," + rest
        with path.open("ab") as fh:
            fh.write((b"" if data.endswith(b"\n") else b"\n") + last + b"\n")


def slowest_models(workdir: Path, n: int = 8) -> list[list]:
    """The dbt build's slowest models, from its run_results.json: [[model, seconds], …]."""
    path = workdir / ".patientbase" / "target" / "run_results.json"
    if not path.exists():
        return []
    results = json.loads(path.read_text(encoding="utf-8"))["results"]
    models = [(r["unique_id"].split(".")[-1], r["execution_time"]) for r in results if r["unique_id"].startswith("model.")]
    return [[name, round(seconds, 1)] for name, seconds in sorted(models, key=lambda m: -m[1])[:n]]


def run_day(workdir: Path, env: dict) -> dict:
    stages = {}
    for stage, args in STAGES:
        stages[stage] = run_stage(cli(*args), workdir, env)
        if stages[stage]["exit_code"] != 0:
            print(f"  {stage} failed: {stages[stage]['tail']}", file=sys.stderr)
        if stage == "build":
            stages[stage]["slowest_models"] = slowest_models(workdir)
    return stages


def engine_block(engine: str, persons: int, workdir: Path, pg: dict) -> str:
    """The patientbase.yml lines that put the warehouse on `engine` (a fresh PostgreSQL database)."""
    if engine == "duckdb":
        return ""
    if engine == "spark":
        return f"engine: spark\nspark: {{method: session, warehouse_dir: '{workdir / 'spark'}'}}\n"
    import psycopg2

    dbname = f"patientbase_bench_{persons}"
    con = psycopg2.connect(host=pg["host"], port=pg["port"], user=pg["user"], dbname="postgres")
    con.autocommit = True
    with con.cursor() as cur:
        cur.execute(f'drop database if exists "{dbname}" with (force)')
        cur.execute(f'create database "{dbname}"')
    con.close()
    return (f"engine: postgres\npostgres: {{host: '{pg['host']}', port: {pg['port']}, user: '{pg['user']}', "
            f"dbname: '{dbname}'}}\n")


def bench_run(persons: int, keep: Path | None, engine: str, pg: dict) -> dict:
    """The daily job as a user runs it on `engine`: one `patientbase run` process per day (load, build,
    predict, check, record the arms, summary, call list, segments, report), first day and next day."""
    workdir = Path(tempfile.mkdtemp(prefix=f"pb-bench-run-{engine}-{persons}-", dir=keep))
    env = dict(os.environ, PATIENTBASE_WAREHOUSE=str(workdir / "patientbase.duckdb"))
    (workdir / "patientbase.yml").write_text(engine_block(engine, persons, workdir, pg)
                                            + "admins: [OP1, OP2, OP3]\n", encoding="utf-8")
    run_stage(cli("demo", "--patients", str(persons), "--out", "demo"), workdir, env)
    with (workdir / "demo" / "visits.csv").open("rb") as fh:
        visits = sum(1 for _ in fh) - 1
    first = run_stage(cli("run", "demo"), workdir, env)
    next_day(workdir / "demo")
    daily = run_stage(cli("run", "demo"), workdir, env)
    for day, res in (("first day", first), ("next day", daily)):
        if res["exit_code"] != 0:
            print(f"  {engine} run ({day}) failed: {res['tail']}", file=sys.stderr)
    if keep is None:
        shutil.rmtree(workdir, ignore_errors=True)
    return {"engine": engine, "persons": persons, "visits": visits, "first_day": first, "next_day": daily}


def bench_scale(persons: int, keep: Path | None) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix=f"pb-bench-{persons}-", dir=keep))
    env = dict(os.environ, PATIENTBASE_WAREHOUSE=str(workdir / "patientbase.duckdb"))
    (workdir / "patientbase.yml").write_text("admins: [OP1, OP2, OP3]\n", encoding="utf-8")
    generate = run_stage(cli("demo", "--patients", str(persons), "--out", "demo"), workdir, env)
    counts = {}
    for name in ("patients", "visits", "payments"):
        with (workdir / "demo" / f"{name}.csv").open("rb") as fh:
            counts[name] = sum(1 for _ in fh) - 1
    first = run_day(workdir, env)
    reference_run = reference(workdir, env)
    next_day(workdir / "demo")
    daily = run_day(workdir, env)
    full = run_stage(cli("build", "--full-refresh"), workdir, env)  # the next day's build, incremental models whole
    core = run_stage(cli("build", "--select", " ".join(CORE_MARTS)), workdir, env)
    whole_read = run_stage(cli("load", "--force", "demo"), workdir, env)
    notebook = run_stage([sys.executable, str(HERE / "notebook.py"), str(workdir / "demo")], workdir, env)
    next_day(workdir / "demo")  # the day after: the daily job as users run it, one process
    as_users_run_it = run_stage(cli("run", "demo"), workdir, env)
    size_mb = (workdir / "patientbase.duckdb").stat().st_size / 2**20
    if keep is None:
        shutil.rmtree(workdir, ignore_errors=True)
    return {
        "persons": persons,
        "rows": counts,
        "warehouse_mb": round(size_mb, 1),
        "generate": generate,
        "first_day": first,
        "next_day": daily,
        "reference": reference_run,
        "core_build": core,
        "full_rebuild": full,
        "whole_read": whole_read,
        "notebook": notebook,
        "run": as_users_run_it,
        "run_to_notebook": round(as_users_run_it["seconds"] / max(notebook["seconds"], 0.01), 2),
        "first_day_seconds": round(sum(first[s]["seconds"] for s in DAILY), 1),
        "daily_job_seconds": round(sum(daily[s]["seconds"] for s in DAILY), 1),
        "daily_job_peak_rss_mb": max(max(first[s]["peak_rss_mb"], daily[s]["peak_rss_mb"]) for s in DAILY),
        "build_to_reference": round(daily["build"]["seconds"] / max(reference_run["seconds"], 0.01), 1),
        "core_build_to_reference": round(core["seconds"] / max(reference_run["seconds"], 0.01), 1),
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
    ]
    if report["scales"]:
        lines += ["| persons | visits | stage | first day s | next day s | peak RSS MB |", "|---:|---:|---|---:|---:|---:|"]

    def failed(*results) -> str:
        return "" if all(r["exit_code"] == 0 for r in results) else " (failed)"

    for scale in report["scales"]:
        gen, ref = scale["generate"], scale["reference"]
        lines.append(f"| {scale['persons']:,} | {scale['rows']['visits']:,} | generate the demo{failed(gen)} "
                     f"| {gen['seconds']:.1f} | | {gen['peak_rss_mb']:,.0f} |")
        for stage, _ in STAGES:
            one, two = scale["first_day"][stage], scale["next_day"][stage]
            lines.append(f"| | | {stage}{failed(one, two)} | {one['seconds']:.1f} | {two['seconds']:.1f} "
                         f"| {max(one['peak_rss_mb'], two['peak_rss_mb']):,.0f} |")
        lines.append(
            f"| | | **daily job** (load + build + predict + check + exports) | {scale['first_day_seconds']:.1f} "
            f"| **{scale['daily_job_seconds']:.1f}** | **{scale['daily_job_peak_rss_mb']:,.0f}** |"
        )
        lines.append(f"| | | reference (one DuckDB SQL script){failed(ref)} | {ref['seconds']:.1f} | "
                     f"| {ref['peak_rss_mb']:,.0f} |")
        if "full_rebuild" in scale:
            full = scale["full_rebuild"]
            lines.append(f"| | | build --full-refresh (the next day's build, incremental models whole){failed(full)} | "
                         f"| {full['seconds']:.1f} | {full['peak_rss_mb']:,.0f} |")
        core = scale["core_build"]
        lines.append(f"| | | build of the core marts only (what the reference computes){failed(core)} | "
                     f"| {core['seconds']:.1f} | {core['peak_rss_mb']:,.0f} |")
        lines.append(f"| | | whole build ÷ reference | | {scale['build_to_reference']}× | |")
        lines.append(f"| | | core-marts build ÷ reference | | {scale['core_build_to_reference']}× | |")
        if "run" in scale:
            whole, book, run = scale["whole_read"], scale["notebook"], scale["run"]
            lines.append(f"| | | load --force (every export read whole){failed(whole)} | | {whole['seconds']:.1f} "
                         f"| {whole['peak_rss_mb']:,.0f} |")
            lines.append(f"| | | **`patientbase run`** (the day after: the daily job as users run it){failed(run)} | "
                         f"| **{run['seconds']:.1f}** | {run['peak_rss_mb']:,.0f} |")
            lines.append(f"| | | pandas notebook (RFM and cohorts only, benchmarks/notebook.py){failed(book)} | "
                         f"| {book['seconds']:.1f} | {book['peak_rss_mb']:,.0f} |")
            lines.append(f"| | | `run` ÷ notebook | | {scale['run_to_notebook']}× | |")
    for scale in report["scales"]:
        slow = scale["next_day"]["build"].get("slowest_models")
        if slow:
            lines.append("")
            lines.append(f"Slowest models of the next day's build at {scale['persons']:,} persons (s, 2 threads): "
                         + ", ".join(f"{name} {seconds}" for name, seconds in slow) + ".")
        steps = [line for line in scale.get("run", {}).get("tail", []) if line.startswith("Done in ")]
        if steps:  # run's own account of its steps (runner/cli.py, Steps)
            lines.append("")
            lines.append(f"`patientbase run` at {scale['persons']:,} persons, the day after: {steps[-1]}")
    lines += engines_markdown(report)
    if len(report["scales"]) > 1:
        lines.append("")
        for small, big in zip(report["scales"], report["scales"][1:]):
            ratio = big["daily_job_seconds"] / max(small["daily_job_seconds"], 0.01)
            data = big["rows"]["visits"] / max(small["rows"]["visits"], 1)
            lines.append(f"- {data:.1f}× the visits cost {ratio:.1f}× the daily-job time "
                         f"({small['persons']:,} → {big['persons']:,} persons).")
    return "\n".join(lines) + "\n"


def engines_markdown(report: dict) -> list[str]:
    """The engines side by side: `patientbase run`, one process a day."""
    runs = report.get("engines") or []
    if not runs:
        return []
    lines = ["", "The daily job on each engine (`patientbase run`, one process a day; peak RSS of that process, "
             "Spark's JVM included, a PostgreSQL server's own memory not):", "",
             "| persons | visits | engine | first day s | next day s | peak RSS MB |", "|---:|---:|---|---:|---:|---:|"]
    order = ("duckdb", "postgres", "spark")
    for run in sorted(runs, key=lambda r: (r["persons"], order.index(r["engine"]))):
        one, two = run["first_day"], run["next_day"]
        mark = "" if one["exit_code"] == two["exit_code"] == 0 else " (failed)"
        lines.append(f"| {run['persons']:,} | {run['visits']:,} | {run['engine']}{mark} | {one['seconds']:.1f} "
                     f"| **{two['seconds']:.1f}** | {max(one['peak_rss_mb'], two['peak_rss_mb']):,.0f} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=int, nargs="*", default=[10_000, 100_000, 1_000_000],
                        help="the stage-by-stage DuckDB benchmark at these scales (none: --scales with no value)")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--keep", type=Path, help="keep the work folders under this directory")
    parser.add_argument("--engines", nargs="+", default=["duckdb"], choices=["duckdb", "postgres", "spark"])
    parser.add_argument("--engine-scales", type=int, nargs="+",
                        help="compare the engines at these scales (default: every scale)")
    parser.add_argument("--spark-scales", type=int, nargs="+", help="Spark at these scales only")
    parser.add_argument("--pg-host", default="127.0.0.1")
    parser.add_argument("--pg-port", type=int, default=5432)
    parser.add_argument("--pg-user", default="postgres")
    args = parser.parse_args()
    pg = {"host": args.pg_host, "port": args.pg_port, "user": args.pg_user}
    report = {"started": dt.datetime.now().isoformat(timespec="seconds"), "machine": machine(), "scales": [],
              "engines": []}
    for persons in args.scales:
        print(f"== {persons:,} persons, stage by stage on DuckDB", flush=True)
        result = bench_scale(persons, args.keep)
        for day in ("first_day", "next_day"):
            for stage, res in result[day].items():
                print(f"  {day:<9} {stage:<18} {res['seconds']:>8.1f} s {res['peak_rss_mb']:>9,.0f} MB", flush=True)
        report["scales"].append(result)
    if args.engines != ["duckdb"]:
        for persons in args.engine_scales or args.scales:
            for engine in args.engines:
                if engine == "spark" and args.spark_scales and persons not in args.spark_scales:
                    continue
                print(f"== {persons:,} persons, `patientbase run` on {engine}", flush=True)
                result = bench_run(persons, args.keep, engine, pg)
                print(f"  first day {result['first_day']['seconds']:.1f} s, next day {result['next_day']['seconds']:.1f} s",
                      flush=True)
                report["engines"].append(result)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.json").write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    (args.out / "latest.md").write_text(markdown(report), encoding="utf-8")
    print(markdown(report))


if __name__ == "__main__":
    main()
