/* Ribbon buttons of the order form: Submit Order Payment (card on file or a new card), Send for Approval, Convert to
   Draft. Needs w365_/scripts/common.js. */
var W365 = W365 || (typeof require !== "undefined" ? require("./common.js") : {});
W365.SalesOrder = (function () {
  "use strict";

  var STATUS = { draft: 100000000, pendingApproval: 100000001, declined: 100000002 };   // w365_orderstatus
  var DIRECT_ENTRY_PAGE = "w365_/pages/directentry.html";   // in order mode: Pay with New Card
  var PLACEHOLDER = "{Approval Link}";
  var DEFAULT_SUBJECT = "Please review and approve your order";
  var DEFAULT_BODY = "<p>Hello,</p><p>Please review your order, sign it and approve it here: " + PLACEHOLDER +
                     "</p><p>The link can be used once and expires in a few days.</p>";

  function value(primaryControl, column) {
    var attribute = primaryControl.getAttribute(column);
    return attribute ? attribute.getValue() : null;
  }

  function alert(title, text) {
    return Xrm.Navigation.openAlertDialog({ title: title, text: text })
      .then(function () { return { status: "Failed", message: text }; });
  }

  /* Submit Order Payment with the card chosen in the order's Payment Profile field. */
  function submitOrderPayment(primaryControl) {
    var card = value(primaryControl, "w365_paymentprofileid");
    if (!card || !card[0]) {
      return alert("Choose a card", "Choose a card of the account in Payment Profile (or use Pay with New Card), " +
                   "then submit the payment.");
    }
    var total = value(primaryControl, "totalamount");
    return Xrm.Navigation.openConfirmDialog({
      title: "Submit order payment",
      text: "Charge the order total" + (total === null || total === undefined ? "" : " of " + Number(total).toFixed(2)) +
            " to " + (card[0].name || "the chosen card") + "?"
    }).then(function (answer) {
      if (!answer || !answer.confirmed) { return { status: "Cancelled", message: "" }; }
      return W365.Common.runButton(primaryControl, "w365_SubmitOrderPayment",
                                   { PaymentProfileId: ["Guid", W365.Common.cleanId(card[0].id)] },
                                   { progressText: "Charging the order\u2026" });
    });
  }

  /* Submit Order Payment with a new card typed in a dialog page (doc): Accept.js tokenizes it there, only the nonce
     and the bill-to are sent. options: {acceptJsUrl, authData: {clientKey, apiLoginID}, cardData, billTo}. */
  function submitWithNewCard(primaryControl, doc, options) {
    return W365.Common.loadAcceptJs(doc, options.acceptJsUrl)
      .then(function (accept) { return W365.Common.tokenizeCard(accept, options.authData, options.cardData); })
      .then(function (opaqueData) {
        return W365.Common.runButton(primaryControl, "w365_SubmitOrderPayment", {
          OpaqueDataDescriptor: ["String", opaqueData.dataDescriptor],
          OpaqueDataValue: ["String", opaqueData.dataValue],
          BillTo: ["String", JSON.stringify(options.billTo || {})]
        }, { progressText: "Charging the order\u2026" });
      }, function (error) { return alert("Card not accepted", error.message); });
  }

  /* The Pay with New Card button: the Direct Entry dialog page in order mode shows the order's total, tokenizes the
     card there with Accept.js and calls submitWithNewCard; the form shows the payment's result once it closes. */
  function openPayWithNewCard(primaryControl) {
    var orderId = W365.Common.cleanId(primaryControl.data.entity.getId());
    if (!orderId) { return alert("Save the order", "Save the order first, then pay it with a new card."); }
    return Xrm.Navigation.navigateTo(
      { pageType: "webresource", webresourceName: DIRECT_ENTRY_PAGE,
        data: JSON.stringify({ mode: "order", orderId: orderId }) },
      { target: 2, position: 1, width: { value: 560, unit: "px" }, height: { value: 640, unit: "px" },
        title: "Pay with new card" }
    ).then(function () { primaryControl.data.refresh(false); });
  }

  /* Send for Approval: email a contact the approval link. Without a contactId the user picks one. */
  function sendForApproval(primaryControl, contactId, subject, body) {
    var template = body || DEFAULT_BODY;
    if (template.indexOf(PLACEHOLDER) < 0) {
      return alert("Approval link missing", "The email text must contain " + PLACEHOLDER +
                   ", where the customer's link goes.");
    }
    var pick = contactId ? Promise.resolve(contactId) : Xrm.Utility.lookupObjects({
      defaultEntityType: "contact", entityTypes: ["contact"], allowMultiSelect: false
    }).then(function (chosen) { return chosen && chosen[0] ? chosen[0].id : null; });
    return pick.then(function (id) {
      if (!id) { return { status: "Cancelled", message: "" }; }
      return W365.Common.runButton(primaryControl, "w365_SendOrderForApproval", {
        ContactId: ["Guid", W365.Common.cleanId(id)], EmailSubject: ["String", subject || DEFAULT_SUBJECT],
        EmailBody: ["String", template]
      }, { progressText: "Sending the approval request\u2026" });
    });
  }

  function convertToDraft(primaryControl) {
    if (!canConvertToDraft(primaryControl)) {   // a modern command is always shown: the rule is checked here
      var text = "Only a declined order or one waiting for approval can go back to Draft.";
      return Xrm.Navigation.openAlertDialog({ title: "Convert to Draft", text: text })
        .then(function () { return { status: "Cancelled", message: text }; });
    }
    return Xrm.Navigation.openConfirmDialog({
      title: "Convert to Draft",
      text: "Put this order back to Draft? You can then choose another card and submit the payment again."
    }).then(function (answer) {
      if (!answer || !answer.confirmed) { return { status: "Cancelled", message: "" }; }
      return W365.Common.runButton(primaryControl, "w365_ConvertOrderToDraft", {});
    });
  }

  /* Enable rule of the Convert to Draft button. */
  function canConvertToDraft(primaryControl) {
    var status = value(primaryControl, "w365_orderstatus");
    return status === STATUS.declined || status === STATUS.pendingApproval;
  }

  return { submitOrderPayment: submitOrderPayment, submitWithNewCard: submitWithNewCard,
           openPayWithNewCard: openPayWithNewCard,
           sendForApproval: sendForApproval, convertToDraft: convertToDraft, canConvertToDraft: canConvertToDraft,
           STATUS: STATUS };
})();

if (typeof module !== "undefined") { module.exports = W365; }
