"""Transfer benchmark: ci-modelver vs skopeo on one local registry, paired and alternating.

Run on demand (never by the test suite):

    .venv/bin/python bench/transfers.py                          # full size, 5 rounds
    .venv/bin/python bench/transfers.py --scale 0.0625 --rounds 2  # a quick look (64 MiB)
    .venv/bin/python bench/transfers.py --only resume --json

Scenarios (sizes at --scale 1):
  push-1   publish one 1 GiB file       vs skopeo copy oci:LAYOUT -> docker://   target ≤ 0.9
  push-8   publish 8 × 512 MiB shards   vs the same                              target ≤ 0.7
  pull-*   ci-modelver pull (verified)  vs skopeo copy docker:// -> oci:         target ≤ 0.25
  RSS      peak VmHWM of every ci-modelver run                                   target ≤ 100 MiB
  re-publish  unchanged files, new version, cold digest cache, minus the time to sha256 the
              same files in a subprocess (same round, alternating order)         target ≤ 0.3 s
  resume   a 2 GiB publish through a counting TCP proxy, interrupted about half way (SIGTERM;
           cut connections), then run again: bytes the rerun sends, % of file    target ≤ 60 %

Every push uploads fresh random bytes (skopeo mounts and reuses blobs it has seen; the registry
answers HEAD for blobs it has), so each tool uploads everything it is timed on; each round gets
its own registry, and every timed run an empty HOME and XDG_CACHE_HOME (an empty digest cache).
Round r of ci-modelver is paired with round r of skopeo; the tool that goes first alternates by
round, and ratios are taken per pair. Each resume mode runs once (--resume-runs): the
interrupted publish and its rerun share one HOME and cache; the publish whose connections are
cut gets --timeout 20 (--cut-timeout), as the proxy then refuses it until it gives up.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from counting_proxy import CountingProxy  # noqa: E402

from tests.support.registry import (  # noqa: E402
    Registry,
    find_registry_binary,
    start_registry,
    stop_registry,
)

MIB = 1024 * 1024
GIB = 1024 * MIB
OURS, SKOPEO = "ci-modelver", "skopeo"
SOURCE_DATE_EPOCH = "1767225600"  # fixed, so the same files give the same version digest

# Peak RSS is read from VmHWM, which (unlike ru_maxrss) restarts at exec: a child forked from
# this Python process would otherwise inherit its parent's footprint in the measurement. The
# parent samples it every 20 ms; a Python child also reports its own at exit through this
# wrapper (`python -c PY_RUNNER module args…`), so a last-moment peak is not missed.
PY_RUNNER = """
import re, sys, runpy
sys.argv = sys.argv[1:]
try:
    runpy.run_module(sys.argv[0], run_name="__main__")
except SystemExit as exc:
    code = exc.code
else:
    code = 0
hwm = re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read()).group(1)
print(f"vmhwm_kib={hwm}", file=sys.stderr)
sys.exit(code or 0)
"""

# What re-publishing must at least do: read and sha256 every file once (1 MiB reads).
HASH_FILES = """
import hashlib, sys
for name in sys.argv[1:]:
    digest = hashlib.sha256()
    with open(name, "rb") as handle:
        while block := handle.read(1024 * 1024):
            digest.update(block)
    print(digest.hexdigest(), name)
"""


class BenchError(Exception):
    """A step failed; the bench stops with exit 1."""


@dataclass
class Run:
    seconds: float
    rss_mib: float
    returncode: int
    stdout: str = field(default="", repr=False)
    stderr_tail: str = field(default="", repr=False)

    def raw(self) -> dict[str, object]:
        return {"seconds": round(self.seconds, 4), "rss_mib": round(self.rss_mib, 1)}


# --- running commands --------------------------------------------------------------------------


def _hwm_kib(pid: int) -> int:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    match = re.search(r"VmHWM:\s+(\d+)", text)
    return int(match.group(1)) if match else 0


def run(
    cmd: list[str],
    cwd: Path,
    env: dict[str, str],
    *,
    check: bool = True,
    timeout: float = 3600,
    started: Callable[[subprocess.Popen[bytes]], None] | None = None,
) -> Run:
    """Run a command: wall time, peak RSS (VmHWM), exit code, stdout and the tail of stderr.

    With ``check`` a non-zero exit raises BenchError carrying the stderr tail.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=err)
        if started is not None:
            started(proc)
        peak = 0
        while proc.poll() is None:
            peak = max(peak, _hwm_kib(proc.pid))
            if time.perf_counter() - start > timeout:
                proc.kill()
                proc.wait()
                raise BenchError(f"{_show(cmd)} did not finish within {timeout:.0f} s")
            time.sleep(0.02)
        elapsed = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
    reported = re.findall(r"vmhwm_kib=(\d+)", stderr)
    if reported:
        peak = max(peak, int(reported[-1]))
    tail = "\n".join(line for line in stderr.splitlines() if "vmhwm_kib=" not in line)[-3000:]
    if check and proc.returncode != 0:
        raise BenchError(f"{_show(cmd)} exited {proc.returncode}; stderr ends:\n{tail}")
    return Run(elapsed, peak / 1024, proc.returncode, stdout, tail)


def _show(cmd: list[str]) -> str:
    if len(cmd) > 2 and cmd[1] == "-c":  # the wrapper: show what it runs
        cmd = ["python -m", *cmd[3:]]
    return " ".join(cmd)


class Tools:
    """The command lines of both tools, and a fresh empty HOME per run."""

    def __init__(self, work: Path, skopeo: str, cli: str) -> None:
        self.work = work
        self.skopeo = skopeo
        self.cli = cli
        self._homes = 0

    def env(self) -> dict[str, str]:
        """A fresh, empty HOME and XDG_CACHE_HOME (so an empty digest cache), TMPDIR in work."""
        self._homes += 1
        home = self.work / "homes" / f"h{self._homes}"
        (home / ".cache").mkdir(parents=True)
        tmp = self.work / "tmp"
        tmp.mkdir(exist_ok=True)
        return {
            **os.environ,
            "HOME": str(home),
            "XDG_CACHE_HOME": str(home / ".cache"),
            "TMPDIR": str(tmp),
            "SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH,
        }

    def ours(self, *args: str) -> list[str]:
        return [sys.executable, "-c", PY_RUNNER, "ci_modelver", *args]

    def publish(self, manifest: Path, repository: str, *extra: str) -> list[str]:
        return self.ours("publish", str(manifest), "--repository", repository, *extra)

    def skopeo_push(self, layout: Path, host: str, repo: str) -> list[str]:
        return [
            self.skopeo,
            "copy",
            f"oci:{layout}:1.0.0",
            f"docker://{host}/{repo}:1.0.0",
            "--dest-tls-verify=false",
        ]

    def skopeo_pull(self, host: str, repo: str, out: Path) -> list[str]:
        return [
            self.skopeo,
            "copy",
            f"docker://{host}/{repo}:1.0.0",
            f"oci:{out}:1.0.0",
            "--src-tls-verify=false",
        ]


# --- data --------------------------------------------------------------------------------------


def write_model(folder: Path, count: int, size: int, version: str = "1.0.0") -> Path:
    """``count`` files of ``size`` fresh random bytes and a manifest listing them as weights."""
    folder.mkdir(parents=True)
    names = []
    for i in range(count):
        name = f"shard-{i:02d}.bin"
        with (folder / name).open("wb") as out:
            left = size
            while left:
                block = os.urandom(min(left, 8 * MIB))
                out.write(block)
                left -= len(block)
        names.append(name)
    return write_manifest(folder, names, version)


def write_manifest(folder: Path, names: list[str], version: str) -> Path:
    lines = ["name: bench", f"version: {version}", "files:"]
    lines += [f"  - {{path: {n}, type: weight}}" for n in names]
    path = folder / "modelver.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def weight_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("shard-*.bin"))


def remove(*paths: Path) -> None:
    for path in paths:
        shutil.rmtree(path, ignore_errors=True)


def registry_digest(registry: Registry, repo: str, tag: str) -> str | None:
    """The digest the registry itself serves for repo:tag (straight to it, not via the proxy)."""
    request = urllib.request.Request(
        f"http://{registry.host}/v2/{repo}/manifests/{tag}",
        method="HEAD",
        headers={
            "Accept": "application/vnd.oci.image.manifest.v1+json, "
            "application/vnd.docker.distribution.manifest.v2+json"
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            digest: str | None = answer.headers.get("Docker-Content-Digest")
            return digest
    except OSError:
        return None


def _published(result: Run) -> dict[str, object]:
    """The JSON report of ``ci-modelver publish --format json`` ({} if there is none)."""
    try:
        doc = json.loads(result.stdout)
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


def published_digest(result: Run) -> str | None:
    digest = _published(result).get("digest")
    return digest if isinstance(digest, str) else None


def uploaded(result: Run) -> int | None:
    """Bytes the publish says it uploaded (blobs.bytesUploaded)."""
    blobs = _published(result).get("blobs")
    value = blobs.get("bytesUploaded") if isinstance(blobs, dict) else None
    return value if isinstance(value, int) else None


# --- paired scenarios --------------------------------------------------------------------------


@dataclass
class Shape:
    key: str  # push-1, push-8
    label: str
    count: int
    size: int  # bytes per file
    push_target: float


@dataclass
class PairedRound:
    round: int
    order: list[str]  # who went first
    push: dict[str, Run]  # by tool
    pull: dict[str, Run]  # by tool
    republish: Run
    hash: Run
    uploaded: dict[str, int | None]  # what ci-modelver says it uploaded: push, republish
    # The registry's own floor for one blob: curl PUTting fresh bytes whose digest is known.
    floor: Run | None = None
    # The same version published again (a re-run of the job): nothing new to tag.
    rerun: Run | None = None

    def raw(self) -> dict[str, object]:
        return {
            "floor": self.floor.raw() if self.floor else None,
            "round": self.round,
            "order": self.order,
            "push": {tool: run.raw() for tool, run in self.push.items()},
            "pull": {tool: run.raw() for tool, run in self.pull.items()},
            "republish": self.republish.raw(),
            "hash": self.hash.raw(),
            "ours_bytes_uploaded": self.uploaded,
            "push_ratio": self.push[OURS].seconds / self.push[SKOPEO].seconds,
            "pull_ratio": self.pull[OURS].seconds / self.pull[SKOPEO].seconds,
            "republish_minus_hash": self.republish.seconds - self.hash.seconds,
            "rerun": self.rerun.raw() if self.rerun else None,
            "rerun_minus_hash": self.rerun.seconds - self.hash.seconds if self.rerun else None,
        }


def paired_round(shape: Shape, r: int, tools: Tools, registry_bin: str) -> PairedRound:
    """One round: both tools push fresh bytes, then re-publish vs hash, then both pull."""
    work = tools.work / f"{shape.key}-r{r}"
    registry = start_registry(work / "registry", registry_bin)
    host = registry.host
    order = [OURS, SKOPEO] if r % 2 == 0 else [SKOPEO, OURS]
    try:
        # skopeo's bytes: a layout made by ci-modelver (untimed); then only the layout is kept.
        sk_src = work / "skopeo-src"
        sk_manifest = write_model(sk_src, shape.count, shape.size)
        layout = work / "skopeo-layout"
        run(tools.publish(sk_manifest, f"oci:{layout}"), work, tools.env())
        remove(sk_src)
        src = work / "ours-src"
        manifest = write_model(src, shape.count, shape.size)
        os.sync()

        pushes = {
            OURS: tools.publish(manifest, f"{host}/ours", "--format", "json"),
            SKOPEO: tools.skopeo_push(layout, host, "skopeo"),
        }
        push = {tool: run(pushes[tool], work, tools.env()) for tool in order}
        remove(layout)
        floor = _floor(work, host, shape.size, tools) if shape.count == 1 else None
        sent = uploaded(push[OURS])
        if sent is not None and sent < shape.count * shape.size:
            raise BenchError(f"ci-modelver uploaded {sent} of {shape.count * shape.size} bytes")

        # Unchanged files under a new version, with a cold digest cache: every file is read and
        # hashed again, the registry already has them, so only the config and manifest move.
        write_manifest(src, [p.name for p in weight_files(src)], "1.0.1")
        files = [str(p) for p in weight_files(src)]
        steps = {
            "republish": tools.publish(manifest, f"{host}/ours", "--format", "json"),
            "hash": [sys.executable, "-c", HASH_FILES, *files],
        }
        # The re-run publishes the same 1.0.1 again, so it comes after the re-publish.
        steps["rerun"] = steps["republish"]
        rep_order = ["republish", "rerun", "hash"] if r % 2 == 0 else ["hash", "republish", "rerun"]
        rep = {step: run(steps[step], work, tools.env()) for step in rep_order}
        remove(src)
        os.sync()

        outs = {OURS: work / "ours-out", SKOPEO: work / "skopeo-out"}
        pulls = {
            OURS: tools.ours("pull", f"{host}/ours:1.0.0", "-o", str(outs[OURS])),
            SKOPEO: tools.skopeo_pull(host, "skopeo", outs[SKOPEO]),
        }
        pull = {}
        for tool in order:
            pull[tool] = run(pulls[tool], work, tools.env())
            if tool == OURS:
                got = sorted(p.stat().st_size for p in weight_files(outs[OURS]))
                if got != [shape.size] * shape.count:
                    raise BenchError(f"ci-modelver pull wrote files of sizes {got}")
            remove(outs[tool])
    finally:
        stop_registry(registry)
        remove(work)
        remove(tools.work / "homes", tools.work / "tmp")
    return PairedRound(
        r,
        order,
        push,
        pull,
        rep["republish"],
        rep["hash"],
        {"push": sent, "republish": uploaded(rep["republish"])},
        floor,
        rep["rerun"],
    )


FLOOR_PUT = """
set -e
loc=$(curl -sS -i -X POST "http://$1/v2/floor/blobs/uploads/" | tr -d '\r' | sed -n 's/^[Ll]ocation: //p')
curl -sS -f -o /dev/null -X PUT -H 'Content-Type: application/octet-stream' -T "$2" "$loc&digest=$3"
"""


def _floor(work: Path, host: str, size: int, tools: Tools) -> Run:
    """How long the registry takes to take one blob of ``size`` fresh bytes from curl, the
    digest computed beforehand (untimed): what no client can beat on this machine."""
    folder = work / "floor"
    write_model(folder, 1, size)
    blob = weight_files(folder)[0]
    digest = hashlib.sha256()
    with blob.open("rb") as handle:
        while block := handle.read(MIB):
            digest.update(block)
    os.sync()
    try:
        return run(
            ["sh", "-c", FLOOR_PUT, "floor", host, str(blob), "sha256:" + digest.hexdigest()],
            work,
            tools.env(),
        )
    finally:
        remove(folder)


# --- resume ------------------------------------------------------------------------------------


@dataclass
class ResumeResult:
    mode: str  # sigterm, cut
    size: int
    interrupted: Run
    interrupt_at: int | None  # bytes forwarded when the interrupt fired (None: it never did)
    interrupted_forwarded: int
    rerun: Run
    rerun_forwarded: int
    registry_digest: str | None  # what the registry serves for the tag after the rerun
    clean_digest: str | None  # the same files published cleanly

    @property
    def percent(self) -> float:
        return 100 * self.rerun_forwarded / self.size

    @property
    def digest_matches(self) -> bool:
        return self.registry_digest is not None and self.registry_digest == self.clean_digest

    def raw(self) -> dict[str, object]:
        return {
            "mode": self.mode,
            "size": self.size,
            "interrupted": {
                **self.interrupted.raw(),
                "returncode": self.interrupted.returncode,
                "forwarded_at_interrupt": self.interrupt_at,
                "forwarded": self.interrupted_forwarded,
                "stderr_tail": self.interrupted.stderr_tail[-600:],
            },
            "rerun": {
                **self.rerun.raw(),
                "returncode": self.rerun.returncode,
                "forwarded": self.rerun_forwarded,
                "percent_of_file": round(self.percent, 2),
                "reported_digest": published_digest(self.rerun),
            },
            "registry_digest": self.registry_digest,
            "clean_digest": self.clean_digest,
            "digest_matches": self.digest_matches,
        }


def resume_run(
    mode: str, n: int, size: int, tools: Tools, registry_bin: str, cut_timeout: int
) -> ResumeResult:
    """Publish ``size`` bytes through the proxy, interrupt it about half way, publish again."""
    work = tools.work / f"resume-{mode}-{n}"
    registry = start_registry(work / "registry", registry_bin)
    port = int(registry.host.rsplit(":", 1)[1])
    proxy = CountingProxy(("127.0.0.1", port))
    try:
        src = work / "src"
        manifest = write_model(src, 1, size)
        os.sync()
        repository = f"{proxy.host}/resume"
        env = tools.env()  # the interrupted run and the rerun share HOME and cache
        cmd = tools.publish(manifest, repository, "--format", "json")
        at: dict[str, int] = {}
        if mode == "sigterm":

            def arm(proc: subprocess.Popen[bytes]) -> None:
                def stop() -> None:
                    at["forwarded"] = proxy.forwarded
                    proc.send_signal(signal.SIGTERM)

                proxy.when_forwarded(size // 2, stop)

            first = run(cmd, work, env, check=False, started=arm)
        else:

            def cut() -> None:
                at["forwarded"] = proxy.forwarded
                proxy.cut()

            proxy.when_forwarded(size // 2, cut)
            # Connections are refused after the cut; a shorter retry budget lets it give up
            # in about cut_timeout seconds instead of the default 120.
            first = run([*cmd, "--timeout", str(cut_timeout)], work, env, check=False)
        first_forwarded = proxy.forwarded
        proxy.reset()
        rerun = run(cmd, work, env, check=False)
        rerun_forwarded = proxy.forwarded
        final = registry_digest(registry, "resume", "1.0.0")
        clean = run(
            tools.publish(manifest, f"oci:{work / 'clean'}", "--format", "json"), work, tools.env()
        )
    finally:
        proxy.close()
        stop_registry(registry)
        remove(work)
        remove(tools.work / "homes", tools.work / "tmp")
    if rerun.returncode != 0:
        print(
            f"note: resume ({mode}) rerun exited {rerun.returncode}:\n{rerun.stderr_tail[-1500:]}",
            file=sys.stderr,
        )
    return ResumeResult(
        mode,
        size,
        first,
        at.get("forwarded"),
        first_forwarded,
        rerun,
        rerun_forwarded,
        final,
        published_digest(clean),
    )


# --- report ------------------------------------------------------------------------------------


def _first_line(path: str, key: str) -> str:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def _version(cmd: list[str]) -> str:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    except OSError:
        return "unknown"
    return (
        (done.stdout or done.stderr).strip().splitlines()[0]
        if (done.stdout or done.stderr)
        else "unknown"
    )


def measured_build() -> str:
    """Which ci-modelver the runs import: a venv copy is what was installed last, which may
    include uncommitted changes (and can be reinstalled while the bench runs)."""
    spec = importlib.util.find_spec("ci_modelver")
    if spec is None or spec.origin is None:
        return "not importable"
    origin = Path(spec.origin)
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(origin.stat().st_mtime))
    git = ["git", "-C", str(ROOT)]
    try:
        head = subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        )
        dirty = subprocess.run(
            [*git, "status", "--porcelain", "src"], capture_output=True, text=True
        )
    except OSError:
        return f"{origin.parent} (installed {stamp})"
    state = "src/ has uncommitted changes" if dirty.stdout.strip() else "src/ clean"
    return f"{origin.parent} (installed {stamp}); checkout HEAD {head.stdout.strip()}, {state}"


def machine(registry_bin: str, skopeo: str) -> dict[str, str]:
    mem_kib = _first_line("/proc/meminfo", "MemTotal").split()[0]
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    return {
        "cpu": _first_line("/proc/cpuinfo", "model name"),
        "cores": f"{os.cpu_count()} ({usable} usable)",
        "ram": f"{int(mem_kib) / 1024 / 1024:.1f} GiB" if mem_kib.isdigit() else "unknown",
        "python": platform.python_version(),
        "docker-registry": _version([registry_bin, "--version"]),
        "skopeo": _version([skopeo, "--version"]),
        "kernel": f"{platform.system()} {platform.release()}",
        "ci-modelver": measured_build(),
    }


def _spread(values: list[float], fmt: str = "{:.2f}") -> str:
    sep = " to " if "+" in fmt else "-"  # signed values: "-0.10 to +0.20", not "-0.10--0.02"
    low, mid, high = (fmt.format(v) for v in (min(values), statistics.median(values), max(values)))
    return f"{mid} [{low}{sep}{high}]"


def _plural(n: int, what: str) -> str:
    return f"{n} {what}{'s' if n != 1 else ''}"


def _codes(codes: list[int]) -> str:
    return ",".join(map(str, codes))


def _met(ok: bool) -> str:
    return "yes" if ok else "**no**"


def _pair_row(label: str, pairs: list[tuple[Run, Run]], target: float) -> str:
    ours = [o.seconds for o, _ in pairs]
    theirs = [s.seconds for _, s in pairs]
    ratios = [o.seconds / s.seconds for o, s in pairs]
    rss = f"{max(o.rss_mib for o, _ in pairs):.0f} / {max(s.rss_mib for _, s in pairs):.0f}"
    return (
        f"| {label} | {_spread(ours)} | {_spread(theirs)} | {_spread(ratios)} | ≤ {target:g} | "
        f"{_met(statistics.median(ratios) <= target)} | {rss} |"
    )


def _size(nbytes: int) -> str:
    return f"{nbytes / GIB:g} GiB" if nbytes >= GIB else f"{nbytes / MIB:g} MiB"


def report(
    info: dict[str, str],
    shapes: list[Shape],
    rounds: dict[str, list[PairedRound]],
    resumes: list[ResumeResult],
    resume_size: int,
) -> str:
    lines = ["machine: " + "; ".join(f"{k} {v}" for k, v in info.items()), ""]
    lines += [
        "| scenario | ci-modelver median s [min-max] | skopeo median s [min-max] | ratio median [min-max] | target | met? | peak RSS MiB ours/skopeo (max) |",
        "|---|---|---|---|---|---|---|",
    ]
    ours_rss: list[float] = []
    skopeo_rss: list[float] = []
    measured = [(shape, rounds[shape.key]) for shape in shapes if rounds.get(shape.key)]
    for op in ("push", "pull"):
        for shape, done in measured:
            pairs = [(d.push if op == "push" else d.pull) for d in done]
            pair_runs = [(p[OURS], p[SKOPEO]) for p in pairs]
            ours_rss += [o.rss_mib for o, _ in pair_runs]
            skopeo_rss += [s.rss_mib for _, s in pair_runs]
            target = shape.push_target if op == "push" else 0.25
            what = "push" if op == "push" else "verified pull"
            label = f"{what}, {shape.label} ({_plural(len(done), 'round')})"
            lines.append(_pair_row(label, pair_runs, target))
    for shape, done in measured:
        floors = [(d.push[OURS], d.floor) for d in done if d.floor is not None]
        if floors:
            ours = [o.seconds for o, _ in floors]
            put = [f.seconds for _, f in floors]
            lines.append(
                f"| registry floor, {shape.label}: one curl PUT of fresh bytes, digest known | "
                f"ours {_spread(ours)} | curl {_spread(put)} | ours/curl "
                f"{_spread([o / f for o, f in zip(ours, put, strict=True)])} | n/a | n/a | n/a |"
            )
    for shape, done in measured:
        reps = [d.republish.seconds for d in done]
        deltas = [d.republish.seconds - d.hash.seconds for d in done]
        rss = max(d.republish.rss_mib for d in done)
        ours_rss.append(rss)
        lines.append(
            f"| re-publish unchanged, cold cache, {shape.label} | {_spread(reps)} | "
            f"sha256 in a subprocess: {_spread([d.hash.seconds for d in done])} | "
            f"re-publish minus hash: {_spread(deltas, '{:+.2f}')} s | ≤ 0.3 s | "
            f"{_met(statistics.median(deltas) <= 0.3)} | {rss:.0f} / n/a |"
        )
        reruns = [d.rerun for d in done if d.rerun is not None]
        if reruns:
            again = [d.rerun.seconds - d.hash.seconds for d in done if d.rerun is not None]
            lines.append(
                f"| re-run of the same version, cold cache, {shape.label} | "
                f"{_spread([x.seconds for x in reruns])} | "
                f"sha256 in a subprocess: {_spread([d.hash.seconds for d in done])} | "
                f"re-run minus hash: {_spread(again, '{:+.2f}')} s | ≤ 0.3 s | "
                f"{_met(statistics.median(again) <= 0.3)} | "
                f"{max(x.rss_mib for x in reruns):.0f} / n/a |"
            )
    for mode in ("sigterm", "cut"):
        runs = [x for x in resumes if x.mode == mode]
        if not runs:
            continue
        pct = [x.percent for x in runs]
        codes = sorted({x.rerun.returncode for x in runs})
        stopped = sorted({x.interrupted.returncode for x in runs})
        matches = sum(x.digest_matches for x in runs)
        rss = max(max(x.rerun.rss_mib, x.interrupted.rss_mib) for x in runs)
        ours_rss.append(rss)
        ok = (
            statistics.median(pct) <= 60
            and codes == [0]
            and matches == len(runs)
            and 0 not in stopped  # an interrupted run that succeeded was not interrupted
        )
        how = "SIGTERM" if mode == "sigterm" else "connection cut"
        lines.append(
            f"| resume after {how} at ~50 %, {_size(resume_size)} ({_plural(len(runs), 'run')}) | "
            f"rerun {_spread([x.rerun.seconds for x in runs])} | n/a | "
            f"interrupted run exit {_codes(stopped)}; rerun sent {_spread(pct, '{:.1f}')} % "
            f"of the file, exit {_codes(codes)}; digest = clean publish: {matches}/{len(runs)} | "
            f"≤ 60 % | {_met(ok)} | {rss:.0f} / n/a |"
        )
    if ours_rss:
        sk_rss = f"{max(skopeo_rss):.0f}" if skopeo_rss else "n/a"
        lines.append(
            f"| peak RSS of every run above | ours max {max(ours_rss):.0f} MiB | skopeo max {sk_rss} MiB | "
            f"n/a | ours ≤ 100 MiB | {_met(max(ours_rss) <= 100)} | {max(ours_rss):.0f} / {sk_rss} |"
        )
    for x in resumes:
        fired = (
            f"interrupt at {x.interrupt_at / MIB:.0f} MiB forwarded"
            if x.interrupt_at is not None
            else "interrupt never fired"
        )
        lines.append(
            f"\nresume ({x.mode}): interrupted run exit {x.interrupted.returncode}, {fired}, "
            f"{x.interrupted_forwarded / MIB:.0f} MiB forwarded in all; rerun exit "
            f"{x.rerun.returncode}, {x.rerun_forwarded / MIB:.0f} MiB forwarded "
            f"({x.percent:.1f} %); registry {x.registry_digest}, clean publish {x.clean_digest}"
        )
    return "\n".join(lines)


# --- main --------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rounds", type=int, default=5, help="paired rounds per scenario (default 5)"
    )
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="multiply every size (0.0625: 64 MiB, 8 × 32 MiB, 128 MiB)",
    )
    parser.add_argument(
        "--only",
        default="push-1,push-8,resume",
        help="comma-separated: push-1, push-8 (each with its pull and re-publish), resume",
    )
    parser.add_argument(
        "--resume-runs", type=int, default=1, help="runs of each resume mode (default 1)"
    )
    parser.add_argument(
        "--cut-timeout",
        type=int,
        default=20,
        help="--timeout of the publish whose connection is cut (default 20)",
    )
    parser.add_argument(
        "--workdir", type=Path, help="where the temporary files go (default: the system temp dir)"
    )
    parser.add_argument(
        "--json", action="store_true", help="also print the raw per-round numbers as JSON"
    )
    args = parser.parse_args()
    wanted = {w.strip() for w in args.only.split(",") if w.strip()}
    unknown = wanted - {"push-1", "push-8", "resume"}
    if unknown or args.rounds < 1 or args.scale <= 0:
        parser.error(f"bad --only {sorted(unknown)}, --rounds or --scale")
    registry_bin = find_registry_binary()
    skopeo = shutil.which("skopeo")
    cli = shutil.which("ci-modelver", path=str(Path(sys.executable).parent))
    if not (registry_bin and skopeo and cli):
        print("needs docker-registry, skopeo and ci-modelver in this venv", file=sys.stderr)
        return 1
    shapes = [
        Shape("push-1", f"1 × {_size(int(GIB * args.scale))}", 1, int(GIB * args.scale), 0.9),
        Shape(
            "push-8",
            f"8 × {_size(int(512 * MIB * args.scale))}",
            8,
            int(512 * MIB * args.scale),
            0.7,
        ),
    ]
    shapes = [s for s in shapes if s.key in wanted]
    resume_size = int(2 * GIB * args.scale)
    info = machine(registry_bin, skopeo)
    rounds: dict[str, list[PairedRound]] = {}
    resumes: list[ResumeResult] = []
    with tempfile.TemporaryDirectory(prefix="modelver-bench-", dir=args.workdir) as tmp:
        tools = Tools(Path(tmp), skopeo, cli)
        try:
            for shape in shapes:
                for r in range(args.rounds):
                    print(f"{shape.key} round {r + 1}/{args.rounds}", file=sys.stderr, flush=True)
                    rounds.setdefault(shape.key, []).append(
                        paired_round(shape, r, tools, registry_bin)
                    )
            if "resume" in wanted:
                for n in range(args.resume_runs):
                    for mode in ("sigterm", "cut"):
                        print(
                            f"resume ({mode}) run {n + 1}/{args.resume_runs}",
                            file=sys.stderr,
                            flush=True,
                        )
                        resumes.append(
                            resume_run(mode, n, resume_size, tools, registry_bin, args.cut_timeout)
                        )
        except (BenchError, RuntimeError) as exc:
            print(f"bench failed: {exc}", file=sys.stderr)
            return 1
    print(report(info, shapes, rounds, resumes, resume_size))
    if measured_build().split(";")[0] != info["ci-modelver"].split(";")[0]:
        print(f"\nwarning: ci-modelver was reinstalled during the run (now {measured_build()})")
    if args.json:
        print(
            json.dumps(
                {
                    "machine": info,
                    "scale": args.scale,
                    "rounds": {key: [d.raw() for d in done] for key, done in rounds.items()},
                    "resume": [x.raw() for x in resumes],
                    "shapes": [asdict(s) for s in shapes],
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
