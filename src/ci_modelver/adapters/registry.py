"""An OCI registry repository as a Store (Distribution spec v1.1), with streaming transfers."""

from __future__ import annotations

import contextlib
import io
import re
import time
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlencode, urljoin

from ci_modelver.adapters.http import ANSWER_ADVICE, RegistryHTTP, Reply, describe_error
from ci_modelver.adapters.store import (
    BlobSource,
    ChunkReader,
    Progress,
    UploadNote,
    index_descriptors,
    write_verified,
)
from ci_modelver.adapters.upload_journal import UploadJournal
from ci_modelver.adapters.upload_session import BodySlice, ChunkedUploader
from ci_modelver.core import json_bounds, registry_limits
from ci_modelver.core.modelpack import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    MAX_MANIFEST_BYTES,
    OCI_INDEX,
    OCI_MANIFEST,
    Descriptor,
    sha256_digest,
)
from ci_modelver.errors import (
    DeleteUnsupported,
    InputError,
    IntegrityError,
    RemoteError,
    TooSlow,
)

_TRANSIENT_MANIFEST_ERRORS = {"DIGEST_INVALID", "BLOB_UNKNOWN", "MANIFEST_BLOB_UNKNOWN"}
_DOCKER_HUB = {"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}


def delete_advice(host: str) -> str:
    """How a registry that refuses OCI manifest deletes deletes instead."""
    if host == "ghcr.io":
        return (
            "GHCR deletes through GitHub's REST Packages API (package versions), which "
            "'ci-modelver prune' uses for ghcr.io repositories"
        )
    if host in _DOCKER_HUB:
        return (
            "Docker Hub deletes tags in its web UI (the repository's Tags tab) or with the Hub "
            "API (DELETE https://hub.docker.com/v2/repositories/NAMESPACE/REPOSITORY/tags/TAG/)"
        )
    return (
        "enable deletes in the registry's configuration (CNCF distribution / docker-registry: "
        "'storage: delete: enabled: true', then restart it; Harbor, Zot, ECR and ACR have their "
        "own setting or API)"
    )


def _content_length(reply: Reply) -> int | None:
    raw = reply.headers.get("Content-Length", "")
    return int(raw) if raw.isascii() and raw.isdigit() else None


def _error_code(reply: Reply) -> str:
    found = reply.error()
    return found[0] if found else ""


MANIFEST_ACCEPT = ", ".join([OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST])
# One page of a tag list: registries that ignore ?n= send every tag at once.
MAX_TAG_PAGE_BYTES = 16 * 1024 * 1024
MAX_TAG_PAGES = 1000
MAX_TAGS = 1_000_000
_LINK_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')
# Blobs from this size on go in chunks of DEFAULT_CHUNK, each one recorded in the upload
# journal, so an interrupted upload resends at most one chunk. Measured on docker-registry 2.8
# over loopback: 16 or 64 MiB chunks move 1 GiB as fast as one PUT (per-chunk cost is one
# request); over a real network, larger chunks keep the per-request round trip small.
RESUMABLE_MIN = 64 * 1024 * 1024
DEFAULT_CHUNK = 64 * 1024 * 1024


class RegistryStore:
    """A Store over one repository of an OCI registry."""

    def __init__(
        self,
        http: RegistryHTTP,
        path: str,
        *,
        chunk_size: int | None = None,
        journal: UploadJournal | None = None,
    ) -> None:
        self.http = http
        self.path = path
        self.display = f"{http.host}/{path}"
        self.chunk_size = chunk_size
        # ghcr.io caps PATCH bodies at 4 MiB: a chunked upload there uses at most that. By
        # default it gets one PUT per blob instead (what it accepts for any size), so neither
        # streaming nor resuming, which both need chunks, is used there unless asked for.
        limits = registry_limits.limits_for(http.host)
        self._chunked_by_default = limits is None or limits.max_patch is None
        self.uploader = ChunkedUploader(
            http,
            path,
            self.display,
            journal or UploadJournal(None),
            registry_limits.patch_size(http.host, chunk_size or DEFAULT_CHUNK),
        )
        self._referrers_supported: bool | None = None
        self._pull = f"repository:{path}:pull"
        self._push = f"repository:{path}:pull,push"

    def _manifest_url(self, reference: str) -> str:
        return f"/v2/{self.path}/manifests/{reference}"

    def resolve(self, tag: str) -> Descriptor | None:
        with self.http.request(
            "HEAD",
            self._manifest_url(tag),
            scope=self._pull,
            ok=(200,),
            allow=(404,),
            headers={"Accept": MANIFEST_ACCEPT},
            what=f"HEAD {self.display}:{tag}",
        ) as reply:
            if reply.status_code == 404:
                return None
            digest = reply.headers.get("Docker-Content-Digest")
            media = reply.headers.get("Content-Type", OCI_MANIFEST).split(";")[0].strip()
            size = _content_length(reply) or 0
        if not digest or not digest.startswith("sha256:"):
            # Some registries omit the digest on HEAD; the bytes decide.
            data, digest = self.get_manifest(tag)
            size = len(data)
        return Descriptor(media, digest, size)

    def transfer_stats(self) -> dict[str, int]:
        """Requests and retries so far (reported by publish)."""
        stats = self.http.stats
        return {"requests": stats.requests, "retries": stats.retries}

    def find_manifest(self, reference: str) -> tuple[bytes, str] | None:
        """Manifest bytes and digest, or None when the registry answers 404.

        The bytes are a JSON document within the parser's bounds (size, nesting), or this is a
        RemoteError: an HTML page or a broken document is the server's answer, not an artifact.
        """
        label = f"GET {self.display}{'@' if reference.startswith('sha256:') else ':'}{reference}"
        with self.http.request(
            "GET",
            self._manifest_url(reference),
            scope=self._pull,
            ok=(200,),
            allow=(404,),
            headers={"Accept": MANIFEST_ACCEPT},
            what=label,
        ) as reply:
            if reply.status_code == 404:
                return None
            # Read at most the limit: a hostile registry must not make us buffer an endless body.
            data = reply.read(MAX_MANIFEST_BYTES, "the manifest")
            content_type = reply.headers.get("Content-Type", "")
        digest = sha256_digest(data)
        if reference.startswith("sha256:") and digest != reference:
            raise IntegrityError(f"{label}: the registry returned bytes hashing to {digest}")
        json_bounds.load(
            data,
            source=f"{label}: the manifest",
            error=RemoteError,
            advice=ANSWER_ADVICE,
            max_bytes=MAX_MANIFEST_BYTES,
            content_type=content_type,
        )
        return data, digest

    def get_manifest(self, reference: str) -> tuple[bytes, str]:
        found = self.find_manifest(reference)
        if found is None:
            sep = "@" if reference.startswith("sha256:") else ":"
            # The tag or digest the user named does not exist: an input problem (exit 2).
            raise InputError(
                f"{self.display}{sep}{reference}: not found; check the tag or digest with 'ci-modelver versions {self.display}'"
            )
        return found

    def referrers_api(self, digest: str) -> list[Descriptor] | None:
        """Referrers from the OCI 1.1 referrers API, or None when the registry lacks it.

        Support is probed with a real GET (a header alone proves nothing); CNCF distribution
        2.8/3.x, GHCR and Docker Hub answer 404, so the caller uses the tag fallback.
        """
        if self._referrers_supported is False:
            return None
        with self.http.request(
            "GET",
            f"/v2/{self.path}/referrers/{digest}",
            scope=self._pull,
            ok=(200,),
            allow=(404, 400, 405),
            headers={"Accept": OCI_INDEX},
            what=f"GET {self.display} referrers of {digest}",
        ) as reply:
            media = reply.headers.get("Content-Type", "").split(";")[0].strip()
            if reply.status_code != 200 or media != OCI_INDEX:
                self._referrers_supported = False
                return None
            # It answers as the API: a body that is not an index within bounds is a failure.
            body = reply.json(MAX_MANIFEST_BYTES, "the referrers index")
        self._referrers_supported = True
        return index_descriptors(body)

    def blob_exists(self, descriptor: Descriptor) -> bool:
        with self.http.request(
            "HEAD",
            f"/v2/{self.path}/blobs/{descriptor.digest}",
            scope=self._pull,
            ok=(200,),
            allow=(404,),
            what=f"HEAD {self.display} blob {descriptor.digest}",
        ) as reply:
            if reply.status_code != 200:
                return False
            length = _content_length(reply)
        return length is None or length == descriptor.size

    @property
    def streams(self) -> bool:
        """Whether a blob can be hashed while it is sent (it needs a chunked upload)."""
        return self._chunked_by_default or self.chunk_size is not None

    def _chunked(self, size: int) -> bool:
        if self.chunk_size is not None:
            return size > 0
        return self._chunked_by_default and size >= RESUMABLE_MIN

    def push_blob(self, source: BlobSource, progress: Progress) -> bool:
        if self.blob_exists(source.descriptor):
            progress.finish(source.name, skipped=True)
            return False
        progress.start(source.name, source.descriptor.size)
        if self._chunked(source.descriptor.size):
            self.uploader.upload(
                source.name,
                source.descriptor.size,
                source.open,
                digest=source.descriptor.digest,
                local=source.path if source.opener is None else None,
                progress=progress,
            )
        else:
            self._upload_monolithic(source, progress)
        progress.finish(source.name, skipped=False)
        return True

    def push_stream(self, path: Path, name: str, size: int, progress: Progress) -> str:
        """Upload a file whose digest is not known yet, hashing it as it is sent."""
        progress.start(name, size)
        digest = self.uploader.upload(
            name, size, lambda: path.open("rb"), digest=None, local=path, progress=progress
        )
        progress.finish(name, skipped=False)
        return digest

    def transfer_notes(self) -> list[UploadNote]:
        """Uploads resumed from an earlier run, or restarted because that was not possible."""
        return list(self.uploader.notes)

    def _start_upload(self, what: str) -> str:
        with self.http.request(
            "POST",
            f"/v2/{self.path}/blobs/uploads/",
            scope=self._push,
            ok=(202,),
            what=what,
        ) as reply:
            location = reply.headers.get("Location")
        if not location:
            raise RemoteError(f"{what}: the registry gave no upload Location")
        return urljoin(self.http.url(f"/v2/{self.path}/blobs/uploads/"), location)

    @staticmethod
    def _with_query(url: str, **params: str) -> str:
        return f"{url}{'&' if '?' in url else '?'}{urlencode(params)}"

    def _upload_monolithic(self, source: BlobSource, progress: Progress) -> None:
        descriptor = source.descriptor
        what = f"upload {source.name} to {self.display}"
        # A retry restarts the whole session (new POST): a half-sent PUT leaves nothing behind
        # that a fresh upload could collide with, and blob uploads are content-addressed.
        attempts = 0
        while True:
            attempts += 1
            location = self._start_upload(what)
            opened: list[BinaryIO] = []

            def body(opened: list[BinaryIO] = opened) -> BodySlice:
                opened.append(source.open())
                return BodySlice(opened[-1], descriptor.size, None, progress, source.name)

            try:
                self.http.request(
                    "PUT",
                    self._with_query(location, digest=descriptor.digest),
                    scope=self._push,
                    ok=(201, 204),
                    body=body,
                    headers={
                        "Content-Type": "application/octet-stream",
                        "Content-Length": str(descriptor.size),
                    },
                    what=what,
                    size=descriptor.size,
                ).close()
                return
            except TooSlow:
                raise  # the allowance is spent: another session would only be as slow
            except RemoteError:
                # Another client may have committed the same content-addressed blob while we
                # sent ours (CNCF distribution then fails one of the two uploads): that is done.
                if self.blob_exists(descriptor):
                    return
                if attempts >= 2:
                    raise
            finally:
                for handle in opened:
                    handle.close()

    def read_blob(self, descriptor: Descriptor, limit: int) -> bytes:
        label = f"GET {self.display} blob {descriptor.digest}"
        if descriptor.size > limit:
            raise RemoteError(f"{label}: {descriptor.size} bytes is over the {limit} byte limit")
        received = bytearray()
        with self.http.request(
            "GET",
            f"/v2/{self.path}/blobs/{descriptor.digest}",
            scope=self._pull,
            ok=(200,),
            what=label,
            size=descriptor.size,
        ) as reply:
            for chunk in reply.chunks():
                received += chunk
                if len(received) > descriptor.size:
                    break
        data = bytes(received)
        if len(data) != descriptor.size or sha256_digest(data) != descriptor.digest:
            raise IntegrityError(f"{label}: content does not match its digest")
        return data

    def fetch_blob(self, descriptor: Descriptor, dest: Path, progress: Progress, name: str) -> None:
        label = f"GET {self.display} blob {descriptor.digest}"
        progress.start(name, descriptor.size)
        with self.http.request(
            "GET",
            f"/v2/{self.path}/blobs/{descriptor.digest}",
            scope=self._pull,
            ok=(200,),
            what=label,
            size=descriptor.size,
        ) as reply:
            write_verified(reply.chunks(1024 * 1024), dest, descriptor, progress, name, label)
        progress.finish(name, skipped=False)

    def open_blob(self, descriptor: Descriptor) -> BinaryIO:
        label = f"GET {self.display} blob {descriptor.digest}"
        reply = self.http.request(
            "GET",
            f"/v2/{self.path}/blobs/{descriptor.digest}",
            scope=self._pull,
            ok=(200,),
            what=label,
            size=descriptor.size,
        )
        return io.BufferedReader(ChunkReader(reply.chunks(1024 * 1024), reply.close), 1024 * 1024)

    def mount_blob(self, descriptor: Descriptor, source_path: str) -> bool:
        """Cross-repository mount (distribution spec, "Mounting a blob from another
        repository"): 201 means mounted; 202 means the registry opened an ordinary upload
        session instead, which is cancelled (the caller streams the blob)."""
        scope = f"{self._push} repository:{source_path}:pull"
        what = f"mount {descriptor.digest} from {self.http.host}/{source_path} into {self.display}"
        query = urlencode({"mount": descriptor.digest, "from": source_path})
        url = self.http.url(f"/v2/{self.path}/blobs/uploads/?{query}")
        with self.http.request("POST", url, scope=scope, ok=(201, 202), what=what) as reply:
            mounted = reply.status_code == 201
            location = reply.headers.get("Location")
        if not mounted and location:
            with contextlib.suppress(RemoteError):  # an abandoned session expires anyway
                self.http.request(
                    "DELETE",
                    urljoin(url, location),
                    scope=self._push,
                    ok=(204,),
                    allow=(400, 404, 405),
                    what=f"{what} (cancelling the upload session)",
                ).close()
        return mounted

    def put_manifest(self, tag: str | None, data: bytes, media_type: str) -> str:
        digest = sha256_digest(data)
        reference = tag or digest
        what = f"PUT {self.display}{':' if tag else '@'}{reference}"
        for attempt in range(1, 5):
            with self.http.request(
                "PUT",
                self._manifest_url(reference),
                scope=self._push,
                ok=(201, 204),
                allow=(400,),
                body=lambda: data,
                headers={"Content-Type": media_type},
                what=what,
                size=len(data),
            ) as reply:
                if reply.status_code != 400:
                    return digest
                # A blob this manifest references may still be committing from a concurrent
                # upload of the same content (CNCF distribution: DIGEST_INVALID, BLOB_UNKNOWN).
                if _error_code(reply) not in _TRANSIENT_MANIFEST_ERRORS or attempt == 4:
                    raise RemoteError(f"{what}: {describe_error(reply)}")
            time.sleep(0.2 * attempt)
        return digest

    def delete_manifest(self, digest: str) -> None:
        """``DELETE /v2/<name>/manifests/<digest>``: 202 deleted, 404 already gone.

        The registry also drops every tag naming the manifest; its blobs stay until the
        registry's own garbage collection. 405 or UNSUPPORTED: DeleteUnsupported, naming how
        this registry deletes instead.
        """
        what = f"DELETE {self.display}@{digest}"
        if self.http.host == "ghcr.io":
            raise DeleteUnsupported(f"{what}: {delete_advice(self.http.host)}")
        with self.http.request(
            "DELETE",
            self._manifest_url(digest),
            scope=f"repository:{self.path}:pull,push,delete",
            ok=(200, 202, 204),
            allow=(400, 404, 405),
            what=what,
        ) as reply:
            status, code = reply.status_code, _error_code(reply)
            if status == 404 and code not in ("", "MANIFEST_UNKNOWN", "NAME_UNKNOWN"):
                raise RemoteError(f"{what}: {describe_error(reply)}")
            if status == 405 or code == "UNSUPPORTED":
                raise DeleteUnsupported(
                    f"{what}: {self.http.host} does not delete manifests through the OCI API "
                    f"({describe_error(reply)}); {delete_advice(self.http.host)}"
                )
            if status == 400:
                raise RemoteError(f"{what}: {describe_error(reply)}")

    def tags(self) -> list[str]:
        url: str | None = f"/v2/{self.path}/tags/list?n=1000"
        out: list[str] = []
        seen_urls: set[str] = set()
        while url and url not in seen_urls:
            # A registry that always names a next page must not keep us (and our memory) for ever.
            if len(seen_urls) >= MAX_TAG_PAGES or len(out) > MAX_TAGS:
                raise RemoteError(
                    f"GET {self.display} tags: the registry keeps paginating (over "
                    f"{MAX_TAG_PAGES} pages or {MAX_TAGS} tags); this is not a tag list we can use"
                )
            seen_urls.add(url)
            with self.http.request(
                "GET",
                url,
                scope=self._pull,
                ok=(200,),
                allow=(404,),
                what=f"GET {self.display} tags",
            ) as reply:
                if reply.status_code == 404:
                    return out  # no repository yet (first page) or a registry that lost the rest
                body = reply.json(MAX_TAG_PAGE_BYTES, "the tag list")
                link = reply.headers.get("Link", "")
            tags = body.get("tags") if isinstance(body, dict) else None
            if not isinstance(body, dict) or not isinstance(tags, (list, type(None))):
                raise RemoteError(
                    f"GET {self.display} tags: the registry answered with a malformed tag list"
                )
            out.extend(t for t in (tags or []) if isinstance(t, str))
            match = _LINK_NEXT.search(link)
            # CNCF distribution 2.8 ignores n/last but still paginates correctly via Link.
            url = (
                urljoin(self.http.url(f"/v2/{self.path}/tags/list"), match.group(1))
                if match
                else None
            )
        return out
