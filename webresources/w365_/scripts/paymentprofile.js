/* Ribbon buttons of the w365_paymentprofile form and grid. Needs w365_/scripts/common.js. */
var W365 = W365 || (typeof require !== "undefined" ? require("./common.js") : {});
W365.PaymentProfile = (function () {
  "use strict";

  function sync(primaryControl) {
    return W365.Common.runButton(primaryControl, "w365_SyncPaymentProfile", {}, { progressText: "Syncing\u2026" });
  }

  function setDefault(primaryControl) {
    return W365.Common.runButton(primaryControl, "w365_SetDefaultPaymentProfile", {});
  }

  function deactivate(primaryControl) {
    return Xrm.Navigation.openConfirmDialog({
      title: "Deactivate payment profile",
      text: "Deactivate this card? It can no longer be charged, and it stops being the default."
    }).then(function (answer) {
      if (!answer || !answer.confirmed) { return { status: "Cancelled", message: "" }; }
      return W365.Common.runButton(primaryControl, "w365_DeactivatePaymentProfile", {});
    });
  }

  /* billTo: {firstName, lastName, company, address, city, state, zip, country, phoneNumber};
     opaqueData (optional, a new card from Accept.js): {dataDescriptor, dataValue}. */
  function update(primaryControl, billTo, opaqueData) {
    var parameters = { BillTo: ["String", JSON.stringify(billTo || {})] };
    if (opaqueData) {
      parameters.OpaqueDataDescriptor = ["String", opaqueData.dataDescriptor];
      parameters.OpaqueDataValue = ["String", opaqueData.dataValue];
    }
    return W365.Common.runButton(primaryControl, "w365_UpdatePaymentProfile", parameters);
  }

  /* The Update button: the bill-to as it is on the form (edited there by the user), no new card. */
  function updateFromForm(primaryControl) {
    function value(column) {
      var attribute = primaryControl.getAttribute(column);
      return (attribute && attribute.getValue()) || "";
    }
    return update(primaryControl, {
      firstName: value("w365_billto_firstname"), lastName: value("w365_billto_lastname"),
      company: value("w365_billto_company"), address: value("w365_billto_address"), city: value("w365_billto_city"),
      state: value("w365_billto_state"), zip: value("w365_billto_zip"), country: value("w365_billto_country"),
      phoneNumber: value("w365_billto_phone")
    });
  }

  return { sync: sync, setDefault: setDefault, deactivate: deactivate, update: update, updateFromForm: updateFromForm };
})();

if (typeof module !== "undefined") { module.exports = W365; }
