"""What the Python needs to know about each stream, read from the stream's declaration in `manifest.yaml`.

Why not the manifest alone: the manifest declares these facts (each stream's `$parameters`, and `definitions.events`),
but `check`, the error messages, change capture, the history probe and the schema generator are Python, and a
manifest component cannot hand its parameters to them. This module is the one reader: no other module names a
stream, so adding a stream to the manifest is enough for every part of the connector to know it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple


@dataclass(frozen=True)
class Permission:
    """A restricted-key permission: Stripe's name (`rak_charge_read`, named in its 403s) and the Dashboard's label."""

    name: str
    label: str = ""

    def shown(self) -> str:
        """`Charges: Read (rak_charge_read)`, or the bare name when the Dashboard label is unknown."""
        return f"{self.label} ({self.name})" if self.label else self.name


@dataclass(frozen=True)
class Unsettled:
    """Objects of a stream that still change, without any event, while `field` is one of `values` (a balance
    transaction while its `status` is `pending`)."""

    field: str
    values: frozenset

    @classmethod
    def of(cls, declared: Optional[Mapping[str, Any]]) -> Optional["Unsettled"]:
        if not declared:
            return None
        return cls(str(declared["field"]), frozenset(declared["values"]))

    def holds(self, record: Mapping[str, Any]) -> bool:
        return record.get(self.field) in self.values


@dataclass(frozen=True)
class ChildrenOf:
    """A stream's `children_of` declaration (see the comment above `streams:` in the manifest)."""

    resource: str  # the children's list, GET /v1/<resource>
    filter: str  # its parameter naming the parent: ?<filter>=<parent id>
    link_field: str  # added to each child: the parent's id
    parent_object: str
    when: Mapping[str, Any] = field(default_factory=dict)  # parents whose children are read
    skipped_when: Mapping[str, Any] = field(default_factory=dict)  # parents skipped for good, counted

    @classmethod
    def of(cls, declared: Optional[Mapping[str, Any]]) -> Optional["ChildrenOf"]:
        if not declared:
            return None
        return cls(resource=declared["resource"], filter=declared["filter"], link_field=declared["link_field"],
                   parent_object=declared["parent_object"], when=dict(declared.get("when") or {}),
                   skipped_when=dict(declared.get("skipped_when") or {}))

    def ready(self, parent: Mapping[str, Any]) -> bool:
        return all(parent.get(key) == value for key, value in self.when.items())

    def skipped(self, parent: Mapping[str, Any]) -> bool:
        return bool(self.skipped_when) and all(parent.get(k) == v for k, v in self.skipped_when.items())


@dataclass(frozen=True)
class StreamFacts:
    """One stream as its manifest entry declares it (see the comment above `streams:` in the manifest)."""

    name: str
    resource: str  # GET /v1/<resource>
    object_name: str  # Stripe's `object` and OpenAPI component
    permission: Permission
    change_events: Mapping[str, str] = field(default_factory=dict)  # event type -> data.object field naming ours
    deletion_events: frozenset = frozenset()
    list_parameters: Mapping[str, Any] = field(default_factory=dict)  # the fixed query of its list requests
    sub_lists: Tuple[str, ...] = ()
    created_from: Optional[str] = None  # the object's own creation field when it has no `created` (`date`)
    unsettled: Optional["Unsettled"] = None  # objects that change without events while in some states
    children_of: Optional["ChildrenOf"] = None  # records are the children of the listed parents

    @classmethod
    def from_definition(cls, stream: Mapping[str, Any]) -> "StreamFacts":
        """From a resolved stream definition (`resolved_manifest["streams"][i]`)."""
        parameters = stream.get("$parameters") or {}
        requester = (stream.get("retriever") or {}).get("requester") or {}
        return cls(
            name=parameters["name"],
            resource=parameters["resource"],
            object_name=parameters["object"],
            permission=Permission(parameters["permission"], parameters.get("permission_label", "")),
            change_events=dict(parameters.get("change_events") or {}),
            deletion_events=frozenset(parameters.get("deletion_events") or ()),
            list_parameters=dict(requester.get("request_parameters") or {}),
            sub_lists=tuple(parameters.get("sub_lists") or ()),
            created_from=parameters.get("created_from") or None,
            unsettled=Unsettled.of(parameters.get("unsettled")),
            children_of=ChildrenOf.of(parameters.get("children_of")),
        )

    def requester_parameters(self, target: Optional["StreamFacts"] = None) -> Dict[str, str]:
        """The `$parameters` of a requester reading `target`'s resource (this stream's by default) for this stream:
        its errors name this stream, and `target`'s permission."""
        target = target or self
        return {"name": self.name, "resource": target.resource, "permission": target.permission.name,
                "permission_label": target.permission.label}

    @property
    def expansions(self) -> List[str]:
        """The stream's list expansions (`data.default_price`) as one object's (`default_price`)."""
        expand = self.list_parameters.get("expand[]") or []
        expand = [expand] if isinstance(expand, str) else list(expand)
        return [path[len("data."):] if path.startswith("data.") else path for path in expand]

    @property
    def probed_resource(self) -> str:
        """What `check` asks for one object of: the records' own list (a `children_of` stream's children)."""
        return self.children_of.resource if self.children_of else self.resource

    @property
    def filters(self) -> Dict[str, str]:
        """The list's fixed filters without its expansions (e.g. `status=all`): what a `limit=1` probe sends."""
        return {k: v for k, v in self.list_parameters.items() if not k.startswith("expand")}


@dataclass(frozen=True)
class ManifestFacts:
    """Every stream of the manifest, in manifest order, and the Events API's permission."""

    streams: Mapping[str, StreamFacts]
    events: StreamFacts

    @classmethod
    def from_manifest(cls, manifest: Mapping[str, Any]) -> "ManifestFacts":
        """From the resolved manifest (`source.resolved_manifest`, references resolved and parameters propagated)."""
        streams = {facts.name: facts for facts in map(StreamFacts.from_definition, manifest.get("streams") or [])}
        events = manifest["definitions"]["events"]
        return cls(streams, StreamFacts(name=events["resource"], resource=events["resource"], object_name="event",
                                        permission=Permission(events["permission"], events.get("permission_label", ""))))

    def stream(self, name: str) -> Optional[StreamFacts]:
        return self.streams.get(name)

    @property
    def names(self) -> List[str]:
        return list(self.streams)
