"""The fleet rollout in fleet/: the CloudFormation template passes cfn-lint (offline), its
policies are what ``iam-policy`` prints for the same settings, its saved queries are the files in
cloudwatch/queries/, its log groups keep what the CloudWatch agent config says, and the SSM
document's script is valid shell naming units and paths that exist."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from s3_route_agent.config import load_config
from s3_route_agent.runs.iam_policy import policy_for_cloudwatch_agent, policy_for_config

cfnlint_decode = pytest.importorskip("cfnlint.decode", reason="cfn-lint missing (test extra)")

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "fleet" / "s3-route-agent-fleet.yaml"
CW_AGENT = ROOT / "cloudwatch" / "amazon-cloudwatch-agent.json"


def _template() -> dict[str, Any]:
    template, problems = cfnlint_decode.decode(str(TEMPLATE))
    assert not problems, problems
    return template


def _cfn_lint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "import sys, cfnlint.runner; sys.exit(cfnlint.runner.main())", str(path)], capture_output=True,
                          text=True, timeout=180)


def test_template_passes_cfn_lint_and_the_linter_catches_a_mistake(tmp_path: Path) -> None:
    result = _cfn_lint(TEMPLATE)
    assert result.returncode == 0, result.stdout + result.stderr
    broken = tmp_path / "broken.yaml"
    broken.write_text(TEMPLATE.read_text().replace("RetentionInDays: !Ref EmfRetentionInDays",
                                                   "RetentionInDays: 4"))
    assert _cfn_lint(broken).returncode != 0


class Resolver:
    """Evaluates the intrinsic functions the template's policies use, for given parameters."""

    NO_VALUE = object()

    def __init__(self, template: dict[str, Any], parameters: dict[str, Any]) -> None:
        self.template = template
        self.values = {name: spec.get("Default") for name, spec in
                       template["Parameters"].items()}
        self.values.update(parameters, **{"AWS::Partition": "aws", "AWS::Region": "eu-west-1",
                                         "AWS::AccountId": "111122223333"})

    def condition(self, name: str) -> bool:
        return bool(self.resolve(self.template["Conditions"][name]))

    def resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            return [v for v in (self.resolve(n) for n in node) if v is not self.NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, arg), = node.items()
            if key == "Ref":
                if arg == "AWS::NoValue":
                    return self.NO_VALUE
                value = self.values[arg]
                if self.template["Parameters"].get(arg, {}).get("Type") == "CommaDelimitedList":
                    return value.split(",") if isinstance(value, str) else value
                return value
            if key == "Condition":
                return self.condition(arg)
            if key == "Fn::If":
                return self.resolve(arg[1] if self.condition(arg[0]) else arg[2])
            if key == "Fn::Not":
                return not self.resolve(arg[0])
            if key == "Fn::Equals":
                return self.resolve(arg[0]) == self.resolve(arg[1])
            if key == "Fn::And":
                return all(self.resolve(a) for a in arg)
            if key == "Fn::Or":
                return any(self.resolve(a) for a in arg)
            if key == "Fn::Join":
                return arg[0].join(str(v) for v in self.resolve(arg[1]))
            if key == "Fn::Split":
                return [v for v in self.resolve(arg[1]).split(arg[0])]
            if key == "Fn::Sub":
                text, extra = (arg, {}) if isinstance(arg, str) else arg
                names = {**self.values, **{k: self.resolve(v) for k, v in extra.items()}}
                return re.sub(r"\$\{([^}]+)\}", lambda m: str(names[m.group(1)]), text)
        out = {k: self.resolve(v) for k, v in node.items()}
        return {k: v for k, v in out.items() if v is not self.NO_VALUE}


def _policy(template: dict[str, Any], name: str, parameters: dict[str, Any]) -> dict[str, Any]:
    policies = template["Resources"]["AgentRole"]["Properties"]["Policies"]
    document = next(p["PolicyDocument"] for p in policies if p["PolicyName"] == name)
    resolved = Resolver(template, parameters).resolve(document)
    # One resource is written as a one-element list by Fn::Split; iam-policy writes a string.
    for statement in resolved["Statement"]:
        if isinstance(statement["Resource"], list) and len(statement["Resource"]) == 1:
            statement["Resource"] = statement["Resource"][0]
        statement["Resource"] = (statement["Resource"].replace("111122223333", "*")
                                 .replace("eu-west-1", "*") if isinstance(
                                     statement["Resource"], str) else statement["Resource"])
    return resolved


@pytest.mark.parametrize("settings", [
    {"AppBuckets": "app-data,app-logs", "CanaryBucket": "canary", "OracleBucket": "oracle",
     "FlowLogGroup": "/vpc/flows"},
    {"AppBuckets": "app-data", "CanaryBucket": "", "OracleBucket": "", "FlowLogGroup": ""},
    {"AppBuckets": "", "CanaryBucket": "", "OracleBucket": "", "FlowLogGroup": ""},
], ids=["every-feature", "one-bucket", "nothing"])
def test_template_policy_is_what_iam_policy_prints(tmp_path: Path, settings: dict[str, str]
                                                   ) -> None:
    """The same settings as a config (test transfers into every bucket, reports shipped by the
    CloudWatch agent rather than the agent's own sink) give the same statements."""
    buckets = [b for b in settings["AppBuckets"].split(",") if b]
    config: dict[str, Any] = {"buckets": buckets}
    if buckets or settings["CanaryBucket"]:
        config["transfer"] = {"enabled": True, "bucket": settings["CanaryBucket"] or None}
    if settings["OracleBucket"]:
        config["oracle"] = {"bucket": settings["OracleBucket"]}
    if settings["FlowLogGroup"]:
        config["flow_logs"] = {"enabled": True, "log_group": settings["FlowLogGroup"]}
    path = tmp_path / "c.yaml"
    path.write_text(json.dumps(config))
    expected = policy_for_config(load_config(path))
    assert _unordered(_policy(_template(), "s3-route-agent", settings)) == _unordered(expected)


def _unordered(policy: dict[str, Any]) -> dict[str, Any]:
    """The order of a statement's Resource list means nothing to IAM."""
    return {**policy, "Statement": [
        {**s, "Resource": sorted(s["Resource"]) if isinstance(s["Resource"], list)
         else s["Resource"]} for s in policy["Statement"]]}


def test_template_cloudwatch_agent_policy_and_log_groups_match_its_config() -> None:
    template = _template()
    shipped = {f["log_group_name"]: f.get("retention_in_days") for f in
               json.loads(CW_AGENT.read_text())["logs"]["logs_collected"]["files"]["collect_list"]}
    groups = {r["Properties"]["LogGroupName"]: r for r in template["Resources"].values()
              if r["Type"] == "AWS::Logs::LogGroup"}
    assert set(groups) == set(shipped)
    params = template["Parameters"]
    for name, resource in groups.items():
        retention = resource["Properties"]["RetentionInDays"]["Ref"]
        assert params[retention]["Default"] == shipped[name]
    documented = policy_for_cloudwatch_agent(CW_AGENT)
    policy = next(p["PolicyDocument"] for p in
                  template["Resources"]["AgentRole"]["Properties"]["Policies"]
                  if p["PolicyName"] == "cloudwatch-agent")
    assert ([(s["Sid"], s["Action"]) for s in policy["Statement"]]
            == [(s["Sid"], s["Action"]) for s in documented["Statement"]])


def test_saved_queries_are_the_query_files() -> None:
    template = _template()
    saved = {r["Properties"]["Name"]: r["Properties"]["QueryString"]
             for r in template["Resources"].values() if r["Type"] == "AWS::Logs::QueryDefinition"}
    files = {f"s3-route-agent/{p.stem}": p.read_text()
             for p in (ROOT / "cloudwatch" / "queries").glob("*.query")}
    assert saved == files


def test_metric_filters_and_alarms() -> None:
    resources = _template()["Resources"]
    filters = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Logs::MetricFilter"]
    metrics = {t["MetricName"] for f in filters for t in f["MetricTransformations"]}
    alarms = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    from s3_route_agent.sinks.emf import TARGET_METRICS
    emf = set(TARGET_METRICS)
    for alarm in alarms:
        assert alarm["MetricName"] in metrics | emf, alarm["MetricName"]
    # The filters read the report's status field, which the schema defines with these values.
    from s3_route_agent.report.document import report_schema
    statuses = set(report_schema()["$defs"]["status"]["enum"])
    for f in filters:
        assert set(re.findall(r'\$\.status = "(\w+)"', f["FilterPattern"])) <= statuses


def test_ssm_document_installs_the_package_and_config(tmp_path: Path) -> None:
    resources = _template()["Resources"]
    document = resources["InstallDocument"]["Properties"]["Content"]
    assert document["schemaVersion"] == "2.2"
    steps = {s["name"]: s for s in document["mainSteps"]}
    script = "\n".join(steps["installAndEnable"]["inputs"]["runCommand"])
    script = script.replace("{{ Mode }}", "service")
    (tmp_path / "install.sh").write_text(script)
    assert subprocess.run(["sh", "-n", str(tmp_path / "install.sh")]).returncode == 0
    for unit in re.findall(r"s3-route-agent[\w.-]*\.(?:service|timer)", script):
        assert (ROOT / "systemd" / unit).exists(), unit
    assert "/etc/s3-route-agent/config.yaml" in script and "validate-config" in script
    association = resources["InstallAssociation"]["Properties"]
    assert association["Name"] == {"Ref": "InstallDocument"}
    assert set(association["Parameters"]) == set(document["parameters"])
