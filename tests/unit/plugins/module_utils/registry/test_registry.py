"""registry.py: host derivation from proxyEndpoint, token decoding, references."""

import base64

import pytest

from ansible_collections.cloudops.ecr_replication.plugins.module_utils import registry

DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    "endpoint, host",
    [
        ("https://111111111111.dkr.ecr.ap-south-1.amazonaws.com", "111111111111.dkr.ecr.ap-south-1.amazonaws.com"),
        ("https://111111111111.dkr.ecr.cn-north-1.amazonaws.com.cn/", "111111111111.dkr.ecr.cn-north-1.amazonaws.com.cn"),
        ("http://127.0.0.1:46001", "127.0.0.1:46001"),
        ("127.0.0.1:46001", "127.0.0.1:46001"),
    ],
)
def test_registry_host(endpoint, host):
    assert registry.registry_host(endpoint) == host


@pytest.mark.parametrize("endpoint", ["", "   ", None, "https://user@host", "https://host/path", "ftp://x y"])
def test_registry_host_rejects(endpoint):
    with pytest.raises(registry.RegistryError):
        registry.registry_host(endpoint)


def test_scheme():
    assert registry.registry_scheme("http://127.0.0.1:1") == "http"
    assert registry.registry_scheme("https://x") == "https"
    assert registry.registry_scheme("x") == "https"


def test_decode_token_password_with_colons():
    token = base64.b64encode(b"AWS:pa:ss:word").decode()
    assert registry.decode_token(token) == ("AWS", "pa:ss:word")


@pytest.mark.parametrize("token", ["not base64!", base64.b64encode(b"nocolon").decode(), base64.b64encode(b":x").decode()])
def test_decode_token_rejects_without_leaking(token):
    with pytest.raises(registry.RegistryError) as e:
        registry.decode_token(token)
    assert token not in str(e.value)


def test_parse_authorization_cli_and_boto3_shapes():
    token = base64.b64encode(b"AWS:secret-password").decode()
    cli = {"authorizationData": [{"authorizationToken": token, "proxyEndpoint": "http://127.0.0.1:46003",
                                  "expiresAt": "2026-11-24T21:00:00+00:00"}]}
    auth = registry.parse_authorization(cli)
    assert auth["host"] == "127.0.0.1:46003" and auth["scheme"] == "http"
    assert auth["password"] == "secret-password" and auth["token"] == token
    assert auth["expires_at"].hour == 21
    assert registry.parse_authorization(dict(cli, authorizationData=[dict(cli["authorizationData"][0], expiresAt=1764018000.0)]))["expires_at"]
    with pytest.raises(registry.RegistryError):
        registry.parse_authorization({"authorizationData": []})


def test_auth_file_content():
    assert registry.auth_file_content({"b:1": "t2", "a:1": "t1"}) == {"auths": {"a:1": {"auth": "t1"}, "b:1": {"auth": "t2"}}}


def test_image_reference():
    assert registry.image_reference("h:1", "team-a/api", digest=DIGEST) == "docker://h:1/team-a/api@" + DIGEST
    assert registry.image_reference("h:1", "api", tag="v1.2") == "docker://h:1/api:v1.2"
    for bad in [dict(repository="--all", digest=DIGEST), dict(repository="a", digest="latest"),
                dict(repository="a", tag="-x"), dict(repository="a"), dict(repository="A", tag="x")]:
        repo = bad.pop("repository")
        with pytest.raises(registry.RegistryError):
            registry.image_reference("h", repo, **bad)
