"""Joining a Ray cluster that uses token authentication: a refused connection says which variables to set, and
nothing is written (vfx connects to Ray before it creates the store)."""

import pytest
import ray
from ray.exceptions import AuthenticationError

import vfx
from vfx.engine.driver import init_ray
from vfx.errors import UsageError


@pytest.fixture
def refusing_ray(monkeypatch):
    """`ray.init` fails the way Ray 2.60 refuses a driver without the cluster's token (its own exception and text)."""
    calls = []

    def init(*args, **kwargs):
        calls.append(kwargs.get("address"))
        raise AuthenticationError("Token authentication is enabled but the authentication token is invalid or incorrect.")

    monkeypatch.setattr(ray, "init", init)
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    return calls


def test_a_refused_token_says_which_variables_to_set(refusing_ray):
    with pytest.raises(UsageError) as caught:
        init_ray("auto")
    message = str(caught.value)
    assert refusing_ray == ["auto"]
    assert message.startswith("cannot connect to Ray at 'auto': the cluster requires token authentication (")
    assert "set RAY_AUTH_TOKEN to the cluster's token (or RAY_AUTH_TOKEN_PATH to a file holding it), with " \
           "RAY_AUTH_MODE=token" in message
    assert "\n" not in message


def test_a_refused_connection_leaves_no_store_behind(refusing_ray, tiny_dataset, tmp_path):
    out = tmp_path / "frames"
    with pytest.raises(UsageError, match="RAY_AUTH_TOKEN"):
        vfx.extract_frames(tiny_dataset, out, short_side=32, run=vfx.RunOptions(address="auto", progress=False))
    assert not out.exists()
