"""The Grafana dashboard and the Prometheus rules in ops/ name only metrics the runner exports, their
expressions are valid PromQL for Prometheus's own parser (promtool, Debian's prometheus package) and
the rules fire as their unit tests say; a real exposition passes promtool's lint."""

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import promql_parser
import pytest
import yaml

from alerts import metrics
from tests import seed
from tests.conftest import ROOT, run_runner

OPS = ROOT / "ops"
DASHBOARD = OPS / "grafana-dashboard.json"
RULES = OPS / "prometheus-rules.yml"


def promtool() -> str:
    found = shutil.which("promtool")
    assert found, "promtool is missing: scripts/ensure_system_packages.sh installs Debian's prometheus package"
    return found


def selectors(node: object) -> Iterator[str]:
    """The metric names an expression selects, from promql-parser's syntax tree."""
    if isinstance(node, promql_parser.VectorSelector):
        if node.name:
            yield node.name
        for matcher in node.matchers.matchers:  # {__name__="..."} names one too
            if matcher.name == "__name__":
                yield matcher.value
    elif isinstance(node, promql_parser.MatrixSelector):
        yield from selectors(node.vector_selector)
    elif isinstance(node, promql_parser.BinaryExpr):
        yield from selectors(node.lhs)
        yield from selectors(node.rhs)
    elif isinstance(node, promql_parser.Call):
        for arg in node.args:
            yield from selectors(arg)
    elif isinstance(node, promql_parser.AggregateExpr):
        yield from selectors(node.expr)
        if node.param is not None:
            yield from selectors(node.param)
    elif isinstance(node, promql_parser.ParenExpr | promql_parser.UnaryExpr | promql_parser.SubqueryExpr):
        yield from selectors(node.expr)


def dashboard_expressions() -> dict[str, str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return {f"panel {p['title']!r} {t['refId']}": t["expr"] for p in panels for t in p["targets"]}


def rule_expressions() -> dict[str, str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {f"rule {r.get('alert') or r.get('record')}": r["expr"] for g in groups for r in g["rules"]}


def test_the_selector_walk_finds_every_name():
    expression = ('histogram_quantile(0.9, sum by (le) (rate(a_bucket[5m]))) > on() group_left() '
                  '(time() - max_over_time(b[10m:1m])) or absent(c{x="y"}) unless -({__name__="d"} offset 5m)')
    assert set(selectors(promql_parser.parse(expression))) == {"a_bucket", "b", "c", "d"}


@pytest.mark.parametrize("source", [dashboard_expressions, rule_expressions], ids=["dashboard", "rules"])
def test_panels_and_rules_name_only_exported_metrics(source):
    exported = metrics.exported_series()
    expressions = source()
    assert expressions
    unknown = {where: sorted(set(selectors(promql_parser.parse(expr))) - exported)
               for where, expr in expressions.items()}
    assert {where: names for where, names in unknown.items() if names} == {}
    named = {name for expr in expressions.values() for name in selectors(promql_parser.parse(expr))}
    assert named, "no metric named at all"


def test_every_exported_family_is_on_the_dashboard():
    on_dashboard = {name for expr in dashboard_expressions().values()
                    for name in selectors(promql_parser.parse(expr))}
    families = {name.removesuffix("_bucket").removesuffix("_count").removesuffix("_sum")
                for name in metrics.exported_series()}
    shown = {name.removesuffix("_bucket").removesuffix("_count").removesuffix("_sum") for name in on_dashboard}
    assert families - shown == set()


def test_every_panel_has_a_description_and_the_dashboard_is_importable():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "alerts-v2" and dashboard["panels"]
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
    for panel in dashboard["panels"]:
        assert panel["description"] and panel["targets"], panel["title"]
    documented = (ROOT / "docs" / "monitoring.md").read_text()
    missing = [p["title"] for p in dashboard["panels"] if f"**{p['title']}**" not in documented]
    assert missing == [], "panels not described in docs/monitoring.md"


def test_promtool_accepts_the_rules_and_their_unit_tests_pass():
    checked = subprocess.run([promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = subprocess.run([promtool(), "test", "rules", "prometheus-rules.test.yml"], cwd=OPS,
                            capture_output=True, text=True, timeout=60)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_promtool_parses_every_panel_expression(tmp_path: Path):
    """Each panel's expression as a recording rule: promtool check rules parses it with Prometheus's parser."""
    rules = [{"record": f"alerts:panel_{n}", "expr": expr} for n, expr in enumerate(dashboard_expressions().values())]
    path = tmp_path / "panels.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": rules}]}))
    checked = subprocess.run([promtool(), "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_a_real_textfile_passes_promtools_lint(conn, db_url, tmp_path):
    seed.population(conn, users=3, events=1)
    textfile = tmp_path / "alerts.prom"
    result = run_runner(db_url, "--phase", "all", env={"ALERTS_SENDER": f"file:{tmp_path / 'outbox.jsonl'}",
                                                       "ALERTS_METRICS_TEXTFILE": str(textfile)})
    assert result.returncode == 0, result.stderr
    linted = subprocess.run([promtool(), "check", "metrics"], input=textfile.read_text(), capture_output=True,
                            text=True, timeout=60)
    assert linted.returncode == 0, linted.stdout + linted.stderr
