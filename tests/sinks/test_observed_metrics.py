"""Metric sinks read the typed ``observed`` section: EMF has one line per path with the bytes
counted this cycle, and the host line the NAT estimate; Prometheus has the byte counters per path
across cycles (parsed back with prometheus_client), the flows and the NAT counters."""

from __future__ import annotations

import jsonschema
from prometheus_client.parser import text_string_to_metric_families

from s3_route_agent.engine.model import (Expect, Facts, Identity, Inventory, PrefixList, Route,
                                         RouteTable, RouteTargetKind, S3Range, Status,
                                         VpcEndpoint)
from s3_route_agent.engine.observed import (ObservedState, ObserveRules, ProcessInfo,
                                            S3Membership, SocketObservation, TcpSocket,
                                            judge_observation)
from s3_route_agent.report.document import Report, report_schema
from s3_route_agent.report.text import render_text
from s3_route_agent.sinks.emf import emf_records
from s3_route_agent.sinks.prometheus import prometheus_text

IDENTITY = Identity(region="eu-west-1", vpc_id="vpc-1", subnet_id="subnet-1",
                    instance_id="i-1", source="config")
INVENTORY = Inventory(
    "eu-west-1", "vpc-1", "subnet-1",
    RouteTable("rtb-1", "vpc-1", "explicit",
               (Route("0.0.0.0/0", "nat-1", RouteTargetKind.NAT_GATEWAY),
                Route("pl-s3", "vpce-gw", RouteTargetKind.GATEWAY_ENDPOINT))),
    (PrefixList("pl-s3", "com.amazonaws.eu-west-1.s3", 2, ("52.218.0.0/17",)),),
    (VpcEndpoint("vpce-gw", "Gateway", "com.amazonaws.eu-west-1.s3", "available", "vpc-1",
                 route_table_ids=("rtb-1",)),), (), s3_prefix_list_id="pl-s3")
FACTS = Facts(identity=IDENTITY, inventory=INVENTORY,
              s3_ranges=(S3Range("52.216.0.0/15", "us-east-1"),))


def _sock(remote: str, sent: int, received: int, inode: int) -> TcpSocket:
    return TcpSocket("ipv4", "ESTABLISHED", "10.0.1.10", 40000 + inode, remote, 443, 1000,
                     inode, sent, received)


def _report(state: ObservedState, public_sent: int) -> tuple[Report, ObservedState]:
    seen = SocketObservation(
        time=2000.0, own_pid=1,
        sockets=(_sock("52.216.8.10", public_sent, 4000, 1), _sock("52.218.1.9", 100, 200, 2)),
        processes=((1, ProcessInfo(4242, "java", 1000)), (2, ProcessInfo(4242, "java", 1000))),
        source="sock_diag")
    section, state = judge_observation(seen, FACTS, S3Membership(FACTS), state,
                                       ObserveRules(Expect.PRIVATE))
    return Report(run_id="0" * 32, started=2000.0, duration_seconds=0.1, identity=IDENTITY,
                  status=Status.CRITICAL, observed=section), state


def test_emf_has_bytes_per_path_and_the_nat_estimate() -> None:
    report, _ = _report(ObservedState(since=1000.0), 1000)
    records = emf_records(report, "S3RouteAgent")
    paths = {r["Path"]: r for r in records if r["_aws"]["CloudWatchMetrics"][0]["Dimensions"]
             == [["Path"]]}
    assert paths["public"]["ObservedBytes"] == 5000.0 and paths["public"]["ObservedFlows"] == 1.0
    assert paths["public"]["ObservedFlowsNotOk"] == 1.0
    assert paths["gateway"]["ObservedBytes"] == 300.0 and paths["gateway"]["ObservedFlowsNotOk"] == 0
    names = {m["Name"]: m["Unit"] for m in paths["public"]["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert names == {"ObservedBytes": "Bytes", "ObservedFlows": "Count",
                     "ObservedFlowsNotOk": "Count"}
    host = records[-1]
    assert host["ObservedFlowsNotOk"] == 1.0 and host["NatProcessingBytes"] == 5000.0
    assert host["NatProcessingCostUsd"] == report.observed.nat_cost.new_usd


def _samples(text: str) -> dict:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_prometheus_counters_grow_across_cycles() -> None:
    first, state = _report(ObservedState(since=1000.0), 1000)
    second, _ = _report(state, 1500)           # the public connection sent 500 more bytes
    before, after = _samples(prometheus_text(first)), _samples(prometheus_text(second))
    sent = ("s3_route_agent_observed_bytes_total",
            (("direction", "sent"), ("path", "public")))
    assert before[sent] == 1000 and after[sent] == 1500
    received = ("s3_route_agent_observed_bytes_total",
                (("direction", "received"), ("path", "public")))
    assert before[received] == after[received] == 4000
    assert after[("s3_route_agent_observed_flows", (("path", "gateway"),))] == 1
    assert after[("s3_route_agent_observed_flows_not_ok", ())] == 1
    assert after[("s3_route_agent_nat_processing_bytes_total", ())] == 5500
    assert after[("s3_route_agent_nat_processing_cost_usd_total", ())] == \
        second.observed.nat_cost.total_usd


def test_the_report_with_observed_flows_is_schema_valid_and_readable() -> None:
    report, _ = _report(ObservedState(since=1000.0), 1000)
    jsonschema.validate(report.document, report_schema())
    assert report.document["observed"]["nat_cost"]["since"] == "1970-01-01T00:16:40.000Z"
    assert report.summary == ("CRITICAL: java (pid 4242) -> 52.216.8.10 S3 us-east-1 public "
                              "via nat-1; expected private")
    text = render_text(report)
    assert "observed (expect private, from sock_diag): 2 S3 flow(s)" in text
    assert "CRITICAL java (pid 4242) -> 52.216.8.10 S3 us-east-1 public via nat-1" in text
    assert report.host_seen_using("anything.s3.amazonaws.com") is False
    assert report.observed_names == ()
