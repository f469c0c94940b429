// eucalite console: a little JavaScript, no dependencies.
"use strict";

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

// Forms with data-confirm ask before submitting (terminate, delete, ...).
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) event.preventDefault();
});

// Elements with data-refresh="URL" replace their inner HTML with URL's every few seconds
// (tables whose rows change state: instances, volumes, snapshots).
function startRefresh(element) {
  const every = Number(element.dataset.every || 3000);
  const tick = async () => {
    try {
      const response = await fetch(element.dataset.refresh, {credentials: "same-origin",
                                                              headers: {"X-Requested-With": "fetch"}});
      // an expired session redirects to the sign-in page: go there, not into the table
      if (response.redirected && new URL(response.url).pathname.endsWith("/login")) {
        window.location = response.url;
        return;
      }
      if (response.ok) element.innerHTML = await response.text();
    } catch (e) { /* offline for a moment: try again next tick */ }
  };
  setInterval(tick, every);
}

// Forms with data-upload send their file field with XMLHttpRequest so a <progress> shows
// how far the upload is; on success the page reloads (or goes to data-done).
function startUpload(form) {
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const bar = form.querySelector("progress");
    const status = form.querySelector(".upload-status");
    const request = new XMLHttpRequest();
    request.open(form.method || "POST", form.action);
    request.setRequestHeader("X-CSRF-Token", csrfToken());
    request.setRequestHeader("X-Requested-With", "fetch");
    request.upload.addEventListener("progress", (e) => {
      if (e.lengthComputable && bar) { bar.max = e.total; bar.value = e.loaded; }
      if (status) status.textContent = e.lengthComputable ? Math.round(100 * e.loaded / e.total) + " %" : "";
    });
    request.addEventListener("load", () => {
      if (request.status < 400) {
        window.location = form.dataset.done || window.location.href;
      } else if (status) {
        status.textContent = request.responseText || ("Upload failed: HTTP " + request.status);
        status.classList.add("error");
      }
    });
    request.addEventListener("error", () => { if (status) status.textContent = "Upload failed."; });
    request.send(new FormData(form));
  });
}

// Buttons with data-copy copy that text to the clipboard (presigned links).
document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  try { await navigator.clipboard.writeText(button.dataset.copy); button.textContent = "Copied"; }
  catch (e) { window.prompt("Copy this link:", button.dataset.copy); }
});

// The JSON policy editor (data-policy-editor): "Format JSON" re-indents the document in the
// browser; "Validate" asks the server (data-validate), which answers with the policy
// engine's own verdict, the sentence saving would be refused with.
function startPolicyEditor(box) {
  const area = box.querySelector("textarea");
  const status = box.querySelector(".validation");
  const show = (text, ok) => {
    status.textContent = text;
    status.classList.toggle("ok", ok);
    status.classList.toggle("error", !ok);
  };
  box.querySelector("[data-format]").addEventListener("click", () => {
    try {
      area.value = JSON.stringify(JSON.parse(area.value), null, 2);
      show("", true);
    } catch (e) {
      show("Not JSON: " + e.message, false);
    }
  });
  box.querySelector("[data-check]").addEventListener("click", async () => {
    const body = new FormData();
    body.append("kind", box.dataset.kind);
    body.append("document", area.value);
    show("Validating…", true);
    try {
      const response = await fetch(box.dataset.validate, {
        method: "POST", body, credentials: "same-origin",
        headers: {"X-CSRF-Token": csrfToken(), "X-Requested-With": "fetch"}});
      const answer = await response.json();
      show(answer.valid ? answer.message : answer.code + ": " + answer.message, answer.valid);
    } catch (e) {
      show("The server did not answer: try again.", false);
    }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-policy-editor]").forEach(startPolicyEditor);
  document.querySelectorAll("[data-refresh]").forEach(startRefresh);
  document.querySelectorAll("form[data-upload]").forEach(startUpload);
  // console output: show its end, where the guest's latest lines are
  document.querySelectorAll("pre.console").forEach((pre) => { pre.scrollTop = pre.scrollHeight; });
});
