#!/usr/bin/python3
"""The lab's web service: every site of a JSON config (one port each, HTTP or HTTPS, 127.0.0.1
only) answering fixed routes. Standard library only; started and stopped by lab/endpoints_area.py
by pid (the config's path is on its command line, so the lab recognises its own process).

    endpoints_server.py CONFIG      # {"sites": [{"port", "tls": {"cert", "key"} | null, "routes",
                                    #   "metrics": bool, "traffic": [{"path", "every"}]}]}

A route: {"status", "headers": {name: value | [values]}, "server", "json" | "text", "delay",
"uptime", "auth"}; "delay" seconds are slept before answering (a slow endpoint), "uptime" adds a field
that changes on every call (volatile: the audit must not call it drift), "auth" is the
Authorization header the route requires (401 without it: proves the probe sent its credentials).

A site with "metrics" serves /metrics in Prometheus' text format: http_requests_total{code,
handler} and the http_request_duration_seconds histogram of the requests it answered (counted
for real, the scrapes included). A site's "traffic" is its own client: a thread that GETs each
path on 127.0.0.1 every `every` seconds, so that its Prometheus has rates to compute (the lab's
prod answers 5xx on one of them). Nothing but loopback is contacted.
"""

import http.client
import http.server
import json
import ssl
import sys
import threading
import time

STARTED = time.monotonic()
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    """A site's request counts by (code, handler) and its durations' histogram, thread-safe."""

    def __init__(self):
        self.lock = threading.Lock()
        self.counts = {}
        self.buckets = [0] * len(BUCKETS)
        self.total = 0
        self.seconds = 0.0

    def observe(self, code, handler, seconds):
        with self.lock:
            self.counts[(code, handler)] = self.counts.get((code, handler), 0) + 1
            for index, bound in enumerate(BUCKETS):
                self.buckets[index] += seconds <= bound
            self.total += 1
            self.seconds += seconds

    def text(self):
        with self.lock:
            lines = ["# TYPE http_requests_total counter"]
            lines += [
                'http_requests_total{code="%d",handler="%s"} %d' % (code, handler, count)
                for (code, handler), count in sorted(self.counts.items())
            ]
            lines.append("# TYPE http_request_duration_seconds histogram")
            lines += [
                'http_request_duration_seconds_bucket{le="%s"} %d' % (bound, count)
                for bound, count in zip(BUCKETS, self.buckets, strict=True)
            ]
            lines.append('http_request_duration_seconds_bucket{le="+Inf"} %d' % self.total)
            lines.append("http_request_duration_seconds_sum %.6f" % self.seconds)
            lines.append("http_request_duration_seconds_count %d" % self.total)
        return "\n".join(lines) + "\n"


def handler_for(routes, metrics=None):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def version_string(self):
            return self._route().get("server", "envparity-lab")

        def _route(self):
            return routes.get(self.path.split("?", 1)[0], {"status": 404, "text": "not found"})

        def do_GET(self):
            started = time.monotonic()
            path = self.path.split("?", 1)[0]
            if metrics is not None and path == "/metrics":
                route = self._answer({"status": 200, "text": metrics.text()})
            else:
                route = self._answer(self._route())
            if metrics is not None:
                handler = path if path in routes or path == "/metrics" else "other"
                metrics.observe(route.get("status", 200), handler, time.monotonic() - started)

        def _answer(self, route):
            """Sends the route's answer; returns the route answered (401 when its auth is missing)."""
            if route.get("auth") and self.headers.get("Authorization") != route["auth"]:
                route = {"status": 401, "text": "credentials required"}
            time.sleep(route.get("delay", 0))
            if "json" in route:
                document = dict(route["json"])
                if route.get("uptime"):
                    document["uptime"] = round(time.monotonic() - STARTED, 3)
                body, kind = json.dumps(document).encode(), "application/json"
            else:
                body, kind = route.get("text", "").encode(), "text/html; charset=utf-8"
            self.send_response(route.get("status", 200))
            self.send_header("Content-Type", kind)
            for name, value in route.get("headers", {}).items():
                for item in value if isinstance(value, list) else [value]:
                    self.send_header(name, item)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
            return route

        do_HEAD = do_GET

    return Handler


def serve(site):
    metrics = Metrics() if site.get("metrics") else None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", site["port"]), handler_for(site["routes"], metrics))
    server.daemon_threads = True
    if site.get("tls"):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(site["tls"]["cert"], site["tls"]["key"])
        if site["tls"].get("legacy"):  # TLS 1.0 and 1.1 accepted too (an old server's setting)
            context.set_ciphers("DEFAULT:@SECLEVEL=0")
            context.minimum_version = ssl.TLSVersion(0x0301)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    return server


def client(port, path, every):
    """GET http://127.0.0.1:port/path every `every` seconds, for as long as the service runs."""
    while True:
        time.sleep(every)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            connection.request("GET", path)
            connection.getresponse().read()
        except (OSError, http.client.HTTPException):
            pass
        finally:
            connection.close()


def main(config_path):
    with open(config_path, encoding="utf-8") as handle:
        config = json.load(handle)
    servers = [serve(site) for site in config["sites"]]  # every port bound before serving any
    threads = [threading.Thread(target=server.serve_forever, daemon=True) for server in servers]
    for site in config["sites"]:
        for load in site.get("traffic", []):
            args = (site["port"], load["path"], load["every"])
            threading.Thread(target=client, args=args, daemon=True).start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


if __name__ == "__main__":
    main(sys.argv[1])
