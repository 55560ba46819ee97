"""The lab: workload generators, trace replays and bin-packing harnesses for measuring placement.

None of the product (``kube_engine`` outside this package) imports it; it uses the product's public
API and the core, and finds data by argument or environment variable, never by where a checkout
keeps it.

- :mod:`kube_engine.bench.objects`: builders of Kubernetes objects as the API server returns them;
- :mod:`kube_engine.bench.synthetic`: seeded synthetic clusters of any size (``generate_cluster``);
- :mod:`kube_engine.bench.openb`: the Alibaba openb GPU trace as Kubernetes objects
  (``$KUBE_ENGINE_OPENB_DIR``; research and study use only);
- :mod:`kube_engine.bench.fgd`: the FGD paper's online packing protocol on openb;
- :mod:`kube_engine.bench.vbp` / :mod:`kube_engine.bench.vbp_cpsat`: vector bin packing of
  VPSolver ``.vbp`` instances (``$KUBE_ENGINE_VBP_DIR``), greedy, local search and CP-SAT;
- :mod:`kube_engine.bench.cli`: the ``kube-engine-bench`` command.

The generators write unbound objects and let the core place the ones meant to run (a random-fit
profile of the default filters), so every Kubernetes rule they obey is the core's.
"""
