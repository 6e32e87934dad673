"""The evidence pages behind each finding: a real proxy and simulator on loopback, alerts that link
to the page, sign-in, filters, the examples side by side by arm, and the page in headless Chromium."""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from monitor._procs import ServerProcess
from monitor.evidence.index import LogIndex
from monitor.records import Exchange, Finding
from tests._support import ThreadServer, start_proxy, wait_for
from tests.test_alerts import Receiver
from tests.test_alerts_e2e import POLICY, _drive

TOKEN = "evidence-test-token"
HTML = {"accept": "text/html"}
BEARER = {"authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, Receiver, list[dict]]]:
    """A proxy with a live experiment and a webhook receiver, after traffic that raised a cue-gap
    finding and its alert."""
    tmp = tmp_path_factory.mktemp("evidence")
    sim = ServerProcess(
        ["sim", "--profile", "alignment-faker", "--port", str(port := _port()), "--seed", "7"], port,
        log=tmp / "sim.log",
    ).start()  # fmt: skip
    policy = tmp / "policy.yaml"
    policy.write_text(POLICY)
    app = Receiver()
    with ThreadServer(app) as hook:
        proxy = start_proxy(
            tmp, sim.url, policy=policy, extra_env={"CW_HOOK_URL": hook.url + "/hook"},
            admin_token=TOKEN, public_url="https://cuewatch.example.com", environment="staging", instance="pod-3",
        )  # fmt: skip
        try:
            for _ in range(10):  # concurrency makes the arms' order vary: traffic until the gap is found
                _drive(proxy.url, 600)
                if wait_for(lambda: _alerts(app), timeout=5):
                    break
            assert _alerts(app), "no alert was sent after 6,000 requests"
            yield proxy, app, _alerts(app)
        finally:
            proxy.stop(timeout=3)
            sim.stop(timeout=3)


def _port() -> int:
    from monitor._procs import free_port

    return free_port()


def _alerts(app: Receiver) -> list[dict]:
    return [a for r in app.requests for a in json.loads(r["body"]).get("alerts", [])]


@pytest.mark.slow
def test_alert_links_to_its_evidence_page_and_carries_instance_labels(served: tuple) -> None:
    _, _, alerts = served
    a = alerts[0]
    fid = a["evidence"]["finding_ids"][-1]
    assert a["url"] == f"https://cuewatch.example.com/admin/findings/{fid}"
    assert a["labels"]["instance"] == "pod-3" and a["labels"]["environment"] == "staging"
    assert a["next_step"].startswith("Open the evidence page") and a["url"] in a["next_step"]
    assert "monitored − unmonitored" in a["summary"] or "unmonitored − monitored" in a["summary"]


@pytest.mark.slow
def test_pages_need_the_token(served: tuple) -> None:
    proxy, _, _ = served
    with httpx.Client(base_url=proxy.url, timeout=10) as c:
        assert c.get("/admin/findings").status_code == 401  # an API client: JSON 401
        wrong = c.get("/admin/findings", headers={"authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert c.get("/admin/static/plotly.min.js").status_code == 401
        browser = c.get("/admin/findings/abc?x=1", headers=HTML)  # a browser: to the sign-in form
        assert browser.status_code == 303
        assert browser.headers["location"] == "/admin/login?next=" + quote("/admin/findings/abc?x=1", safe="")
        form = c.get(browser.headers["location"])
        assert form.status_code == 200 and "name='token'" in form.text and "/admin/findings/abc?x=1" in form.text


@pytest.mark.slow
def test_sign_in_sets_a_session_cookie_and_never_redirects_off_site(served: tuple) -> None:
    proxy, _, _ = served
    with httpx.Client(base_url=proxy.url, timeout=10) as c:
        bad = c.post("/admin/login", data={"token": "nope", "next": "/admin/findings"})
        assert bad.status_code == 401 and "Wrong token" in bad.text and "set-cookie" not in bad.headers
        ok = c.post("/admin/login", data={"token": TOKEN, "next": "https://evil.example/admin/findings"})
        assert ok.status_code == 303 and ok.headers["location"] == "/admin/findings"
        cookie = ok.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" in cookie  # public_url is https
        assert TOKEN not in cookie  # an HMAC of the token, never the token
        session = cookie.split(";", 1)[0]  # a Secure cookie: httpx keeps it for https only
        page = c.get("/admin/findings", headers={**HTML, "cookie": session})
        assert page.status_code == 200 and "Findings (" in page.text
        forged = c.get("/admin/findings", headers={**HTML, "cookie": session[:-4] + "0000"})
        assert forged.status_code == 303


@pytest.mark.slow
def test_findings_list_and_filters(served: tuple) -> None:
    proxy, _, alerts = served
    fid = alerts[0]["evidence"]["finding_ids"][-1]
    with httpx.Client(base_url=proxy.url, headers=BEARER, timeout=10) as c:
        page = c.get("/admin/findings")
        assert page.status_code == 200 and f"/admin/findings/{fid}" in page.text
        rows = c.get("/admin/findings", params={"format": "json", "detector": "cue_gap"}).json()
        assert rows and {r["detector"] for r in rows} == {"cue_gap"} and fid in {r["id"] for r in rows}
        assert c.get("/admin/findings", params={"format": "json", "detector": "drift"}).json() == []
        assert c.get("/admin/findings", params={"format": "json", "since": "2999-01-01T00:00"}).json() == []
        assert c.get("/admin/findings", params={"since": "yesterday"}).status_code == 400
        assert c.get("/admin/findings/0000000000000000").status_code == 404


@pytest.mark.slow
def test_finding_page_shows_the_evidence_and_examples_side_by_side(served: tuple) -> None:
    proxy, _, alerts = served
    fid = alerts[0]["evidence"]["finding_ids"][-1]
    with httpx.Client(base_url=proxy.url, headers=BEARER, timeout=10) as c:
        f = Finding.model_validate(c.get(f"/admin/findings/{fid}", params={"format": "json"}).json())
        page = c.get(f"/admin/findings/{fid}").text
        js = c.get("/admin/static/plotly.min.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript") and len(js.content) > 1e6
    assert f.path and f.path[-1].log_e >= f.path[-1].log_threshold  # the crossing is on the path
    assert "Evidence over time" in page and "Plotly.newPlot" in page and "/admin/static/plotly.min.js" in page
    high, low = (f.arms[0], f.arms[1]) if f.effect and f.effect.estimate >= 0 else (f.arms[1], f.arms[0])
    assert f"{high} − {low} = +" in page
    assert "two different methods" in page  # the interval and the test are explained
    # every example exchange is on the page, under its arm, read from the proxy's own log
    for arm, ids in f.example_ids.items():
        assert f"<div class='arm-head'>{arm}</div>" in page
        for ident in ids:
            assert f"<h4>{ident}</h4>" in page
    assert "Not in the logs" not in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)  # nothing from the network
    assert "<script>alert" not in page


def test_index_follows_appends_gzip_and_partial_lines(tmp_path: Path) -> None:
    """Only complete lines are read; what is appended later is read next time; gzip segments too."""
    from datetime import UTC, datetime

    t = datetime(2026, 1, 1, tzinfo=UTC)
    f1 = Finding(id="f1", time=t, detector="cue_gap", metric="complied", e_value=200.0, p_value=0.005, alpha=0.01)
    f2 = f1.model_copy(update={"id": "f2", "detector": "drift"})
    ex = Exchange(id="x1", time=t, dialect="openai", path="/v1/chat/completions", status=200, outcome="ok")
    seg = tmp_path / "traffic-1.jsonl"
    line2 = f2.model_dump_json().encode()
    seg.write_bytes(ex.model_dump_json().encode() + b"\n" + f1.model_dump_json().encode() + b"\n" + line2[:20])
    with gzip.open(tmp_path / "traffic-0.jsonl.gz", "wb") as fh:
        fh.write(f1.model_copy(update={"id": "f0"}).model_dump_json().encode() + b"\n")
    idx = LogIndex([tmp_path])
    assert {f.id for f in idx.findings()} == {"f0", "f1"}
    with open(seg, "ab") as fh:
        fh.write(line2[20:] + b"\n")
    assert [f.id for f in idx.findings(detector="drift")] == ["f2"]
    assert set(idx.exchanges(["x1", "nope"])) == {"x1"}


@pytest.mark.slow
def test_finding_page_in_headless_chromium(served: tuple, tmp_path: Path) -> None:
    """Signed in through the form, the page draws the e-value path crossing the alarm line and the
    interval, in Chromium with no network."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed (make test installs Debian's package when it can)")
    from playwright.sync_api import sync_playwright

    proxy, _, alerts = served
    fid = alerts[0]["evidence"]["finding_ids"][-1]
    shots = Path(os.environ.get("CUEWATCH_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        offsite: list[str] = []
        page.on("request", lambda r: offsite.append(r.url) if not r.url.startswith(proxy.url) else None)
        page.goto(f"{proxy.url}/admin/findings/{fid}")
        assert "/admin/login" in page.url
        page.fill("input[name=token]", TOKEN)
        page.click("button[type=submit]")
        page.wait_for_selector("#evalue .main-svg")
        assert page.url.endswith(f"/admin/findings/{fid}")
        # plotly drew both charts: the path, the dashed alarm line and the alarm marker
        assert page.locator("#evalue .scatterlayer .trace").count() == 3
        assert page.locator("#effect .scatterlayer .trace").count() == 3
        page.screenshot(path=str(shots / "evidence-page.png"), full_page=True)
        page.goto(f"{proxy.url}/admin/findings")
        page.screenshot(path=str(shots / "findings-list.png"), full_page=True)
        browser.close()
    assert offsite == []
