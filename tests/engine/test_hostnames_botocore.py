"""Every S3 name botocore builds is classified right (issue 10 §3).

The inputs are our own grid, ``tests/data/s3_endpoint_params.json``: endpoint-rule parameters
for S3 and S3 Control with the classification each implies (form, region, virtual-hosted bucket,
endpoint id, dual-stack and FIPS flags, and where the name carries them the zone, outpost,
account and vpce scope). Its shapes were informed by botocore's endpoint-rule test cases
(``tests/functional/endpoint-rules/s3/endpoint-tests-1.json`` and ``.../s3control/...`` in the
botocore repository; the grid's ``source`` says which), but no case of that file is stored here:
each host is computed at test time by ``botocore.endpoint_provider.EndpointProvider`` over the
endpoint rulesets that ship inside the INSTALLED botocore (pure: no network, no credentials). A
botocore upgrade that changes a name therefore shows up here as a failing row.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from s3_route_agent.engine.hostnames import HostForm, parse_s3_host

GRID_PATH = Path(__file__).resolve().parents[1] / "data" / "s3_endpoint_params.json"
GRID = json.loads(GRID_PATH.read_text())
FIELDS = ("form", "region", "bucket", "endpoint_id", "dualstack", "fips")
EXTRA_FIELDS = ("zone_id", "outpost_id", "account_id", "vpce_scope")
SUFFIXES = ("amazonaws.com", "amazonaws.com.cn")
SERVICE_MODELS = {"s3": "s3", "s3control": "s3control"}
# Names outside amazonaws.com[.cn]: S3 on Outposts dual-stack is s3-outposts.REGION.api.aws
# (S3 on Outposts guide, "Using S3 on Outposts dual-stack endpoints"); the parser leaves it out.
OUT_OF_SCOPE = {"control-outposts-dualstack-api-aws"}


@pytest.fixture(scope="module")
def resolve() -> Any:
    """Resolve (service, params) to the endpoint URL with the installed botocore's rulesets."""
    import botocore
    from botocore.endpoint_provider import S3_UNREFERENCED_PARAMS, EndpointProvider
    from botocore.loaders import Loader

    # Only the package's own data: no ~/.aws/models, no AWS_DATA_PATH.
    loader = Loader(extra_search_paths=[os.path.join(os.path.dirname(botocore.__file__), "data")],
                    include_default_search_paths=False)
    partitions = loader.load_data("partitions")
    providers = {service: EndpointProvider(loader.load_service_model(model, "endpoint-rule-set-1"),
                                           partitions)
                 for service, model in SERVICE_MODELS.items()}

    def run(service: str, params: dict[str, Any]) -> str:
        clean = {k: v for k, v in params.items() if k not in S3_UNREFERENCED_PARAMS}
        return providers[service].resolve_endpoint(**clean).url

    return run


def host_of(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def in_scope(host: str) -> bool:
    return any(host == s or host.endswith("." + s) for s in SUFFIXES)


ROWS = GRID["rows"]


@pytest.mark.parametrize("row", ROWS, ids=[r["id"] for r in ROWS])
def test_botocore_host_is_classified(resolve, row: dict[str, Any]) -> None:
    host = host_of(resolve(row["service"], row["params"]))
    parsed = parse_s3_host(host)
    if not in_scope(host):
        assert row["id"] in OUT_OF_SCOPE, f"{row['id']}: {host} left amazonaws.com"
        assert parsed.form is HostForm.OTHER
        return
    assert row["id"] not in OUT_OF_SCOPE, f"{row['id']} is in scope now: {host}"
    expected = row["expected"]
    checked = [f for f in FIELDS if f not in row.get("ambiguous", [])]
    got = {f: getattr(parsed, f) for f in checked}
    got["form"] = parsed.form.value
    assert got == {f: expected[f] for f in checked}, (host, row["why"])
    for name, value in row.get("extra", {}).items():
        assert getattr(parsed, name) == value, (host, name)
    # The expected bucket and region are really in the name (the grid describes this host).
    if expected["bucket"]:
        assert host.startswith(expected["bucket"] + "."), host
    if expected["region"] and expected["form"] != "global":
        assert expected["region"] in host.split("."), host


NO_HOST = GRID["no_host"]


@pytest.mark.parametrize("row", NO_HOST, ids=[r["id"] for r in NO_HOST])
def test_botocore_still_builds_no_host_for(resolve, row: dict[str, Any]) -> None:
    """Input combinations the rules refuse (FIPS or dual-stack with an endpoint URL, FIPS
    acceleration, ...): there is no such name to classify, and a new botocore must say so."""
    with pytest.raises(Exception) as raised:
        resolve(row["service"], row["params"])
    assert row["error_contains"] in str(raised.value)


def test_grid_covers_every_form_and_flag() -> None:
    """The grid exercises every form the rules build, with each flag where the form has it."""
    seen = {(r["expected"]["form"], r["expected"]["fips"], r["expected"]["dualstack"])
            for r in ROWS}
    forms = {form for form, _, _ in seen}
    built = {f.value for f in HostForm} - {"dash_region", "website"}  # names the rules never build
    assert built <= forms, built - forms
    for form in ("regional", "access_point", "control", "s3express", "s3express_control"):
        assert {(form, True, False), (form, False, True), (form, True, True)} <= seen, form
    zones = {r["extra"]["zone_id"] for r in ROWS if "zone_id" in r.get("extra", {})}
    assert any(z.count("-") == 2 for z in zones), zones       # a Local Zone id: usw2-lax1-az1
    assert len(ROWS) >= 190 and all(set(r["expected"]) >= set(FIELDS) for r in ROWS)
