#!/usr/bin/env python3
"""A client of `meshy bridge`'s MJPEG stream (GET /stream/{topic}), independent of meshy: a plain
socket, the multipart parsing written here, and Pillow (Debian's python3-pil) to decode the JPEGs.

  mjpeg_client.py read HOST PORT PATH FRAMES       read FRAMES frames; each must have the SOI/EOI
                                                   markers and decode; prints "frame N WxH BYTES", "ok"
  mjpeg_client.py stall HOST PORT PATH SECONDS     read the head, then nothing for SECONDS (a slow
                                                   client: the bridge must not queue for it), then
                                                   read frames again; prints "stalled", "resumed", "ok"
                                                   or "dropped" when the bridge closed the connection

Run by tests/integration/bridge_rest_test.cpp. Progress on stdout, "FAIL: ..." and exit 1 on failure.
"""
import io
import socket
import sys
import time

from PIL import Image

DEADLINE_S = 30  # for any single read; generous for sanitizer builds on a busy machine


def say(line):
    print(line, flush=True)


class Stream:
    def __init__(self, host, port, path):
        self.sock = socket.create_connection((host, int(port)), timeout=DEADLINE_S)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: multipart/x-mixed-replace\r\n\r\n"
        self.sock.sendall(request.encode())
        self.buf = b""

    def fill(self):
        data = self.sock.recv(64 * 1024)
        if not data:
            raise EOFError("the bridge closed the connection")
        self.buf += data

    def line(self):
        while b"\r\n" not in self.buf:
            self.fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode("latin-1")

    def exactly(self, n):
        while len(self.buf) < n:
            self.fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def headers(self):
        headers = {}
        while True:
            line = self.line()
            if line == "":
                return headers
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()

    def head(self):
        status = self.line()
        headers = self.headers()
        if " 200 " not in status + " ":
            raise RuntimeError(f"status {status}")
        content_type = headers.get("content-type", "")
        if not content_type.startswith("multipart/x-mixed-replace") or "boundary=" not in content_type:
            raise RuntimeError(f"content type {content_type!r}")
        self.boundary = "--" + content_type.split("boundary=", 1)[1].strip('"')
        return headers

    def frame(self):
        line = self.line()
        while line == "":
            line = self.line()
        if line != self.boundary:
            raise RuntimeError(f"expected the boundary {self.boundary!r}, got {line!r}")
        headers = self.headers()
        if headers.get("content-type") != "image/jpeg":
            raise RuntimeError(f"part content type {headers.get('content-type')!r}")
        jpeg = self.exactly(int(headers["content-length"]))
        if self.exactly(2) != b"\r\n":
            raise RuntimeError("a part does not end in CRLF")
        return jpeg


def check_jpeg(jpeg):
    if jpeg[:2] != b"\xff\xd8":
        raise RuntimeError(f"no SOI marker: {jpeg[:4].hex()}")
    if jpeg[-2:] != b"\xff\xd9":
        raise RuntimeError(f"no EOI marker: {jpeg[-4:].hex()}")
    image = Image.open(io.BytesIO(jpeg))
    if image.format != "JPEG":
        raise RuntimeError(f"Pillow reads {image.format}")
    image.load()  # decodes every pixel: a truncated or corrupt image raises here
    return image.size


def main():
    mode, host, port, path, arg = sys.argv[1:6]
    stream = Stream(host, port, path)
    stream.head()
    say("head ok")
    if mode == "read":
        for n in range(int(arg)):
            jpeg = stream.frame()
            w, h = check_jpeg(jpeg)
            say(f"frame {n + 1} {w}x{h} {len(jpeg)}")
    elif mode == "stall":
        say("stalled")
        time.sleep(float(arg))  # the point of this client: it does not read
        say("resumed")
        try:
            for n in range(3):
                check_jpeg(stream.frame())
                say(f"frame {n + 1} after the stall")
        except (EOFError, ConnectionResetError):
            say("dropped")
            return
    else:
        raise RuntimeError(f"unknown mode {mode}")
    say("ok")


try:
    main()
except Exception as e:  # noqa: BLE001 - every failure is reported the same way
    say(f"FAIL: {type(e).__name__}: {e}")
    sys.exit(1)
