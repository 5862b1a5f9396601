"""Deleting ghcr.io versions through GitHub's REST Packages API, against the fake GitHub API.

Every request and answer is checked against GitHub's OpenAPI description by the ``fake_github``
fixture (a violation fails the test at teardown); under CI=true nothing here is skipped.
"""

from __future__ import annotations

import hashlib
import time

import pytest

from ci_modelver.adapters.github_packages import LAST_VERSION, PackageVersions
from ci_modelver.errors import GitHubError, InputError, exit_code_of
from tests.support.fake_github import FakeGitHub

pytestmark = pytest.mark.integration

ORG, USER, NAME = "acme", "alice", "models/churn"
VERSIONS = r"/packages/container/[^/]+/versions"
DELETE = VERSIONS + r"/\d+$"


def digest(n: int) -> str:
    return "sha256:" + hashlib.sha256(f"manifest {n}".encode()).hexdigest()


def versions_of(
    fake: FakeGitHub,
    owner: str,
    count: int,
    *,
    owner_type: str = "Organization",
    name: str = NAME,
) -> list[str]:
    """``count`` tagged versions of owner/name, oldest first; their digests."""
    found = [digest(i) for i in range(count)]
    for i, item in enumerate(found):
        fake.add_package_version(owner, name, item, [f"1.{i}.0"], owner_type=owner_type)
    return found


def client(
    fake: FakeGitHub,
    repository: str = f"{ORG}/{NAME}",
    token: str = FakeGitHub.INSTALLATION_TOKEN,
    *,
    timeout: float = 30.0,
) -> PackageVersions:
    env = {"GITHUB_TOKEN": token, "GITHUB_API_URL": fake.base_url}
    return PackageVersions.for_repository(repository, env, timeout=timeout)


def left(fake: FakeGitHub, owner: str = ORG, name: str = NAME) -> set[str]:
    return {v.name for v in fake.package_versions(owner, name)}


def operations(fake: FakeGitHub, method: str) -> list[str | None]:
    return [r.operation_id for r in fake.requests_matching(method, VERSIONS)]


# ---------------------------------------------------------------------------------------------
# Organizations and users


def test_an_organization_version_is_found_by_digest_and_deleted_by_id(
    fake_github: FakeGitHub,
) -> None:
    made = versions_of(fake_github, ORG, 3)
    target = fake_github.package_versions(ORG, NAME)[1]

    assert client(fake_github).delete_version(target.name) is True

    assert left(fake_github) == set(made) - {target.name}
    [gone] = fake_github.package_versions(ORG, NAME, deleted=True)
    assert gone.id == target.id and gone.deleted_at is not None
    assert operations(fake_github, "GET") == [
        "packages/get-all-package-versions-for-package-owned-by-org"
    ]
    [delete] = fake_github.requests_matching("DELETE")
    assert delete.operation_id == "packages/delete-package-version-for-org"
    assert delete.status == 204 and delete.login == FakeGitHub.BOT_LOGIN
    # The package name is one path segment, its '/' encoded.
    assert f"/orgs/{ORG}/packages/container/models%2Fchurn/versions/{target.id}" in (
        delete.raw_path
    )


def test_every_page_is_read_and_the_listing_is_reused(fake_github: FakeGitHub) -> None:
    made = versions_of(fake_github, ORG, 250)  # newest first: the oldest are on page 3
    versions = client(fake_github)

    assert versions.delete_version(made[0]) is True
    pages = fake_github.requests_matching("GET", VERSIONS)
    assert [(r.status, r.query.get("per_page")) for r in pages] == [(200, "100")] * 3
    assert [r.query.get("page") for r in pages] == [None, "2", "3"]  # through the Link header

    assert versions.delete_version(made[1]) is True  # known from the listing: no new GET
    assert len(fake_github.requests_matching("GET", VERSIONS)) == 3
    assert left(fake_github) == set(made[2:])


def test_the_token_users_own_package(fake_github: FakeGitHub) -> None:
    made = versions_of(fake_github, "octocat", 2, owner_type="User")
    versions = client(fake_github, f"octocat/{NAME}", FakeGitHub.PERSONAL_TOKEN)

    assert versions.delete_version(made[0]) is True

    assert left(fake_github, "octocat") == {made[1]}
    assert operations(fake_github, "GET") == [
        "packages/get-all-package-versions-for-package-owned-by-org",  # 404: not an org
        "packages/get-all-package-versions-for-package-owned-by-authenticated-user",
    ]
    assert [r.status for r in fake_github.requests_matching("GET", VERSIONS)] == [404, 200]
    assert [r.status for r in fake_github.requests_matching("GET", r"^/user$")] == [200]
    assert operations(fake_github, "DELETE") == [
        "packages/delete-package-version-for-authenticated-user"
    ]


def test_another_users_package_with_an_installation_token(fake_github: FakeGitHub) -> None:
    made = versions_of(fake_github, USER, 45, owner_type="User")
    versions = client(fake_github, f"{USER}/{NAME}")

    assert versions.delete_version(made[0]) is True  # the oldest: on page 2 of 30

    # GET /user is 403 for an installation token: the package is addressed by its user.
    assert [r.status for r in fake_github.requests_matching("GET", r"^/user$")] == [403]
    user_pages = [r for r in fake_github.requests_matching("GET", VERSIONS) if "/users/" in r.path]
    assert {r.operation_id for r in user_pages} == {
        "packages/get-all-package-versions-for-package-owned-by-user"
    }
    # No paging parameters are documented there: none is sent, the Link header is followed.
    assert [r.query for r in user_pages] == [{}, {"page": "2"}]
    assert operations(fake_github, "DELETE") == ["packages/delete-package-version-for-user"]
    assert made[0] not in left(fake_github, USER)


def test_the_token_is_chosen_from_modelver_github_token_first(fake_github: FakeGitHub) -> None:
    made = versions_of(fake_github, ORG, 2)
    env = {
        "MODELVER_GITHUB_TOKEN": FakeGitHub.PERSONAL_TOKEN,
        "GITHUB_TOKEN": "ghs_unknown",
        "GITHUB_API_URL": fake_github.base_url,
    }
    assert PackageVersions.for_repository(f"{ORG}/{NAME}", env, timeout=30).delete_version(made[0])
    assert {r.login for r in fake_github.requests} == {"octocat"}


def test_enterprise_server_base_url(fake_github_enterprise: FakeGitHub) -> None:
    fake = fake_github_enterprise
    made = versions_of(fake, ORG, 2, name="model")
    assert client(fake, f"{ORG}/model").delete_version(made[1]) is True
    assert all(r.raw_path.startswith("/api/v3/") for r in fake.requests)
    assert left(fake, name="model") == {made[0]}


# ---------------------------------------------------------------------------------------------
# Already gone, missing


def test_a_digest_no_version_has_is_already_gone(fake_github: FakeGitHub) -> None:
    made = versions_of(fake_github, ORG, 2)
    versions = client(fake_github)

    assert versions.delete_version(digest(99)) is False
    assert versions.delete_version(made[0]) is True
    assert versions.delete_version(made[0]) is False  # listed again: gone

    assert len(fake_github.requests_matching("DELETE")) == 1
    assert left(fake_github) == {made[1]}


def test_a_version_deleted_by_someone_else_meanwhile_is_already_gone(
    fake_github: FakeGitHub,
) -> None:
    made = versions_of(fake_github, ORG, 3)
    versions = client(fake_github)
    assert versions.delete_version(made[0]) is True
    # Another job deletes made[1] after our listing: our DELETE by its id answers 404.
    other = fake_github.package_versions(ORG, NAME)[1]
    fake_github.add_token("ghp_other", "bob")
    assert client(fake_github, token="ghp_other").delete_version(other.name) is True

    assert versions.delete_version(other.name) is False
    assert [r.status for r in fake_github.requests_matching("DELETE")] == [204, 204, 404]


def test_no_such_package(fake_github: FakeGitHub) -> None:
    fake_github.add_package(ORG, "other")
    with pytest.raises(GitHubError) as raised:
        client(fake_github).delete_version(digest(1))
    message = str(raised.value)
    assert raised.value.kind == "not-found" and exit_code_of(raised.value) == 3
    assert f"no container package '{NAME}' of '{ORG}'" in message
    assert f"/orgs/{ORG}/packages/container/models%2Fchurn/versions" in message
    assert f"/users/{ORG}/packages/container/models%2Fchurn/versions" in message
    assert "read:packages" in message


def test_no_token_names_both_variables() -> None:
    with pytest.raises(InputError) as raised:
        PackageVersions.for_repository(f"{ORG}/{NAME}", {}, timeout=5)
    assert "MODELVER_GITHUB_TOKEN" in str(raised.value) and "GITHUB_TOKEN" in str(raised.value)
    assert exit_code_of(raised.value) == 2


# ---------------------------------------------------------------------------------------------
# Refusals


def test_a_token_without_delete_packages_is_told_the_scope(fake_github: FakeGitHub) -> None:
    made = versions_of(fake_github, ORG, 2)
    fake_github.add_token("ghp_reader", "octocat", packages="read")

    with pytest.raises(GitHubError) as raised:
        client(fake_github, token="ghp_reader").delete_version(made[0])

    message = str(raised.value)
    assert raised.value.status == 403 and exit_code_of(raised.value) == 3
    assert "You need at least delete:packages and read:packages scopes" in message  # GitHub's
    assert "the delete:packages and read:packages scopes" in message  # ours
    assert "packages: write" in message and "packages=write" in message
    assert left(fake_github) == set(made)


def test_a_token_without_read_packages_is_told_the_scope(fake_github: FakeGitHub) -> None:
    made = versions_of(fake_github, ORG, 2)
    fake_github.add_token("ghp_nothing", "octocat", packages="none")
    with pytest.raises(GitHubError) as raised:
        client(fake_github, token="ghp_nothing").delete_version(made[0])
    assert raised.value.status == 403
    assert "read:packages" in str(raised.value) and "may not read" in str(raised.value)
    assert not fake_github.requests_matching("DELETE")


def test_a_reader_who_is_not_an_admin_of_the_package(fake_github: FakeGitHub) -> None:
    made = versions_of(fake_github, ORG, 2)
    fake_github.add_package(ORG, NAME).admins = frozenset({"octocat"})

    with pytest.raises(GitHubError) as raised:
        client(fake_github).delete_version(made[0])

    message = str(raised.value)
    assert raised.value.kind == "no-permission" and raised.value.status == 404
    assert "still listed" in message and "Admin role" in message
    assert "Package not found." in message
    assert left(fake_github) == set(made)


def test_the_last_version_is_refused_with_the_way_out(fake_github: FakeGitHub) -> None:
    [only] = versions_of(fake_github, ORG, 1)

    with pytest.raises(GitHubError) as raised:
        client(fake_github).delete_version(only)

    message = str(raised.value)
    assert raised.value.kind == LAST_VERSION == "last-version" and raised.value.status == 400
    assert exit_code_of(raised.value) == 3
    assert "You cannot delete the last version of a package" in message
    assert "delete the package itself" in message
    assert f"/orgs/{ORG}/packages/container/models%2Fchurn" in message
    assert left(fake_github) == {only}


def test_the_last_tagged_version_is_refused_but_untagged_ones_go(fake_github: FakeGitHub) -> None:
    tagged = fake_github.add_package_version(ORG, NAME, digest(1), ["1.0.0"]).name
    untagged = fake_github.add_package_version(ORG, NAME, digest(2)).name
    fake_github.add_package_version(ORG, NAME, digest(3))
    versions = client(fake_github)

    with pytest.raises(GitHubError, match="last tagged version") as raised:
        versions.delete_version(tagged)
    assert raised.value.kind == LAST_VERSION
    assert versions.delete_version(untagged) is True
    assert left(fake_github) == {tagged, digest(3)}


def test_a_token_github_echoes_is_never_shown(fake_github: FakeGitHub) -> None:
    made = versions_of(fake_github, ORG, 2)
    secret = "ghp_" + "S3cr3t" * 6
    fake_github.add_token(secret, "octocat")
    fake_github.answer_with("DELETE", DELETE, 403, f"token {secret} may not delete this")

    with pytest.raises(GitHubError) as raised:
        client(fake_github, token=secret).delete_version(made[0])
    assert secret not in str(raised.value) and "<redacted>" in str(raised.value)


# ---------------------------------------------------------------------------------------------
# Waits and writes that may have been applied


def test_a_delete_whose_answer_never_comes_is_checked_not_resent(fake_github: FakeGitHub) -> None:
    made = versions_of(fake_github, ORG, 3)
    fake_github.lose_answer("DELETE", DELETE, after=30.0)  # applied; the answer comes too late
    versions = client(fake_github, timeout=8.0)  # 2 s a request

    started = time.monotonic()
    assert versions.delete_version(made[0]) is True
    assert time.monotonic() - started < 8.0

    assert len(fake_github.requests_matching("DELETE")) == 1
    assert len(fake_github.requests_matching("GET", VERSIONS)) == 2  # listed, then checked
    assert left(fake_github) == set(made[1:])


def test_a_dropped_connection_after_the_delete_is_checked(fake_github: FakeGitHub) -> None:
    made = versions_of(fake_github, ORG, 3)
    fake_github.lose_answer("DELETE", DELETE)  # applied, then the connection closes
    assert client(fake_github).delete_version(made[0]) is True
    assert len(fake_github.requests_matching("DELETE")) == 1


def test_a_delete_dropped_before_github_saw_it_is_sent_again(fake_github: FakeGitHub) -> None:
    made = versions_of(fake_github, ORG, 3)
    fake_github.drop_request("DELETE", DELETE)  # never handled
    assert client(fake_github).delete_version(made[0]) is True
    # Listed again first: still there, so the DELETE went out once more.
    assert len(fake_github.dropped) == 1
    assert [r.status for r in fake_github.requests_matching("DELETE")] == [204]
    assert len(fake_github.requests_matching("GET", VERSIONS)) == 2
    assert left(fake_github) == set(made[1:])


def test_a_rate_limited_delete_waits_for_retry_after(fake_github: FakeGitHub) -> None:
    made = versions_of(fake_github, ORG, 2)
    fake_github.rate_limit("DELETE", DELETE, retry_after=1)

    started = time.monotonic()
    assert client(fake_github).delete_version(made[0]) is True
    assert time.monotonic() - started >= 1.0
    assert [r.status for r in fake_github.requests_matching("DELETE")] == [403, 204]


def test_a_wait_longer_than_the_budget_gives_up_at_once(fake_github: FakeGitHub) -> None:
    made = versions_of(fake_github, ORG, 2)
    fake_github.rate_limit("GET", VERSIONS, retry_after=600)

    started = time.monotonic()
    with pytest.raises(GitHubError) as raised:
        client(fake_github, timeout=20).delete_version(made[0])
    assert time.monotonic() - started < 5
    assert "secondary rate limit" in str(raised.value) and "600s" in str(raised.value)
    assert not fake_github.requests_matching("DELETE")


def test_server_errors_while_listing_are_retried(fake_github: FakeGitHub) -> None:
    made = versions_of(fake_github, ORG, 2)
    fake_github.answer_with("GET", VERSIONS, 502, "Server Error", times=2)
    assert client(fake_github).delete_version(made[0]) is True
    assert [r.status for r in fake_github.requests_matching("GET", VERSIONS)] == [502, 502, 200]
