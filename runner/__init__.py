"""patientbase: the thin runner around the dbt project (load, build, check, export)."""

__version__ = "0.1.0"
