"""Acting on a cluster: a :class:`~kube_engine.Plan` carried out through the Kubernetes API.

:func:`apply` is the only code in kube-engine that writes to a cluster. It cordons, evicts (the
Eviction API, the pod's UID as a precondition; never a delete) and binds (the Binding API), one
wave at a time, with a journal that lets a stopped run be finished, a Lease that keeps runs apart,
and Events on the pods it moves.
"""

from kube_engine.applying.run import CORDONED_BY, Report, Result, Settings, apply

__all__ = ["CORDONED_BY", "Report", "Result", "Settings", "apply"]
