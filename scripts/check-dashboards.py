#!/usr/bin/env python3
"""Checks the Grafana dashboards' structure and writes their queries as a Prometheus rules file.

Why a rules file: promtool has no "parse this expression" command, but `promtool check rules`
parses every `expr` of a rules file with Prometheus' own parser. Each panel query (and each
variable's label_values selector) becomes one recording rule, with Grafana's template variables
replaced by values of the right shape ($__rate_interval -> 5m, $workflow_type -> .*).

Structure checked here (JSON parse, every panel described, every query on the `datasource`
variable, every `$variable` defined) fails fast with the panel's title; PromQL syntax is left to
promtool. Metric and label names are checked against the runtime by runtime/tests/it/deploy_files.rs.

Usage: check-dashboards.py DASHBOARD.json... --rules-out FILE
Exit status: 0 when every dashboard is sound (the rules file is then written), 1 otherwise.
"""

import argparse
import json
import re
import sys

# Grafana's built-in interval/range variables, replaced by durations promtool accepts.
BUILTINS = {
    "__rate_interval": "5m",
    "__interval": "1m",
    "__range": "1h",
    "__range_s": "3600",
    "__interval_ms": "60000",
}
VAR_REF = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")
LABEL_VALUES = re.compile(r"^\s*label_values\((.*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)\s*$")
REQUIRED_VARIABLES = {"datasource"}


def substitute(expr, variables):
    """Replaces template variables; returns the new text and the unknown variable names."""
    unknown = []

    def repl(m):
        name = m.group(1) or m.group(2) or m.group(3)
        if name in BUILTINS:
            return BUILTINS[name]
        if name not in variables:
            unknown.append(name)
        # Every query variable of ours is used inside a =~ matcher: any regex fits.
        return ".*"

    return VAR_REF.sub(repl, expr), unknown


def variable_query(var):
    q = var.get("query")
    if isinstance(q, dict):
        q = q.get("query")
    return q


def check_dashboard(path, errors, rules):
    try:
        with open(path, encoding="utf-8") as f:
            dash = json.load(f)
    except (OSError, ValueError) as err:
        errors.append(f"{path}: not valid JSON: {err}")
        return
    short = re.sub(r"[^a-z0-9]+", "_", path.rsplit("/", 1)[-1].rsplit(".", 1)[0].lower())

    if not isinstance(dash.get("schemaVersion"), int) or dash["schemaVersion"] < 36:
        errors.append(f"{path}: schemaVersion {dash.get('schemaVersion')!r} is older than current Grafana")
    for key in ("uid", "title"):
        if not dash.get(key):
            errors.append(f"{path}: missing {key}")

    variables = {}
    for var in dash.get("templating", {}).get("list", []):
        variables[var.get("name")] = var
    missing = REQUIRED_VARIABLES - variables.keys()
    if missing:
        errors.append(f"{path}: missing template variables {sorted(missing)}")
    ds = variables.get("datasource")
    if ds and (ds.get("type") != "datasource" or ds.get("query") != "prometheus"):
        errors.append(f"{path}: variable datasource must be of type datasource with query prometheus")

    for name, var in variables.items():
        if var.get("type") != "query":
            continue
        if var.get("datasource", {}).get("uid") != "${datasource}":
            errors.append(f"{path}: variable {name} does not use the datasource variable")
        query = variable_query(var)
        m = LABEL_VALUES.match(query or "")
        if not m:
            errors.append(f"{path}: variable {name} query {query!r} is not label_values(selector, label)")
            continue
        selector, unknown = substitute(m.group(1), variables)
        if unknown:
            errors.append(f"{path}: variable {name} refers to undefined variables {unknown}")
        rules.append((f"dashboard_check:{short}:var_{name}", selector, f"{path} variable {name}"))

    ids = set()
    for panel in dash.get("panels", []):
        title = panel.get("title", "?")
        where = f"{path} panel {panel.get('id')} {title!r}"
        if panel.get("id") in ids:
            errors.append(f"{where}: duplicate panel id")
        ids.add(panel.get("id"))
        if panel.get("type") == "row":
            continue
        if len((panel.get("description") or "").strip()) < 40:
            errors.append(f"{where}: needs a description saying what it shows and what to do")
        if panel.get("datasource", {}).get("uid") != "${datasource}":
            errors.append(f"{where}: does not use the datasource variable")
        targets = panel.get("targets") or []
        if not targets:
            errors.append(f"{where}: has no query")
        for target in targets:
            expr = target.get("expr") or ""
            if not expr.strip():
                errors.append(f"{where}: target {target.get('refId')} has an empty expr")
                continue
            text, unknown = substitute(expr, variables)
            if unknown:
                errors.append(f"{where}: refers to undefined variables {unknown}")
            rules.append(
                (f"dashboard_check:{short}:panel_{panel.get('id')}_{target.get('refId', 'X')}", text, where)
            )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dashboards", nargs="+")
    parser.add_argument("--rules-out", required=True)
    args = parser.parse_args()
    errors, rules = [], []
    for path in args.dashboards:
        check_dashboard(path, errors, rules)
    if errors:
        for e in errors:
            print(f"FAIL {e}", file=sys.stderr)
        return 1
    with open(args.rules_out, "w", encoding="utf-8") as f:
        f.write("# Generated by scripts/check-dashboards.py: one rule per dashboard query.\n")
        f.write("groups:\n  - name: dashboard-queries\n    rules:\n")
        for record, expr, where in rules:
            f.write(f"      # {where}\n")
            f.write(f"      - record: {record}\n")
            # JSON strings are valid YAML double-quoted scalars.
            f.write(f"        expr: {json.dumps(expr)}\n")
    print(f"{len(args.dashboards)} dashboards parsed, {len(rules)} queries written to {args.rules_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
