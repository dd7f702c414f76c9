"""The project's code under test: a tiny client of a payments API.

The token is read from the file secrets-run delivers ($API_TOKEN_FILE), never from an
environment variable or the command line."""

import json
import os
import urllib.request


def read_token():
    with open(os.environ["API_TOKEN_FILE"], encoding="utf-8") as f:
        return f.read().strip()


class PaymentsClient:
    def __init__(self, base_url, token, debug=False):
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.debug = debug

    def balance(self, account):
        req = urllib.request.Request(
            f"{self.base_url}/accounts/{account}/balance",
            headers={"Authorization": f"Bearer {self.token}"})
        if self.debug:
            # The classic leak: request debugging that dumps the headers.
            print(f"DEBUG GET {req.full_url} headers={dict(req.header_items())}")
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.load(resp)["balance"]
