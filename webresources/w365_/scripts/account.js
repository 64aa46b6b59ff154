/* Ribbon buttons of the account form: Add Payment Profile (Direct Entry or Profile Request), Sync All.
   Needs w365_/scripts/common.js. */
var W365 = W365 || (typeof require !== "undefined" ? require("./common.js") : {});
W365.Account = (function () {
  "use strict";

  var DIRECT_ENTRY_PAGE = "w365_/pages/directentry.html";

  function syncAll(primaryControl) {
    return W365.Common.runButton(primaryControl, "w365_SyncPaymentProfiles", {},
                                 { progressText: "Syncing with Authorize.Net\u2026" });
  }

  function contactOf(primaryControl) {
    var attribute = primaryControl.getAttribute("primarycontactid");
    var value = attribute && attribute.getValue();
    return value && value[0] ? W365.Common.cleanId(value[0].id) : null;
  }

  /* Profile Request: email the contact a secure link. */
  function sendProfileRequest(primaryControl, contactId, subject, body) {
    return W365.Common.runButton(primaryControl, "w365_AddPaymentProfile", {
      ContactId: ["Guid", contactId || contactOf(primaryControl)], Method: ["String", "ProfileRequest"],
      EmailSubject: ["String", subject], EmailBody: ["String", body]
    }, { progressText: "Sending the request\u2026" });
  }

  /* Direct Entry, after Accept.js gave opaqueData for the card typed in the dialog. */
  function submitDirectEntry(primaryControl, contactId, opaqueData, billTo, setAsDefault) {
    return W365.Common.runButton(primaryControl, "w365_AddPaymentProfile", {
      ContactId: ["Guid", contactId || contactOf(primaryControl)], Method: ["String", "DirectEntry"],
      OpaqueDataDescriptor: ["String", opaqueData.dataDescriptor], OpaqueDataValue: ["String", opaqueData.dataValue],
      BillTo: ["String", JSON.stringify(billTo || {})], SetAsDefault: ["Boolean", !!setAsDefault]
    }, { progressText: "Saving the card\u2026" });
  }

  /* Direct Entry, in a document the dialog owns: load Accept.js there, tokenize the card, send the nonce.
     options: {acceptJsUrl, authData: {clientKey, apiLoginID}, cardData, billTo, contactId, setAsDefault}. */
  function directEntry(primaryControl, doc, options) {
    return W365.Common.loadAcceptJs(doc, options.acceptJsUrl)
      .then(function (accept) { return W365.Common.tokenizeCard(accept, options.authData, options.cardData); })
      .then(function (opaqueData) {
        return submitDirectEntry(primaryControl, options.contactId, opaqueData, options.billTo, options.setAsDefault);
      }, function (error) {
        return Xrm.Navigation.openAlertDialog({ title: "Card not accepted", text: error.message })
          .then(function () { return { status: "Failed", message: error.message }; });
      });
  }

  /* The Add Payment Profile button: the dialog page (an HTML web resource) collects the card with Accept.js. */
  function openAddPaymentProfile(primaryControl) {
    var accountId = W365.Common.cleanId(primaryControl.data.entity.getId());
    return Xrm.Navigation.navigateTo(
      { pageType: "webresource", webresourceName: DIRECT_ENTRY_PAGE, data: accountId },
      { target: 2, position: 1, width: { value: 560, unit: "px" }, height: { value: 720, unit: "px" },
        title: "Add payment profile" }
    ).then(function () { primaryControl.data.refresh(false); });
  }

  return { syncAll: syncAll, sendProfileRequest: sendProfileRequest, submitDirectEntry: submitDirectEntry,
           directEntry: directEntry, openAddPaymentProfile: openAddPaymentProfile };
})();

if (typeof module !== "undefined") { module.exports = W365; }
