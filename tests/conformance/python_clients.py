"""The CRM emulators as third-party clients see them.

simple-salesforce and HubSpot's official hubspot-api-client run against `tierd emulate`
(started here, one emulator per scenario, stopped with Ctrl-C as a person would). Each check
states the behaviour of the real API it relies on. Exits non-zero on the first failure.

Usage: python_clients.py PATH_TO_TIERD_BINARY
"""

import re
import signal
import subprocess
import sys

import requests
from requests.adapters import HTTPAdapter
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceError

import hubspot
from hubspot.crm.companies import (
    BatchInputSimplePublicObjectBatchInput,
    Filter,
    FilterGroup,
    PublicObjectSearchRequest,
)
from hubspot.crm.companies.exceptions import ApiException

TIERD = sys.argv[1]
SECRET = "conformance-secret"
TOKEN = "conformance-token"


class Emulator:
    """`tierd emulate VENDOR ARGS...` on a free port, until the `with` block ends."""

    def __init__(self, vendor, *args):
        self.argv = [TIERD, "emulate", vendor, "--port", "0", "--seed", "7", *args]

    def __enter__(self):
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE, text=True)
        first = self.proc.stdout.readline()
        found = re.search(r"(http://127\.0\.0\.1:\d+)", first)
        if not found:
            self.proc.kill()
            raise SystemExit(f"{' '.join(self.argv)}: no base URL in its first line: {first!r}")
        self.base = found.group(1)
        return self

    def __exit__(self, *exc):
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout=30)
        return False


def check(what, ok, detail=""):
    if not ok:
        raise SystemExit(f"FAIL: {what} {detail}")
    print(f"ok: {what}")


class PlainHttp(HTTPAdapter):
    """simple-salesforce builds every URL as https://INSTANCE/...; the emulator serves plain
    HTTP on loopback, so this adapter sends the same request over http://. Paths, query
    strings, headers and bodies are the client's, untouched."""

    def send(self, request, **kwargs):
        request.url = "http://" + request.url[len("https://"):]
        return super().send(request, **kwargs)


def salesforce_client(base, version="59.0"):
    token = requests.post(
        f"{base}/services/oauth2/token",
        data={"grant_type": "client_credentials", "client_id": "any", "client_secret": SECRET},
        timeout=30,
    ).json()["access_token"]
    session = requests.Session()
    session.mount("https://", PlainHttp())
    return Salesforce(instance_url=base, session_id=token, session=session, version=version)


def salesforce():
    with Emulator("salesforce", "--accounts", "2500", "--token", SECRET) as emu:
        sf = salesforce_client(emu.base)
        # simple-salesforce asks for query/?q= (trailing slash), as Salesforce serves it.
        first = sf.query("SELECT Id, Name FROM Account")
        check("query/ answers the first page of 2,000", len(first["records"]) == 2000
              and first["totalSize"] == 2500 and not first["done"], first.get("totalSize"))
        everything = sf.query_all("SELECT Id, Name, Website FROM Account")
        ids = [r["Id"] for r in everything["records"]]
        check("query_all follows nextRecordsUrl to all 2,500 records",
              len(ids) == 2500 and len(set(ids)) == 2500, len(ids))
        deleted_too = sf.query_all("SELECT Id FROM Account", include_deleted=True)
        check("queryAll/ is served", deleted_too["totalSize"] == 2500)
        describe = sf.Account.describe()
        check("sobjects/Account/describe/ names the object", describe["name"] == "Account")
        limits = sf.limits()
        check("limits/ reports the Enterprise daily allocation by default",
              limits["DailyApiRequests"]["Max"] == 100000, limits["DailyApiRequests"])
        some = ids[17]
        status = sf.Account.update(some, {"Name": "Renamed by simple-salesforce"})
        check("sobjects/Account/ID PATCH answers 204", status == 204, status)
        check("the update is read back", sf.Account.get(some)["Name"] == "Renamed by simple-salesforce")
        older = salesforce_client(emu.base, version="52.0")
        check("any vNN.N version prefix is served",
              older.query("SELECT Id FROM Account LIMIT 3")["totalSize"] == 3)

    with Emulator("salesforce", "--accounts", "3", "--token", SECRET, "--daily-limit", "4") as emu:
        sf = salesforce_client(emu.base)
        codes = []
        for _ in range(6):
            try:
                sf.query("SELECT Id FROM Account")
                codes.append("ok")
            except SalesforceError as e:
                codes.append((e.status, e.content[0]["errorCode"]))
        check("the daily API limit answers 403 REQUEST_LIMIT_EXCEEDED",
              codes == ["ok"] * 4 + [(403, "REQUEST_LIMIT_EXCEEDED")] * 2, codes)


def hubspot_client(base):
    return hubspot.Client.create(access_token=TOKEN, host=base)


def hubspot_burst(base, n):
    """n company list calls, no retry: (answers before the first 429, 429 bodies)."""
    api = hubspot_client(base).crm.companies.basic_api
    ok, limited = 0, []
    for _ in range(n):
        try:
            api.get_page(limit=1)
            if not limited:
                ok += 1
        except ApiException as e:
            if e.status != 429:
                raise
            limited.append((e.body, e.headers))
    return ok, limited


def hubspot_default():
    with Emulator("hubspot", "--accounts", "250", "--token", TOKEN) as emu:
        client = hubspot_client(emu.base)
        companies = client.crm.companies.get_all(properties=["name", "domain"])
        check("get_all pages through every company", len(companies) == 250, len(companies))
        page = client.crm.companies.basic_api.get_page(limit=100, properties=["name"], archived=False)
        check("get_page gives 100 and a cursor", len(page.results) == 100 and page.paging.next.after)
        search = PublicObjectSearchRequest(
            filter_groups=[FilterGroup(filters=[
                Filter(property_name="hs_object_id", operator="GT", value=companies[9].id)])],
            sorts=["hs_object_id"],
            properties=["name"],
            limit=10,
        )
        found = client.crm.companies.search_api.do_search(public_object_search_request=search)
        check("search filters and sorts", found.total == 240 and found.results[0].id == companies[10].id,
              (found.total, found.results[0].id))
        update = BatchInputSimplePublicObjectBatchInput(
            inputs=[{"id": companies[0].id, "properties": {"name": "Renamed by hubspot-api-client"}}])
        done = client.crm.companies.batch_api.update(batch_input_simple_public_object_batch_input=update)
        check("batch update succeeds", done.status == "COMPLETE"
              and done.results[0].properties["name"] == "Renamed by hubspot-api-client")

    with Emulator("hubspot", "--accounts", "5", "--token", TOKEN) as emu:
        ok, limited = hubspot_burst(emu.base, 400)
        check("a burst of 400 meets 429 after the private app's 100 per 10 seconds",
              ok == 100 and len(limited) > 0, (ok, len(limited)))
        body, headers = limited[0]
        check("the 429 body is HubSpot's",
              '"errorType":"RATE_LIMIT"' in body and '"policyName":"TEN_SECONDLY_ROLLING"' in body, body)
        check("the 429 carries no Retry-After", "Retry-After" not in headers, dict(headers))


def hubspot_unlimited():
    with Emulator("hubspot", "--accounts", "5", "--token", TOKEN, "--no-limits") as emu:
        ok, limited = hubspot_burst(emu.base, 400)
        check("--no-limits serves the same burst without a 429", ok == 400 and not limited, (ok, len(limited)))


salesforce()
hubspot_default()
hubspot_unlimited()
print("python clients: all checks passed")
