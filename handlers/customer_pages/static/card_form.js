/* The card form of the customer pages (templates/_card_form.html): on submit, Accept.js turns the card into
   opaqueData in the browser; only that and the named fields are posted, the card inputs are emptied first.
   The Accept.js credentials come from #page-data ({"authData": {"clientKey", "apiLoginID"}}).
   In a page it starts itself; under node (tests/pages/) it exports `start`. */
(function (factory) {
  "use strict";
  var api = factory();
  if (typeof module === "object" && module.exports) { module.exports = api; } else { api.start(window); }
})(function () {
  "use strict";
  var CARD = ["cardNumber", "expMonth", "expYear", "cardCode"];

  function start(win) {
    var doc = win.document;
    var form = doc.getElementById("card-form");
    if (!form) { return null; }
    var errors = doc.getElementById("form-errors");
    var button = form.querySelector("button[type=submit]");
    var authData = JSON.parse(doc.getElementById("page-data").textContent).authData;
    function value(id) { return doc.getElementById(id).value.replace(/\s+/g, ""); }
    function fail(text) {
      errors.textContent = text; button.disabled = false; button.textContent = button.dataset.label;
      errors.focus();
    }
    function submitted(event) {
      if (doc.getElementById("dataValue").value) { return; }   // the second submit: the nonce is in, post it
      event.preventDefault();
      if (typeof win.Accept === "undefined") { fail("The secure card service could not be loaded. Please try again."); return; }
      button.disabled = true; button.dataset.label = button.textContent; button.textContent = "Saving\u2026";
      errors.textContent = "";
      var secureData = { authData: authData, cardData: { cardNumber: value("cardNumber"), month: value("expMonth"),
                                                         year: value("expYear"), cardCode: value("cardCode") } };
      win.Accept.dispatchData(secureData, function (response) {
        if (!response || !response.messages || response.messages.resultCode === "Error") {
          var list = (response && response.messages && response.messages.message) || [];
          fail(list.map(function (m) { return m.text; }).join(" ") || "The card could not be checked.");
          return;
        }
        doc.getElementById("dataDescriptor").value = response.opaqueData.dataDescriptor;
        doc.getElementById("dataValue").value = response.opaqueData.dataValue;
        CARD.forEach(function (id) { doc.getElementById(id).value = ""; });
        form.submit();
      });
    }
    form.addEventListener("submit", submitted);
    return submitted;
  }

  return { start: start, CARD: CARD };
});
