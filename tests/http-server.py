#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""A small HTTP(S) server for test-http.sh: serves a directory on 127.0.0.1,
with single byte ranges, ETag and Last-Modified, and misbehaviours chosen by
leading path components:

  /noranges/     no Accept-Ranges, Range ignored
  /drop-once/    the first GET of each file breaks the connection halfway
                 through the body; later requests work
  /drop-noranges/ no ranges, and every GET breaks halfway
  /stall-once/   the first GET of each file sends half its body, then waits
                 (--stall seconds) and closes
  /stall-always/ every GET stalls there, at the middle of the file (a request
                 for what follows gets nothing before the stall)
  /redirect/     302 to the same path without this component
  /redirect-file/ 302 to file:///etc/hostname (which a client must refuse)
  /auth/         Basic authentication (--auth USER:PASSWORD) required
  /nohead/       HEAD is answered 405

Components combine (/redirect/auth/x). The port is written to --port-file
once the socket listens; every request is logged to --log as one line:
"METHOD PATH RANGE STATUS BODY-BYTES-SENT".
"""

import argparse
import base64
import email.utils
import http.server
import os
import socket
import ssl
import sys
import threading
import time

BEHAVIOURS = ("noranges", "drop-once", "drop-noranges", "stall-once", "stall-always", "redirect", "redirect-file",
              "auth", "nohead")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "bmapscan-test"

    def log_message(self, fmt, *args):
        pass

    def log_line(self, status, sent):
        with self.server.lock:
            with open(self.server.log_path, "a") as f:
                f.write("%s %s %s %d %d\n" % (self.command, self.path, self.headers.get("Range", "-").replace(" ", ""),
                                             status, sent))

    def split_path(self):
        parts = self.path.split("?", 1)[0].lstrip("/").split("/")
        flags = []
        while parts and parts[0] in BEHAVIOURS:
            flags.append(parts.pop(0))
        return flags, "/".join(parts)

    def plain(self, status, text, extra=()):
        body = (text + "\n").encode()
        self.send_response(status)
        for k, v in extra:
            self.send_header(k, v)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.log_line(status, 0)

    def do_HEAD(self):
        self.serve()

    def do_GET(self):
        self.serve()

    def serve(self):
        flags, rel = self.split_path()
        if "redirect-file" in flags:
            return self.plain(302, "elsewhere", [("Location", "file:///etc/hostname")])
        if "redirect" in flags:
            rest = [f for f in flags if f != "redirect"]
            query = "?" + self.path.split("?", 1)[1] if "?" in self.path else ""
            location = "/" + "/".join(rest + [rel]) + query
            return self.plain(302, "moved", [("Location", location)])
        if "auth" in flags:
            want = "Basic " + base64.b64encode(self.server.auth.encode()).decode()
            if self.headers.get("Authorization") != want:
                return self.plain(401, "who are you", [("WWW-Authenticate", 'Basic realm="test"')])
        if "nohead" in flags and self.command == "HEAD":
            return self.plain(405, "no HEAD here", [("Allow", "GET")])
        path = os.path.join(self.server.root, rel)
        if not rel or ".." in rel.split("/") or not os.path.isfile(path):
            return self.plain(404, "not found")

        st = os.stat(path)
        size = st.st_size
        etag = '"%x-%x"' % (size, st.st_mtime_ns)
        last_modified = email.utils.formatdate(st.st_mtime, usegmt=True)
        ranges = not ("noranges" in flags or "drop-noranges" in flags)

        start, end, status = 0, size, 200
        want = self.headers.get("Range")
        if_range = self.headers.get("If-Range")
        if ranges and want and (if_range is None or if_range in (etag, last_modified)):
            spec = want.strip()
            if not spec.startswith("bytes=") or "," in spec:
                return self.plain(416, "one byte range only", [("Content-Range", "bytes */%d" % size)])
            a, _, b = spec[6:].partition("-")
            try:
                start = int(a)
                end = int(b) + 1 if b else size
            except ValueError:
                return self.plain(416, "bad range", [("Content-Range", "bytes */%d" % size)])
            end = min(end, size)
            if start >= size or start >= end:
                return self.plain(416, "range not satisfiable", [("Content-Range", "bytes */%d" % size)])
            status = 206

        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(end - start))
        self.send_header("ETag", etag)
        self.send_header("Last-Modified", last_modified)
        if ranges:
            self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, end - 1, size))
        self.end_headers()
        if self.command == "HEAD":
            return self.log_line(status, 0)

        # Where this response misbehaves, if it does: halfway through its body.
        cut, stall = None, False
        key = self.path.split("?", 1)[0]
        with self.server.lock:
            first = key not in self.server.seen
            self.server.seen.add(key)
        if ("drop-once" in flags and first) or "drop-noranges" in flags:
            cut = start + (end - start) // 2
        if "stall-once" in flags and first:
            cut, stall = start + (end - start) // 2, True
        if "stall-always" in flags:
            # The file cannot be read past its middle.
            cut, stall = max(start, size // 2), True

        sent = 0
        with open(path, "rb") as f:
            f.seek(start)
            pos = start
            stop = end if cut is None else min(cut, end)
            while pos < stop:
                chunk = f.read(min(256 << 10, stop - pos))
                if not chunk:
                    break
                try:
                    self.wfile.write(chunk)
                except OSError:
                    break
                pos += len(chunk)
                sent += len(chunk)
        self.log_line(status, sent)
        if cut is not None:
            self.wfile.flush()
            if stall:
                time.sleep(self.server.stall)
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--root", required=True)
    p.add_argument("--port-file", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--auth", default="user:secret")
    p.add_argument("--stall", type=float, default=10)
    p.add_argument("--cert")
    p.add_argument("--key")
    a = p.parse_args()

    srv = Server(("127.0.0.1", 0), Handler)
    srv.root, srv.log_path, srv.auth, srv.stall = a.root, a.log, a.auth, a.stall
    srv.lock, srv.seen = threading.Lock(), set()
    if a.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.cert, a.key)
        # The handshake happens in the request's thread, so a client that
        # refuses the certificate does not hold up the others.
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True, do_handshake_on_connect=False)
    tmp = a.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.rename(tmp, a.port_file)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
