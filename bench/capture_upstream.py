"""Record the first request body the service sends upstream, so the direct-to-simulator runs
replay byte-for-byte what the service itself would send.

Usage: capture_upstream.py PORT OUTFILE. Listens on 127.0.0.1 only, answers every request with
Gemini's documented 400 INVALID_ARGUMENT (not retried by the service), exits after the first.
"""

import http.server
import sys


class Capture(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("content-length", "0"))
        body = self.rfile.read(length)
        with open(sys.argv[2], "wb") as out:
            out.write(body)
        with open(sys.argv[2] + ".path", "w") as out:
            out.write(self.path)
        reply = b'{"error":{"code":400,"message":"captured","status":"INVALID_ARGUMENT"}}'
        self.send_response(400)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)
        self.server.captured = True

    def log_message(self, *args):
        pass


server = http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Capture)
server.captured = False
server.timeout = 30
while not server.captured:
    server.handle_request()
