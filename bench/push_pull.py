"""Push and verified-pull benchmark: ci-modelver vs skopeo vs oras-py on one local registry.

Run on demand (not part of the test suite):

    .venv/bin/python bench/push_pull.py            # 1 GiB as one file and as 16 files
    .venv/bin/python bench/push_pull.py --size-mib 256 --rounds 1   # a quick look

Every round writes fresh random bytes (skopeo mounts blobs it pushed before, and every tool
skips blobs the registry already has), so each tool uploads everything it is timed on.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.registry import find_registry_binary, start_registry, stop_registry  # noqa: E402

# Peak RSS is read from VmHWM, which (unlike ru_maxrss) restarts at exec: a child forked from
# this Python process would otherwise inherit its parent's footprint in the measurement.
PY_RUNNER = """
import re, sys, runpy
sys.argv = sys.argv[1:]
try:
    runpy.run_module(sys.argv[0], run_name="__main__") if sys.argv[0] != "-c" else exec(sys.argv[1])
except SystemExit as exc:
    code = exc.code
else:
    code = 0
hwm = re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read()).group(1)
print(f"vmhwm_kib={hwm}", file=sys.stderr)
sys.exit(code or 0)
"""

ORAS_PUSH = """
import sys, oras.client
host, target, files = sys.argv[2], sys.argv[3], sys.argv[4:]
client = oras.client.OrasClient(hostname=host, insecure=True)
client.push(target=target, files=files, disable_path_validation=True)
"""

ORAS_PULL = """
import sys, oras.client
host, target, out = sys.argv[2], sys.argv[3], sys.argv[4]
client = oras.client.OrasClient(hostname=host, insecure=True)
client.pull(target=target, outdir=out)
"""


@dataclass
class Timing:
    seconds: float
    rss_mib: float


def _hwm_kib(pid: int) -> int:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    match = re.search(r"VmHWM:\s+(\d+)", text)
    return int(match.group(1)) if match else 0


def run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> Timing:
    """Run a command; wall time and its peak RSS (VmHWM, sampled every 20 ms and at exit)."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=err)
        peak = 0
        while proc.poll() is None:
            peak = max(peak, _hwm_kib(proc.pid))
            time.sleep(0.02)
        elapsed = time.perf_counter() - start
        err.seek(0)
        text = err.read().decode(errors="replace")
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed: {text[-2000:]}")
    reported = re.findall(r"vmhwm_kib=(\d+)", text)
    if reported:
        peak = max(peak, int(reported[-1]))
    return Timing(elapsed, peak / 1024)


def write_random(folder: Path, count: int, size: int) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(count):
        name = f"shard-{i:02d}.bin"
        with (folder / name).open("wb") as out:
            left = size
            while left:
                block = os.urandom(min(left, 8 * 1024 * 1024))
                out.write(block)
                left -= len(block)
        names.append(name)
    return names


def write_manifest(folder: Path, names: list[str], version: str) -> Path:
    lines = ["name: bench", f"version: {version}", "files:"]
    lines += [f"  - {{path: {n}, type: weight}}" for n in names]
    path = folder / "modelver.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _median(values: list[Timing]) -> Timing:
    ordered = sorted(values, key=lambda t: t.seconds)
    middle = ordered[len(ordered) // 2]
    return Timing(middle.seconds, max(t.rss_mib for t in values))


def one_round(
    label: str, n: int, count: int, size: int, host: str, work: Path, cli: str, skopeo: str
) -> dict[str, Timing]:
    """One round with fresh bytes; the tools take turns going first so no one always meets a busy disk."""
    py = sys.executable
    tag = f"{label.replace(' ', '-')}-r{n}"
    home = work / f"home-{tag}"  # empty digest cache: the first publish pays for hashing
    env = {**os.environ, "SOURCE_DATE_EPOCH": "1767225600", "HOME": str(home)}
    src = work / f"src-{tag}"
    names = write_random(src, count, size)
    manifest = write_manifest(src, names, "1.0.0")
    layout = work / f"layout-{tag}"
    run(
        [cli, "publish", str(manifest), "--repository", f"oci:{layout}"],
        work,
        {**env, "MODELVER_NO_CACHE": "1"},
    )
    pushes = {
        "skopeo": [
            skopeo,
            "copy",
            "--dest-tls-verify=false",
            f"oci:{layout}:1.0.0",
            f"docker://{host}/skopeo-{tag}:1.0.0",
        ],
        "ci-modelver": [
            py,
            "-c",
            PY_RUNNER,
            "ci_modelver",
            "publish",
            str(manifest),
            "--repository",
            f"{host}/ours-{tag}",
        ],
        "oras-py": [py, "-c", PY_RUNNER, "-c", ORAS_PUSH, host, f"{host}/oras-{tag}:1.0.0", *names],
    }
    pulls = {
        "skopeo": [
            skopeo,
            "copy",
            "--src-tls-verify=false",
            f"docker://{host}/skopeo-{tag}:1.0.0",
            f"oci:{work / f'sk-out-{tag}'}:1.0.0",
        ],
        "ci-modelver": [
            py,
            "-c",
            PY_RUNNER,
            "ci_modelver",
            "pull",
            f"{host}/ours-{tag}:1.0.0",
            "-o",
            str(work / f"ours-out-{tag}"),
        ],
        "oras-py": [
            py,
            "-c",
            PY_RUNNER,
            "-c",
            ORAS_PULL,
            host,
            f"{host}/oras-{tag}:1.0.0",
            str(work / f"oras-out-{tag}"),
        ],
    }
    order = list(pushes)
    order = order[n % 3 :] + order[: n % 3]
    out: dict[str, Timing] = {}
    for tool in order:
        out[f"push/{tool}"] = run(pushes[tool], src if tool == "oras-py" else work, env)
    # Unchanged weights under a new version: only the config and the manifest move.
    write_manifest(src, names, "1.0.1")
    out["republish"] = run(pushes["ci-modelver"], work, env)
    for tool in order:
        out[f"pull/{tool}"] = run(pulls[tool], work, env)
    for name in names:
        assert (work / f"ours-out-{tag}" / name).stat().st_size == size
    for folder in (
        src,
        layout,
        work / f"sk-out-{tag}",
        work / f"ours-out-{tag}",
        work / f"oras-out-{tag}",
    ):
        shutil.rmtree(folder, ignore_errors=True)
    return out


def scenario(
    label: str, count: int, size: int, host: str, work: Path, cli: str, skopeo: str, rounds: int
) -> dict[str, object]:
    results = [one_round(label, n, count, size, host, work, cli, skopeo) for n in range(rounds)]
    med = {key: _median([r[key] for r in results]) for key in results[0]}
    tools = ("ci-modelver", "skopeo", "oras-py")
    return {
        "label": label,
        "push": {t: med[f"push/{t}"] for t in tools},
        "pull": {t: med[f"pull/{t}"] for t in tools},
        "republish": med["republish"],
    }


def report(results: list[dict[str, object]], total_mib: int, rounds: int) -> str:
    lines = [
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"registry: docker-registry on 127.0.0.1; payload {total_mib} MiB per scenario; "
        f"median of {rounds} rounds (peak RSS: the highest round)",
        "",
        "| scenario | operation | ci-modelver s | skopeo s | oras-py s | vs skopeo | vs oras-py | peak RSS MiB (ours / skopeo / oras-py) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for res in results:
        for op in ("push", "pull"):
            t = res[op]
            assert isinstance(t, dict)
            ours, sk, orp = t["ci-modelver"], t["skopeo"], t["oras-py"]
            lines.append(
                f"| {res['label']} | {op}{' (verified)' if op == 'pull' else ''} | {ours.seconds:.2f} | {sk.seconds:.2f} | "
                f"{orp.seconds:.2f} | {ours.seconds / sk.seconds:.2f}x | {ours.seconds / orp.seconds:.2f}x | "
                f"{ours.rss_mib:.0f} / {sk.rss_mib:.0f} / {orp.rss_mib:.0f} |"
            )
        rep = res["republish"]
        first = res["push"]["ci-modelver"]  # type: ignore[index]
        assert isinstance(rep, Timing)
        lines.append(
            f"| {res['label']} | re-publish, unchanged weights | {rep.seconds:.2f} | | | "
            f"{rep.seconds / first.seconds:.2f}x of first publish | | {rep.rss_mib:.0f} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--size-mib", type=int, default=1024, help="payload per scenario (default 1024)"
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="rounds per scenario; medians are shown (default 3)"
    )
    parser.add_argument("--json", action="store_true", help="also print raw numbers as JSON")
    args = parser.parse_args()
    registry_bin = find_registry_binary()
    skopeo = shutil.which("skopeo")
    cli = shutil.which("ci-modelver", path=str(Path(sys.executable).parent))
    if not (registry_bin and skopeo and cli):
        raise SystemExit(
            "needs docker-registry, skopeo and ci-modelver (run ./dev.sh test once first)"
        )
    size = args.size_mib * 1024 * 1024
    with tempfile.TemporaryDirectory(prefix="modelver-bench-") as tmp:
        work = Path(tmp)
        reg = start_registry(work / "registry", registry_bin)
        try:
            results = [
                scenario("1 file", 1, size, reg.host, work, cli, skopeo, args.rounds),
                scenario("16 files", 16, size // 16, reg.host, work, cli, skopeo, args.rounds),
            ]
        finally:
            stop_registry(reg)
    print(report(results, args.size_mib, args.rounds))
    if args.json:
        print(json.dumps(results, default=lambda t: t.__dict__, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
