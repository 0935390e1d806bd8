/* Live page: poll /api/status, show state and countdown, switch Start/Cancel, open the result.
   Plain JavaScript, no libraries; the page works without it (forms post normally). */
(function () {
  "use strict";
  var root = document.getElementById("live");
  if (!root) { return; }
  var texts = JSON.parse(root.dataset.texts || "{}");
  var cameraTexts = JSON.parse(root.dataset.cameraTexts || "{}");
  var handTexts = JSON.parse(root.dataset.handTexts || "{}");
  var liveTexts = JSON.parse(root.dataset.liveTexts || "{}");
  var RUNNING = { countdown: true, recording: true, scoring: true };
  var OUTCOME = { result: true, rejected: true, error: true };
  var el = function (id) { return document.getElementById(id); };
  var video = el("video"), note = el("video-note"), countdown = el("countdown");
  var startBtn = el("start"), cancelForm = el("cancel-form"), resultLink = el("result-link");
  var sawRunning = false, lastState = root.dataset.state, stillTimer = null, idBefore = null;

  function showNote(text) {
    if (text) { note.textContent = text; note.hidden = false; } else { note.hidden = true; }
  }

  function stills() {
    // Too many live viewers (503) or the stream ended: show a still image every second.
    if (stillTimer) { return; }
    showNote(liveTexts.busy);
    stillTimer = window.setInterval(function () {
      video.src = root.dataset.snapshot + "?t=" + Date.now();
    }, 1000);
  }
  video.addEventListener("error", stills);
  if (video.complete && video.naturalWidth === 0) { stills(); }  // failed before this ran

  function render(s) {
    var st = s.state || "idle";
    var t = texts[st] || [st, ""];
    var box = el("state");
    box.className = "state state-" + st;
    el("state-title").textContent = st === "recording" && s.remaining_s != null
      ? t[0] + " · " + Math.ceil(s.remaining_s) + " s" : t[0];
    el("state-hint").textContent = t[1];
    el("prompt").textContent = s.prompt || "";  // live guidance, "close now"/"open again", or why
    var refNote = el("reference-note");
    if (refNote) {
      refNote.hidden = !s.reference;
      if (s.reference) {
        refNote.textContent = liveTexts.reference + (s.side ? " — " + (liveTexts[s.side] || s.side) : "");
      }
    }
    countdown.textContent = st === "countdown" && s.remaining_s != null ? String(Math.ceil(s.remaining_s)) : "";
    var running = !!RUNNING[st];
    startBtn.disabled = running;
    startBtn.hidden = running;
    cancelForm.hidden = !running;
    el("camera").textContent = cameraTexts[s.camera] || s.camera || "";
    el("fps").textContent = Math.round(s.fps || 0);
    el("hand-in-view").textContent = handTexts[s.hand_in_view || ""] || handTexts[""] || "";
    if (s.camera && s.camera !== "ok") { showNote(cameraTexts[s.camera] || liveTexts.camera); }
    else if (!stillTimer) { showNote(""); }
    var last = s.last_trial;
    // the newest finished trial when this one began (a row still recording/scoring is this one)
    if (running && !sawRunning) {
      idBefore = last && last.status !== "recording" && last.status !== "scoring" ? last.id : null;
    }
    if (running) { sawRunning = true; }
    // a trial that never recorded (no hand in view) stores nothing: stay and show why
    if (OUTCOME[st] && last && last.id && !(sawRunning && last.id === idBefore)) {
      resultLink.hidden = false;
      resultLink.href = root.dataset.result.replace(/0$/, String(last.id));
      if (sawRunning && lastState !== st) {
        sawRunning = false;
        window.location.assign(resultLink.href);
      }
    }
    lastState = st;
  }

  function poll() {
    fetch(root.dataset.status, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (s) { if (s) { render(s); } })
      .catch(function () { showNote(liveTexts.lost); })
      .then(function () { window.setTimeout(poll, 500); });
  }
  // The "compared with the unaffected hand" note belongs to the patient it was shown for:
  // typing another patient's code hides it (the page shows that patient's after Start).
  var code = el("patient_code"), sessionRef = el("session-reference");
  if (code && sessionRef) {
    var syncRef = function () {
      var side = document.querySelector('input[name="side"]:checked');
      var sideNow = side ? side.value : "";
      sessionRef.hidden = code.value.trim() !== sessionRef.dataset.patient ||
        (sessionRef.dataset.side !== "" && sideNow !== sessionRef.dataset.side);
    };
    code.addEventListener("input", syncRef);
    document.querySelectorAll('input[name="side"]').forEach(function (r) { r.addEventListener("change", syncRef); });
    syncRef();
  }
  // one-tap recent patient codes fill the code field (free entry stays possible)
  document.querySelectorAll("#recent .chip").forEach(function (b) {
    b.addEventListener("click", function () {
      if (!code) { return; }
      code.value = b.dataset.code;
      code.dispatchEvent(new Event("input"));
      code.focus();
    });
  });
  poll();
}());
