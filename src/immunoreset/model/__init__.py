"""Mechanistic immune-reset model of CD19 CAR T in autoimmune disease and its batched simulator.

Modules: ``equations`` (states, parameters, right-hand side, Stein 2019 special case),
``solver`` (compiled DOP853 / Dormand–Prince 5(4) with exact events and on-the-fly endpoints;
``rk_kernels``, ``dop853_tableau``),
``population`` (virtual patients, chunked simulation streamed to Parquet, prediction
intervals), ``cli``
(``immunoreset simulate``). See ``docs/model.md``.
"""

__all__: list[str] = []
