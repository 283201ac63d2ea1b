"""The API docs page (``/docs``, Swagger UI) in Debian's Chromium against a real ``callscribe serve``: it renders
every operation of ``/openapi.json`` and every request it makes goes to the server itself (no CDN, no font or
validator service), with no Content-Security-Policy violation and no script error."""

from __future__ import annotations

from pathlib import Path

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "e2e"


def test_docs_page_renders_every_operation_from_loopback_only(server, launch):
    status, doc = server.request("GET", "/openapi.json")
    assert status == 200
    operations = [(m.upper(), p, op["summary"]) for p, ms in doc["paths"].items() for m, op in ms.items()]
    assert len(operations) > 20

    page = launch().new_page(viewport={"width": 1280, "height": 900})
    requests: list[str] = []
    failed: list[str] = []
    problems: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("requestfailed", lambda r: failed.append(f"{r.url} {r.failure}"))
    page.on("pageerror", lambda exc: problems.append(f"pageerror: {exc}"))
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.add_init_script("document.addEventListener('securitypolicyviolation', "
                         "e => (window.__csp = window.__csp || []).push(e.blockedURI + ' ' + e.violatedDirective))")

    page.goto(server.url + "/docs")
    page.wait_for_selector(".swagger-ui .info .title", timeout=30_000)
    assert "callscribe" in page.inner_text(".swagger-ui .info .title")
    page.wait_for_function(f"document.querySelectorAll('.opblock').length >= {len(operations)}", timeout=30_000)
    shown = page.eval_on_selector_all(".opblock-summary", "els => els.map(e => e.innerText)")
    for method, path, summary in operations:
        assert any(method in s and path in s and summary in s for s in shown), (method, path, summary)

    # open one operation: its form, its responses with the one Error schema
    page.click(".opblock-summary:has-text('Identify the speaker of a recording')")
    page.wait_for_selector(".opblock.is-open .responses-table", timeout=10_000)
    opened = page.inner_text(".opblock.is-open")
    assert "multipart/form-data" in opened and "413" in opened and "too_long" in opened

    # "Try it out" on GET /healthz: the call goes to this server
    page.click(".opblock-summary:has-text('/healthz')")
    block = page.locator(".opblock.is-open", has_text="/healthz")
    block.locator("button.try-out__btn").click()
    block.locator("button.execute").click()
    status_cell = block.locator(".live-responses-table tr.response .response-col_status").first
    status_cell.wait_for(timeout=10_000)
    assert status_cell.inner_text().strip() == "200"

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "docs-page.png"), full_page=False, animations="disabled")
    violations = page.evaluate("window.__csp || []")

    assert requests, "the page made no request"
    outside = [u for u in requests if not (u.startswith(server.url + "/") or u.startswith(("data:", "blob:")))]
    assert outside == [], outside
    assert server.url + "/openapi.json" in requests and server.url + "/healthz" in requests
    assert any(u.endswith("/docs/assets/swagger-ui-bundle.js") for u in requests)
    assert failed == [], failed
    assert violations == [], violations
    assert problems == [], problems
