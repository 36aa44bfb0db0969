"""spark_flows' own object-store client on the suite's real S3 server: the small-file operations markers,
manifests and leases use, the one-line errors for a wrong endpoint, key or bucket, the refusal of a store that
ignores conditional writes, and the lease conformance race (8 contenders, threads and processes, 20 rounds,
on local disk and on S3: exactly one holder every round).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from spark_flows.errors import RunLockedError, StorageError
from spark_flows.io.filesystems import ArrowFileSystem, LocalFileSystem, RoutingFileSystem
from spark_flows.io.filesystems.s3 import S3ObjectStore, hadoop_lookup
from spark_flows.io.storage import Storage, local_storage
from spark_flows.patterns.runners.locks import RunLock
from spark_flows.testing.s3_server import S3Server
from tests.leases import ProcessContenders, backdate_lease, race_threads, round_job, seed_dead_lease

pytestmark = pytest.mark.no_spark
CONTENDERS, ROUNDS = 8, 20


def s3_storage(settings: dict[str, str], **store: bool) -> Storage:
    """A Storage whose s3a:// paths reach the store ``settings`` (S3A keys) name."""
    return Storage(fs=RoutingFileSystem(LocalFileSystem(), ArrowFileSystem(),
                                        objects=S3ObjectStore(hadoop_lookup(settings), **store)))


@pytest.fixture
def server_env(spark_flows_s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    """The server reachable through the AWS environment alone (what a process with no Spark has)."""
    for name, value in spark_flows_s3_server.environment().items():
        monkeypatch.setenv(name, value)
    return spark_flows_s3_server


@pytest.fixture
def root(spark_flows_s3_server: S3Server) -> str:
    return f"s3a://{spark_flows_s3_server.bucket}/object-store/{uuid.uuid4().hex[:8]}"


def test_small_files_on_s3_keep_the_contracts_markers_and_leases_use(spark_flows_s3_server: S3Server,
                                                                     root: str) -> None:
    storage = s3_storage(spark_flows_s3_server.hadoop_conf())
    guarantees = storage.guarantees(root)
    assert (guarantees.atomic_rename, guarantees.create_exclusive, guarantees.compare_and_swap) == (False, True, True)
    storage.write_json(f"{root}/a #1 50%/_READY.json", {"rows": 3})
    assert storage.read_json(f"{root}/a #1 50%/_READY.json") == {"rows": 3}  # '#', '%' and ' ' are characters
    assert [i.name for i in storage.list(root)] == ["a #1 50%"] and storage.is_dir(f"{root}/a #1 50%")
    assert storage.create_exclusive(f"{root}/lease", "me") and not storage.create_exclusive(f"{root}/lease", "you")
    text, tag = storage.read_tagged(f"{root}/lease") or ("", "")
    assert text == "me"
    new_tag = storage.write_if_match(f"{root}/lease", "me again", tag)
    assert new_tag and new_tag != tag
    assert storage.write_if_match(f"{root}/lease", "a stale writer", tag) is None
    assert storage.read_text(f"{root}/lease") == "me again"
    assert storage.delete(root) and not storage.exists(root) and storage.list(root) == []
    assert storage.write_if_match(f"{root}/lease", "after delete", new_tag) is None


def test_a_wrong_key_an_unreachable_endpoint_and_a_missing_bucket_are_one_line_naming_what_is_wrong(
        spark_flows_s3_server: S3Server, root: str) -> None:
    settings = spark_flows_s3_server.hadoop_conf()
    with pytest.raises(StorageError, match="refused the credentials for bucket") as denied:
        s3_storage({**settings, "fs.s3a.secret.key": "wrong"}).read_text(f"{root}/x")
    assert denied.value.getCondition() == "S3_ACCESS_DENIED"
    assert settings["fs.s3a.endpoint"] in str(denied.value) and "wrong" not in str(denied.value)
    unreachable_message = re.escape("cannot reach the S3 endpoint http://127.0.0.1:1 ")
    with pytest.raises(StorageError, match=unreachable_message) as unreachable:
        s3_storage({**settings, "fs.s3a.endpoint": "http://127.0.0.1:1"}).exists(f"{root}/x")
    assert unreachable.value.getCondition() == "S3_UNREACHABLE"
    with pytest.raises(StorageError, match="bucket no-such-bucket does not exist at") as missing:
        s3_storage(settings).list("s3a://no-such-bucket/tables")
    assert missing.value.getCondition() == "S3_BUCKET_MISSING"
    for error in (denied.value, unreachable.value, missing.value):
        assert "\n" not in str(error)


def _drop_conditional_headers(store: S3ObjectStore, bucket: str) -> None:
    """Make the store's client send plain PUTs: a server that ignores If-None-Match, as far as the client sees."""
    def drop(request, **_: object) -> None:
        for name in ("If-None-Match", "If-Match"):
            if name in request.headers:
                del request.headers[name]

    store.client(bucket).meta.events.register("before-sign.s3.PutObject", drop)


def test_a_store_that_ignores_conditional_writes_is_refused_unless_the_user_opts_in(
        spark_flows_s3_server: S3Server, root: str, caplog: pytest.LogCaptureFixture) -> None:
    bucket = spark_flows_s3_server.bucket
    settings = {**spark_flows_s3_server.hadoop_conf(), "fs.s3a.endpoint": f"http://localhost:{spark_flows_s3_server.port}"}
    # "localhost", not 127.0.0.1: its own (endpoint, bucket) probe and its own client, the only one that drops headers
    strict = S3ObjectStore(hadoop_lookup(settings), allow_unconditional=False)
    _drop_conditional_headers(strict, bucket)
    with pytest.raises(StorageError, match=r"ignores conditional writes .* SPARK_FLOWS_S3_ALLOW_UNCONDITIONAL=1") as no:
        Storage(fs=strict).create_exclusive(f"{root}/lease", "me")
    assert no.value.getCondition() == "S3_NO_CONDITIONAL_WRITES"
    assert not Storage(fs=strict).exists(f"{root}/lease"), "nothing written"
    lenient = S3ObjectStore(hadoop_lookup(settings), allow_unconditional=True)
    _drop_conditional_headers(lenient, bucket)
    with caplog.at_level("WARNING", logger="spark_flows.io.filesystems.s3"):
        assert Storage(fs=lenient).create_exclusive(f"{root}/lease", "me")
    assert "ignores conditional writes" in caplog.text and "best effort" in caplog.text


def test_a_dead_holders_lease_on_s3_is_taken_over_and_the_dead_holder_cannot_write_over_its_successor(
        server_env: S3Server, root: str) -> None:
    live = RunLock(None, root, "job", ttl_seconds=60, heartbeat_seconds=30, run_id="live")
    assert live.acquire().heartbeat_ms is not None
    live._stop.set()  # the run dies: no more heartbeats
    storage = Storage(None)
    assert live.renew(), "a live holder renews its lease by compare-and-swap"
    with pytest.raises(RunLockedError, match="locked by run live"):
        RunLock(None, root, "job", ttl_seconds=60, heartbeat_seconds=30).acquire()
    backdate_lease(storage, f"{root}/job.lock", 120)
    taker = RunLock(None, root, "job", ttl_seconds=60, heartbeat_seconds=30, run_id="taker")
    assert (taker.acquire().took_over_from or "").startswith("live@")
    assert live.renew() is False and live.lost
    live.release()
    assert json.loads(storage.read_text(f"{root}/job.lock"))["run_id"] == "taker"
    taker.release()
    assert not storage.exists(f"{root}/job.lock")


@pytest.fixture(params=["local disk", "s3"])
def lease_root(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Storage, dict[str, str]]]:
    if request.param == "local disk":
        yield str(tmp_path / "leases"), local_storage(), {}
    else:
        server: S3Server = request.getfixturevalue("spark_flows_s3_server")
        monkeypatch = request.getfixturevalue("monkeypatch")
        for name, value in server.environment().items():
            monkeypatch.setenv(name, value)
        yield (f"s3a://{server.bucket}/leases/{uuid.uuid4().hex[:8]}", s3_storage(server.hadoop_conf()),
               server.environment())


def _check_round(storage: Storage, root: str, round_: int, outcomes: dict[int, str]) -> None:
    errors = {i: o for i, o in outcomes.items() if o not in ("won", "refused")}
    winners = [i for i, o in outcomes.items() if o == "won"]
    assert not errors and len(outcomes) == CONTENDERS, f"round {round_}: {outcomes}"
    assert len(winners) == 1, f"round {round_} ({round_job(round_)}): winners {winners}"
    body = json.loads(storage.read_text(f"{root}/{round_job(round_)}.lock"))
    assert body["run_id"] == f"c{winners[0]}", f"round {round_}: the lease names {body['run_id']}, not the winner"
    assert (body.get("took_over_from") or "").startswith("dead@") == (round_ % 2 == 1), body


def test_lease_conformance_with_threads_exactly_one_holder_every_round(lease_root) -> None:
    root, storage, _ = lease_root
    for round_ in range(ROUNDS):
        if round_ % 2:
            seed_dead_lease(storage, f"{root}/{round_job(round_)}.lock")
        _check_round(storage, root, round_, race_threads(root, round_, CONTENDERS))


def test_lease_conformance_with_processes_exactly_one_holder_every_round(lease_root) -> None:
    root, storage, env = lease_root
    contenders = ProcessContenders(root, ROUNDS, CONTENDERS, env)
    try:
        for round_ in range(ROUNDS):
            if round_ % 2:
                seed_dead_lease(storage, f"{root}/{round_job(round_)}.lock")
            _check_round(storage, root, round_, contenders.race(round_))
    finally:
        contenders.stop()
