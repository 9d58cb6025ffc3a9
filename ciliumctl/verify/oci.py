"""A small OCI distribution client: references, auth, manifests, blobs and referrers.

It speaks the OCI distribution API over ``requests``: anonymous access, HTTP basic auth and
bearer tokens (the Docker token protocol, including identity tokens) with credentials from
the Docker config file or a credential helper; HTTPS with the system or a custom CA, and
plain HTTP for loopback registries when ``insecure`` is set. Everything fetched by digest is
checked against that digest, so a registry (or a proxy) cannot substitute content.

Referrers are listed with the OCI 1.1 referrers API and, where the registry lacks it, with
the tag-schema fallback (an index tagged ``sha256-<hex>``) that cosign also writes.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import ipaddress
import json
import os
import re
import subprocess
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

from ciliumctl.verify.errors import (
    BadReference,
    NotFoundInRegistry,
    RegistryError,
    UsageError,
    VerificationFailed,
)

if TYPE_CHECKING:
    import requests

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
ACCEPT = ", ".join((OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST))

#: Hosts and repositories of Docker Hub.
DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"

MAX_MANIFEST_BYTES = 4 * 1024 * 1024
MAX_BLOB_BYTES = 256 * 1024 * 1024

_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$|^sha512:[0-9a-f]{128}$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_REPO = re.compile(
    r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$"
)


@dataclass(frozen=True)
class Reference:
    """An image reference: ``registry/repository[:tag][@digest]``."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, text: str) -> Reference:
        """Parse ``text`` as Docker does (``cilium/cilium`` is ``docker.io/cilium/cilium``)."""
        raw = text.strip()
        if not raw or any(c.isspace() for c in raw):
            raise BadReference(
                f"invalid image reference {text!r}", "use REGISTRY/REPO[:TAG|@DIGEST]"
            )
        rest, digest = raw, None
        if "@" in rest:
            rest, digest = rest.split("@", 1)
            if not _DIGEST.match(digest):
                raise BadReference(
                    f"invalid digest {digest!r} in image reference {text!r}",
                    "a digest looks like sha256:<64 hex digits>",
                )
        tag = None
        slash = rest.rfind("/")
        colon = rest.rfind(":")
        if colon > slash:
            rest, tag = rest[:colon], rest[colon + 1 :]
            if not _TAG.match(tag):
                raise BadReference(f"invalid tag {tag!r} in image reference {text!r}")
        first, _, remainder = rest.partition("/")
        if remainder and ("." in first or ":" in first or first == "localhost"):
            registry, repository = first, remainder
        else:
            registry, repository = DOCKER_HUB, rest
        if registry == DOCKER_HUB and "/" not in repository:
            repository = f"library/{repository}"
        if not _REPO.match(repository):
            raise BadReference(
                f"invalid repository {repository!r} in image reference {text!r}",
                "repository names are lower-case letters, digits and separators . _ -",
            )
        if tag is None and digest is None:
            tag = "latest"
        return cls(registry, repository, tag, digest)

    @property
    def name(self) -> str:
        """``registry/repository`` without tag or digest."""
        return f"{self.registry}/{self.repository}"

    @property
    def identifier(self) -> str:
        """The digest when known, else the tag: what goes into a manifest URL."""
        return self.digest or self.tag or "latest"

    def with_digest(self, digest: str) -> Reference:
        """The same image pinned to ``digest`` (the tag is kept for display)."""
        return Reference(self.registry, self.repository, self.tag, digest)

    def with_tag(self, tag: str) -> Reference:
        """Another tag in the same repository (no digest)."""
        return Reference(self.registry, self.repository, tag, None)

    def __str__(self) -> str:
        out = self.name
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out


@dataclass(frozen=True)
class Descriptor:
    """An OCI content descriptor."""

    media_type: str
    digest: str
    size: int
    annotations: Mapping[str, str] = field(default_factory=dict)
    artifact_type: str | None = None
    platform: Mapping[str, Any] | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Descriptor:
        """Build from the JSON form; raises :class:`RegistryError` when malformed."""
        try:
            digest = str(data["digest"])
            if not _DIGEST.match(digest):
                raise ValueError(digest)
            return cls(
                media_type=str(data.get("mediaType", "")),
                digest=digest,
                size=int(data.get("size", 0)),
                annotations={str(k): str(v) for k, v in (data.get("annotations") or {}).items()},
                artifact_type=data.get("artifactType"),
                platform=data.get("platform"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise RegistryError(f"malformed OCI descriptor: {exc}") from None

    def to_json(self) -> dict[str, Any]:
        """The JSON form of this descriptor."""
        out: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.size,
        }
        if self.artifact_type:
            out["artifactType"] = self.artifact_type
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.platform:
            out["platform"] = dict(self.platform)
        return out


@dataclass(frozen=True)
class Manifest:
    """A manifest or index as fetched: its bytes, digest, media type and parsed JSON."""

    ref: Reference
    digest: str
    media_type: str
    raw: bytes
    data: Mapping[str, Any]

    @property
    def is_index(self) -> bool:
        """True for OCI image indexes and Docker manifest lists."""
        return self.media_type in INDEX_TYPES

    @property
    def layers(self) -> list[Descriptor]:
        """The layer descriptors of an image manifest."""
        return [Descriptor.from_json(d) for d in self.data.get("layers") or []]

    @property
    def manifests(self) -> list[Descriptor]:
        """The child manifests of an index."""
        return [Descriptor.from_json(d) for d in self.data.get("manifests") or []]

    @property
    def config(self) -> Descriptor | None:
        """The config descriptor of an image manifest."""
        cfg = self.data.get("config")
        return Descriptor.from_json(cfg) if isinstance(cfg, Mapping) else None

    @property
    def artifact_type(self) -> str | None:
        """``artifactType``, or the config media type as the OCI spec says to fall back to."""
        at = self.data.get("artifactType")
        if at:
            return str(at)
        cfg = self.config
        return cfg.media_type if cfg else None

    @property
    def annotations(self) -> Mapping[str, str]:
        """The manifest's annotations."""
        return {str(k): str(v) for k, v in (self.data.get("annotations") or {}).items()}


def digest_of(data: bytes, algorithm: str = "sha256") -> str:
    """The OCI digest string of ``data``."""
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def check_digest(data: bytes, digest: str, what: str) -> None:
    """Raise :class:`VerificationFailed` unless ``data`` hashes to ``digest``."""
    algorithm = digest.split(":", 1)[0]
    if algorithm not in ("sha256", "sha512") or digest_of(data, algorithm) != digest:
        raise VerificationFailed(
            f"{what}: content does not match its digest {digest}",
            "the registry or a proxy served altered content",
        )


def is_loopback(registry: str) -> bool:
    """True when ``registry`` (``host[:port]``) is this machine."""
    host = registry.rsplit(":", 1)[0] if not registry.endswith("]") else registry
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# --------------------------------------------------------------------------- credentials


@dataclass(frozen=True)
class Credentials:
    """A user name and secret (a password, or an identity token when ``username`` is None)."""

    username: str | None
    secret: str = field(repr=False)

    @property
    def identity_token(self) -> bool:
        """True when the secret is an OAuth2 refresh ("identity") token."""
        return self.username is None


def docker_config_path() -> Path:
    """``$DOCKER_CONFIG/config.json`` or ``~/.docker/config.json``."""
    base = os.environ.get("DOCKER_CONFIG")
    return (Path(base) if base else Path.home() / ".docker") / "config.json"


def _config_keys(registry: str) -> list[str]:
    keys = [registry, f"https://{registry}", f"http://{registry}"]
    if registry in (DOCKER_HUB, DOCKER_HUB_API):
        keys += ["https://index.docker.io/v1/", "index.docker.io", DOCKER_HUB]
    return keys


def load_credentials(registry: str, config_file: Path | None = None) -> Credentials | None:
    """Credentials for ``registry`` from the Docker config file (or its credential helper)."""
    path = config_file or docker_config_path()
    try:
        config = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise RegistryError(
            f"cannot read the Docker config file {path}: {exc}",
            "fix the JSON or point $DOCKER_CONFIG elsewhere",
        ) from None
    if not isinstance(config, dict):
        return None
    keys = _config_keys(registry)
    helpers = config.get("credHelpers") or {}
    helper = next((helpers[k] for k in keys if k in helpers), None) or config.get("credsStore")
    auths = config.get("auths") or {}
    entry = next((auths[k] for k in keys if k in auths), None)
    if isinstance(entry, dict):
        if entry.get("identitytoken"):
            return Credentials(None, str(entry["identitytoken"]))
        if entry.get("auth"):
            try:
                user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                raise RegistryError(
                    f"the auth entry for {registry} in {path} is not base64 user:password",
                    f"log in again with `docker login {registry}`",
                ) from None
            return Credentials(user, password)
        if entry.get("username") and entry.get("password"):
            return Credentials(str(entry["username"]), str(entry["password"]))
    if isinstance(helper, str) and helper:
        return _from_helper(helper, registry)
    return None


def _from_helper(helper: str, registry: str) -> Credentials | None:
    exe = f"docker-credential-{helper}"
    try:
        proc = subprocess.run(
            [exe, "get"], input=registry, capture_output=True, text=True, timeout=30
        )
    except FileNotFoundError:
        raise RegistryError(
            f"credential helper {exe} (configured in {docker_config_path()}) is not on PATH",
            f"install {exe} or remove it from the Docker config",
        ) from None
    except subprocess.TimeoutExpired:
        raise RegistryError(f"credential helper {exe} did not answer within 30s") from None
    if proc.returncode != 0:
        return None  # "credentials not found": anonymous access
    try:
        data = json.loads(proc.stdout)
        user, secret = str(data["Username"]), str(data["Secret"])
    except (ValueError, KeyError, TypeError):
        raise RegistryError(f"credential helper {exe} printed malformed JSON") from None
    return Credentials(None if user == "<token>" else user, secret)


# --------------------------------------------------------------------------- client


def _parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, rest = header.strip().partition(" ")
    params = dict(re.findall(r'(\w+)="([^"]*)"', rest))
    return scheme.lower(), params


class RegistryClient:
    """Talks to OCI registries; safe to share between threads.

    ``insecure`` allows plain HTTP, and only for loopback registries (``localhost``,
    ``127.0.0.1``, ``[::1]``). ``ca_file`` adds a CA bundle for registries with a private
    CA. ``docker_config`` overrides the Docker config file searched for credentials.
    """

    def __init__(
        self,
        *,
        insecure: bool = False,
        ca_file: str | Path | None = None,
        docker_config: Path | None = None,
        timeout: float = 15.0,
        user_agent: str = "ciliumctl",
    ) -> None:
        self.insecure = insecure
        self.ca_file = str(ca_file) if ca_file else None
        if self.ca_file and not Path(self.ca_file).is_file():
            raise UsageError(f"CA file {self.ca_file} does not exist", "pass a PEM bundle")
        self.docker_config = docker_config
        self.timeout = timeout
        self.user_agent = user_agent
        # Passed on every request: a session-level setting loses to $REQUESTS_CA_BUNDLE.
        self._verify: str | bool = self.ca_file or True
        self._local = threading.local()
        self._lock = threading.Lock()
        self._tokens: dict[tuple[str, str], str] = {}
        self._basic: dict[str, Credentials] = {}
        self._creds: dict[str, Credentials | None] = {}

    # -- plumbing

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            import requests

            session = requests.Session()
            session.headers["User-Agent"] = self.user_agent
            session.trust_env = True
            self._local.session = session
        return session

    def base_url(self, registry: str) -> str:
        """``https://host`` (``http://`` for insecure loopback registries)."""
        host = DOCKER_HUB_API if registry == DOCKER_HUB else registry
        if self.insecure:
            if not is_loopback(registry):
                raise UsageError(
                    f"--insecure allows plain HTTP only for loopback registries, not {registry}",
                    "use HTTPS (with --ca-file for a private CA)",
                )
            return f"http://{host}"
        return f"https://{host}"

    def _credentials(self, registry: str) -> Credentials | None:
        with self._lock:
            if registry not in self._creds:
                self._creds[registry] = load_credentials(registry, self.docker_config)
            return self._creds[registry]

    def _request(
        self,
        method: str,
        ref: Reference,
        path: str,
        *,
        what: str,
        headers: Mapping[str, str] | None = None,
        scope_actions: str = "pull",
        data: bytes | None = None,
        params: Mapping[str, str] | None = None,
        stream: bool = False,
        url: str | None = None,
        allow: Iterable[int] = (),
    ) -> requests.Response:
        """One request with auth: retried once after a 401 challenge is answered."""
        import requests

        target = url or f"{self.base_url(ref.registry)}/v2/{ref.repository}/{path}"
        scope = f"repository:{ref.repository}:{scope_actions}"
        for attempt in range(2):
            hdrs = dict(headers or {})
            hdrs.update(self._auth_header(ref.registry, scope))
            try:
                resp = self._session().request(
                    method,
                    target,
                    headers=hdrs,
                    data=data,
                    params=params,
                    stream=stream,
                    timeout=self.timeout,
                    allow_redirects=True,
                    verify=self._verify,
                )
            except requests.exceptions.SSLError as exc:
                raise RegistryError(
                    f"TLS error talking to {ref.registry} ({what}): {_short(exc)}",
                    "pass --ca-file with the registry's CA bundle"
                    + (
                        ", or --insecure for a plain-HTTP loopback registry"
                        if is_loopback(ref.registry)
                        else ""
                    ),
                ) from None
            except requests.exceptions.ConnectionError as exc:
                raise RegistryError(
                    f"cannot reach registry {ref.registry} ({what}): {_short(exc)}",
                    "check the registry address, that it is running, and proxy settings",
                ) from None
            except requests.exceptions.Timeout:
                raise RegistryError(
                    f"registry {ref.registry} did not answer within {self.timeout:.0f}s ({what})"
                ) from None
            if resp.status_code == 401 and attempt == 0:
                challenge = resp.headers.get("WWW-Authenticate", "")
                resp.close()
                if self._answer_challenge(ref.registry, scope, challenge):
                    continue
            return self._check(resp, ref, what, allow)
        raise AssertionError("unreachable")

    def _check(
        self, resp: requests.Response, ref: Reference, what: str, allow: Iterable[int]
    ) -> requests.Response:
        code = resp.status_code
        if code < 300 or code in allow:
            return resp
        detail = _registry_error_detail(resp)
        resp.close()
        if code == 401:
            creds = self._credentials(ref.registry)
            raise RegistryError(
                f"registry {ref.registry} refused {what}: unauthorized{detail}",
                (
                    "the credentials in the Docker config were rejected; log in again with "
                    f"`docker login {ref.registry}`"
                )
                if creds
                else f"log in with `docker login {ref.registry}` (credentials are read from "
                f"{self.docker_config or docker_config_path()})",
            )
        if code == 403:
            raise RegistryError(
                f"registry {ref.registry} denied {what}: forbidden{detail}",
                "the account has no access to this repository",
            )
        if code == 404:
            raise NotFoundInRegistry(f"{what}: not found in {ref.name}{detail}")
        raise RegistryError(f"registry {ref.registry} answered HTTP {code} to {what}{detail}")

    def _auth_header(self, registry: str, scope: str) -> dict[str, str]:
        with self._lock:
            token = self._tokens.get((registry, scope))
            basic = self._basic.get(registry)
        if token:
            return {"Authorization": f"Bearer {token}"}
        if basic and basic.username is not None:
            raw = f"{basic.username}:{basic.secret}".encode()
            return {"Authorization": "Basic " + base64.b64encode(raw).decode()}
        return {}

    def _answer_challenge(self, registry: str, scope: str, header: str) -> bool:
        scheme, params = _parse_challenge(header)
        creds = self._credentials(registry)
        if scheme == "basic":
            if creds is None or creds.username is None:
                return False
            with self._lock:
                self._basic[registry] = creds
            return True
        if scheme != "bearer" or "realm" not in params:
            return False
        token = self._fetch_token(registry, params, scope, creds)
        with self._lock:
            self._tokens[(registry, scope)] = token
        return True

    def _fetch_token(
        self,
        registry: str,
        params: Mapping[str, str],
        scope: str,
        creds: Credentials | None,
    ) -> str:
        import requests

        realm = params["realm"]
        if not realm.startswith("https://") and not (realm.startswith("http://") and self.insecure):
            raise RegistryError(
                f"registry {registry} sent its token realm {realm!r} over plain HTTP",
                "refusing to send credentials in clear text",
            )
        query = {"scope": params.get("scope", scope)}
        if "service" in params:
            query["service"] = params["service"]
        try:
            if creds is not None and creds.identity_token:
                resp = self._session().post(
                    realm,
                    data={
                        **query,
                        "grant_type": "refresh_token",
                        "refresh_token": creds.secret,
                        "client_id": self.user_agent,
                    },
                    timeout=self.timeout,
                    verify=self._verify,
                )
            else:
                auth = (creds.username or "", creds.secret) if creds else None
                resp = self._session().get(
                    realm, params=query, auth=auth, timeout=self.timeout, verify=self._verify
                )
        except requests.exceptions.RequestException as exc:
            raise RegistryError(
                f"cannot get a token for {registry} from {realm}: {_short(exc)}"
            ) from None
        if resp.status_code in (401, 403):
            raise RegistryError(
                f"the token service of {registry} ({realm}) refused the credentials",
                f"log in again with `docker login {registry}`"
                if creds
                else f"log in with `docker login {registry}`",
            )
        if resp.status_code >= 300:
            raise RegistryError(
                f"the token service of {registry} ({realm}) answered HTTP {resp.status_code}"
            )
        try:
            body = resp.json()
            token = body.get("token") or body.get("access_token")
        except ValueError:
            token = None
        if not isinstance(token, str) or not token:
            raise RegistryError(f"the token service of {registry} ({realm}) sent no token")
        return token

    # -- reading

    def manifest(self, ref: Reference, accept: str = ACCEPT) -> Manifest:
        """Fetch the manifest or index ``ref`` names, checked against its digest."""
        what = f"manifest {ref}"
        resp = self._request(
            "GET", ref, f"manifests/{ref.identifier}", what=what, headers={"Accept": accept}
        )
        raw = _read_limited(resp, MAX_MANIFEST_BYTES, what)
        digest = ref.digest or resp.headers.get("Docker-Content-Digest") or digest_of(raw)
        check_digest(raw, digest, what)
        try:
            data = json.loads(raw)
            if not isinstance(data, dict):
                raise ValueError("not an object")
        except ValueError as exc:
            raise RegistryError(f"{what} is not valid JSON: {exc}") from None
        media_type = str(data.get("mediaType") or resp.headers.get("Content-Type", "")).split(";")[
            0
        ]
        return Manifest(ref.with_digest(digest), digest, media_type, raw, data)

    def manifest_or_none(self, ref: Reference, accept: str = ACCEPT) -> Manifest | None:
        """Like :meth:`manifest`, but ``None`` when it does not exist."""
        try:
            return self.manifest(ref, accept)
        except NotFoundInRegistry:
            return None

    def resolve(self, ref: Reference) -> str:
        """The digest ``ref`` names (the tag is resolved by the registry)."""
        if ref.digest:
            return ref.digest
        what = f"tag {ref}"
        resp = self._request(
            "HEAD", ref, f"manifests/{ref.identifier}", what=what, headers={"Accept": ACCEPT}
        )
        digest = resp.headers.get("Docker-Content-Digest", "")
        resp.close()
        if _DIGEST.match(digest):
            return digest
        return self.manifest(ref).digest

    def blob(self, ref: Reference, digest: str, max_bytes: int = MAX_BLOB_BYTES) -> bytes:
        """Fetch blob ``digest`` from ``ref``'s repository, checked against the digest."""
        what = f"blob {digest} of {ref.name}"
        resp = self._request("GET", ref, f"blobs/{digest}", what=what, stream=True)
        raw = _read_limited(resp, max_bytes, what)
        check_digest(raw, digest, what)
        return raw

    def platform_manifest(self, index: Manifest, os_name: str, arch: str) -> Manifest:
        """The image manifest for ``os_name/arch`` in a multi-arch index."""
        for desc in index.manifests:
            plat = desc.platform or {}
            if plat.get("os") == os_name and plat.get("architecture") == arch:
                return self.manifest(index.ref.with_digest(desc.digest))
        have = sorted(
            f"{(d.platform or {}).get('os')}/{(d.platform or {}).get('architecture')}"
            for d in index.manifests
            if d.platform
        )
        raise NotFoundInRegistry(
            f"{index.ref} has no image for {os_name}/{arch}",
            f"platforms in the index: {', '.join(have) or 'none'}",
        )

    def referrers(
        self, ref: Reference, digest: str, artifact_type: str | None = None
    ) -> list[Descriptor]:
        """Artifacts whose subject is ``digest``: the referrers API, else the tag fallback."""
        subject = ref.with_digest(digest)
        what = f"referrers of {subject}"
        params = {"artifactType": artifact_type} if artifact_type else None
        resp = self._request(
            "GET",
            subject,
            f"referrers/{digest}",
            what=what,
            headers={"Accept": OCI_INDEX},
            params=params,
            allow=(404, 405, 400),
        )
        descs: list[Descriptor]
        content_type = resp.headers.get("Content-Type", "").split(";")[0]
        if resp.status_code == 200 and content_type == OCI_INDEX:
            raw = _read_limited(resp, MAX_MANIFEST_BYTES, what)
            try:
                data = json.loads(raw)
            except ValueError as exc:
                raise RegistryError(f"{what}: invalid JSON: {exc}") from None
            descs = [Descriptor.from_json(d) for d in data.get("manifests") or []]
        else:
            resp.close()
            fallback = self.manifest_or_none(subject.with_tag(fallback_tag(digest)), OCI_INDEX)
            descs = fallback.manifests if fallback and fallback.is_index else []
        if artifact_type:
            descs = [d for d in descs if d.artifact_type == artifact_type]
        return descs

    def tags(self, ref: Reference) -> list[str]:
        """Every tag of ``ref``'s repository."""
        resp = self._request("GET", ref, "tags/list", what=f"tags of {ref.name}")
        try:
            return [str(t) for t in resp.json().get("tags") or []]
        except ValueError as exc:
            raise RegistryError(f"tags of {ref.name}: invalid JSON: {exc}") from None

    # -- writing (tests, mirroring)

    def blob_exists(self, ref: Reference, digest: str) -> bool:
        """True when the repository has blob ``digest``."""
        resp = self._request(
            "HEAD",
            ref,
            f"blobs/{digest}",
            what=f"blob {digest}",
            allow=(404,),
            scope_actions="pull,push",
        )
        resp.close()
        return resp.status_code < 300

    def push_blob(self, ref: Reference, data: bytes) -> Descriptor:
        """Upload ``data`` as a blob (monolithic upload); returns its descriptor."""
        digest = digest_of(data)
        desc = Descriptor("application/octet-stream", digest, len(data))
        if self.blob_exists(ref, digest):
            return desc
        what = f"blob upload to {ref.name}"
        resp = self._request("POST", ref, "blobs/uploads/", what=what, scope_actions="pull,push")
        location = resp.headers.get("Location")
        resp.close()
        if not location:
            raise RegistryError(f"{what}: the registry sent no upload location")
        url = urljoin(self.base_url(ref.registry) + "/", location)
        sep = "&" if "?" in url else "?"
        resp = self._request(
            "PUT",
            ref,
            "",
            url=f"{url}{sep}digest={digest}",
            what=what,
            data=data,
            headers={"Content-Type": "application/octet-stream"},
            scope_actions="pull,push",
        )
        resp.close()
        return desc

    def mount_blob(self, ref: Reference, digest: str, source_repository: str) -> bool:
        """Link blob ``digest`` from ``source_repository`` of the same registry into
        ``ref``'s repository without uploading it (OCI cross-repository mount); False when
        the registry did not mount it (the caller uploads instead)."""
        what = f"blob mount into {ref.name}"
        resp = self._request(
            "POST",
            ref,
            "blobs/uploads/",
            what=what,
            params={"mount": digest, "from": source_repository},
            scope_actions="pull,push",
        )
        location = resp.headers.get("Location")
        resp.close()
        if resp.status_code == 201:
            return True
        if location:  # an upload session was opened instead: close it, nothing was sent
            url = urljoin(self.base_url(ref.registry) + "/", location)
            with contextlib.suppress(RegistryError):
                self._request("DELETE", ref, "", url=url, what=what, allow=(404,)).close()
        return False

    def push_manifest(
        self, ref: Reference, data: Mapping[str, Any] | bytes, media_type: str
    ) -> str:
        """Upload a manifest under ``ref``'s tag (or by digest); returns its digest.

        ``bytes`` are uploaded verbatim (their digest is the one a layout already names).
        """
        raw = data if isinstance(data, bytes) else json.dumps(data, separators=(",", ":")).encode()
        digest = digest_of(raw)
        resp = self._request(
            "PUT",
            ref,
            f"manifests/{ref.tag or digest}",
            what=f"manifest upload to {ref}",
            data=raw,
            headers={"Content-Type": media_type},
            scope_actions="pull,push",
        )
        resp.close()
        return digest


def fallback_tag(digest: str) -> str:
    """The referrers tag-schema tag of ``digest`` (``sha256-<hex>``)."""
    return digest.replace(":", "-", 1)


def _read_limited(resp: requests.Response, limit: int, what: str) -> bytes:
    length = resp.headers.get("Content-Length")
    if length and length.isdigit() and int(length) > limit:
        resp.close()
        raise RegistryError(f"{what} is {int(length)} bytes, over the {limit}-byte limit")
    chunks: list[bytes] = []
    total = 0
    for chunk in resp.iter_content(chunk_size=1 << 16):
        total += len(chunk)
        if total > limit:
            resp.close()
            raise RegistryError(f"{what} is over the {limit}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


def _registry_error_detail(resp: requests.Response) -> str:
    try:
        errors = resp.json().get("errors") or []
        msgs = [str(e.get("message") or e.get("code")) for e in errors if isinstance(e, dict)]
    except (ValueError, AttributeError):
        return ""
    return f" ({'; '.join(msgs)})" if msgs else ""


def _short(exc: BaseException) -> str:
    text = str(exc)
    match = re.search(r"\[Errno -?\d+\] ([^'\")]+)|(Connection refused)", text)
    if match:
        return match.group(1) or match.group(2)
    return text[:200]
