#!/usr/bin/env python3
"""cbserver: a small real HTTP endpoint for the callback tests (python3 only). Licence: MIT.

    cbserver.py PORTFILE LOGFILE [--downlink HEX] [--fail-first-path PATH]

Binds 127.0.0.1 on a free port and writes the port to PORTFILE. Every request is appended
to LOGFILE as one JSON line {"method","path","headers":{..},"body":"<text>","status"}.
Answers: a JSON body with "ack": true gets {"<device>": {"downlinkData": HEX}} (the Sigfox
backend's format; 204 without --downlink); a request to PATH (--fail-first-path) gets 500
the first time a given body arrives (so the sender must retry); everything else 204.
"""
import http.server
import json
import os
import sys

port_file, log_file = sys.argv[1], sys.argv[2]
downlink = None
fail_path = None
args = sys.argv[3:]
while args:
    if args[0] == "--downlink":
        downlink = args[1]
    elif args[0] == "--fail-first-path":
        fail_path = args[1]
    else:
        sys.exit("cbserver: unknown argument " + args[0])
    args = args[2:]
seen_fail = set()


class H(http.server.BaseHTTPRequestHandler):
    def handle_any(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n).decode("utf-8", "replace") if n else ""
        status, out = 204, b""
        path = self.path.split("?")[0]
        if fail_path and path == fail_path and body not in seen_fail:
            seen_fail.add(body)
            status = 500
        else:
            try:
                js = json.loads(body) if body else None
            except ValueError:
                js = None
            if isinstance(js, dict) and js.get("ack") is True and downlink:
                out = json.dumps({js.get("device", ""): {"downlinkData": downlink}}).encode()
                status = 200
        with open(log_file, "a") as f:
            f.write(json.dumps({"method": self.command, "path": self.path,
                                "headers": {k.lower(): v for k, v in self.headers.items()},
                                "body": body, "status": status}) + "\n")
        self.send_response(status)
        if out:
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        if out:
            self.wfile.write(out)

    do_GET = do_POST = do_PUT = handle_any

    def log_message(self, *a):
        pass


srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
with open(port_file + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(port_file + ".tmp", port_file)
srv.serve_forever()
