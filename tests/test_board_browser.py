"""The HTML board in a real browser: headless Chromium driven over the Chrome DevTools Protocol.

No extra packages and no network: Chromium is started with ``--remote-debugging-pipe`` and
spoken to over file descriptors 3/4 (NUL-separated JSON messages), so neither a websocket
client nor a downloaded browser is needed. Checks: no console errors or uncaught exceptions,
no network requests, clicking a column header reorders rows (descending, ascending, back to
the original order) within each family group, a model name containing ``<script>`` renders as
text (and no alert dialog opens), and clicking a cell opens the provenance panel.

Skipped when ``/usr/bin/chromium`` is absent (``.ci/run`` installs Debian's ``chromium``).
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"

pytestmark = [
    pytest.mark.chromium,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} not installed (apt-get install chromium)"),
]

FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-extensions", "--disable-default-apps", "--mute-audio", "--remote-debugging-pipe",
]


class CDP:
    """Minimal Chrome DevTools Protocol client over ``--remote-debugging-pipe``."""

    def __init__(self, timeout: float = 30.0):
        self.timeout = timeout
        self.user_dir = tempfile.mkdtemp(prefix="rmx-chromium-")
        to_chrome_r, self._w = os.pipe()
        self._r, from_chrome_w = os.pipe()

        def _child_fds():  # runs in the child: Chromium reads commands on fd 3, writes on fd 4
            a, b = os.dup(to_chrome_r), os.dup(from_chrome_w)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen(
            [CHROMIUM, *FLAGS, f"--user-data-dir={self.user_dir}", "about:blank"],
            preexec_fn=_child_fds, close_fds=False,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buf = b""
        self._next_id = 0
        self.events: list[dict] = []
        self.session: str | None = None

    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no message from Chromium")
            ready, _, _ = select.select([self._r], [], [], left)
            if ready:
                chunk = os.read(self._r, 1 << 16)
                if not chunk:
                    raise EOFError("Chromium closed the debugging pipe")
                self._buf += chunk
        msg, _, self._buf = self._buf.partition(b"\0")
        return json.loads(msg)

    def send(self, method: str, params: dict | None = None, *, session: bool = True) -> dict:
        self._next_id += 1
        mid = self._next_id
        msg = {"id": mid, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            m = self._read_message(deadline)
            if m.get("id") == mid:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m.get("result", {})
            self.events.append(m)

    def wait_event(self, method: str) -> dict:
        for i, e in enumerate(self.events):
            if e.get("method") == method:
                return self.events.pop(i)
        deadline = time.monotonic() + self.timeout
        while True:
            m = self._read_message(deadline)
            if m.get("method") == method:
                return m
            self.events.append(m)

    def evaluate(self, expression: str):
        r = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in r:
            raise RuntimeError(f"page script failed: {r['exceptionDetails']}")
        return r["result"].get("value")

    def close(self) -> None:
        try:
            self.send("Browser.close", session=False)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._r, self._w):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self.user_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    from test_board import NOTES, make_costs, make_records, make_reference, make_spec

    from rmxbench.board.render import render

    out = tmp_path_factory.mktemp("browser")
    _, html_path = render(make_spec(), make_records(), make_costs(), NOTES, make_reference(), out)
    cdp = CDP()
    try:
        target = cdp.send("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
        cdp.session = cdp.send("Target.attachToTarget", {"targetId": target, "flatten": True}, session=False)["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            cdp.send(f"{domain}.enable")
        cdp.send("Page.navigate", {"url": Path(html_path).resolve().as_uri()})
        cdp.wait_event("Page.loadEventFired")
        yield cdp
    finally:
        cdp.close()


ORDER_JS = """Array.from(document.querySelectorAll('tbody.sortable')).map(
  b => Array.from(b.rows).map(r => r.getAttribute('data-row')))"""


def _sort_values(cdp, col):
    return cdp.evaluate(
        f"""Array.from(document.querySelectorAll('tbody.sortable')).map(
          b => Array.from(b.rows).map(r => r.cells[{col}].getAttribute('data-sort')))"""
    )


def _click_header(cdp, col):
    cdp.evaluate(f"document.querySelector('#board thead th[data-col=\"{col}\"]').click()")


def test_sorting_reorders_rows_within_family_groups(page):
    original = page.evaluate(ORDER_JS)
    assert original[0] == ["base-a", "rl-a", "rl-gone", "rl-same", "rmx-a"]
    _click_header(page, 1)  # GSM8K: descending
    desc = page.evaluate(ORDER_JS)
    assert desc != original
    assert [sorted(g) for g in desc] == [sorted(g) for g in original]  # rows stay in their family
    vals = [float(v) for v in _sort_values(page, 1)[0]]
    assert vals == sorted(vals, reverse=True)
    assert desc[0][:2] == ["rl-same", "rmx-a"]  # 0.700 tie keeps the original order
    assert desc[0][-1] == "base-a"  # 0.400 (the paper-only row sorts by its paper value 0.650)
    assert page.evaluate("document.querySelector('#board thead th[data-col=\"1\"]').getAttribute('aria-sort')") == "descending"
    _click_header(page, 1)  # ascending
    vals = [float(v) for v in _sort_values(page, 1)[0]]
    assert vals == sorted(vals)
    _click_header(page, 1)  # back to the original order
    assert page.evaluate(ORDER_JS) == original
    # Group header rows are untouched: one per family, before its rows.
    heads = page.evaluate("Array.from(document.querySelectorAll('tbody.fam-head th')).map(t => t.textContent)")
    assert heads == ["fam-a", "fam-b"]


def test_script_in_model_name_renders_as_text(page):
    text = page.evaluate("document.querySelector('tr[data-row=\"base-a\"] td.name').textContent")
    assert text == "Evil<script>alert(1)</script> & Co"
    assert page.evaluate("document.scripts.length") == 2
    assert page.evaluate("document.querySelectorAll('td script, td b, td.name *:not(span)').length") == 0
    desc = page.evaluate("document.querySelector('body > p').textContent")
    assert desc == "Synthetic board <b>test</b> & more"


def test_cell_click_opens_provenance_panel(page):
    assert page.evaluate("document.getElementById('details').hidden") is True
    page.evaluate("document.querySelector('td[data-prov=\"rmx-a/gsm8k\"]').click()")
    assert page.evaluate("document.getElementById('details').hidden") is False
    text = page.evaluate("document.getElementById('details-dl').textContent")
    assert "grader_version" in text and "lm_eval_version" in text and "n problems" in text
    # Provenance strings are text, never markup.
    assert "</script><script>alert(2)</script>" in text
    assert page.evaluate("document.querySelectorAll('#details-dl script').length") == 0
    page.evaluate("document.getElementById('details-close').click()")
    assert page.evaluate("document.getElementById('details').hidden") is True


def test_no_console_errors_dialogs_or_network(page):
    page.evaluate("1")  # flush pending events
    events = page.events
    errors = [e for e in events if e.get("method") == "Runtime.exceptionThrown"]
    errors += [e for e in events if e.get("method") == "Runtime.consoleAPICalled"
               and e["params"].get("type") in ("error", "assert")]
    errors += [e for e in events if e.get("method") == "Log.entryAdded"
               and e["params"]["entry"].get("level") == "error"]
    assert errors == []
    assert not [e for e in events if e.get("method") == "Page.javascriptDialogOpening"]
    urls = [e["params"]["request"]["url"] for e in events if e.get("method") == "Network.requestWillBeSent"]
    assert all(u.startswith(("file://", "data:image/png;base64,")) for u in urls), urls


def test_text_and_cost_columns_sort(page):
    original = page.evaluate(ORDER_JS)
    _click_header(page, 0)  # Model: text, descending first
    names = page.evaluate(
        "Array.from(document.querySelector('tbody.sortable').rows).map(r => r.cells[0].getAttribute('data-sort'))"
    )
    assert names == sorted(names, reverse=True)
    _click_header(page, 5)  # Cost: USD, rows without a USD figure last
    costs = _sort_values(page, 5)[0]
    filled = [float(c) for c in costs if c]
    assert filled == sorted(filled, reverse=True) == [1200.0, 200.0, 4.12]
    assert costs[len(filled):] == ["", ""]
    _click_header(page, 5)
    _click_header(page, 5)
    assert page.evaluate(ORDER_JS) == original
