// Shows each <time> in the viewer's time zone; the UTC value stays in its title (hover). The
// pages read fine without this script: they show UTC.
document.querySelectorAll("time[datetime]").forEach(function (t) {
  var d = new Date(t.getAttribute("datetime"));
  if (!isNaN(d)) {
    t.textContent = d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
  }
});
