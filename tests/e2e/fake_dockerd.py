#!/usr/bin/env python3
"""A stand-in Docker daemon on a unix socket, for the end-to-end suite.

No Docker engine runs on the test machines, but `docker pull` resolves credentials in the CLI
(through the credential helper) before it asks the daemon to pull. This answers the CLI's ping and
version calls and records what `POST /images/create` carries in `X-Registry-Auth` — as a
fingerprint (sha256, 12 hex digits) of the identity token, never the token.

Usage: fake_dockerd.py SOCKET LOGFILE
"""
import base64
import hashlib
import json
import os
import socketserver
import sys
from http.server import BaseHTTPRequestHandler

SOCKET, LOG = sys.argv[1], sys.argv[2]
API = "1.43"


def fp(token):
    return hashlib.sha256(token.encode()).hexdigest()[:12]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def address_string(self):
        return "unix"

    def log_message(self, *args):
        pass

    def reply(self, status, body=b"", ctype="application/json"):
        self.send_response(status)
        self.send_header("Api-Version", API)
        self.send_header("Docker-Experimental", "false")
        self.send_header("Ostype", "linux")
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        path = self.path.split("?")[0]
        if path.endswith("/_ping"):
            self.reply(200, b"OK", "text/plain")
        elif path.endswith("/version"):
            self.reply(200, json.dumps({"Version": "0.0.0-fake", "ApiVersion": API,
                                        "MinAPIVersion": "1.24", "Os": "linux",
                                        "Arch": "amd64"}).encode())
        else:
            self.reply(404, b'{"message":"not implemented in the fake daemon"}')

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        path = self.path.split("?")[0]
        if path.endswith("/images/create"):
            raw = self.headers.get("X-Registry-Auth", "")
            auth = {}
            if raw:
                padded = raw + "=" * (-len(raw) % 4)
                auth = json.loads(base64.urlsafe_b64decode(padded))
            event = {"party": "dockerd", "event": "images_create", "query": self.path.split("?", 1)[-1],
                     "has_username": bool(auth.get("username")), "has_password": bool(auth.get("password")),
                     "identitytoken": fp(auth["identitytoken"]) if auth.get("identitytoken") else None,
                     "serveraddress": auth.get("serveraddress")}
            with open(LOG, "a") as f:
                f.write(json.dumps(event) + "\n")
            self.reply(200, b'{"status":"Pulled by the fake daemon"}\n')
        else:
            self.reply(404, b'{"message":"not implemented in the fake daemon"}')


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


if os.path.exists(SOCKET):
    os.unlink(SOCKET)
with Server(SOCKET, Handler) as server:
    print("ready", flush=True)
    server.serve_forever()
