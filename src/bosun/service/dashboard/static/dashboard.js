// bosun dashboard: the only script (no inline script: the Content-Security-Policy forbids
// it). It follows a running evaluation gate and reloads the page when the gate is done.
"use strict";

function followGate(element) {
  const url = element.getAttribute("data-gate-url");
  async function poll() {
    let job = null;
    try {
      const response = await fetch(url, { credentials: "same-origin", cache: "no-store" });
      if (response.ok) job = (await response.json()).job;
    } catch (error) {
      job = null;
    }
    if (job && job.running) {
      element.textContent = "The gate is running: " + job.done + " of " + job.total + " cases.";
      window.setTimeout(poll, 1000);
    } else {
      window.location.reload();
    }
  }
  window.setTimeout(poll, 1000);
}

document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("[data-gate-url]").forEach(followGate);
});
