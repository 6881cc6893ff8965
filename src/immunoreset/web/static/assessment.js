// Live CRS/ICANS grade of the daily-assessment form: POST /api/v1/grade as values are typed
// (debounced), show the grades with their reasons and any field message; nothing is stored.
(function () {
  "use strict";
  var form = document.getElementById("assessment-form");
  if (!form) { return; }
  var cut = parseFloat(form.dataset.capdAgeCut);
  var timer = null;
  var seq = 0;
  var first = true;  // keep the server's messages of a refused save until the first answer

  function ageOn(dateText) {
    // As Patient.age_on: birth taken as the 15th of the birth month, 365.25-day years.
    var born = Date.UTC(parseInt(form.dataset.birthYear, 10), parseInt(form.dataset.birthMonth, 10) - 1, 15);
    var parts = (dateText || "").split("-");
    if (parts.length !== 3) { return null; }
    var when = Date.UTC(parseInt(parts[0], 10), parseInt(parts[1], 10) - 1, parseInt(parts[2], 10));
    return (when - born) / 86400000 / 365.25;
  }

  function chooseInstrument() {
    var age = ageOn(form.elements.date.value);
    if (age === null || isNaN(age)) { return; }
    var ice = age >= cut;
    form.querySelectorAll("[data-instrument]").forEach(function (el) {
      var show = (el.getAttribute("data-instrument") === "ice") === ice;
      el.hidden = !show;
      if (!show) { el.querySelectorAll("input").forEach(function (i) { i.value = ""; }); }
    });
    document.getElementById("instrument-note").textContent = ice
      ? "Age " + age.toFixed(1) + " years on this date: ICE score."
      : "Age " + age.toFixed(1) + " years on this date (under " + cut + "): CAPD score.";
  }

  function num(name) {
    var v = (form.elements[name].value || "").trim().replace(",", ".");
    if (v === "") { return null; }
    var n = Number(v);
    return isNaN(n) ? v : n;  // a non-number is sent as text so the server names the field
  }

  function capdAnswers() {
    // the CAPD items as asked (Never … Always); the server scores them (items 1–4 reversed)
    var out = {};
    var any = false;
    form.querySelectorAll("select[name^=capd_]").forEach(function (el) {
      if (el.value) { out[el.name.slice(5)] = el.value; any = true; }
    });
    return any ? out : null;
  }

  function payload() {
    var vaso = [];
    form.querySelectorAll("input[name=vasopressors]:checked").forEach(function (el) { vaso.push(el.value); });
    return {
      study_id: form.dataset.studyId,
      date: form.elements.date.value,
      temperature_max_c: num("temperature_max_c"),
      hypotension: form.elements.hypotension.checked,
      vasopressors: vaso,
      oxygen_device: form.elements.oxygen_device.value,
      oxygen_flow_l_min: num("oxygen_flow_l_min"),
      ice_score: num("ice_score"),
      capd_score: num("capd_score"),
      unable_to_assess: form.elements.unable_to_assess.checked,
      consciousness: form.elements.consciousness.value,
      seizure: form.elements.seizure.value,
      motor_weakness: form.elements.motor_weakness.checked,
      cerebral_edema: form.elements.cerebral_edema.value,
      tocilizumab: form.elements.tocilizumab.checked,
      corticosteroids: form.elements.corticosteroids.checked,
      anakinra: form.elements.anakinra.checked,
      siltuximab: form.elements.siltuximab.checked,
      other_anticytokine: form.elements.other_anticytokine.checked,
      antipyretic: form.elements.antipyretic.checked,
      capd_answers: capdAnswers()
    };
  }

  function setGrade(kind, grade, reasons) {
    var badge = document.getElementById("live-" + kind + "-grade");
    var none = grade === null || grade === undefined;
    // nothing gradable is "not assessed" (grey), never a green grade 0
    badge.textContent = none ? "not assessed" : "grade " + grade;
    badge.className = "g " + (none ? "gna" : "g" + grade);
    var list = document.getElementById("live-" + kind + "-reasons");
    list.textContent = "";
    (reasons || []).forEach(function (r) {
      var li = document.createElement("li");
      li.textContent = r;
      list.appendChild(li);
    });
  }

  function setSavable(ok) {
    // a blank day is "not assessed" and is refused by the server: say so before the click
    var save = document.getElementById("save");
    var hint = document.getElementById("save-hint");
    save.disabled = !ok;
    hint.hidden = ok;
  }

  function clearErrors() {
    form.querySelectorAll("[data-error-for]").forEach(function (el) {
      el.textContent = "";
      var box = el.closest(".field");
      if (box) { box.classList.remove("invalid"); }
    });
  }

  function showError(field, message) {
    var el = form.querySelector("[data-error-for='" + field + "']");
    var status = document.getElementById("live-status");
    if (el) {
      el.textContent = message;
      var box = el.closest(".field");
      if (box) { box.classList.add("invalid"); }
    }
    status.textContent = "Not gradable yet: " + message;
  }

  function update() {
    var mine = ++seq;
    var status = document.getElementById("live-status");
    if (!form.elements.date.value) { status.textContent = "Enter the date first."; return; }
    fetch("/api/v1/grade", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": form.dataset.csrf },
      body: JSON.stringify(payload())
    }).then(function (resp) {
      return resp.json().then(function (body) { return { status: resp.status, body: body }; });
    }).then(function (res) {
      if (mine !== seq) { return; }  // a newer request is on its way
      if (!first) { clearErrors(); }
      first = false;
      if (res.status === 200) {
        setSavable(!res.body.blank);
        setGrade("crs", res.body.crs_grade, res.body.crs_reasons);
        setGrade("icans", res.body.icans_grade, res.body.icans_reasons);
        status.textContent = (res.body.study_day !== null ? "Study day " + res.body.study_day + ". " : "") +
          (res.body.blank ? "Nothing entered yet." : "Not saved yet.");
      } else if (res.status === 422 && Array.isArray(res.body.detail)) {
        setSavable(true);  // something was entered: the server's check names the bad field
        res.body.detail.forEach(function (d) {
          var loc = d.loc || [];
          showError(String(loc[loc.length - 1] === undefined ? "" : (typeof loc[loc.length - 1] === "number" ? loc[loc.length - 2] : loc[loc.length - 1])), d.msg);
        });
      } else {
        setSavable(true);
        status.textContent = "Could not grade: " + (res.body.detail || res.status);
      }
    }).catch(function () {
      if (mine === seq) { status.textContent = "Could not reach the server to grade."; }
    });
  }

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(update, 250);
  }

  form.addEventListener("input", schedule);
  form.addEventListener("change", function (ev) {
    if (ev.target && ev.target.name === "date") { chooseInstrument(); }
    schedule();
  });
  chooseInstrument();
  update();
})();
