#!/usr/bin/python3
"""The lab's web service: every site of a JSON config (one port each, HTTP or HTTPS, 127.0.0.1
only) answering fixed routes. Standard library only; started and stopped by lab/endpoints_area.py
by pid (the config's path is on its command line, so the lab recognises its own process).

    endpoints_server.py CONFIG      # {"sites": [{"port", "tls": {"cert", "key"} | null, "routes"}]}

A route: {"status", "headers": {name: value | [values]}, "server", "json" | "text", "delay",
"uptime", "auth"}; "delay" seconds are slept before answering (a slow endpoint), "uptime" adds a field
that changes on every call (volatile: the audit must not call it drift), "auth" is the
Authorization header the route requires (401 without it: proves the probe sent its credentials).
"""

import http.server
import json
import ssl
import sys
import threading
import time

STARTED = time.monotonic()


def handler_for(routes):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def version_string(self):
            return self._route().get("server", "envparity-lab")

        def _route(self):
            return routes.get(self.path.split("?", 1)[0], {"status": 404, "text": "not found"})

        def do_GET(self):
            route = self._route()
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

        do_HEAD = do_GET

    return Handler


def serve(site):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", site["port"]), handler_for(site["routes"]))
    server.daemon_threads = True
    if site.get("tls"):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(site["tls"]["cert"], site["tls"]["key"])
        if site["tls"].get("legacy"):  # TLS 1.0 and 1.1 accepted too (an old server's setting)
            context.set_ciphers("DEFAULT:@SECLEVEL=0")
            context.minimum_version = ssl.TLSVersion(0x0301)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    return server


def main(config_path):
    with open(config_path, encoding="utf-8") as handle:
        config = json.load(handle)
    servers = [serve(site) for site in config["sites"]]  # every port bound before serving any
    threads = [threading.Thread(target=server.serve_forever, daemon=True) for server in servers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


if __name__ == "__main__":
    main(sys.argv[1])
