"""Configuration: `patientbase.yml` in the working directory, every key optional.

Precedence for the warehouse path: `--warehouse` flag > PATIENTBASE_WAREHOUSE > config `warehouse:` >
./patientbase.duckdb. Unknown keys are an error (a typo must not be silently ignored).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path

import yaml

from .errors import ConfigError

CONFIG_FILE = "patientbase.yml"
WAREHOUSE_ENV = "PATIENTBASE_WAREHOUSE"


@dataclass
class Config:
    warehouse: str = "patientbase.duckdb"
    # Where the warehouse lives: duckdb (the file above), postgres or spark, with the connection under a
    # key named after the engine (runner/engine.py). The loader's working copy stays in the file above.
    engine: str = "duckdb"
    postgres: dict = field(default_factory=dict)
    spark: dict = field(default_factory=dict)
    exports_dir: str = "exports"
    # Folder `patientbase run` loads when no PATHS are given: drop the MIS exports there.
    input_dir: str = "input"
    # Export mapping for `load`/`run`: a YAML file or a built-in name (canonical, typical_mis).
    mapping: str = "canonical"
    # A file whose rejected rows exceed this share fails the load (nothing is written).
    max_reject_share: float = 0.05
    # A full export whose table keeps fewer than this share of the rows it replaces (or none) is
    # refused as a likely partial export; accept_shrink: true (or --accept-shrink) loads it anyway.
    min_keep_share: float = 0.9
    accept_shrink: bool = False
    currency: str = "RUB"
    # Language of the texts people read: the call list, segment files, action names, reasons and
    # offers in the marts (dbt var `language`) and the owner's report (`report --lang` overrides it).
    language: str = "ru"
    timezone: str = "Europe/Moscow"
    # Region used to read phones typed without a country code ("8 912 …", "912 …").
    phone_region: str = "RU"
    # Extra dbt vars passed to every build (thresholds such as sleeping_days, rfm_scale, …).
    vars: dict = field(default_factory=dict)
    # Where dbt keeps its compiled files and logs (partial parsing makes re-runs faster).
    state_dir: str = ".patientbase"
    threads: int = 2
    # Run every dbt test in `build`/`run`: also the unit tests (SQL logic on fixed rows) and the tests
    # tagged `deep` (keys, required values and vocabularies the loader and `check` already guarantee,
    # grains a reconciliation test already proves). CI runs them; the daily build skips them (a fixed
    # ~15 s and ~40% of a large build).
    all_tests: bool = False
    # The daily call list: administrators (names as in the MIS call log, so a patient stays with the
    # administrator who called them last), calls each can make a day, file format and CSV delimiter
    # (';' opens correctly in Russian Excel).
    admins: list = field(default_factory=lambda: ["admin1"])
    calls_per_admin: int = 50
    call_list_format: str = "csv"
    # `export call-list --date` takes days from the as-of date up to this many days after it: the
    # reasons and exclusions are the as-of date's, so a list further away would be stale.
    call_list_days_ahead: int = 3
    csv_delimiter: str = ";"
    # Where `patientbase check` writes the Great Expectations Data Docs; default <exports_dir>/data_docs.
    data_docs_dir: str | None = None
    # Bounds of the data-quality checks, e.g. max_amount: 5000000 (keys: runner/checks.py DEFAULT_SETTINGS).
    checks: dict = field(default_factory=dict)
    source: Path | None = None  # the file this config was read from, if any
    # set by warehouse.publishing() on the Config it yields: the command reads and writes the version being
    # built (the private copy of the DuckDB file; `__next` schemas on PostgreSQL; the a/b version on Spark)
    building: bool = False

    @property
    def warehouse_path(self) -> Path:
        return Path(self.warehouse).expanduser().resolve()

    @property
    def exports_path(self) -> Path:
        return Path(self.exports_dir).expanduser().resolve()

    @property
    def state_path(self) -> Path:
        return Path(self.state_dir).expanduser().resolve()

    @property
    def data_docs_path(self) -> Path:
        if self.data_docs_dir:
            return Path(self.data_docs_dir).expanduser().resolve()
        return self.exports_path / "data_docs"


def load_config(path: str | os.PathLike | None = None, warehouse: str | None = None) -> Config:
    """Read `patientbase.yml` (or `path`), apply the environment and flag overrides."""
    cfg_path = Path(path) if path else Path.cwd() / CONFIG_FILE
    values: dict = {}
    if path and not cfg_path.exists():
        raise ConfigError(f"Config file {cfg_path} does not exist.")
    if cfg_path.exists():
        try:
            values = yaml.safe_load(cfg_path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{cfg_path} is not valid YAML: {exc}") from None
        if not isinstance(values, dict):
            raise ConfigError(f"{cfg_path} must be a mapping of keys to values, got {type(values).__name__}.")
    known = {f.name for f in fields(Config)} - {"source", "building"}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(
            f"{cfg_path}: unknown key(s) {', '.join(unknown)}. Known keys: {', '.join(sorted(known))}."
        )
    cfg = Config(**values)
    cfg.source = cfg_path if cfg_path.exists() else None
    if os.environ.get(WAREHOUSE_ENV):
        cfg.warehouse = os.environ[WAREHOUSE_ENV]
    if warehouse:
        cfg.warehouse = warehouse
    if isinstance(cfg.admins, (str, int)):
        cfg.admins = [f"admin{i}" for i in range(1, int(cfg.admins) + 1)] if str(cfg.admins).isdigit() else [str(cfg.admins)]
    cfg.admins = [str(a) for a in cfg.admins]
    if not isinstance(cfg.vars, dict):
        raise ConfigError(f"{cfg_path}: `vars` must be a mapping of dbt var names to values.")
    if cfg.language not in ("ru", "en"):
        raise ConfigError(f"{cfg_path}: `language` must be ru or en, got {cfg.language!r}.")
    if "language" in cfg.vars:
        raise ConfigError(f"{cfg_path}: set `language: {cfg.vars['language']}` at the top level, not under `vars` "
                          "(the call list's headers and its texts must agree).")
    if not isinstance(cfg.checks, dict):
        raise ConfigError(f"{cfg_path}: `checks` must be a mapping of check settings to values.")
    from .engine import settings as engine_settings

    engine_settings(cfg)  # an unknown engine or a bad connection block fails here, before any work
    return cfg
