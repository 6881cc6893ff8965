"""The forecast band of the patient page's B-cell plot, from a population fit on disk.

The web app finds its fit through one setting, ``IMMUNORESET_FIT_DIR``: the folder written by
``immunoreset fit --out DIR`` (its ``fit.json``). When set, the patient page asks
``/patients/{id}/forecast.json`` after it has drawn, and adds to the B-cell plot the median
and the 90 % prediction interval of :func:`immunoreset.model.fit.forecast.forecast_patient`
(parameter uncertainty + the fit's residual error, ``"interval": "prediction"``): the
patient's MAP estimate from the registry's data so far (the same call as ``immunoreset
forecast``), so the band moves as data arrive. ``IMMUNORESET_FIT_LLOQ`` gives LLOQs for
observations stored without one (``CMT=VALUE`` pairs, e.g. ``4=1.0`` for B cells, as the
command's ``--lloq``). A fit of a model that does not describe registry patients
(``pk_1cmt_oral``), a missing or unreadable fit, or data the fit cannot use answer
``available: false`` with the reason in one line; the page says so under the plot.

Forecasts are kept per process (least recently used, :data:`CACHE_SIZE`) keyed by the fit
file's modification time and the patient's records, so a page reload costs nothing and a new
observation or a new fit gives a new band.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from immunoreset.errors import ImmunoresetError, InvalidInput

__all__ = ["CACHE_SIZE", "LEVEL", "patient_forecast"]

CACHE_SIZE = 64
#: Central prediction-interval probability of the band (as ``immunoreset forecast``).
LEVEL = 0.9
#: Output of the fit shown on the B-cell plot.
OUTPUT = "b_cells"
_MODELS = ("immune_reset", "stein2019")

_lock = threading.Lock()
_cache: OrderedDict[tuple[Any, ...], dict[str, Any]] = OrderedDict()


def _unavailable(why: str) -> dict[str, Any]:
    return {"available": False, "message": why}


def patient_forecast(
    registry: Any, actor: Any, study_id: str, fit_dir: Path, lloq: str = ""
) -> dict[str, Any]:
    """``{"available": True, "days", "median", "low", "high", …}`` or the reason it is not."""
    from immunoreset.interop.nonmem import apply_default_lloq, parse_lloq_options, patient_frame
    from immunoreset.model.fit.forecast import forecast_patient
    from immunoreset.model.fit.workflow import load_fit

    path = fit_dir / "fit.json" if fit_dir.is_dir() else fit_dir
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        return _unavailable(f"no population fit at {path} (IMMUNORESET_FIT_DIR)")
    # the patient's records first: a patient outside the actor's sites is NotFound (404)
    try:
        frame_raw = patient_frame(registry, actor, study_id)
    except InvalidInput as err:
        return _unavailable(str(err))
    try:
        saved = load_fit(path)
        if saved.spec.model not in _MODELS:
            return _unavailable(
                f"the fit is of model {saved.spec.model}, which does not describe registry "
                "patients (use an immune_reset or stein2019 fit)"
            )
        frame = apply_default_lloq(frame_raw, parse_lloq_options(lloq.split() or None))
    except ImmunoresetError as err:
        return _unavailable(str(err))
    except (KeyError, TypeError, ValueError) as err:  # a fit.json edited or cut short
        return _unavailable(f"{path} is not a complete fit.json ({type(err).__name__}: {err})")
    digest = hashlib.sha256(frame.to_csv(index=False).encode()).hexdigest()
    key = (str(path), stamp, study_id, digest, lloq)
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    try:
        fc = forecast_patient(saved, frame, level=LEVEL)
    except ImmunoresetError as err:
        out = _unavailable(str(err))
    else:
        band = next((b for b in fc.bands.values() if b.output == OUTPUT), None)
        if band is None:
            out = _unavailable(f"the fit has no {OUTPUT} compartment")
        else:
            out = {
                "available": True,
                "output": band.output,
                "level": band.level,
                "interval": band.interval,
                "days": band.days.tolist(),
                "median": band.median.tolist(),
                "low": band.low.tolist(),
                "high": band.high.tolist(),
                "model": saved.spec.model,
                "n_observations": fc.n_observations,
                "fit": path.parent.name,
            }
    with _lock:
        _cache[key] = out
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return out
