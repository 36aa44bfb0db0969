"""An OpenLineage HTTP endpoint on 127.0.0.1 for the tests, and the checks every event it takes must pass.

The endpoint keeps each JSON body POSTed to ``/api/v1/lineage``; :meth:`LineageEndpoint.wait_for` waits
(bounded) for the event a test expects and names it when it never came. :func:`check_event` validates an
event: the fields OpenLineage's spec requires of a ``RunEvent`` and of every facet (``_producer``,
``_schemaURL``), and each spark_flows facet against its published JSON schema. (The spec's own JSON schema
is published on openlineage.io only, in no package registry this suite can reach.)
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jsonschema

from spark_flows.events.openlineage import FACETS, facet_schema


class LineageEndpoint:
    """The events received, in order, and a condition to wait on."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.events: list[dict[str, Any]] = []
        self.changed = threading.Condition()

    def take(self, event: dict[str, Any]) -> None:
        with self.changed:
            self.events.append(event)
            self.changed.notify_all()

    def wait_for(self, what: str, found: Callable[[dict[str, Any]], bool], timeout: float = 60) -> dict[str, Any]:
        """The first event ``found`` accepts; fails naming ``what`` if none arrived within ``timeout``."""
        with self.changed:
            if not self.changed.wait_for(lambda: any(found(e) for e in self.events), timeout):
                got = [(e.get("eventType"), e.get("job", {}).get("name")) for e in self.events]
                raise AssertionError(f"no OpenLineage event {what} reached the endpoint within {timeout} s; "
                                     f"it got {got}")
            return next(e for e in self.events if found(e))


@contextmanager
def lineage_endpoint() -> Iterator[LineageEndpoint]:
    """Serve on a free port of 127.0.0.1 until the block ends (then always shut down)."""
    holder: list[LineageEndpoint] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            status = 200 if self.path.rstrip("/") == "/api/v1/lineage" else 404
            if status == 200:
                holder[0].take(json.loads(body))
            self.send_response(status)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    holder.append(LineageEndpoint(f"http://127.0.0.1:{server.server_address[1]}"))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield holder[0]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def check_event(event: dict[str, Any]) -> None:
    """Fail unless ``event`` is a valid OpenLineage RunEvent whose spark_flows facets fit their schemas."""
    from openlineage.client.event_v2 import RunState

    assert event["eventType"] in {s.value for s in RunState}, event["eventType"]
    assert event["schemaURL"].startswith("https://openlineage.io/spec/"), event["schemaURL"]
    assert event["producer"] and event["eventTime"], event
    uuid.UUID(event["run"]["runId"])
    assert event["job"]["namespace"] and event["job"]["name"], event["job"]
    facets = [*event["run"].get("facets", {}).items()]
    for dataset in event.get("outputs", []):
        assert dataset["namespace"] and dataset["name"], dataset
        facets += [*dataset.get("facets", {}).items(), *dataset.get("outputFacets", {}).items()]
    for name, facet in facets:
        assert facet["_producer"] and facet["_schemaURL"].count("#") == 1, (name, facet)  # a URL, one fragment
        if name in FACETS:
            schema = facet_schema(name)
            assert facet["_schemaURL"].startswith(schema["$id"] + "#/$defs/"), (facet["_schemaURL"], schema["$id"])
            own = next(iter(schema["$defs"].values()))["allOf"][1]
            jsonschema.validate({k: v for k, v in facet.items() if not k.startswith("_")}, own)
