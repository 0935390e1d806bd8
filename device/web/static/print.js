/* The printable pages' "Print" button (no inline scripts: the page's CSP allows none). */
(function () {
  "use strict";
  var b = document.getElementById("print");
  if (b) { b.addEventListener("click", function () { window.print(); }); }
}());
