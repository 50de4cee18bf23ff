"""The web UI in a real headless Chromium: sign in, search, open a model and a version with
its lineage graph, approve a pending promotion as a second user and see the pointer move and
the timeline grow, and see a self-approval refused with the reason. Each page is saved as a
screenshot under test-output/ui/ (MODELREG_TEST_OUTPUT)."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import httpx
import pytest

from tests.e2e.ui.conftest import SCREENSHOTS, UiStack

pytestmark = pytest.mark.timeout(240)


async def sign_in(page: Any, url: str, principal: str) -> None:
    await page.goto(f"{url}/signin")
    await page.get_by_label("Registry token").fill(f"t-{principal}")
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"{url}/")
    assert await page.get_by_test_id("principal").inner_text() == principal


async def sign_out(page: Any) -> None:
    await page.get_by_role("button", name="Sign out").click()
    await page.get_by_role("navigation", name="Account").get_by_role("link", name="Sign in").wait_for()


async def shot(page: Any, name: str) -> None:
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


async def test_browse_search_lineage_and_approve(ui_stack: UiStack, browser: Any) -> None:
    url, seeded = ui_stack.url, ui_stack.seeded
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()

    # Signed out, the registry (auth required) refuses to answer: the page says so and offers sign-in.
    response = await page.goto(f"{url}/?ns={seeded.namespace}")
    assert response.status == 401
    await shot(page, "00-signed-out")

    await sign_in(page, url, "alice")
    await page.goto(f"{url}/?ns={seeded.namespace}")
    models = page.get_by_test_id("models")
    await models.get_by_role("link", name=seeded.uri).wait_for()
    assert "PRODUCTION → v1" in await models.inner_text()
    await shot(page, "01-models")

    # Search with the filter language; a bad filter is shown next to the box.
    await page.get_by_label("Filter").fill('tags.team = "risk"')
    await page.get_by_role("button", name="Search").click()
    text = await page.get_by_test_id("models").inner_text()
    assert f"{seeded.namespace}/fraud" in text and seeded.uri not in text
    await page.get_by_label("Filter").fill("name ==== 1")
    await page.get_by_role("button", name="Search").click()
    error = await page.get_by_test_id("filter-error").inner_text()
    assert "filter" in error.lower(), error
    await shot(page, "02-search-error")

    # The model: versions, pointers, the pending request, the timeline so far.
    await page.goto(f"{url}/models/{seeded.uri}")
    assert len(await page.get_by_test_id("versions").locator("tbody tr").all()) == 2
    # PRODUCTION's first move and prod's two deployment revisions.
    moves = await page.get_by_test_id("timeline").locator("li").all()
    assert len(moves) == 3
    assert "deployments/prod" in await moves[0].inner_text()
    pending = page.get_by_test_id("pending")
    assert "PRODUCTION → v2" in await pending.inner_text()
    # Desired against acknowledged: the serving code changed after the last acknowledgement.
    deployments = await page.get_by_test_id("deployments").inner_text()
    assert "prod" in deployments and "serve@sha256:bbbbbbbbbbbb…" in deployments, deployments
    assert "succeeded: revision 1" in deployments and "drift" in deployments, deployments
    await shot(page, "03-model")

    # Alice asked for this move: separation of duties refuses her approval, with the reason.
    await pending.get_by_role("button", name="Approve").click()
    refusal = await page.get_by_test_id("refusal").inner_text()
    assert "Approve refused" in refusal and re.search(r"separation|own request|requester", refusal, re.I), (
        refusal
    )
    assert "PRODUCTION</td><td><a" in (await page.content()).replace("\n", "")
    assert "v1" in await page.get_by_test_id("pointers").inner_text()
    await shot(page, "04-self-approval-refused")

    # The version page: files, metrics and the lineage graph with the recorded nodes.
    await page.goto(f"{url}/models/{seeded.uri}/versions/2")
    graph = page.get_by_test_id("lineage-graph")
    kinds = {await n.get_attribute("data-kind") for n in await graph.locator(".node").all()}
    assert {"dataset", "code", "config", "training_run", "model_version", "evaluation"} <= kinds, kinds
    assert seeded.dataset_uri in await graph.inner_html()
    assert "0.93" in await page.get_by_test_id("metrics").inner_text()
    evaluations = await page.get_by_test_id("evaluations").inner_text()
    assert "OFFLINE" in evaluations and "golden-v3" in evaluations and "auc=0.925" in evaluations
    assert "degraded" not in evaluations
    await shot(page, "05-version-lineage")
    # Compare with v1: the metric differs.
    await page.get_by_label("Version", exact=True).select_option("1")
    await page.get_by_role("button", name="Compare").click()
    diff = await page.get_by_test_id("diff").inner_text()
    assert "metrics.auc" in diff and "0.91" in diff and "0.93" in diff
    # A graph node navigates: v2's own node links to its page.
    await graph.locator('.node[data-kind="model_version"]').first.click()
    await page.wait_for_url(re.compile(rf".*/models/{seeded.uri}/versions/2$"))

    # v1's production evaluations, newest first: the week past the threshold is marked degraded.
    await page.goto(f"{url}/models/{seeded.uri}/versions/1")
    rows = await page.get_by_test_id("evaluations").locator("tbody tr").all_inner_texts()
    assert len(rows) == 2, rows
    assert "live-week-2" in rows[0] and "auc=0.87 degraded" in rows[0], rows
    assert "live-week-1" in rows[1] and "degraded" not in rows[1], rows
    await shot(page, "05b-version-evaluations")

    # Bob approves: the pointer moves and the timeline grows, at once.
    await sign_out(page)
    await sign_in(page, url, "bob")
    await page.goto(f"{url}/models/{seeded.uri}")
    await page.get_by_test_id("pending").get_by_label("Comment").fill("ship it")
    await page.get_by_test_id("pending").get_by_role("button", name="Approve").click()
    await page.get_by_test_id("notice").wait_for()
    assert "approved" in await page.get_by_test_id("notice").inner_text()
    pointers = await page.get_by_test_id("pointers").inner_text()
    assert re.search(r"PRODUCTION\s+v2", pointers), pointers
    timeline = page.get_by_test_id("timeline")
    entries = await timeline.locator("li").all()
    assert len(entries) == 4
    newest = await entries[0].inner_text()
    assert "PRODUCTION: v1 → v2" in newest and "approved by bob" in newest and "requested by alice" in newest
    assert not await page.get_by_test_id("pending").count()
    await shot(page, "06-approved")

    # The audit trail of the model shows who did what.
    await page.goto(f"{url}/models/{seeded.uri}/audit")
    trail = await page.get_by_test_id("audit").inner_text()
    assert "alice" in trail and "bob" in trail
    await shot(page, "07-audit")

    # A phone-sized viewport renders the model page without overflowing the layout.
    phone = await browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    mobile = await phone.new_page()
    await sign_in(mobile, url, "bob")
    await mobile.goto(f"{url}/models/{seeded.uri}")
    await shot(mobile, "08-model-phone")
    width = await mobile.evaluate("document.documentElement.scrollWidth")
    assert width <= 400, width
    await phone.close()
    await context.close()


async def test_download_link_serves_the_verified_bytes(ui_stack: UiStack) -> None:
    seeded = ui_stack.seeded
    async with ui_stack.registry("alice") as alice:
        version = await alice.versioning.get_version(f"{seeded.uri}/1")
    weights = next(f for f in version.files if f.path.endswith("weights.bin"))
    async with httpx.AsyncClient(base_url=ui_stack.url) as http:
        signin = await http.get("/signin")
        csrf = re.search(r'name="csrf" value="([^"]+)"', signin.text)
        assert csrf
        await http.post("/signin", data={"token": "t-alice", "csrf": csrf[1], "next": "/"})
        answer = await http.get(f"/models/{seeded.uri}/versions/1/files/{weights.path}")
    assert answer.status_code == 200
    assert hashlib.sha256(answer.content).hexdigest() == weights.sha256
    assert len(answer.content) == weights.size


async def request_state(stack: UiStack) -> int:
    async with stack.registry("alice") as alice:
        requests = await alice.promotion.list_transition_requests(stack.seeded.uri)
    return next(t.state for t in requests if t.name.endswith(f"/{stack.seeded.pending_request}"))


async def test_writes_need_the_session_csrf_token_and_a_same_origin_post(ui_stack: UiStack) -> None:
    seeded = ui_stack.seeded
    before = await request_state(ui_stack)
    async with httpx.AsyncClient(base_url=ui_stack.url) as http:
        signin = await http.get("/signin")
        csrf = re.search(r'name="csrf" value="([^"]+)"', signin.text)
        assert csrf
        # A sign-in without the form's CSRF value is refused; a bad token is refused with the reason.
        forged = await http.post("/signin", data={"token": "t-bob", "csrf": "guess", "next": "/"})
        assert forged.status_code == 403
        # Every sign-in form carries a fresh value (and its cookie).
        csrf = re.search(r'name="csrf" value="([^"]+)"', forged.text)
        assert csrf
        wrong = await http.post("/signin", data={"token": "t-nobody", "csrf": csrf[1], "next": "/"})
        assert wrong.status_code == 401 and "Sign-in refused" in wrong.text
        csrf = re.search(r'name="csrf" value="([^"]+)"', wrong.text)
        assert csrf
        signed = await http.post("/signin", data={"token": "t-bob", "csrf": csrf[1], "next": "/"})
        assert signed.status_code == 303
        cookie = http.cookies.get("modelreg_session")
        assert cookie and "t-bob" not in cookie  # sealed, not readable
        target = f"/models/{seeded.uri}/requests/{seeded.pending_request}/reject"
        # No CSRF token, then a cross-origin POST carrying the right one: both refused.
        assert (await http.post(target, data={})).status_code == 403
        page = await http.get(f"/models/{seeded.uri}")
        session_csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert session_csrf
        cross = await http.post(
            target, data={"csrf": session_csrf[1]}, headers={"Origin": "https://evil.example"}
        )
        assert cross.status_code == 403
        # A tampered session cookie is no session: the page asks to sign in.
        http.cookies.set("modelreg_session", cookie[:-4] + "AAAA")
        assert 'href="/signin' in (await http.get("/signin")).text
    assert await request_state(ui_stack) == before
