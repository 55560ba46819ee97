"""The snapshot reader on generated input: valid Kubernetes objects always load; hostile ones
load or are refused with a ``SnapshotError``/``QuantityError``, and so are arbitrary bytes.
(That reading stays linear in the input is tests/test_ingest_limits.py's.)"""

from __future__ import annotations

import gzip
import json

from hypothesis import given
from hypothesis import strategies as st

import kube_engine as ke
from fuzz_objects import clusters, document, hostile_clusters
from fuzz_support import check_error, examples


@examples(40)
@given(clusters())
def test_valid_objects_load(items: list[dict]) -> None:
    snap = ke.Snapshot.from_documents([document(items)])
    assert snap.num_nodes == sum(o["kind"] == "Node" for o in items)
    assert snap.num_pods == sum(o["kind"] == "Pod" for o in items)
    assert snap.num_pdbs == sum(o["kind"] == "PodDisruptionBudget" for o in items)


def load_or_refuse(docs: list[bytes]) -> None:
    try:
        ke.Snapshot.from_documents(docs)
    except Exception as e:
        check_error(e)


@examples(100)
@given(hostile_clusters())
def test_hostile_objects_load_or_are_refused(items: list[dict]) -> None:
    load_or_refuse([document(items)])


@examples(200)
@given(st.binary(max_size=300), st.booleans())
def test_arbitrary_bytes_load_or_are_refused(data: bytes, compress: bool) -> None:
    load_or_refuse([gzip.compress(data) if compress else data])


@examples(100)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=8),
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(
                st.sampled_from(
                    ["kind", "items", "metadata", "spec", "status", "name", "apiVersion"]
                ),
                inner,
                max_size=4,
            )
        ),
        max_leaves=20,
    )
)
def test_arbitrary_json_loads_or_is_refused(value: object) -> None:
    load_or_refuse([json.dumps(value).encode()])
