(function () {
  "use strict";
  var doc = document;
  doc.documentElement.classList.add("js");
  var each = function (list, f) { Array.prototype.forEach.call(list, f); };

  // Sorting: a click on a header marked data-sort sorts that table's rows.
  doc.addEventListener("click", function (e) {
    var th = e.target.closest ? e.target.closest("th[data-sort]") : null;
    if (!th) { return; }
    var tbody = th.closest("table").tBodies[0];
    var idx = Array.prototype.indexOf.call(th.parentNode.children, th);
    var numeric = th.getAttribute("data-sort") === "n";
    var dir = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
    each(th.parentNode.children, function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", dir === 1 ? "ascending" : "descending");
    var key = function (row) {
      var cell = row.cells[idx];
      var v = cell ? (cell.getAttribute("data-v") || cell.textContent) : "";
      return numeric ? (parseFloat(v) || 0) : v.trim().toLowerCase();
    };
    var rows = Array.prototype.map.call(tbody.rows, function (r) { return [key(r), r]; });
    rows.sort(function (a, b) { return (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0) * dir; });
    var frag = doc.createDocumentFragment();
    rows.forEach(function (p) { frag.appendChild(p[1]); });
    tbody.appendChild(frag);
  });

  // Filtering the list of every line by text and status.
  var box = doc.getElementById("filter");
  if (box) {
    var input = box.querySelector("input[type=search]");
    var checks = box.querySelectorAll("input[type=checkbox]");
    var shown = box.querySelector("output");
    var timer = null;
    var apply = function () {
      var q = input.value.trim().toLowerCase();
      var allowed = {};
      var narrowed = q !== "";
      each(checks, function (c) { allowed[c.value] = c.checked; narrowed = narrowed || !c.checked; });
      var total = 0;
      var visible = 0;
      each(doc.querySelectorAll("#lines table.lines"), function (t) {
        var n = 0;
        each(t.tBodies[0].rows, function (r) {
          total += 1;
          var ok = allowed[r.getAttribute("data-s")] !== false &&
            (q === "" || r.textContent.toLowerCase().indexOf(q) !== -1);
          r.hidden = !ok;
          if (ok) { n += 1; }
        });
        visible += n;
        var d = t.closest("details.chunk");
        if (d) {
          d.hidden = narrowed && n === 0;
          if (narrowed && n > 0) { d.open = true; }
        }
      });
      shown.textContent = narrowed ? visible + " of " + total + " lines match" : total + " lines";
    };
    input.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(apply, 250); });
    each(checks, function (c) { c.addEventListener("change", apply); });
  }

  // Printing shows everything.
  window.addEventListener("beforeprint", function () {
    each(doc.querySelectorAll("details"), function (d) { d.open = true; });
  });
})();
