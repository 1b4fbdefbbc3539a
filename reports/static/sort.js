/* Stabilis report: click a column header to sort a table (screen only; no network). */
(function () {
  function key(row, i) {
    var cell = row.cells[i];
    var s = cell ? cell.textContent.split("\n")[0].trim() : "";
    var n = parseFloat(s.replace(/\u2212/g, "-").replace(/[,\s]/g, "").replace(/^\+/, ""));
    return isNaN(n) ? s.toLowerCase() : n;
  }
  var heads = document.querySelectorAll("table.sortable th");
  Array.prototype.forEach.call(heads, function (th) {
    th.title = "Click to sort";
    th.addEventListener("click", function () {
      var row = th.parentNode, table = row.parentNode.parentNode, body = table.tBodies[0];
      var i = Array.prototype.indexOf.call(row.children, th);
      var asc = th.getAttribute("aria-sort") !== "ascending";
      Array.prototype.forEach.call(row.children, function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", asc ? "ascending" : "descending");
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = key(a, i), y = key(b, i), d;
        if (typeof x === typeof y) { d = x < y ? -1 : (x > y ? 1 : 0); }
        else { d = typeof x === "number" ? -1 : 1; }
        return asc ? d : -d;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
})();
