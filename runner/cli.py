"""The `patientbase` command line: a thin Click group over load, build and the demo generator.

Exit codes: 0 success, 1 data or check failure, 2 usage or configuration error. Tracebacks only with
--debug. Progress goes to stderr, the human summary to stdout.
"""

from __future__ import annotations

import contextlib
import functools
import sys
import time
from pathlib import Path

import click
from rich.console import Console

from . import __version__
from .config import Config, load_config
from .engine import describe, engine_of
from .errors import EXIT_DATA, ConfigError, PatientbaseError

err_console = Console(stderr=True)


# -- shared options (dbt-core's cli/params.py style) -------------------------------------------------

as_of_option = click.option(
    "--as-of", "as_of", metavar="DATE",
    help="Compute every 'as of' rule for this date (YYYY-MM-DD). Default: the day after the latest completed visit.",
)


mapping_option = click.option(
    "--mapping", metavar="FILE|NAME",
    help="Export mapping: a YAML file or a built-in name (canonical, typical_mis). Default: config `mapping`.",
)


def pass_config(fn):
    """Give the command the loaded Config as its first argument."""

    @click.pass_context
    @functools.wraps(fn)
    def wrapper(ctx, *args, **kwargs):
        return ctx.invoke(fn, ctx.obj["config"], *args, **kwargs)

    return wrapper


@contextlib.contextmanager
def progress(message: str):
    """A progress bar on stderr; yields `say(text, done=None, total=None)`: with a total the bar shows
    `done/total` and fills, without one it is a spinner with the text."""
    if not err_console.is_terminal:
        yield lambda _msg, _done=None, _total=None: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=err_console, transient=True) as bar:
        task = bar.add_task(message, total=None)

        def say(text: str, done: int | None = None, total: int | None = None) -> None:
            if total is None:
                bar.update(task, description=text)
            else:
                bar.update(task, description=text, completed=done or 0, total=total)

        yield say


# -- the group --------------------------------------------------------------------------------------


class Group(click.Group):
    """Turns unexpected exceptions into one readable paragraph unless --debug is given."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:  # noqa: BLE001 - the one place that catches everything
            if ctx.obj and ctx.obj.get("debug"):
                raise
            raise PatientbaseError(
                f"Unexpected error: {type(exc).__name__}: {exc}. Run again with --debug for the traceback."
            ) from None


@click.group(cls=Group)
@click.version_option(__version__, prog_name="patientbase")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="Config file (default ./patientbase.yml).")
@click.option("--warehouse", metavar="PATH", help="DuckDB warehouse file (default ./patientbase.duckdb or $PATIENTBASE_WAREHOUSE).")
@click.option("--debug", is_flag=True, help="Show tracebacks.")
@click.pass_context
def cli(ctx, config_path, warehouse, debug):
    """patientbase: the analytics warehouse for a clinic's own patient base."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    ctx.obj["config"] = load_config(config_path, warehouse)


# -- demo -------------------------------------------------------------------------------------------


@cli.command()
@click.option("--patients", default=3000, show_default=True, type=click.IntRange(min=10), help="Number of patients.")
@click.option("--seed", default=42, show_default=True, type=int, help="Random seed (same seed, same files).")
@click.option("--out", "out_dir", default="demo", show_default=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option("--today", default=None, metavar="DATE", help="The demo clinic's 'today' (default 2026-11-01).")
@click.option("--format", "fmt", type=click.Choice(["canonical", "mis"]), default="canonical", show_default=True,
              help="canonical CSV, or a typical Russian MIS export (cp1251, ';', decimal commas, Russian headers, "
                   "one XLSX) to load with --mapping typical_mis.")
def demo(patients, seed, out_dir, today, fmt):
    """Write a realistic synthetic clinic as export files."""
    if fmt == "mis":
        import tempfile

        from .demo_mis import write_mis

        with tempfile.TemporaryDirectory(prefix="patientbase-demo-") as tmp:
            counts, seconds = _write_demo(patients, seed, tmp, today)
            files = write_mis(Path(tmp), Path(out_dir))
        click.echo(f"Demo clinic written as a typical MIS export to {Path(out_dir).resolve()} in {seconds:.1f} s:")
        for table, n in counts.items():
            click.echo(f"  {files.get(table, table):<24} {n:>12,} rows")
        click.echo(f"Load it with: patientbase load {out_dir} --mapping typical_mis")
        return
    counts, seconds = _write_demo(patients, seed, out_dir, today)
    click.echo(f"Demo clinic written to {Path(out_dir).resolve()} in {seconds:.1f} s:")
    for table, n in counts.items():
        click.echo(f"  {table:<16} {n:>12,} rows")


def _write_demo(patients: int, seed: int, out_dir: str, today: str | None):
    import datetime as dt

    from .build import parse_date
    from .demo import DEMO_TODAY, generate

    day = dt.date.fromisoformat(parse_date(today, "--today")) if today else DEMO_TODAY
    start = time.perf_counter()
    with progress(f"Generating {patients:,} patients") as say:
        counts = generate(Path(out_dir), patients=patients, seed=seed, today=day, progress=say)
    return counts, time.perf_counter() - start


# -- load -------------------------------------------------------------------------------------------


accept_shrink_option = click.option(
    "--accept-shrink", is_flag=True, default=False,
    help="Load a full export even when a table would keep fewer than min_keep_share (90%) of its rows, or none.")

full_refresh_option = click.option(
    "--full-refresh", is_flag=True, default=False,
    help="Recompute the incremental models whole (they recompute by themselves what their inputs, vars or "
         "models changed; this is for a hand-edited model or doubt).")


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@mapping_option
@click.option("--force", is_flag=True, help="Re-read every file, even those the ledger says are loaded already.")
@accept_shrink_option
@pass_config
def load(cfg: Config, paths, mapping, force, accept_shrink):
    """Validate export files and load them into the warehouse's raw schema.

    PATHS are folders of export files or single files. Which file is which table comes from the
    mapping (default: canonical, <table>.csv). Bad rows go to raw.load_rejects with file, line,
    column and reason.
    """
    from .warehouse import publishing

    with publishing(cfg) as staged:
        _load(staged, paths, mapping, force=force, accept_shrink=accept_shrink)
    click.echo(f"Published to {describe(cfg)}.")


def _reconciliation(f) -> str:
    """Physical data lines = loaded + rejected + duplicates dropped (+ blank, filtered, continuation)."""
    parts = [f"{f.rows_loaded:,} loaded", f"{f.rows_rejected:,} rejected", f"{f.duplicates_dropped:,} duplicates"]
    if f.blank_lines:
        parts.append(f"{f.blank_lines:,} blank")
    if f.filtered_out:
        parts.append(f"{f.filtered_out:,} skipped by the mapping's filter")
    rest = f.lines_read - f.rows_loaded - f.rows_rejected - f.duplicates_dropped - f.blank_lines - f.filtered_out
    if rest:
        parts.append(f"{rest:,} continuation lines of values spanning lines")
    return f"{f.lines_read:,} data lines = " + " + ".join(parts)


def _load(cfg: Config, paths, mapping_name: str | None = None, force: bool = False, accept_shrink: bool = False) -> None:
    from .load import TABLES
    from .load import load as load_files
    from .mapping import load_mapping
    from .warehouse import connect

    mapping = load_mapping(mapping_name or cfg.mapping)
    start = time.perf_counter()
    tables = list(TABLES)
    with progress("Loading exports") as say, connect(cfg) as con:
        def by_table(text: str, done: int | None = None, total: int | None = None) -> None:
            # the loader says "<table>: …" for each table in turn, and the lines read of each file: the
            # bar fills with the file's lines, the text says which table of how many
            table = text.split(":", 1)[0]
            of = f" (table {tables.index(table) + 1} of {len(tables)})" if table in tables else ""
            say(f"Loading {text}{of}", done, total)

        result = load_files(con, paths, mapping=mapping, phone_region=cfg.phone_region,
                            max_reject_share=cfg.max_reject_share, progress=by_table, force=force,
                            min_keep_share=cfg.min_keep_share, accept_shrink=accept_shrink or cfg.accept_shrink)
    from .engine import push_raw

    push_raw(cfg)  # PostgreSQL/Spark: the validated raw tables into the engine (no-op on DuckDB)
    click.echo(f"Loaded in {time.perf_counter() - start:.1f} s:")
    for f in result.files:
        if f.skipped_unchanged:
            click.echo(f"  {f.file:<22} unchanged since the last load, skipped")
            continue
        line = f"  {f.file:<22} {f.rows_loaded:>10,} loaded"
        if f.rows_rejected:
            line += click.style(f", {f.rows_rejected:,} rejected", fg="yellow")
        if f.duplicates_dropped:
            line += f", {f.duplicates_dropped:,} exact duplicates dropped"
        if f.values_nulled:
            line += click.style(f", {f.values_nulled:,} bad values emptied", fg="yellow")
        if f.values_assumed_true:
            line += click.style(f", {f.values_assumed_true:,} unknown opt-out/death flags read as TRUE", fg="yellow")
        click.echo(line)
        click.echo("      " + _reconciliation(f))
        for note in f.notes:
            click.echo(f"      note: {note}")
    for name in result.created_empty:
        click.echo(f"  {name + ' (no file)':<22} created empty")
    if result.ignored:
        click.echo(f"  ignored (no table's file pattern in mapping {mapping.source}): {', '.join(result.ignored)}")
    if result.rows_rejected or any(f.values_nulled for f in result.files):
        click.echo("See why in raw.load_rejects (file, line, column, value, reason).")


# -- build ------------------------------------------------------------------------------------------


@cli.command()
@as_of_option
@click.option("--select", "-s", multiple=True, help="dbt node selection (passed to dbt build --select).")
@click.option("--exclude", multiple=True,
              help="dbt nodes left out (passed to dbt build --exclude), e.g. resource_type:test for the models "
                   "and unit tests without the data tests.")
@click.option("--all-tests/--daily-tests", default=None,
              help="Also run the dbt unit tests and the tests tagged `deep` (what the loader or another "
                   "test already guarantees), as CI does. Default: config all_tests (off).")
@full_refresh_option
@pass_config
def build(cfg: Config, as_of, select, exclude, all_tests, full_refresh):
    """Run dbt build: every model and its data tests. The warehouse is replaced only if everything passes."""
    from .warehouse import publishing

    if not cfg.warehouse_path.exists():
        raise PatientbaseError(
            f"No warehouse at {cfg.warehouse_path} yet: load the exports first (`patientbase load EXPORT_FOLDER`), "
            "or try the demo with `patientbase run --demo`."
        )
    with publishing(cfg) as staged:
        _build(staged, as_of, select, all_tests, exclude, full_refresh)
    click.echo(f"Published to {describe(cfg)}.")


def _build(cfg: Config, as_of, select=(), all_tests=None, exclude=(), full_refresh=False):
    from .build import build as dbt_build
    from .build import parse_date

    as_of = parse_date(as_of)
    start = time.perf_counter()
    with progress("Building the warehouse (dbt build)") as say:
        result = dbt_build(cfg, as_of=as_of, select=tuple(select), progress=say, all_tests=all_tests,
                           exclude=tuple(exclude), full_refresh=full_refresh)
    counts = ", ".join(f"{n} {k}" for k, n in sorted(result.counts.items()))
    click.echo(f"dbt build passed in {time.perf_counter() - start:.1f} s ({counts}).")
    for w in result.warnings[:10]:
        click.echo(click.style(f"  warning: {w}", fg="yellow"))
    return result


# -- predict ----------------------------------------------------------------------------------------


@cli.command()
@pass_config
def predict(cfg: Config):
    """Fit the return models on the clinic's history, score every person, backtest; rebuild the marts."""
    from .warehouse import publishing

    with publishing(cfg) as staged:
        _predict(staged)
    click.echo(f"Published to {describe(cfg)}.")


def _predict(cfg: Config):
    from .predict import predict as run_predict
    from .predict import summary_lines

    with progress("Predicting returns") as say:
        result = run_predict(cfg, progress=say)
    for line in summary_lines(result):
        click.echo(line)
    return result


# -- check ------------------------------------------------------------------------------------------


@cli.command()
@click.option("--verbose", "-v", is_flag=True, help="List every expectation and skipped suite, not only failures.")
@pass_config
def check(cfg: Config, verbose):
    """Run the Great Expectations suites on the raw tables and marts; write the Data Docs.

    Prints the failures and a one-line total (every expectation with --verbose). Exits 1 when an
    expectation of severity error fails; failed warn expectations are only printed.
    """
    _check(cfg, verbose)


def _check(cfg: Config, verbose: bool = False):
    from .checks import failure_message, run_checks, summary_lines

    with progress("Checking data quality (Great Expectations)") as say:
        report = run_checks(cfg, progress=say)
    for line in summary_lines(report, verbose=verbose):
        click.echo(line)
    if report.errors:
        raise PatientbaseError(failure_message(report))
    return report


# -- run --------------------------------------------------------------------------------------------


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(exists=True))
@click.option("--demo", "use_demo", is_flag=True, help="Generate the demo clinic and run on it.")
@click.option("--patients", default=3000, show_default=True, type=click.IntRange(min=10), help="Demo size (with --demo).")
@click.option("--seed", default=42, show_default=True, type=int, help="Demo seed (with --demo).")
@as_of_option
@mapping_option
@accept_shrink_option
@full_refresh_option
@pass_config
def run(cfg: Config, paths, use_demo, patients, seed, as_of, mapping, accept_shrink, full_refresh):
    """The daily job: load the exports (or the demo), build, check, and print the headline figures.

    Without --demo, loads PATHS, or the config's input_dir when no PATHS are given.
    """
    start = time.perf_counter()
    paths = _run_inputs(cfg, paths, use_demo, patients, seed)
    from .predict import DOWNSTREAM
    from .warehouse import publishing

    steps = Steps()
    try:
        with publishing(cfg) as staged:
            steps.done("copy")  # DuckDB: the private copy of the warehouse the run writes
            _load(staged, paths, None if use_demo else mapping, accept_shrink=accept_shrink)
            steps.done("load")
            # the models reading the predictions are built once, by predict, after it wrote them
            _build(staged, as_of, exclude=DOWNSTREAM, full_refresh=full_refresh)
            steps.done("build")
            _predict(staged)
            steps.done("predict")
            _check(staged)  # an error-severity failure blocks publishing, like a failed dbt test
            steps.done("check")
            _record_call_assignments(staged)  # the day's arms, published with the rest or not at all
            steps.done("exports")
    except BaseException:
        if use_demo:
            import shutil

            shutil.rmtree(paths[0], ignore_errors=True)
        raise
    if use_demo:  # the files just published are the demo's exports a user can look at
        import shutil

        demo_dir = cfg.state_path / "demo"
        shutil.rmtree(demo_dir, ignore_errors=True)
        Path(paths[0]).rename(demo_dir)
    how = {"duckdb": "replaced atomically", "postgres": "schemas swapped in one transaction",
           "spark": "views switched to the new version"}[engine_of(cfg)]
    click.echo(f"Published to {describe(cfg)} ({how} after the build passed).")
    from .summary import headline

    click.echo(headline(cfg))
    steps.done("publish")
    # the day's work from the warehouse just published: call list, segment files, the owner's report
    _export_call_list(cfg, built=True)
    _export_segments(cfg)
    steps.done("exports")
    _report(cfg)
    steps.done("report")
    click.echo(f"Done in {time.perf_counter() - start:.1f} s ({steps}).")


def _run_inputs(cfg: Config, paths, use_demo, patients, seed) -> tuple[str, ...]:
    """What `run` loads: the demo written for this run, PATHS, or the config's input_dir."""
    if use_demo:
        if paths:
            raise ConfigError("Give either --demo or export PATHS, not both.")
        # written to a private folder first: a second `run --demo` started meanwhile must not rewrite the
        # files this run loads (it waits for the lock, then fails); kept as <state_dir>/demo afterwards
        import tempfile

        cfg.state_path.mkdir(parents=True, exist_ok=True)
        private_demo = Path(tempfile.mkdtemp(prefix=".demo-", dir=cfg.state_path))
        counts, seconds = _write_demo(patients, seed, str(private_demo), None)
        click.echo(f"Demo clinic: {counts['patients']:,} patients, {counts['visits']:,} visits ({seconds:.1f} s).")
        return (str(private_demo),)
    if not paths:
        inbox = Path(cfg.input_dir)
        if not inbox.is_dir():
            raise ConfigError(
                f"No exports to load: give PATHS, use --demo, or put the MIS exports in {inbox.resolve()} "
                "(config input_dir)."
            )
        return (str(inbox),)
    return tuple(paths)


class Steps:
    """The seconds each step of a command took, in the order they first ran (a step may come twice)."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self.since = time.perf_counter()

    def done(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = self.seconds.get(name, 0.0) + now - self.since
        self.since = now

    def __str__(self) -> str:
        return ", ".join(f"{name} {seconds:.1f}" for name, seconds in self.seconds.items())


# -- report -----------------------------------------------------------------------------------------


@cli.command()
@click.option("--out", "out_file", type=click.Path(dir_okay=False), help="HTML file (default: <exports_dir>/report.html).")
@click.option("--lang", type=click.Choice(["ru", "en"]), help="Language (default: config `language`, else ru).")
@pass_config
def report(cfg: Config, out_file, lang):
    """Write the owner's report: one self-contained HTML file with charts, opens offline."""
    _report(cfg, out_file, lang)


def _report(cfg: Config, out_file=None, lang=None):
    from .report import write_report

    with progress("Writing the owner's report"):
        result = write_report(cfg, out_file, lang)
    line = f"Report ({result.language}, {result.charts} charts, {result.size_bytes / 1e6:.1f} MB) -> {result.path}"
    click.echo(line)
    if result.not_shown:
        click.echo("  not shown yet: " + "; ".join(result.not_shown))
    return result


# -- exports and outcomes -----------------------------------------------------------------------------


@cli.group()
def export():
    """Write files people and tools work with (call list, segment files, …)."""


@export.command("call-list")
@click.option("--date", "list_date", metavar="DATE", help="The list's day (default: the as-of date of the build).")
@click.option("--admins", type=click.IntRange(min=1), help="How many administrators call today (default: config admins).")
@click.option("--calls-per-admin", type=click.IntRange(min=1), help="Calls each can make (default: config, 50).")
@click.option("--format", "fmt", type=click.Choice(["csv", "xlsx"]), help="File format (default: config, csv).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="Folder (default: config exports_dir).")
@pass_config
def export_call_list(cfg: Config, list_date, admins, calls_per_admin, fmt, out_dir):
    """Write the day's prioritised call list, assigned to administrators."""
    _export_call_list(cfg, list_date, admins, calls_per_admin, fmt, out_dir)


def _export_call_list(cfg: Config, list_date=None, admins=None, calls_per_admin=None, fmt=None, out_dir=None,
                      built: bool = False):
    """Write marts.call_list; unless `built` (run, right after the build), the model is rebuilt first for
    the day and capacity asked for: a writing command, published like a build (the list, its recorded
    arms and the file are written together or not at all)."""
    from .build import build_call_list, parse_date
    from .db import open_warehouse
    from .export import export_call_list
    from .warehouse import RunLock, publishing

    names = list(cfg.admins)
    if admins:
        names = (names + [f"admin{i}" for i in range(len(names) + 1, admins + 1)])[:admins]
    per_admin = calls_per_admin or cfg.calls_per_admin
    if not cfg.warehouse_path.exists():
        raise PatientbaseError(f"No warehouse at {cfg.warehouse_path} yet: run `patientbase run --demo` or "
                               "`patientbase load` and `patientbase build` first.")

    def write(source: Config):
        with open_warehouse(source) as wh:
            return export_call_list(
                wh, Path(out_dir) if out_dir else cfg.exports_path, names, per_admin,
                fmt=fmt or cfg.call_list_format, delimiter=cfg.csv_delimiter, language=cfg.language,
            )

    if built:  # `run` built and recorded the list before publishing
        with RunLock(cfg.warehouse_path):
            result = write(cfg)
    else:
        with publishing(cfg) as staged:
            day = _check_list_date(staged, parse_date(list_date, "--date"))
            with progress("Building the call list") as say:
                build_call_list(staged, parse_date(list_date, "--date"), names, per_admin, as_of=day, progress=say)
            _record_call_assignments(staged)
            result = write(staged)
    if result.kept:
        click.echo(click.style(
            f"{result.kept.name} already has results typed in: kept it as it is and wrote this list to "
            f"{result.path.name}. Load the filled-in one with `patientbase outcomes {result.kept}`.", fg="yellow"))
    click.echo(
        f"Call list for {result.list_date}: {result.rows} calls ({result.persons} patients) of {result.capacity} "
        f"slots, from {result.eligible:,} patients with a call action and nothing against calling -> {result.path}"
    )
    for code, n in result.by_action:
        click.echo(f"  {code:<22} {n:>5}")
    click.echo("  by administrator: " + ", ".join(f"{a} {n}" for a, n in result.by_admin))
    return result


def _record_call_assignments(cfg: Config):
    """Append the list's call and control arms to raw.call_assignments (the uplift's history): written
    in the loading area (the local DuckDB file), then pushed into PostgreSQL/Spark with the version
    being published (`cfg` is a publishing's Config)."""
    from .assignments import record_call_assignments
    from .db import loading_area
    from .engine import push_raw

    with loading_area(cfg) as (wh, con):
        result = record_call_assignments(wh, con)
    if result.recorded:
        push_raw(cfg)
    if result.skipped_reason:
        click.echo(f"Call assignments not recorded: {result.skipped_reason}.")
    else:
        click.echo(f"Call assignments recorded: {result.recorded} new (call and control arms, raw.call_assignments).")
    return result


def _check_list_date(cfg: Config, day: str | None):
    """A list is for the as-of date or up to `call_list_days_ahead` days after it (its reasons and
    exclusions are the as-of date's); anything else is refused with the reason. Returns the as-of date."""
    import datetime as dt

    from .db import open_warehouse

    with open_warehouse(cfg) as wh:
        as_of = wh.scalar("select as_of_date from intermediate.int_as_of_date") \
            if wh.table_exists("intermediate", "int_as_of_date") else None
    if day is None or as_of is None:
        return as_of
    wanted = dt.date.fromisoformat(day)
    last = as_of + dt.timedelta(days=cfg.call_list_days_ahead)
    if wanted < as_of:
        raise ConfigError(
            f"--date {wanted} is before the warehouse's as-of date {as_of}: the calls and visits since then "
            f"are already in it, so a list for {wanted} would be wrong. Give a date from {as_of} to {last}."
        )
    if wanted > last:
        raise ConfigError(
            f"--date {wanted} is more than {cfg.call_list_days_ahead} days after the warehouse's as-of date "
            f"{as_of}: its reasons and exclusions would be stale. Run `patientbase build --as-of {wanted}` "
            f"(or load newer exports) first, or raise call_list_days_ahead in patientbase.yml."
        )
    return as_of


@export.command("segments")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="Folder (default: <exports_dir>/segments).")
@pass_config
def export_segments_cmd(cfg: Config, out_dir):
    """Write one CSV per RFM segment with the patients who may be messaged (for SMS / e-mail tools)."""
    _export_segments(cfg, out_dir)


def _export_segments(cfg: Config, out_dir=None):
    from .db import open_warehouse
    from .export import export_segments

    target = Path(out_dir) if out_dir else cfg.exports_path / "segments"
    with open_warehouse(cfg) as wh:
        written = export_segments(wh, target, delimiter=cfg.csv_delimiter)
    click.echo(f"Segment files in {target}: " + ", ".join(f"{segment} {n:,}" for segment, n, _ in written))
    return written


@export.command("parquet")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="Folder (default: <exports_dir>/parquet).")
@pass_config
def export_parquet_cmd(cfg: Config, out_dir):
    """Write every table of the marts schema as a Parquet file, for BI tools that cannot open DuckDB."""
    from .export_parquet import export_parquet

    with progress("Writing Parquet files") as say:
        result = export_parquet(cfg, Path(out_dir) if out_dir else None, progress=say)
    click.echo(f"{len(result.files)} Parquet files ({sum(f.rows for f in result.files):,} rows) in {result.folder} "
               f"in {result.seconds:.1f} s.")
    return result


@cli.command()
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@pass_config
def outcomes(cfg: Config, path):
    """Load a filled-in call list (CSV or XLSX) back into raw.calls; loading it twice changes nothing.

    The list is checked against the warehouse's marts; the calls go into the raw tables of the local
    loading area and, on PostgreSQL and Spark, are pushed into the engine with this command's publishing.
    """
    from .db import loading_area
    from .engine import push_raw
    from .outcomes import load_outcomes
    from .warehouse import publishing

    with publishing(cfg) as staged:
        with loading_area(staged) as (wh, con):
            result = load_outcomes(wh, con, Path(path), delimiter=cfg.csv_delimiter, region=cfg.phone_region)
        if not result.already_loaded:
            push_raw(staged)
    if result.already_loaded:
        click.echo(f"{result.file}: already loaded, nothing changed.")
        return
    line = f"{result.file}: {result.calls_loaded} calls loaded from {result.rows - result.not_called} called rows"
    if result.not_called:
        line += f"; {result.not_called} rows not called yet"
    click.echo(line + ". Run `patientbase build` to refresh call_outcomes.")


def main() -> None:
    try:
        cli.main(prog_name="patientbase", standalone_mode=False)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.Abort:
        click.secho("Aborted.", fg="red", err=True)
        sys.exit(EXIT_DATA)


if __name__ == "__main__":
    main()
