"""Benchmark workloads: Kubernetes clusters as `kubectl get nodes,pods,pdb -A -o json` prints them.

- :func:`generate_cluster` / :func:`generate_cluster_json`: seeded synthetic clusters of any size
  (node pools, zones, taints, DaemonSets, Deployments, StatefulSets, Jobs, PDBs, GPU pods).
- :func:`openb_cluster`: the Alibaba openb GPU-cluster trace converted to Kubernetes objects.
- :mod:`kube_engine.workloads.objects`: the object builders both use, and helpers to split a `List`
  into typed lists and to deserialize them with the official client.
"""

from kube_engine.workloads.openb import find_openb_dir, openb_cluster
from kube_engine.workloads.synthetic import generate_cluster, generate_cluster_json

__all__ = ["find_openb_dir", "generate_cluster", "generate_cluster_json", "openb_cluster"]
