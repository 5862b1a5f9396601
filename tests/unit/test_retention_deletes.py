"""What a registry that refuses OCI deletes is told to do instead, and what a prune failure says."""

from __future__ import annotations

import pytest

from ci_modelver.adapters.registry import delete_advice
from ci_modelver.commands.prune import _carry_out
from ci_modelver.core.retention import Deletion, PrunePlan, Rules
from ci_modelver.errors import GitHubError, RemoteError


@pytest.mark.parametrize(
    ("host", "fragment"),
    [
        ("ghcr.io", "GitHub's REST Packages API"),
        ("docker.io", "hub.docker.com/v2/repositories"),
        ("registry-1.docker.io", "web UI"),
        ("registry.example.com:5000", "storage: delete: enabled: true"),
    ],
)
def test_delete_advice_names_the_registry_s_own_way(host: str, fragment: str) -> None:
    assert fragment in delete_advice(host)


def plan_of(*deletions: Deletion) -> PrunePlan:
    return PrunePlan(Rules(keep_last=1), (), deletions, 0)


def test_deletes_go_referrers_then_manifest_then_index() -> None:
    seen: list[str] = []
    plan = plan_of(
        Deletion("sha256:v1", ("1.0.0",), (("sha256:e", "evaluation"),), True, ("t", "sha256:i")),
        Deletion("sha256:gone", (), (), False, ("t2", "sha256:i2")),
    )
    done = _carry_out(plan, seen.append, "oci:x")
    assert seen == ["sha256:e", "sha256:v1", "sha256:i", "sha256:i2"]
    assert done.to_json() == {"manifests": 1, "referrers": 1, "indexes": 2}


def test_a_failure_says_how_far_the_prune_got_and_keeps_its_class() -> None:
    def delete(digest: str) -> None:
        if digest == "sha256:v1":
            raise GitHubError("GitHub refused it", "no-permission", 403)

    plan = plan_of(Deletion("sha256:v1", ("1.0.0",), (("sha256:e", "signature"),), True, None))
    with pytest.raises(GitHubError) as caught:
        _carry_out(plan, delete, "ghcr.io/acme/models")
    assert caught.value.kind == "no-permission" and caught.value.status == 403
    message = str(caught.value)
    assert message.startswith("GitHub refused it (prune of ghcr.io/acme/models: deleted so far")
    assert "1 referrers" in message and "rerun the prune to finish" in message
    assert isinstance(caught.value, RemoteError)
