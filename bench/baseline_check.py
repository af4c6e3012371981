"""The yardstick of bench/bench_vs_baseline.py: the S3 path check as plainly as a user would
write it with boto3 and dnspython — no cache, every Describe call on every run.

It gathers the facts the agent's cold ``check`` gathers (this host from IMDSv2; the subnet's
route table, the S3 prefix list and its entries, the VPC's endpoints and their ENIs, NAT
gateways, this host's security-group rules, the subnet's network ACL, VPC Block Public Access;
each bucket's region and policy; A and AAAA records of each name) and prints one line per name:
the path of the longest matching route (static beats prefix-list at equal length), or
``interface`` for an endpoint ENI's address. Not part of the agent; not a test.

    python bench/baseline_check.py --endpoint-url URL --imds URL --dns 127.0.0.1:PORT \
        --bucket B HOST [HOST ...]
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import urllib.request

import boto3
import dns.resolver


def imds(base: str) -> dict[str, str]:
    """Region, VPC, subnet and security groups of this host (IMDSv2)."""
    token_request = urllib.request.Request(f"{base}/latest/api/token", method="PUT", headers={
        "X-aws-ec2-metadata-token-ttl-seconds": "60"})
    token = urllib.request.urlopen(token_request, timeout=2).read().decode()

    def get(path: str) -> str:
        request = urllib.request.Request(f"{base}/latest/meta-data/{path}",
                                         headers={"X-aws-ec2-metadata-token": token})
        return urllib.request.urlopen(request, timeout=2).read().decode()

    mac = get("mac")
    nic = f"network/interfaces/macs/{mac}"
    return {"region": get("placement/region"), "vpc": get(f"{nic}/vpc-id"),
            "subnet": get(f"{nic}/subnet-id"), "groups": get(f"{nic}/security-group-ids")}


def main() -> None:
    """Gather everything, decide each name's path, print it."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint-url")
    parser.add_argument("--imds", default="http://169.254.169.254")
    parser.add_argument("--dns", help="resolver HOST:PORT (default: the system's)")
    parser.add_argument("--bucket", action="append", default=[])
    parser.add_argument("hosts", nargs="+")
    args = parser.parse_args()

    me = imds(args.imds)
    region = me["region"]
    ec2 = boto3.client("ec2", region_name=region, endpoint_url=args.endpoint_url)
    s3 = boto3.client("s3", region_name=region, endpoint_url=args.endpoint_url)

    tables = ec2.describe_route_tables(Filters=[
        {"Name": "association.subnet-id", "Values": [me["subnet"]]}])["RouteTables"]
    if not tables:
        tables = ec2.describe_route_tables(Filters=[
            {"Name": "vpc-id", "Values": [me["vpc"]]},
            {"Name": "association.main", "Values": ["true"]}])["RouteTables"]
    routes = tables[0]["Routes"]
    plist = ec2.describe_managed_prefix_lists(Filters=[
        {"Name": "prefix-list-name", "Values": [f"com.amazonaws.{region}.s3"]}])["PrefixLists"][0]
    entries = ec2.get_managed_prefix_list_entries(PrefixListId=plist["PrefixListId"])["Entries"]
    endpoints = ec2.describe_vpc_endpoints(Filters=[
        {"Name": "vpc-id", "Values": [me["vpc"]]}])["VpcEndpoints"]
    eni_ids = [eni for e in endpoints for eni in e.get("NetworkInterfaceIds", [])]
    enis = ec2.describe_network_interfaces(NetworkInterfaceIds=eni_ids)["NetworkInterfaces"] \
        if eni_ids else []
    ec2.describe_nat_gateways(Filters=[{"Name": "vpc-id", "Values": [me["vpc"]]}])
    ec2.describe_security_group_rules(Filters=[
        {"Name": "group-id", "Values": me["groups"].split()}])
    ec2.describe_network_acls(Filters=[
        {"Name": "association.subnet-id", "Values": [me["subnet"]]}])
    ec2.describe_vpc_block_public_access_options()
    for bucket in args.bucket:
        s3.get_bucket_location(Bucket=bucket)
        try:
            json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
        except s3.exceptions.ClientError:
            pass  # no policy

    endpoint_ips = {a["PrivateIpAddress"] for eni in enis for a in eni["PrivateIpAddresses"]}
    candidates = []  # (network, rank, target): static 2, prefix list 1
    for route in routes:
        target = route.get("GatewayId") or route.get("NatGatewayId") or "other"
        if route.get("DestinationPrefixListId") == plist["PrefixListId"]:
            candidates += [(ipaddress.ip_network(e["Cidr"]), 1, target) for e in entries]
        elif route.get("DestinationCidrBlock"):
            candidates.append((ipaddress.ip_network(route["DestinationCidrBlock"]), 2, target))

    resolver = dns.resolver.Resolver(configure=args.dns is None)
    if args.dns:
        server, port = args.dns.rsplit(":", 1)
        resolver.nameservers, resolver.port = [server], int(port)
    for host in args.hosts:
        ips = []
        for rdtype in ("A", "AAAA"):
            try:
                ips += [r.address for r in resolver.resolve(host, rdtype)]
            except (dns.resolver.NoAnswer, dns.resolver.NXDOMAIN):
                pass
        paths = set()
        for ip in ips:
            addr = ipaddress.ip_address(ip)
            if ip in endpoint_ips:
                paths.add("interface")
                continue
            hits = [c for c in candidates if c[0].version == addr.version and addr in c[0]]
            if not hits:
                paths.add("no_route")
                continue
            _, _, target = max(hits, key=lambda c: (c[0].prefixlen, c[1]))
            paths.add("gateway" if target.startswith("vpce-") else
                      "public" if target.startswith(("nat-", "igw-")) else "other")
        print(f"{host}: {', '.join(sorted(paths)) or 'unresolved'}")


if __name__ == "__main__":
    main()
