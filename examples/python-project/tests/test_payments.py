"""The project's tests: they reach the payments API (the stub at $PAYMENTS_API_URL) with the
token secrets-run delivered. PAYMENTS_DEBUG=1 turns on the client's header dump, which
prints the token: secrets-run masks it and fails the step."""

import os
import urllib.error

import pytest

from payments_client import PaymentsClient, read_token


@pytest.fixture
def client():
    return PaymentsClient(os.environ["PAYMENTS_API_URL"], read_token(),
                          debug=os.environ.get("PAYMENTS_DEBUG") == "1")


def test_token_is_a_file_not_a_variable():
    assert "EXAMPLE_API_TOKEN" not in os.environ
    mode = os.stat(os.environ["API_TOKEN_FILE"]).st_mode & 0o777
    assert mode == 0o400


def test_balance(client):
    assert client.balance("acme") == 4200


def test_wrong_token_is_refused():
    bad = PaymentsClient(os.environ["PAYMENTS_API_URL"], "not-the-token")
    with pytest.raises(urllib.error.HTTPError) as e:
        bad.balance("acme")
    assert e.value.code == 401
