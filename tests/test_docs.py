"""Every model and every column it really has in the warehouse carries a description (dbt docs)."""

from __future__ import annotations

import json


def test_every_model_and_column_is_documented(clinic15):
    manifest = json.loads((clinic15.root / ".patientbase" / "target" / "manifest.json").read_text(encoding="utf-8"))
    models = [n for n in manifest["nodes"].values() if n["resource_type"] == "model"]
    assert len(models) > 20
    undocumented = []
    for node in models:
        if not node["description"].strip():
            undocumented.append(f"{node['name']} (model)")
        documented = {name for name, col in node["columns"].items() if col.get("description", "").strip()}
        actual = [r[0] for r in clinic15.query(
            "select column_name from information_schema.columns where table_schema = ? and table_name = ?",
            [node["schema"], node["alias"] or node["name"]],
        )]
        assert actual, node["name"]
        undocumented += [f"{node['name']}.{c}" for c in actual if c not in documented]
    assert undocumented == []
