# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A counting reverse proxy in front of the sandbox's AWS endpoint (127.0.0.1 only).

``ansible-playbook`` runs modules in other processes, where a botocore ``before-call`` hook cannot reach; pointing
``AWS_ENDPOINT_URL`` of the playbook at this proxy counts every AWS API call the modules make, by service and
operation (``X-Amz-Target`` for JSON services, ``Action=`` for query services such as STS), and by who asked where:
the access key and region of the request's SigV4 credential scope (``calls_by``). The builds themselves talk to the
sandbox directly (the sandbox CodeBuild gives them its own endpoint), so they are not counted.
"""

from __future__ import annotations

import http.client
import re
import threading
import urllib.parse
from collections import Counter
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade", "te", "trailer"}


def credential_scope(headers) -> tuple[str, str]:
    """(access key ID, region) of a SigV4 ``Authorization`` header; empty strings for an unsigned request."""
    match = re.search(r"Credential=([^/,\s]+)/[^/]+/([^/]+)/", headers.get("Authorization", ""))
    return (match.group(1), match.group(2)) if match else ("", "")


def operation(headers, body: bytes) -> str:
    target = headers.get("X-Amz-Target")
    if target:  # "AmazonEC2ContainerRegistry_V20150921.DescribeImages", "CodeBuild_20161006.StartBuild"
        service, op = target.split(".", 1) if "." in target else (target, "")
        return f"{service.split('_')[0]}:{op}"
    form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
    if "Action" in form:
        scope = headers.get("Authorization", "")
        service = scope.split("/")[3] if scope.count("/") >= 4 else "query"
        return f"{service}:{form['Action'][0]}"
    return "other"


class CountingProxy:
    def __init__(self, upstream_port: int, port: int):
        self.counts: Counter = Counter()
        self.scoped: Counter = Counter()  # (operation, access key ID, region) -> calls
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # The headers and the body go out in two writes: with Nagle's algorithm on, the body waits for the
            # client's delayed ACK of the headers, 40 ms a call, which the real endpoint does not add.
            disable_nagle_algorithm = True

            def log_message(self, *args):  # quiet
                pass

            def _forward(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                name = operation(self.headers, body)
                with proxy.lock:
                    proxy.counts[name] += 1
                    proxy.scoped[(name, *credential_scope(self.headers))] += 1
                conn = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=300)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                conn.request(self.command, self.path, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
                self.send_response(response.status, response.reason)
                for key, value in response.getheaders():
                    if key.lower() not in HOP_BY_HOP and key.lower() != "content-length":
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                conn.close()

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> "CountingProxy":
        self.thread.start()
        return self

    def reset(self) -> None:
        with self.lock:
            self.counts.clear()
            self.scoped.clear()

    def calls_by(self, name: str, access_key: str, region: str) -> int:
        """How often ``name`` (``AmazonEC2ContainerRegistry:DescribeRepositories``) was called with that access key in that region."""
        with self.lock:
            return self.scoped[(name, access_key, region)]

    def snapshot(self) -> dict[str, int]:
        with self.lock:
            return dict(sorted(self.counts.items()))

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
