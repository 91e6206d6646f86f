"""`patientbase build`: run the dbt project in-process against the configured warehouse."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .config import Config
from .errors import ConfigError, PatientbaseError


def project_dir() -> Path:
    """The dbt project: the repo root in a clone, or the copy shipped inside the installed package."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent, here / "dbt_project"):
        if (candidate / "dbt_project.yml").is_file():
            return candidate
    raise PatientbaseError(f"Cannot find the dbt project next to {here}; reinstall patientbase.")


@functools.lru_cache(maxsize=1)
def project_fingerprint() -> str:
    """sha256 of the dbt project's models, macros, seeds and dbt_project.yml: passed as var
    `project_fingerprint`, so an upgraded (or edited) project recomputes what incremental models kept."""
    root = project_dir()
    digest = hashlib.sha256()
    files = [root / "dbt_project.yml"] + sorted(
        f for folder in ("models", "macros", "seeds") for f in (root / folder).rglob("*") if f.is_file()
    )
    for f in files:
        digest.update(f.relative_to(root).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def parse_date(value: str | None, option: str = "--as-of") -> str | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value).isoformat()
    except ValueError:
        raise ConfigError(f"{option} {value!r} is not a date; use YYYY-MM-DD, e.g. 2026-11-01.") from None


#: dbt events that say a node is finished (passed, failed, skipped or nothing to do).
RESULT_EVENTS = ("LogModelResult", "LogTestResult", "LogSeedResult", "LogSnapshotResult", "LogNodeNoOpResult",
                 "SkippingDetails")


@dataclass
class BuildResult:
    success: bool
    counts: dict[str, int] = field(default_factory=dict)  # "model pass", "test warn", …
    failures: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def dbt_args(cfg: Config, command: str, as_of: str | None = None, extra: list[str] | None = None,
             all_tests: bool | None = None, extra_vars: dict | None = None) -> list[str]:
    project = project_dir()
    # the call list's administrators and capacity come from the config (vars can still override them);
    # the texts people read (actions, reasons, offers, segment names) are in the config's language
    from .predict import available_models, backtest_key, models_dir, project_vars

    dbt_vars = {"project_fingerprint": project_fingerprint(), "call_list_admins": list(cfg.admins),
                "calls_per_admin": cfg.calls_per_admin, "language": cfg.language, **cfg.vars}
    dbt_vars.update(extra_vars or {})
    # what the stored backtest must have been made by for today's predict to keep it (and the build to
    # leave out the backtest cutoff's features): int_prediction_backtest_kept
    dbt_vars["prediction_backtest_key"] = backtest_key(project_vars(cfg))
    # the fits of the models whose files are in the workspace: the stored fit can be kept (and the build
    # leave out the training rows) only when its file is one of these
    dbt_vars["prediction_models_available"] = available_models(models_dir(cfg))
    if as_of:
        dbt_vars["as_of_date"] = as_of
    args = [
        command,
        "--project-dir", str(project),
        "--profiles-dir", str(project),
        "--target-path", str(cfg.state_path / "target"),
        "--log-path", str(cfg.state_path / "logs"),
        "--threads", str(cfg.threads),
        "--quiet",
    ]
    if dbt_vars:
        args += ["--vars", json.dumps(dbt_vars)]
    if command == "build" and not (cfg.all_tests if all_tests is None else all_tests):
        # unit tests check the SQL logic on fixed rows, not the clinic's data (a fixed ~15 s whatever the
        # data size); `deep` tests re-check what is guaranteed elsewhere: on the staging views what the
        # loader enforces and `check` validates on the raw tables (unique keys, required values, known
        # statuses), on views the grain a reconciliation test already proves. On 10M-row exports they
        # were ~40% of the build. CI runs both; the daily job need not.
        args += ["--exclude-resource-type", "unit_test"]
        extra = _with_exclude(list(extra or []), "tag:deep")
    return args + list(extra or [])


def _with_exclude(extra: list[str], selector: str) -> list[str]:
    """Add `selector` to the --exclude of `extra` (one --exclude flag holds them all)."""
    if "--exclude" not in extra:
        return extra + ["--exclude", selector]
    at = extra.index("--exclude") + 1
    return extra[:at] + [selector] + extra[at:]


def run_dbt(cfg: Config, command: str = "build", as_of: str | None = None, extra: list[str] | None = None,
            progress: Callable[..., None] | None = None, all_tests: bool | None = None,
            extra_vars: dict | None = None) -> BuildResult:
    """Run a dbt command in-process; report each finished node through `progress(text, done, total)`."""
    from dbt.cli.main import dbtRunner  # imported lazily: dbt takes ~1 s to import

    cfg.state_path.mkdir(parents=True, exist_ok=True)
    done = {"n": 0, "total": None}

    def on_event(event) -> None:
        if progress is None:
            return
        name = event.info.name
        if name == "LogStartLine" or name in RESULT_EVENTS:
            # every node's start and result line carries the number of nodes selected (tests: num_models)
            total = getattr(event.data, "total", 0) or getattr(event.data, "num_models", 0)
            if total:
                done["total"] = total
        if name in RESULT_EVENTS:
            done["n"] += 1
            node = getattr(event.data, "node_info", None)
            label = node.node_name if node is not None else ""
            of = f" of {done['total']}" if done["total"] else ""
            progress(f"dbt {command}: {done['n']}{of} nodes done, last {label}", done["n"], done["total"])

    from .engine import dbt_environment, engine_of

    args = dbt_args(cfg, command, as_of, extra, all_tests, extra_vars)
    try:
        with dbt_environment(cfg), _parse_kept_per_vars(cfg, args, engine_of(cfg)):
            # profiles.yml reads the engine and its connection from the environment
            result = dbtRunner(callbacks=[on_event]).invoke(args)
    finally:
        _release_warehouse()
    if result.exception is not None:
        raise PatientbaseError(f"dbt {command} could not run: {result.exception}")
    out = BuildResult(success=bool(result.success))
    for node_result in getattr(result.result, "results", None) or []:
        node = node_result.node
        status = str(node_result.status).lower().split(".")[-1]
        key = f"{node.resource_type} {status}"
        out.counts[key] = out.counts.get(key, 0) + 1
        if status in ("error", "fail", "runtime error"):
            msg = (node_result.message or "").strip().splitlines()
            out.failures.append(f"{node.resource_type} {node.name}: {msg[0] if msg else status}")
        elif status == "warn":
            msg = (node_result.message or "").strip().splitlines()
            out.warnings.append(f"{node.name}: {msg[0] if msg else 'warn'}")
    return out


#: how many parsed projects `_parse_kept_per_vars` keeps (one per set of vars; ~3 MB each)
PARSES_KEPT = 8


@contextlib.contextmanager
def _parse_kept_per_vars(cfg: Config, args: list[str], engine: str):
    """Let dbt reuse its parse of the project whenever the vars are ones it has parsed with before.

    dbt keeps one parsed project (target/partial_parse.msgpack) and parses the whole project again,
    ~7 s on two cores whatever the data size, whenever the command-line vars differ from the last
    command's. The runner's commands alternate between a few sets of vars (build; predict's rebuild;
    the call list's date and capacity), so dbt parsed in full nearly every time. Each set's parse is
    kept under a key of the vars and the engine and put back in dbt's place before dbt runs with the
    same set. dbt still checks the parse it finds (files, vars, profile, environment, its version)
    and parses again when anything changed, so a kept parse can only save time, never be wrong."""
    target = cfg.state_path / "target"
    current = target / "partial_parse.msgpack"
    vars_json = args[args.index("--vars") + 1] if "--vars" in args else ""
    key = hashlib.sha256(f"{engine}\0{vars_json}".encode()).hexdigest()[:16]
    kept = target / "parses" / f"{key}.msgpack"
    if kept.exists():
        os.replace(kept, current)
    else:
        current.unlink(missing_ok=True)  # another set's parse: dbt would only reject it
    try:
        yield
    finally:
        if current.exists():
            kept.parent.mkdir(parents=True, exist_ok=True)
            os.replace(current, kept)
            kept.touch()  # most recently used
            for old in sorted(kept.parent.glob("*.msgpack"), key=lambda f: f.stat().st_mtime)[:-PARSES_KEPT]:
                old.unlink(missing_ok=True)


def _release_warehouse() -> None:
    """dbt-duckdb keeps its DuckDB handle open for the life of the process; close it so the runner
    (and a BI tool) can open the warehouse file again right after a build."""
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:  # another adapter: nothing to release
        return
    with DuckDBConnectionManager._LOCK:
        env = DuckDBConnectionManager._ENV
        if env is not None:
            env.close()
        DuckDBConnectionManager._ENV = None


def build(cfg: Config, as_of: str | None = None, select: tuple[str, ...] = (),
          progress: Callable[..., None] | None = None, all_tests: bool | None = None,
          exclude: tuple[str, ...] = (), full_refresh: bool = False) -> BuildResult:
    # cautious: a test runs only when all the models it reads are selected (a reconciliation test
    # reading marts must not run on a staging-only build)
    extra = ["--select", *select, "--indirect-selection", "cautious"] if select else []
    extra += ["--exclude", *exclude] if exclude else []
    extra += ["--full-refresh"] if full_refresh else []  # incremental models recompute everything
    result = run_dbt(cfg, "build", as_of=as_of, extra=extra, progress=progress, all_tests=all_tests)
    if not result.success:
        details = "\n".join(f"  - {f}" for f in result.failures[:10]) or "  (see the dbt log)"
        raise PatientbaseError(
            f"dbt build failed: {len(result.failures)} node(s) did not pass:\n{details}\n"
            f"Full log: {cfg.state_path / 'logs' / 'dbt.log'}"
        )
    return result


def build_call_list(cfg: Config, list_date: str | None, admins: list[str], per_admin: int,
                    progress: Callable[..., None] | None = None, as_of=None) -> BuildResult:
    """Rebuild the call list (its ranking, the list and its control group) for another day or capacity,
    inside a publishing (`cfg` is its Config).

    DuckDB: only those models, in the private copy of the file; the rest of the warehouse stays. PostgreSQL
    and Spark build a new version of every schema (runner/engine.py), which starts empty: every model is
    built into it, as of the published build's date `as_of` and from the published raw tables, so the
    version published holds the whole warehouse; the data tests that run are the call-list models' (the
    rest are the published build's models, rebuilt from the same inputs).
    """
    from .engine import engine_of

    # the seed too: specialty names a clinic just edited show on the next list without a full build
    call_list_models = ["specialty_labels", "stg_mis__call_assignments", "int_call_list_ranked", "call_list",
                        "call_list_control"]
    list_vars = {"call_list_date": list_date, "call_list_admins": admins, "calls_per_admin": per_admin}
    as_of = as_of.isoformat() if hasattr(as_of, "isoformat") else as_of
    if engine_of(cfg) == "duckdb":
        results = [run_dbt(cfg, "build", extra=["--select", *call_list_models, "--exclude-resource-type", "unit_test",
                                                "--indirect-selection", "cautious"],
                           progress=progress, all_tests=True, extra_vars=list_vars)]
    else:
        results = [run_dbt(cfg, "build", as_of=as_of, extra=["--exclude", "resource_type:test"], progress=progress,
                           all_tests=False, extra_vars=list_vars)]
        if results[0].success:
            results.append(run_dbt(cfg, "test", as_of=as_of, extra=["--select", *call_list_models,
                                                                    "--exclude-resource-type", "unit_test",
                                                                    "--indirect-selection", "cautious"],
                                   progress=progress, all_tests=True, extra_vars=list_vars))
    result = BuildResult(success=all(r.success for r in results))
    for part in results:
        for key, n in part.counts.items():
            result.counts[key] = result.counts.get(key, 0) + n
        result.failures += part.failures
        result.warnings += part.warnings
    if not result.success:
        details = "\n".join(f"  - {f}" for f in result.failures[:10]) or "  (see the dbt log)"
        raise PatientbaseError(f"The call list could not be built:\n{details}")
    return result
