// rindle-django direct upload: the file goes straight to storage, the form gets a token.
// For each <span class="rindle-direct">: on file choice, POST .../direct/initiate (grant,
// filename, size, type), send the file with the presigned request, POST .../direct/complete,
// then put the signed asset token in the hidden input. Sends Django's CSRF token.
(function () {
  "use strict";
  function csrf() {
    var m = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return m ? decodeURIComponent(m[1]) : "";
  }
  function post(url, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRFToken": csrf()},
      body: JSON.stringify(body)
    }).then(function (r) {
      return r.json().then(function (data) {
        if (!r.ok) { throw new Error((data.error && data.error.message) || r.statusText); }
        return data;
      });
    });
  }
  function wire(box) {
    var hidden = box.querySelector("input[type=hidden]");
    var picker = box.querySelector("input[type=file]");
    var status = box.querySelector("output");
    var grant = box.dataset.rindleGrant;
    picker.addEventListener("change", function () {
      var file = picker.files[0];
      if (!file) { return; }
      status.textContent = "uploading\u2026";
      hidden.value = "";
      post(box.dataset.rindleInitiate, {
        grant: grant, filename: file.name, byte_size: file.size,
        content_type: file.type || null
      }).then(function (started) {
        var req = started.request;
        return fetch(req.url, {method: req.method, headers: req.headers, body: file})
          .then(function (r) {
            if (!r.ok) { throw new Error("storage answered " + r.status); }
            return post(box.dataset.rindleComplete, {grant: grant, session: started.session});
          });
      }).then(function (done) {
        hidden.value = done.asset;
        status.textContent = "uploaded";
      }).catch(function (err) {
        status.textContent = "upload failed: " + err.message;
      });
    });
  }
  function init() {
    Array.prototype.forEach.call(document.querySelectorAll(".rindle-direct"), wire);
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else { init(); }
})();
