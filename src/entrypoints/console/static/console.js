// Uploads for the documents page: every chosen or dropped file goes in its own request
// (the server takes one file per request, like the API), with the session's CSRF token
// in a header; the table refreshes after each. Without this script the form still
// sends one file.
(function () {
  "use strict";
  function token() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }
  function say(log, text, ok) {
    var li = document.createElement("li");
    li.textContent = text;
    li.className = ok ? "ok" : "error";
    log.appendChild(li);
  }
  function refreshRows() {
    var rows = document.getElementById("rows");
    if (rows && window.htmx) { window.htmx.trigger(rows, "refresh"); }
  }
  async function send(form, files) {
    var log = document.getElementById("upload-log");
    for (var i = 0; i < files.length; i++) {
      var body = new FormData();
      body.append("file", files[i], files[i].name);
      body.append("collection", form.elements.collection.value);
      body.append("metadata", form.elements.metadata.value);
      try {
        var answer = await fetch(form.action, {
          method: "POST", body: body, credentials: "same-origin",
          headers: {"X-CSRF-Token": token()}
        });
        say(log, answer.ok ? await answer.text() : files[i].name + ": " + await answer.text(), answer.ok);
      } catch (err) {
        say(log, files[i].name + ": falha de rede (" + err + ")", false);
      }
      refreshRows();
    }
  }
  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("upload");
    if (!form) { return; }
    var input = document.getElementById("up-files");
    var zone = document.getElementById("dropzone");
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (input.files.length) { send(form, input.files).then(function () { input.value = ""; }); }
    });
    input.addEventListener("change", function () {
      if (input.files.length) { send(form, input.files).then(function () { input.value = ""; }); }
    });
    ["dragenter", "dragover"].forEach(function (name) {
      zone.addEventListener(name, function (event) { event.preventDefault(); zone.classList.add("over"); });
    });
    ["dragleave", "drop"].forEach(function (name) {
      zone.addEventListener(name, function () { zone.classList.remove("over"); });
    });
    zone.addEventListener("drop", function (event) {
      event.preventDefault();
      if (event.dataTransfer && event.dataTransfer.files.length) { send(form, event.dataTransfer.files); }
    });
  });
})();
