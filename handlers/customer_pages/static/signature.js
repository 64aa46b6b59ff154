/* The signature pad of the order approval page (templates/order_approval.html): a typed name and a drawing on the
   canvas, sent as a PNG data URL in #signatureImage. Its submit handler is registered before the card form's
   (this script comes first), so a missing signature stops the submit before Accept.js runs. #page-data gives
   {"formId", "signatureLimit"}. In a page it starts itself; under node (tests/pages/) it exports `start`. */
(function (factory) {
  "use strict";
  var api = factory();
  if (typeof module === "object" && module.exports) { module.exports = api; } else { api.start(window); }
})(function () {
  "use strict";

  function start(win) {
    var doc = win.document;
    var data = JSON.parse(doc.getElementById("page-data").textContent);
    var form = doc.getElementById(data.formId);
    var canvas = doc.getElementById("signature-pad");
    var image = doc.getElementById("signatureImage");
    var errors = doc.getElementById("form-errors");
    var pen = canvas.getContext("2d");
    var drawn = false, last = null;
    pen.lineWidth = 2.5; pen.lineCap = "round"; pen.lineJoin = "round"; pen.strokeStyle = "#111827";
    function at(event) {
      var box = canvas.getBoundingClientRect();
      return { x: (event.clientX - box.left) * canvas.width / box.width,
               y: (event.clientY - box.top) * canvas.height / box.height };
    }
    canvas.addEventListener("pointerdown", function (event) {
      event.preventDefault();
      last = at(event);
      if (canvas.setPointerCapture) { canvas.setPointerCapture(event.pointerId); }
    });
    canvas.addEventListener("pointermove", function (event) {
      if (!last) { return; }
      var next = at(event);
      pen.beginPath(); pen.moveTo(last.x, last.y); pen.lineTo(next.x, next.y); pen.stroke();
      last = next; drawn = true;
    });
    ["pointerup", "pointercancel"].forEach(function (name) {
      canvas.addEventListener(name, function () { last = null; });
    });
    doc.getElementById("signature-clear").addEventListener("click", function () {
      pen.clearRect(0, 0, canvas.width, canvas.height); drawn = false; image.value = "";
    });
    form.addEventListener("submit", function (event) {
      var name = doc.getElementById("signatureName").value.trim();
      var problem = name.length < 2 ? "Please type your full name to sign." :
                    !drawn ? "Please sign in the signature box." : "";
      if (!problem) {
        image.value = canvas.toDataURL("image/png");
        if (image.value.length > data.signatureLimit) {
          image.value = ""; problem = "The signature is too detailed. Please clear it and sign again.";
        }
      }
      if (problem) {
        event.preventDefault(); event.stopImmediatePropagation();
        errors.textContent = problem; errors.focus();
      }
    });
  }

  return { start: start };
});
