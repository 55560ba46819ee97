"""Benchmarks shipped with the package, so that ``kube-engine bench`` can run them.

- :mod:`kube_engine.bench.fgd`: the FGD paper's online packing protocol on the openb trace.
"""
