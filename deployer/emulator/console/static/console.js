// The emulator console's only script (shipped in the package). The pages work without it:
// it checks the try-predict JSON before sending and offers to refresh a view periodically.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const instances = document.getElementById("f-instances");
  if (instances && instances.form) {
    instances.form.addEventListener("submit", (event) => {
      try {
        JSON.parse(instances.value);
        instances.setCustomValidity("");
      } catch (err) {
        instances.setCustomValidity("Not JSON: " + err.message);
        instances.reportValidity();
        event.preventDefault();
      }
    });
    instances.addEventListener("input", () => instances.setCustomValidity(""));
  }

  // Views that change on their own (endpoints, jobs, request log) get a refresh switch.
  const view = document.querySelector('nav a[aria-current="page"]');
  const live = ["/_console/endpoints", "/_console/jobs", "/_console/requests"];
  const main = document.getElementById("main");
  if (view && main && live.includes(view.getAttribute("href"))) {
    const wrap = document.createElement("p");
    const box = document.createElement("input");
    box.type = "checkbox";
    box.id = "auto-refresh";
    const label = document.createElement("label");
    label.htmlFor = "auto-refresh";
    label.className = "inline";
    label.textContent = " Refresh every 5 seconds";
    wrap.append(box, label);
    main.querySelector("h1").after(wrap);
    let timer = null;
    const key = "deployer-console-refresh";
    box.checked = sessionStorage.getItem(key) === "1";
    const arm = () => {
      clearInterval(timer);
      if (box.checked) timer = setInterval(() => location.reload(), 5000);
    };
    box.addEventListener("change", () => {
      sessionStorage.setItem(key, box.checked ? "1" : "0");
      arm();
    });
    arm();
  }
});
