/* Ribbon button of the w365_paymenttransaction form: Refund (all that is left of a charge, or part of it).
   Needs w365_/scripts/common.js and w365_/scripts/amount.js. */
var W365 = W365 || (typeof require !== "undefined" ? require("./amount.js") : {});
W365.PaymentTransaction = (function () {
  "use strict";

  var CHARGE = 100000000;                                              // w365_type: Charge, Refund, Void
  var APPROVED = 100000001;                                            // w365_outcome: Pending, Approved, ...

  function value(primaryControl, column) {
    var attribute = primaryControl.getAttribute(column);
    return attribute ? attribute.getValue() : null;
  }

  /* The Refund button. Left empty, the Amount is not sent and the service refunds all that is left (it alone knows
     the earlier refunds); the charge's own amount is the client-side limit. A charge that has not settled yet can
     only be voided in full: the service says so. */
  function refund(primaryControl) {
    if (!canRefund(primaryControl)) {           // a modern command is always shown: the rule is checked here
      var text = "Only an approved charge can be refunded.";
      return Xrm.Navigation.openAlertDialog({ title: "Nothing to refund", text: text })
        .then(function () { return { status: "Cancelled", message: text }; });
    }
    var charged = W365.Amount.toCents(value(primaryControl, "w365_amount"));
    return W365.Amount.ask({
      text: "Amount to refund" + (charged === null ? "" : " (charged " + W365.Amount.format(charged) + ")") +
            ". Leave it empty to refund all that is left of this charge:",
      defaultText: "", maxCents: charged, allowEmpty: true
    }).then(function (amount) {
      if (!amount) { return { status: "Cancelled", message: "" }; }
      var parameters = amount.empty ? {} : { Amount: ["Decimal", Number(amount.text)] };
      return W365.Common.runButton(primaryControl, "w365_RefundTransaction", parameters,
                                   { progressText: "Refunding\u2026" });
    });
  }

  /* Enable rule of the Refund button: only on an approved charge. */
  function canRefund(primaryControl) {
    return value(primaryControl, "w365_type") === CHARGE && value(primaryControl, "w365_outcome") === APPROVED;
  }

  return { refund: refund, canRefund: canRefund };
})();

if (typeof module !== "undefined") { module.exports = W365; }
