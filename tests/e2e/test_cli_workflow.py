"""The quickstart and the CLI, as a user runs them: `modelreg dev` once, a reflection client
and the web UI against it, then `modelreg demo` and every CLI command group as processes,
checking output and exit codes; at the end Ctrl-C stops it cleanly (stop_dev checks)."""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest

from modelreg.cli.demo import demo_tokens
from modelreg.devstack.ports import free_port
from tests.e2e.test_dev_stack import CREATE, GET, DevStack, call_by_reflection, start_dev, stop_dev
from tests.helpers import outside_pytest_tmp, run_cli


@dataclass
class Dev:
    home: Path
    tokens: dict[str, str]
    stack: DevStack

    def run(
        self, *args: str, as_: str | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "MODELREG_HOME": str(self.home), "COLUMNS": "200"}
        for key in [k for k in env if k.startswith("MODELREG_") and k.endswith("_ADDR")]:
            del env[key]  # found through what `modelreg dev` wrote
        env.pop("MODELREG_TOKEN", None)
        if as_:
            env["MODELREG_TOKEN"] = self.tokens[as_]
        return run_cli(*args, env=env, timeout=timeout)

    def json(self, *args: str, as_: str | None = None) -> Any:
        return self.json_plain(*args, "-o", "json", as_=as_)

    def json_plain(self, *args: str, as_: str | None = None) -> Any:
        result = self.run(*args, as_=as_)
        assert result.returncode == 0, result.stdout + result.stderr
        return json.loads(result.stdout)


@pytest.fixture(scope="module")
def dev() -> Iterator[Dev]:
    with outside_pytest_tmp("modelreg-cli-") as scratch:
        home = scratch / "home"
        stack = start_dev(home, free_port())
        try:
            tokens = json.loads((home / "endpoints.json").read_text())["demo_tokens"]
            yield Dev(home, tokens, stack)
            stop_dev(stack)  # Ctrl-C: exit code 0, "stopped.", no traceback, the port closed
        finally:
            stack.kill()


def test_modelreg_dev_serves_a_reflection_client_and_the_web_ui(dev: Dev) -> None:
    """On the module's `modelreg dev` (one start less for the suite); its Ctrl-C stop is
    checked when the module ends."""
    stack = dev.stack
    with grpc.insecure_channel(f"127.0.0.1:{stack.port}") as channel:
        fields = {
            "parent": "namespaces/e2e",
            "registered_model_id": "fraud",
            "registered_model": {"description": "x"},
        }
        # Without a token the caller is an anonymous viewer: it reads, it does not write.
        try:
            call_by_reflection(channel, CREATE, fields)
            raise AssertionError("an anonymous caller created a model")
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.PERMISSION_DENIED, error
        created = call_by_reflection(channel, CREATE, fields, demo_tokens(stack.home)["alice"])
        assert created.name == "namespaces/e2e/models/fraud"
        assert call_by_reflection(channel, GET, {"name": created.name}).description == "x"
    # The web UI is up, its URL printed, and shows the model to an anonymous viewer.
    assert any(f"web UI: http://127.0.0.1:{stack.gateway_port}/" in line for line in stack.lines)
    with urllib.request.urlopen(f"http://127.0.0.1:{stack.gateway_port}/?ns=e2e", timeout=30) as page:
        assert page.status == 200 and "e2e/fraud" in page.read().decode()


def test_demo_runs_in_under_a_minute(dev: Dev) -> None:
    started = time.monotonic()
    demo = dev.run("demo", "--model", "churn")
    elapsed = time.monotonic() - started
    assert demo.returncode == 0, demo.stdout + demo.stderr
    out = demo.stdout
    assert "version 1 = v1.0.0" in out and "version 2 = v1.1.0" in out
    assert "rolled PRODUCTION back to version 1" in out
    assert "rollback: latency regression" in out  # the history table
    assert "demo complete" in out
    assert elapsed < 60, f"the demo took {elapsed:.1f}s"


def test_cli_versions_lineage_and_promotion(dev: Dev, tmp_path: Path) -> None:
    model = "cli/fraud"
    assert dev.run("models", "create", model, "-d", "Fraud", as_="alice").returncode == 0
    artifacts = tmp_path / "artifacts"
    (artifacts / "nested").mkdir(parents=True)
    (artifacts / "weights.bin").write_bytes(os.urandom(300_000))
    (artifacts / "nested" / "config.json").write_text('{"k": 1}')

    v1 = dev.json(
        "versions", "create", model, "--bump", "major", "-a", str(artifacts), "-m", "auc=0.93", as_="alice"
    )
    assert (v1["semver"], v1["state"]) == ("1.0.0", "STATE_READY")
    assert sorted(f["path"] for f in v1["files"]) == ["nested/config.json", "weights.bin"]
    v2 = dev.json("versions", "create", model, "--semver", "1.4.0", as_="alice")
    assert v2["semver"] == "1.4.0"
    assert dev.json("versions", "get", f"{model}@v1.0.0")["version"] == "1"
    assert [v["version"] for v in dev.json("versions", "list", model)] == ["2", "1"]
    bad_bump = dev.run("versions", "create", model, "--semver", "1.2.0", as_="alice")
    assert bad_bump.returncode in (4, 6), bad_bump.stderr  # not greater than 1.4.0 in line 1

    lineage_file = tmp_path / "lineage.json"
    lineage_file.write_text(
        json.dumps(
            {
                "datasets": [
                    {
                        "uri": "s3://data/fraud.parquet",
                        "digest": "sha256:" + "ab" * 32,
                        "role": "DATASET_ROLE_TRAIN",
                    }
                ],
                "code": [{"repo": "https://git.example/fraud", "commit": "c0ffee" * 6 + "beef"}],
            }
        )
    )
    assert dev.run("lineage", "record", f"{model}/1", "-f", str(lineage_file), as_="alice").returncode == 0
    shown = dev.run("lineage", "show", f"{model}/1")
    assert shown.returncode == 0, shown.stderr
    assert "s3://data/fraud.parquet" in shown.stdout and "https://git.example/fraud" in shown.stdout

    request = dev.json(
        "promote", model, "--to", "PRODUCTION=1", "--to", "champion=1", "-c", "first", as_="alice"
    )
    assert request["state"] == "STATE_PENDING"
    self_approval = dev.run("approve", request["name"], as_="alice")
    assert self_approval.returncode == 7, self_approval.stderr  # separation of duties
    assert dev.json("approve", request["name"], as_="bob")["state"] == "STATE_APPLIED"
    assert dev.json("pointers", model)["stages"] == {"PRODUCTION": "1"}

    dev.json("approve", dev.json("promote", model, "--to", "PRODUCTION=2", as_="alice")["name"], as_="bob")
    back = dev.json("rollback", model, "--reason", "drift", as_="alice")
    if back["state"] == "STATE_PENDING":
        back = dev.json("approve", back["name"], as_="bob")
    assert back["state"] == "STATE_APPLIED"
    assert dev.json("pointers", model)["stages"]["PRODUCTION"] == "1"

    history = dev.run("history", model)
    assert history.returncode == 0 and "rollback: drift" in history.stdout and "bob" in history.stdout

    download = dev.run("versions", "download", f"{model}@production", str(tmp_path / "out"), "--no-progress")
    assert download.returncode == 0, download.stderr
    assert (tmp_path / "out" / "weights.bin").read_bytes() == (artifacts / "weights.bin").read_bytes()

    missing = dev.run("versions", "get", f"{model}/99")
    assert missing.returncode == 3 and "NOT_FOUND" in missing.stderr
    usage = dev.run("versions", "create", model, "-m", "auc=high")
    assert usage.returncode == 2


def test_cli_lifecycle_lineage_queries_retention_and_watch(dev: Dev, tmp_path: Path) -> None:
    model = "ops/ranker"
    assert (
        dev.json("namespaces", "create", "ops", "-d", "Operations", as_="alice")["name"] == "namespaces/ops"
    )
    created = dev.json("models", "create", model, "-t", "team=search", as_="alice")
    assert "namespaces/ops" in {n["name"] for n in dev.json("namespaces", "list")}
    updated = dev.json("models", "update", model, "-d", "Ranks results", as_="alice")
    assert updated["description"] == "Ranks results" and updated["tags"] == {"team": "search"}
    stale = dev.run("models", "update", model, "-d", "lost update", "--etag", created["etag"], as_="alice")
    assert stale.returncode == 8, stale.stderr  # ABORTED: the etag moved on
    found = dev.json("models", "search", "ops", "-f", 'tags.team = "search" AND text:"ranks"')
    assert [m["name"] for m in found] == ["namespaces/ops/models/ranker"]

    for digest in ("11", "22", "33"):
        version = dev.json("versions", "create", model, "--bump", "minor", as_="alice")
        record = tmp_path / f"lineage-{digest}.json"
        record.write_text(
            json.dumps({"datasets": [{"uri": "s3://d/clicks", "digest": "sha256:" + digest * 32}]})
        )
        assert (
            dev.run(
                "lineage", "record", f"{model}/{version['version']}", "-f", str(record), as_="alice"
            ).returncode
            == 0
        )

    impact = dev.json("lineage", "impact", "--dataset", "s3://d/clicks", "--digest", "sha256:" + "22" * 32)
    assert [v["model_version"] for v in impact] == ["namespaces/ops/models/ranker/versions/2"]
    diff = dev.run("lineage", "diff", f"{model}/1", f"{model}/3")
    assert diff.returncode == 0 and "- dataset" in diff.stdout and "+ dataset" in diff.stdout
    assert dev.json_plain("lineage", "reproduce", f"{model}/2")["datasets"][0]["uri"] == "s3://d/clicks"
    dot = dev.run("lineage", "export", f"{model}/2")
    assert dot.returncode == 0 and dot.stdout.lstrip().startswith("digraph")

    deprecated = dev.json("versions", "deprecate", f"{model}/1", "--reason", "old", as_="alice")
    assert deprecated["state"] == "STATE_DEPRECATED"
    plan = dev.json("versions", "retention", model, "--keep-last", "1", as_="alice")
    assert sorted(v["version"] for v in plan.get("deleted", [])) == ["1", "2"]
    assert [v["version"] for v in dev.json("versions", "list", model)] == [
        "3",
        "2",
        "1",
    ]  # a dry run deletes nothing
    # Without a token the caller is an anonymous viewer; the store-wide GC needs admin of every namespace.
    assert dev.run("versions", "gc").returncode == 7
    assert dev.run("versions", "gc", as_="alice").returncode == 0

    canary = dev.json("promote", model, "--to", "canary=3", as_="alice")  # aliases are not protected
    assert canary["state"] == "STATE_APPLIED"
    watched = dev.run("watch", "namespaces/ops", "--limit", "1")
    assert watched.returncode == 0, watched.stderr
    first = json.loads(watched.stdout.splitlines()[0])
    assert first["resume_token"] and first["entry"]["changes"] == [{"pointer": "canary", "version": "3"}]

    assert dev.json("models", "archive", model, as_="alice")["state"] == "STATE_ARCHIVED"
    refused = dev.run("versions", "create", model, as_="alice")
    assert refused.returncode == 6, refused.stderr  # archived models take no new versions
    assert dev.json("models", "restore", model, as_="alice")["state"] == "STATE_ACTIVE"
    assert dev.json("models", "delete", model, "--reason", "retired", as_="alice")["state"] == "STATE_DELETED"
    assert dev.run("models", "get", model).returncode == 3


def test_lineage_export_reproduce_download_and_watch_answer_json(dev: Dev, tmp_path: Path) -> None:
    model = "json/scorer"
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    (artifacts / "weights.bin").write_bytes(os.urandom(10_000))
    dev.json("models", "create", model, as_="alice")
    version = dev.json("versions", "create", model, "--bump", "major", "-a", str(artifacts), as_="alice")
    record = tmp_path / "lineage.json"
    record.write_text(json.dumps({"datasets": [{"uri": "s3://d/scores", "digest": "sha256:" + "44" * 32}]}))
    assert dev.run("lineage", "record", f"{model}/1", "-f", str(record), as_="alice").returncode == 0

    exported = dev.json("lineage", "export", f"{model}/1")
    assert (exported["uri"], exported["format"]) == (f"{model}/1", "dot")
    assert exported["content"].lstrip().startswith("digraph") and "s3://d/scores" in exported["content"]
    as_json = dev.json("lineage", "export", f"{model}/1", "--format", "json")
    nodes = json.loads(as_json["content"])["nodes"]
    assert any("s3://d/scores" in json.dumps(node) for node in nodes)

    reproduced = dev.json("lineage", "reproduce", f"{model}/1")
    assert reproduced["model_version"] == version["name"]
    assert reproduced["datasets"][0]["uri"] == "s3://d/scores"
    table = dev.run("lineage", "reproduce", f"{model}/1", "-o", "table")
    assert table.returncode == 0 and "s3://d/scores" in table.stdout and "datasets" in table.stdout

    downloaded = dev.json("versions", "download", f"{model}/1", str(tmp_path / "out"))
    assert (downloaded["name"], downloaded["semver"]) == (version["name"], "1.0.0")
    assert downloaded["destination"] == str(tmp_path / "out")
    assert [(f["path"], f["sha256"]) for f in downloaded["files"]] == [
        (f["path"], f["sha256"]) for f in version["files"]
    ]
    assert (tmp_path / "out" / "weights.bin").read_bytes() == (artifacts / "weights.bin").read_bytes()

    dev.json("promote", model, "--to", "shadow=1", as_="alice")
    watched = dev.run("watch", "namespaces/json", "--limit", "1", "-o", "json")
    assert watched.returncode == 0, watched.stderr
    (line,) = watched.stdout.splitlines()
    item = json.loads(line)
    assert item["resume_token"] and item["entry"]["changes"] == [{"pointer": "shadow", "version": "1"}]
    rows = dev.run("watch", "namespaces/json", "--limit", "1", "-o", "table").stdout.splitlines()
    assert rows[0].split("\t")[:3] == ["applied", "model", "changes"]
    assert f"namespaces/{model.replace('/', '/models/')}" in rows[1] and "shadow: - -> 1" in rows[1]
