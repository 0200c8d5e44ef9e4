# -*- coding: utf-8 -*-

# Copyright: Contributors to the Ansible project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Registry addresses and ECR authorization tokens: the one place for both.

The registry host of an account+region is derived from ``GetAuthorizationToken``'s
``proxyEndpoint`` (``https://<account>.dkr.ecr.<region>.amazonaws.com`` on AWS,
``http://127.0.0.1:<port>`` in the local sandbox), never built from a hard-coded domain.

Everything between the ``bundle:start``/``bundle:end`` markers is plain standard-library
Python: ``replicator.render_buildspec()`` inlines it into ``buildspec.yml``.
"""

from __future__ import annotations

# bundle:start registry
import base64
import binascii
import datetime
import re
from typing import Any
from typing import Dict
from typing import Optional
from typing import Tuple

DIGEST_RE = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$")
# https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_CreateRepository.html (repositoryName pattern)
REPOSITORY_RE = re.compile(r"^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$")
TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


class RegistryError(ValueError):
    """A proxyEndpoint, token or reference that cannot be used."""


def registry_host(proxy_endpoint: str) -> str:
    """``https://1.dkr.ecr.r.amazonaws.com/`` -> ``1.dkr.ecr.r.amazonaws.com``; ``http://127.0.0.1:9`` -> ``127.0.0.1:9``."""
    if not isinstance(proxy_endpoint, str) or not proxy_endpoint.strip():
        raise RegistryError("proxyEndpoint is empty")
    value = proxy_endpoint.strip()
    match = re.match(r"^(?:(https?)://)?([^/?#\s]+)/*$", value)
    if not match or "@" in match.group(2):
        raise RegistryError("proxyEndpoint %r is not a registry address" % proxy_endpoint)
    return match.group(2).lower()


def registry_scheme(proxy_endpoint: str) -> str:
    """``http`` or ``https`` (the default when the endpoint has no scheme)."""
    match = re.match(r"^(https?)://", (proxy_endpoint or "").strip())
    return match.group(1) if match else "https"


def decode_token(token: str) -> Tuple[str, str]:
    """An ECR authorizationToken is base64("AWS:<password>"); return (user, password)."""
    try:
        decoded = base64.b64decode(token, validate=True).decode("utf-8")
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise RegistryError("authorizationToken is not base64 of user:password") from None
    user, sep, password = decoded.partition(":")
    if not sep or not user or not password:
        raise RegistryError("authorizationToken is not base64 of user:password")
    return user, password


def _parse_time(value: Any) -> Optional[datetime.datetime]:
    if value is None or value == "":
        return None
    if isinstance(value, datetime.datetime):
        return value if value.tzinfo else value.replace(tzinfo=datetime.timezone.utc)
    if isinstance(value, (int, float)):
        return datetime.datetime.fromtimestamp(value, tz=datetime.timezone.utc)
    text = str(value).strip()
    try:
        return _parse_time(float(text))
    except ValueError:
        pass
    text = text.replace("Z", "+00:00")
    try:
        return _parse_time(datetime.datetime.fromisoformat(text))
    except ValueError:
        raise RegistryError("expiresAt %r is not a time" % value) from None


def parse_authorization(response: Dict[str, Any]) -> Dict[str, Any]:
    """The first ``authorizationData`` of a GetAuthorizationToken response (boto3 or ``aws ecr ... --output json``).

    Returns ``{"host", "scheme", "token", "user", "password", "expires_at"}``; ``token`` is kept as is because
    it is exactly the value a Docker/containers auth file wants in ``auth``.
    """
    data = (response or {}).get("authorizationData") or []
    if not data:
        raise RegistryError("GetAuthorizationToken returned no authorizationData")
    first = data[0]
    token = first.get("authorizationToken") or ""
    user, password = decode_token(token)
    return {
        "host": registry_host(first.get("proxyEndpoint") or ""),
        "scheme": registry_scheme(first.get("proxyEndpoint") or ""),
        "token": token,
        "user": user,
        "password": password,
        "expires_at": _parse_time(first.get("expiresAt")),
    }


def auth_file_content(auths: Dict[str, str]) -> Dict[str, Any]:
    """containers-auth.json(5) content for {host: authorizationToken}."""
    return {"auths": {host: {"auth": token} for host, token in sorted(auths.items())}}


def image_reference(host: str, repository: str, digest: Optional[str] = None, tag: Optional[str] = None) -> str:
    """``docker://host/repository@digest`` (or ``:tag``), validated so no option can be smuggled in."""
    if not REPOSITORY_RE.match(repository or ""):
        raise RegistryError("repository name %r is not valid" % repository)
    if (digest is None) == (tag is None):
        raise RegistryError("a reference needs exactly one of digest or tag")
    if digest is not None and not DIGEST_RE.match(digest):
        raise RegistryError("digest %r is not valid" % digest)
    if tag is not None and not TAG_RE.match(tag):
        raise RegistryError("tag %r is not valid" % tag)
    suffix = "@" + digest if digest is not None else ":" + tag
    return "docker://%s/%s%s" % (host, repository, suffix)


# bundle:end registry
