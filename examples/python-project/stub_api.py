"""A stand-in for the payments API, for the example's tests: HTTP on 127.0.0.1, a random
port written to PORT_FILE, GET /accounts/NAME/balance answers 200 with the expected bearer
token (read from TOKEN_FILE) and 401 without it. Serves until killed.

Usage: stub_api.py TOKEN_FILE PORT_FILE"""

import hmac
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer


def main():
    token_file, port_file = sys.argv[1], sys.argv[2]
    with open(token_file, encoding="utf-8") as f:
        expected = f"Bearer {f.read().strip()}".encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            got = self.headers.get("Authorization", "").encode()
            parts = self.path.strip("/").split("/")
            if not hmac.compare_digest(got, expected):
                status, body = 401, {"error": "bad token"}
            elif len(parts) == 3 and parts[0] == "accounts" and parts[2] == "balance":
                status, body = 200, {"account": parts[1], "balance": 4200}
            else:
                status, body = 404, {"error": "not found"}
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    with open(port_file + ".tmp", "w", encoding="utf-8") as f:
        f.write(f"{server.server_address[1]}\n")
    os.rename(port_file + ".tmp", port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
