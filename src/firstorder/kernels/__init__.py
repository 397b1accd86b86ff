"""Compiled kernels: the rules of :mod:`firstorder.rules` run fast, without being written again.

Nobody changing a rule needs to read this package: it compiles whatever ``Rule.apply`` does,
and a rule that cannot be compiled still runs, eagerly. For someone who knows PyTorch but not
this project, there is one pipeline, in three steps:

1. **Trace** (:func:`~firstorder.kernels.trace.trace`): ``make_fx`` runs the function once on
   fake tensors, sizes symbolic, and records the aten operations it calls as an fx graph. A
   rule's hyperparameters and step counter k enter as 0-d float64 tensors, so that a new α or
   the next k is a new input, not a new graph.
2. **Hoist** (:func:`~firstorder.kernels.hoist.hoisted`, optimizer steps only): the graph's
   arithmetic on those 0-d tensors (1 − ρᵏ, …) moves to a prelude run once per call, on Python
   floats, so the loop over elements does not repeat it for every value.
3. **Compile** (``torch._inductor.compile``): inductor fuses the graph into one C++ (or Triton)
   loop. No dynamo: a call runs the kernel with no guards to check.

:class:`~firstorder.kernels.trace.Deferred` builds a kernel once, at the first use or in a
background thread; until it is ready, or where compiling is impossible (no C++ compiler, a dtype
or device inductor does not handle, ``torch.compile`` disabled), the caller runs the plain rule,
with one ``RuntimeWarning`` at most. A built kernel that fails when called raises.

- :mod:`~firstorder.kernels.trace`: trace, compile, :class:`~firstorder.kernels.trace.Deferred`.
- :mod:`~firstorder.kernels.hoist`: the prelude of 0-d arithmetic.
- :mod:`~firstorder.kernels.step`: the optimizers' fast step (:mod:`firstorder.optim`): one
  :class:`~firstorder.kernels.step.CompiledRule` per rule, dtype, device and switches
  (``bias_correction``), called on stretches of the flat buffers of :mod:`firstorder.flat`.
- :mod:`~firstorder.kernels.engine`: the batched engine's rule kernels, on [C, B, d] blocks
  with [C, 1, 1] hyperparameters (:mod:`firstorder.run`); the landscape observations of
  :mod:`firstorder.observe` are traced the same way.
- :mod:`~firstorder.kernels.lanes`: the engine's runs with ``record="final"``: one step of one
  trajectory traced into scalar operations and written as a C++ loop, every trajectory's steps
  in registers (the one kernel here that inductor does not generate; why in its docstring).
"""
