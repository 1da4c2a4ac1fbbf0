"""Streams whose records are the children of listed parents: each reconciled automatic payout becomes the balance
transactions it paid out (issue #13).

Stripe's reconciliation guide: once a payout's `reconciliation_status` is `completed` (event
`payout.reconciliation_completed`), `GET /v1/balance_transactions?payout=po_...` lists exactly the transactions it
paid out, its own `payout` transaction included. A stream that declares `children_of` in the manifest reads its
parents like any stream (`created` windows of its `resource`, and the parents re-fetched after their
`change_events`), and turns each parent that matches `when` into its children, each with `link_field` naming the
parent. So payouts reconciled before the first sync arrive with it (their windows), and a payout reconciled between
two syncs arrives with the next one (its event). Parents matching `skipped_when` (manual payouts, which Stripe
answers with 400) are skipped and counted in one INFO line per sync; other parents (reconciliation in progress)
wait for their event.

Why Python: the manifest's `SubstreamPartitionRouter` reads the children of every parent record, but cannot filter
parents on two fields and count the skipped ones, nor expand the parents that change capture re-fetches after an
event; the classes below decorate the partitions and the cursor of the stream the CDK built.
"""
from __future__ import annotations

import logging
import threading
from typing import Any, Dict, Iterable, Iterator, Mapping, Optional

import orjson
from airbyte_cdk.sources.streams.concurrent.cursor import Cursor
from airbyte_cdk.sources.streams.concurrent.partitions.partition import Partition
from airbyte_cdk.sources.streams.concurrent.partitions.partition_generator import PartitionGenerator
from airbyte_cdk.sources.types import Record

from source_stripe_ontologie import cdk_seam
from source_stripe_ontologie.cursors import CursorDecorator
from source_stripe_ontologie.stream_facts import ChildrenOf, StreamFacts

logger = logging.getLogger("airbyte")


class ChildLister:
    """Pages `GET /v1/<resource>?<filter>=<parent id>` through a requester built from the manifest."""

    def __init__(self, requester: Any, children: ChildrenOf, page_size: int = 100) -> None:
        self._requester = requester
        self._children = children
        self._page_size = page_size

    def of(self, parent_id: str) -> Iterator[dict]:
        starting_after = None
        while True:
            params: Dict[str, Any] = {self._children.filter: parent_id, "limit": str(self._page_size)}
            if starting_after:
                params["starting_after"] = starting_after
            body = orjson.loads(self._requester.send_request(request_params=params).content)
            for child in body["data"]:
                yield {**child, self._children.link_field: parent_id}
            if not body.get("has_more") or not body["data"]:
                return
            starting_after = body["data"][-1]["id"]


class SkippedParents:
    """Counts the parents skipped for good in this sync (thread-safe; partitions run in parallel)."""

    def __init__(self) -> None:
        self._ids: set = set()
        self._lock = threading.Lock()

    def add(self, parent_id: str) -> None:
        with self._lock:
            self._ids.add(parent_id)

    def __len__(self) -> int:
        with self._lock:
            return len(self._ids)


class ChildrenPartition(Partition):
    """One partition of the built stream (a `created` window of parents, or parents re-fetched after events), read
    as the children of its ready parents; same slice, so the stream's cursors handle it as the original."""

    def __init__(self, inner: Partition, children: ChildrenOf, lister: ChildLister, skipped: SkippedParents) -> None:
        self.inner = inner
        self._children = children
        self._lister = lister
        self._skipped = skipped

    def read(self) -> Iterable[Record]:
        for record in self.inner.read():
            parent = record.data
            if self._children.ready(parent):
                for child in self._lister.of(parent["id"]):
                    yield Record(data=child, stream_name=self.inner.stream_name(),
                                 associated_slice=record.associated_slice)
            elif self._children.skipped(parent):
                self._skipped.add(parent["id"])

    def to_slice(self) -> Optional[Mapping[str, Any]]:
        return self.inner.to_slice()

    def stream_name(self) -> str:
        return self.inner.stream_name()

    def __hash__(self) -> int:
        return hash(self.inner)


class ChildrenGenerator(PartitionGenerator):
    def __init__(self, inner: PartitionGenerator, wrap: Any) -> None:
        self._inner = inner
        self._wrap = wrap

    def generate(self) -> Iterable[Partition]:
        for partition in self._inner.generate():
            yield self._wrap(partition)


class ChildrenCursor(CursorDecorator):
    """The stream's cursor, handed the original partitions; says once per sync how many parents were skipped."""

    def __init__(self, inner: Cursor, stream_name: str, children: ChildrenOf, skipped: SkippedParents) -> None:
        super().__init__(inner)
        self._stream_name = stream_name
        self._children = children
        self._skipped = skipped
        self._told = False

    def close_partition(self, partition: Partition) -> None:
        self._inner.close_partition(partition.inner if isinstance(partition, ChildrenPartition) else partition)

    def ensure_at_least_one_state_emitted(self) -> None:
        if not self._told and len(self._skipped):
            self._told = True
            conditions = ", ".join(f"{k}={v}" for k, v in self._children.skipped_when.items())
            logger.info(f"{self._stream_name}: skipped {len(self._skipped)} {self._children.parent_object}s with "
                        f"{conditions}: Stripe lists {self._children.resource}?{self._children.filter}= only for "
                        f"{', '.join(f'{k}={v}' for k, v in self._children.when.items())}.")
        self._inner.ensure_at_least_one_state_emitted()

    def should_be_synced(self, record: Record) -> bool:
        return True  # a child's `created` is its own, older than its parent's window


class ChildrenExpansion:
    """Turns every stream that declares `children_of` into its parents' children (see the module docstring)."""

    def __init__(self, factory: Any, manifest: Mapping[str, Any], config: Mapping[str, Any]) -> None:
        self._factory = factory
        self._requester_definition = manifest["definitions"]["requester"]
        self._config = config

    def wrap(self, facts: Optional[StreamFacts], partitions: PartitionGenerator,
             cursor: Cursor) -> tuple[PartitionGenerator, Cursor]:
        children = facts.children_of if facts is not None else None
        if children is None:
            return partitions, cursor
        parameters = {**facts.requester_parameters(), "resource": children.resource}
        requester = cdk_seam.build_requester(self._factory, self._requester_definition, parameters, self._config,
                                             name=f"{facts.name}_{children.resource}")
        lister = ChildLister(requester, children)
        skipped = SkippedParents()
        generator = ChildrenGenerator(partitions, lambda p: ChildrenPartition(p, children, lister, skipped))
        return generator, ChildrenCursor(cursor, facts.name, children, skipped)
