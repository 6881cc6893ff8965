"""Mechanistic immune-reset model of CD19 CAR T in autoimmune disease and its batched simulator.

Modules: ``equations`` (states, parameters, right-hand side, Stein 2019 special case),
``solver`` (compiled Dormand–Prince 5(4) with exact events and on-the-fly endpoints),
``population`` (virtual patients, chunked simulation, prediction intervals), ``cli``
(``immunoreset simulate``). See ``docs/model.md``.
"""

__all__: list[str] = []
