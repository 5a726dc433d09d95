#!/usr/bin/env python3
"""A stand-in for API Gateway in front of the Lambda emulator, for the fuzzing run.

HTTP in; out goes an API Gateway v2 event to the emulator's invoke endpoint, routed as
template.yaml routes (`/api/v1/configs/...` to user-services, everything else to licenses),
carrying an operator's verified JWT claims in `requestContext.authorizer.jwt` the way the HTTP
API's JWT authorizer passes them, so the functions run with their authorization check on. The
function's API Gateway response comes back as the HTTP response.

Usage: apigw.py EMULATOR_URL PORT
"""
import base64
import http.server
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
import uuid

EMULATOR = sys.argv[1].rstrip("/")
PORT = int(sys.argv[2])
CLAIMS = {"sub": "schemathesis", "scope": "licenses/operator"}


class Gateway(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def handle_any(self):
        url = urllib.parse.urlsplit(self.path)
        # API Gateway refuses control characters in header values before any function runs.
        if any(ch < " " and ch != "\t" for v in self.headers.values() for ch in v):
            return self.reply(400, {"content-type": "application/json"}, b'{"message":"Bad Request"}')
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        params = {}
        for key, value in urllib.parse.parse_qsl(url.query, keep_blank_values=True):
            # API Gateway joins repeated keys with commas.
            params[key] = f"{params[key]},{value}" if key in params else value
        try:
            body, encoded = raw.decode("utf-8"), False
        except UnicodeDecodeError:
            body, encoded = base64.b64encode(raw).decode(), True
        event = {
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": url.path,
            "rawQueryString": url.query,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "queryStringParameters": params or None,
            "requestContext": {
                "accountId": "123456789012",
                "apiId": "local",
                "domainName": "localhost",
                "domainPrefix": "local",
                "http": {"method": self.command, "path": url.path, "protocol": "HTTP/1.1",
                         "sourceIp": "127.0.0.1", "userAgent": self.headers.get("user-agent", "")},
                "requestId": str(uuid.uuid4()),
                "routeKey": "$default",
                "stage": "$default",
                "time": "23/Nov/2026:12:00:00 +0000",
                "timeEpoch": 1795435200000,
                "authorizer": {"jwt": {"claims": CLAIMS, "scopes": None}},
            },
            "body": body if raw else None,
            "isBase64Encoded": encoded,
        }
        function = "user-services" if url.path.startswith("/api/v1/configs") else "licenses"
        request = urllib.request.Request(
            f"{EMULATOR}/2015-03-31/functions/{function}/invocations",
            data=json.dumps(event).encode(),
            method="POST",
            headers={"content-type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                answer = json.load(response)
        except urllib.error.HTTPError as failure:
            # The invocation itself failed (the function could not take the event): what API
            # Gateway answers then.
            sys.stderr.write(f"apigw: {self.command} {self.path}: {failure.read()[:300]!r}\n")
            answer = {"statusCode": 502, "headers": {"content-type": "application/json"},
                      "body": json.dumps({"message": "Internal Server Error"})}
        out = answer.get("body") or ""
        out = base64.b64decode(out) if answer.get("isBase64Encoded") else out.encode()
        self.reply(answer["statusCode"], answer.get("headers") or {}, out)

    def reply(self, status, headers, body):
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def __getattr__(self, name):
        # Every method reaches the function, as with the template's ANY routes (it answers 405).
        if name.startswith("do_"):
            return self.handle_any
        raise AttributeError(name)

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", PORT), Gateway).serve_forever()
