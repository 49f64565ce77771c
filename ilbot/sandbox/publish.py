"""Publishing the sandbox's state the way a real game client's plugin would (docs/contracts.md).

- `JsonDirPublisher`: the json-dir protocol — one `tick_<n>.json` per tick in a folder, written
  atomically (a `.tmp` file, then `os.replace`, so a reader never sees half a document); only the
  newest `keep` files stay (older ones are deleted oldest first).
- `StateServer`: optionally the same document over HTTP on localhost (`GET /` or `/state`), from a
  daemon thread; it binds loopback only, as the RuneLite HTTP plugins do.

The game knows nothing of who reads these (DESIGN §1).
"""

from __future__ import annotations

import json
import os
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from ..errors import UserError


class JsonDirPublisher:
    """Writes each state document to `<dir>/tick_<n>.json`, keeping the newest `keep` files."""

    def __init__(self, directory: str | os.PathLike, keep: int = 50):
        self.dir = Path(directory)
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UserError(f"{self.dir}: cannot create the state folder ({e.strerror})") from e
        self.keep = max(1, int(keep))
        self._written: deque[Path] = deque()
        self.published = 0

    def publish(self, doc: dict) -> Path:
        path = self.dir / f"tick_{int(doc['tick'])}.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(doc, separators=(",", ":")))
        os.replace(tmp, path)  # atomic on POSIX: readers see the old file set or the whole new file
        self._written.append(path)
        self.published += 1
        while len(self._written) > self.keep:
            old = self._written.popleft()
            try:
                old.unlink()
            except FileNotFoundError:
                pass
        return path


class StateServer:
    """Serves the latest state document as JSON on http://127.0.0.1:<port>/ (and /state)."""

    def __init__(self, port: int = 0, host: str = "127.0.0.1"):
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise UserError(f"sandbox http: refusing to serve on non-loopback host {host!r}")
        self._body = b"{}"
        self._lock = threading.Lock()
        server_self = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                if self.path.split("?")[0] not in ("/", "/state"):
                    self.send_error(404)
                    return
                with server_self._lock:
                    body = server_self._body
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):  # quiet
                pass

        try:
            self._httpd = ThreadingHTTPServer((host, port), Handler)
        except OSError as e:
            raise UserError(f"sandbox http: cannot listen on {host}:{port} ({e.strerror})") from e
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self.url = f"http://{host}:{self.port}/state"
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="sandbox-http", daemon=True)
        self._thread.start()

    def publish(self, doc: dict) -> None:
        body = json.dumps(doc, separators=(",", ":")).encode()
        with self._lock:
            self._body = body

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=2)
