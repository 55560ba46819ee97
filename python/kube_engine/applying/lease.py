"""One run at a time: a ``coordination.k8s.io/v1`` Lease held while a run acts on a cluster.

A run takes the Lease when no one holds it, or when its holder has not renewed it within its
duration (a run that died); it renews it from a background thread and gives it up at the end.
Conflicting writes (409) mean another run got there first: this one does not act.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from datetime import UTC, datetime
from typing import Any

from kube_engine._core import ClusterError
from kube_engine.applying.api import Api, now_rfc3339


class Lease:
    def __init__(
        self, api: Api, namespace: str, name: str = "kube-engine", duration: int = 60
    ) -> None:
        self.api, self.namespace, self.name, self.duration = api, namespace, name, duration
        self.holder = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._version = ""

    def _body(self, version: str = "") -> dict[str, Any]:
        meta: dict[str, Any] = {"name": self.name, "namespace": self.namespace}
        if version:
            meta["resourceVersion"] = version
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": meta,
            "spec": {
                "holderIdentity": self.holder,
                "leaseDurationSeconds": self.duration,
                "renewTime": now_rfc3339(micro=True),
                "acquireTime": now_rfc3339(micro=True),
            },
        }

    def acquire(self) -> None:
        where = f"Lease {self.namespace}/{self.name}"
        got = self.api.get_lease(self.namespace, self.name)
        if got.status == 404:
            made = self.api.create_lease(self.namespace, self._body())
            if made.status == 409:
                raise ClusterError(f"{where}: another run took it first")
            if not made.ok:
                raise ClusterError(f"{where}: cannot create it: HTTP {made.status} {made.message}")
            self._version = str(made.body.get("metadata", {}).get("resourceVersion", ""))
        elif got.ok:
            spec = got.body.get("spec") or {}
            holder = spec.get("holderIdentity")
            if holder and holder != self.holder and not _expired(spec):
                raise ClusterError(
                    f"{where} is held by {holder} (renewed {spec.get('renewTime')}): another "
                    "kube-engine run is acting on this cluster; wait for it to finish"
                )
            version = str(got.body.get("metadata", {}).get("resourceVersion", ""))
            taken = self.api.replace_lease(self.namespace, self.name, self._body(version))
            if taken.status == 409:
                raise ClusterError(f"{where}: another run took it first")
            if not taken.ok:
                raise ClusterError(f"{where}: cannot take it: HTTP {taken.status} {taken.message}")
            self._version = str(taken.body.get("metadata", {}).get("resourceVersion", ""))
        else:
            raise ClusterError(f"{where}: cannot read it: HTTP {got.status} {got.message}")
        self._thread = threading.Thread(target=self._renew_loop, daemon=True)
        self._thread.start()

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.duration / 3):
            body = self._body(self._version)
            renewed = self.api.replace_lease(self.namespace, self.name, body)
            if renewed.ok:
                self._version = str(renewed.body.get("metadata", {}).get("resourceVersion", ""))
            elif renewed.status == 409:
                # Someone else wrote it: we no longer hold it, and must stop acting.
                self.lost.set()
                return

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if not self.lost.is_set():
            self.api.delete_lease(self.namespace, self.name)


def _expired(spec: dict[str, Any]) -> bool:
    renew = spec.get("renewTime")
    duration = spec.get("leaseDurationSeconds") or 0
    if not isinstance(renew, str):
        return True
    try:
        when = datetime.fromisoformat(renew.replace("Z", "+00:00"))
    except ValueError:
        return True
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (datetime.now(UTC) - when).total_seconds() > float(duration)
