#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""An FTP server for test-ftp.sh (pyftpdlib), on a free port of 127.0.0.1,
written to --port-file once it listens, with test hooks: --break-at N ends
the first download of --break-file after N bytes, as a dropped connection
would (the server says the transfer completed: only the size tells), and
--grow then appends a byte to that file, so that a resumed download would
splice two versions; --replace instead rewrites it with other bytes of the
same length and a later modification time, as a rebuilt image of a fixed
size would be."""
import argparse
import logging
import os

from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer

ap = argparse.ArgumentParser()
ap.add_argument("--root", required=True)
ap.add_argument("--port-file", required=True)
ap.add_argument("--log", required=True)
ap.add_argument("--user", default="user")
ap.add_argument("--password", default="secret")
ap.add_argument("--break-file", default=None)
ap.add_argument("--break-at", type=int, default=0)
ap.add_argument("--grow", action="store_true")
ap.add_argument("--replace", action="store_true")
args = ap.parse_args()

logging.basicConfig(filename=args.log, level=logging.INFO)
state = {"broken": False}


class Cut:
    """A file that ends after `left` bytes."""

    def __init__(self, f, left):
        self.f, self.left = f, left

    def read(self, n):
        data = self.f.read(min(n, self.left))
        self.left -= len(data)
        return data

    def __getattr__(self, name):
        return getattr(self.f, name)


class Handler(FTPHandler):
    def ftp_RETR(self, file):
        if (args.break_file and not state["broken"] and os.path.basename(file) == args.break_file):
            state["broken"] = True
            rest = self._restart_position
            real_push = self.push_dtp_data

            def push_cut(data, isproducer=False, file=None, cmd=None):
                data.file = Cut(data.file, args.break_at - rest)
                logging.info("test hook: cutting %s after byte %d", args.break_file, args.break_at)
                path = os.path.join(args.root, args.break_file)
                if args.grow:
                    with open(path, "ab") as g:
                        g.write(b"x")
                if args.replace:
                    st = os.stat(path)
                    with open(path, "r+b") as g:
                        g.write(b"\xa5" * st.st_size)
                    os.utime(path, (st.st_atime + 1000, st.st_mtime + 1000))
                return real_push(data, isproducer=isproducer, file=file, cmd=cmd)

            self.push_dtp_data = push_cut
            try:
                return super().ftp_RETR(file)
            finally:
                del self.push_dtp_data
        return super().ftp_RETR(file)


auth = DummyAuthorizer()
auth.add_user(args.user, args.password, args.root, perm="elr")
Handler.authorizer = auth
# Every byte through the producer, so that the cut applies (sendfile would
# send the file past it).
Handler.use_sendfile = False
server = FTPServer(("127.0.0.1", 0), Handler)
port = server.socket.getsockname()[1]
tmp = args.port_file + ".tmp"
with open(tmp, "w") as f:
    f.write("%d\n" % port)
os.rename(tmp, args.port_file)
server.serve_forever()
