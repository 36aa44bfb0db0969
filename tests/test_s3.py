"""The S3 semantics the object-store contracts rely on, shown on the suite's real S3 server (SeaweedFS):
create-if-absent (``If-None-Match: *``) and compare-and-swap (``If-Match: <etag>``) refuse with 412, and
contenders racing for one key or one ETag have exactly one winner, every round. A mock would pass the first
two and prove nothing about the races: it does not serialise concurrent conditional writes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import boto3  # spark_flows[dev]
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from spark_flows.testing.s3_server import S3Server

pytestmark = pytest.mark.no_spark
CONTENDERS, ROUNDS = 8, 20


@pytest.fixture(scope="module")
def s3(spark_flows_s3_server: S3Server):
    server = spark_flows_s3_server
    return boto3.client("s3", endpoint_url=server.endpoint, region_name=server.region,
                        aws_access_key_id=server.access_key, aws_secret_access_key=server.secret_key,
                        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1},
                                      max_pool_connections=CONTENDERS))


def _status(call: Callable[[], object]) -> int:
    try:
        call()
    except ClientError as refused:
        return int(refused.response["ResponseMetadata"]["HTTPStatusCode"])
    return 200


def _race(attempt: Callable[[int], bool]) -> list[int]:
    """Run ``attempt(i)`` for every contender at once (a barrier releases them together); the winners."""
    barrier, winners, errors = threading.Barrier(CONTENDERS), [], []

    def contender(i: int) -> None:
        try:
            barrier.wait(timeout=60)  # a contender that never arrives breaks the barrier: reported below
            if attempt(i):
                winners.append(i)
        except Exception as error:  # reported below: a contender must win or be refused
            errors.append(error)

    threads = [threading.Thread(target=contender, args=(i,)) for i in range(CONTENDERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors and not any(t.is_alive() for t in threads), f"contenders failed or hung: {errors}"
    return winners


def test_conditional_writes_refuse_an_existing_key_and_a_stale_etag(s3, spark_flows_s3_server: S3Server) -> None:
    bucket = spark_flows_s3_server.bucket
    assert _status(lambda: s3.put_object(Bucket=bucket, Key="semantics/a", Body=b"1", IfNoneMatch="*")) == 200
    assert _status(lambda: s3.put_object(Bucket=bucket, Key="semantics/a", Body=b"2", IfNoneMatch="*")) == 412
    first = s3.head_object(Bucket=bucket, Key="semantics/a")["ETag"]
    assert _status(lambda: s3.put_object(Bucket=bucket, Key="semantics/a", Body=b"3", IfMatch=first)) == 200
    assert _status(lambda: s3.put_object(Bucket=bucket, Key="semantics/a", Body=b"4", IfMatch=first)) == 412
    assert s3.get_object(Bucket=bucket, Key="semantics/a")["Body"].read() == b"3"  # the refused writes changed nothing


def test_racing_create_if_absent_has_exactly_one_winner_every_round(s3, spark_flows_s3_server: S3Server) -> None:
    bucket = spark_flows_s3_server.bucket
    for round_ in range(ROUNDS):
        key = f"create-race/{round_}"

        def create(i: int, key: str = key) -> bool:
            return _status(lambda: s3.put_object(Bucket=bucket, Key=key, Body=str(i).encode(),
                                                 IfNoneMatch="*")) == 200

        winners = _race(create)
        assert len(winners) == 1, f"round {round_}: winners {winners}"
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == str(winners[0]).encode()


def test_racing_compare_and_swap_on_one_etag_has_exactly_one_winner_every_round(s3, spark_flows_s3_server: S3Server
                                                                                 ) -> None:
    bucket, key = spark_flows_s3_server.bucket, "cas-race/lease"
    s3.put_object(Bucket=bucket, Key=key, Body=b"start")
    for round_ in range(ROUNDS):
        seen = s3.head_object(Bucket=bucket, Key=key)["ETag"]  # every contender read this version

        def swap(i: int, seen: str = seen, round_: int = round_) -> bool:
            return _status(lambda: s3.put_object(Bucket=bucket, Key=key, Body=f"{round_}:{i}".encode(),
                                                 IfMatch=seen)) == 200

        winners = _race(swap)
        assert len(winners) == 1, f"round {round_}: winners {winners}"
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == f"{round_}:{winners[0]}".encode()


def test_the_server_counts_the_requests_made_to_it(s3, spark_flows_s3_server: S3Server) -> None:
    before = spark_flows_s3_server.request_counts()
    s3.put_object(Bucket=spark_flows_s3_server.bucket, Key="counted/x", Body=b"x")
    s3.get_object(Bucket=spark_flows_s3_server.bucket, Key="counted/x")["Body"].read()
    after = spark_flows_s3_server.request_counts()
    grew = {action for action in after if after[action] > before.get(action, 0.0)}
    assert len(grew) >= 2 and sum(after.values()) >= sum(before.values()) + 2, (before, after)
