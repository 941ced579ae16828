// The Sent page's live status: the server says when a delivery event was recorded, and the
// page fetches its own table again. No other script runs in the console.
(function () {
  var table = document.getElementById("sent-live");
  if (!table || !window.EventSource) { return; }
  var source = new EventSource("/sent/events");
  var mark = document.getElementById("live-mark");
  source.addEventListener("changed", function () {
    fetch(location.pathname + location.search, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (!html) { return; }
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.getElementById("sent-live");
        if (fresh) { table.replaceWith(fresh); table = fresh; }
      });
  });
  source.addEventListener("open", function () { if (mark) { mark.textContent = "● live"; } });
  source.addEventListener("error", function () { if (mark) { mark.textContent = "○ not live (reload the page)"; } });
})();
