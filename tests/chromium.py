"""Load a local HTML file in headless Chromium and report what a reader's browser would see.

Talks the DevTools protocol over --remote-debugging-pipe (file descriptors 3 and 4 of the
browser, NUL-terminated JSON), so no port is opened and nothing touches the network. Console
errors, uncaught exceptions and browser log errors (failed loads, CSP violations) are
collected from the moment the page starts loading.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--remote-debugging-pipe",
)

# Runs in the page after load: each figure image's rendered and decoded size.
PROBE = """JSON.stringify({
  figures: Array.from(document.querySelectorAll('figure')).map(f => {
    const img = f.querySelector('img'); const r = img ? img.getBoundingClientRect() : null;
    return {id: f.id, width: r ? r.width : 0, height: r ? r.height : 0,
            natural: img ? [img.naturalWidth, img.naturalHeight] : [0, 0],
            complete: img ? img.complete : false};
  }),
  scripts: document.querySelectorAll('script').length,
  title: document.title,
  text: document.body.innerText,
})"""


BASH = shutil.which("bash") or "/bin/bash"


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None


@dataclass
class PageReport:
    errors: list[str] = field(default_factory=list)
    probe: dict[str, Any] = field(default_factory=dict)


class DevToolsPipe:
    def __init__(self, binary: str, timeout: float) -> None:
        self.deadline = time.monotonic() + timeout
        self.profile = tempfile.mkdtemp(prefix="seqbench-chromium-")
        to_child_r, self.to_child = os.pipe()
        self.from_child, from_child_w = os.pipe()
        # The browser expects commands on fd 3 and writes replies to fd 4; bash moves our pipe
        # ends there (they are passed at fds >= 10 so they cannot collide with 3 and 4).
        a, b = (fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_child_r, from_child_w))
        wire = f'exec "$0" "$@" 3<&{a} 4>&{b} {a}<&- {b}>&-'
        self.proc = subprocess.Popen(
            [BASH, "-c", wire, binary, *FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            pass_fds=(a, b),
        )
        for fd in (to_child_r, from_child_w, a, b):
            os.close(fd)
        self.buffer = b""
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self.to_child, json.dumps(message).encode() + b"\0")
        while True:
            reply = self.receive()
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def receive(self) -> dict[str, Any]:
        while b"\0" not in self.buffer:
            left = self.deadline - time.monotonic()
            if left <= 0 or not select.select([self.from_child], [], [], left)[0]:
                raise TimeoutError("chromium did not answer in time")
            chunk = os.read(self.from_child, 1 << 16)
            if not chunk:
                raise RuntimeError(f"chromium exited: {self.proc.stderr.read().decode()[-2000:]}")
            self.buffer += chunk
        message, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(message)

    def wait_for(self, method: str) -> dict[str, Any]:
        for event in self.events:
            if event.get("method") == method:
                return event
        while True:
            event = self.receive()
            self.events.append(event)
            if event.get("method") == method:
                return event

    def close(self) -> None:
        with contextlib.suppress(RuntimeError, TimeoutError, OSError):
            self.send("Browser.close")
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self.to_child, self.from_child):
            os.close(fd)
        shutil.rmtree(self.profile, ignore_errors=True)


def load_page(binary: str, html: Path, timeout: float = 90.0) -> PageReport:
    """Open `html`, wait for its load event, collect errors and run PROBE."""
    pipe = DevToolsPipe(binary, timeout)
    try:
        pages = [t for t in pipe.send("Target.getTargets")["targetInfos"] if t["type"] == "page"]
        session = pipe.send(
            "Target.attachToTarget", {"targetId": pages[0]["targetId"], "flatten": True}
        )["sessionId"]
        for domain in ("Runtime", "Log", "Page"):
            pipe.send(f"{domain}.enable", session=session)
        pipe.events.clear()
        pipe.send("Page.navigate", {"url": html.resolve().as_uri()}, session=session)
        pipe.wait_for("Page.loadEventFired")
        result = pipe.send(
            "Runtime.evaluate", {"expression": PROBE, "returnByValue": True}, session=session
        )
        report = PageReport(probe=json.loads(result["result"]["value"]))
        report.errors = page_errors(pipe.events)
        return report
    finally:
        pipe.close()


def page_errors(events: list[dict[str, Any]]) -> list[str]:
    errors = []
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            errors.append("console: " + " ".join(str(a.get("value")) for a in params["args"]))
        elif method == "Runtime.exceptionThrown":
            errors.append("exception: " + params["exceptionDetails"].get("text", ""))
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            errors.append(f"log ({params['entry'].get('source')}): {params['entry'].get('text')}")
    return errors
