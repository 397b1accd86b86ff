"""Compiled kernels: the rules of :mod:`firstorder.rules` run fast, without being written again.

Nobody changing a rule needs to read this package: it compiles whatever ``Rule.apply`` does.
For someone who knows PyTorch but not this project, the pieces are:

- :mod:`~firstorder.kernels.trace`: the machinery. :func:`~firstorder.kernels.trace.traced`
  traces a function with ``make_fx`` (sizes symbolic) and compiles the graph with inductor,
  so a call costs a C++ kernel and no dynamo guards; :class:`~firstorder.kernels.trace.Deferred`
  builds such a kernel once, in a background thread if asked, and hands out ``None`` (run
  eagerly) until it is ready or where compiling is impossible (one warning).
- :mod:`~firstorder.kernels.hoist`: a ``torch.compile`` backend that moves the arithmetic on
  hyperparameters (0-d tensors such as 1 − ρᵏ) out of the loop over elements into a prelude
  run once per call.
- :mod:`~firstorder.kernels.step`: the optimizers' ``compile=True`` step, one call per stretch
  of a flat buffer (:mod:`firstorder.flat`).
- :mod:`~firstorder.kernels.engine`: the batched engine's rule kernels, on [C, B, d] blocks
  with [C, 1, 1] hyperparameters (:mod:`firstorder.run`); the landscape observations of
  :mod:`firstorder.observe` are traced the same way.
"""
