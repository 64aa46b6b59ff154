/* Ribbon button of the invoice form: Charge Invoice (all of the balance, or less for a partial payment).
   Needs w365_/scripts/common.js and w365_/scripts/amount.js. */
var W365 = W365 || (typeof require !== "undefined" ? require("./amount.js") : {});
W365.Invoice = (function () {
  "use strict";

  var PAID = 2, COMPLETE = 100001, CANCELED = 3;                       // invoice statecode / statuscode

  function value(primaryControl, column) {
    var attribute = primaryControl.getAttribute(column);
    return attribute ? attribute.getValue() : null;
  }

  /* The balance as the form shows it; derived like the service does (total - paid) when the column is empty. */
  function balanceCents(primaryControl) {
    var balance = W365.Amount.toCents(value(primaryControl, "w365_balance"));
    if (balance !== null) { return balance; }
    var total = W365.Amount.toCents(value(primaryControl, "totalamount"));
    return total === null ? null : total - (W365.Amount.toCents(value(primaryControl, "w365_amountpaid")) || 0);
  }

  /* The Charge button. The amount is always sent, even when it is the whole balance: if the invoice changed since
     the form was loaded, the service refuses rather than charging a different amount than the person saw. */
  function charge(primaryControl) {
    if (!canCharge(primaryControl)) {           // a modern command is always shown: the rule is checked here
      return refuse("Nothing to charge", "This invoice is paid in full or canceled.");
    }
    var balance = balanceCents(primaryControl);
    if (balance !== null && balance <= 0) {
      return Xrm.Navigation.openAlertDialog({ title: "Nothing to charge", text: "This invoice has no balance left." })
        .then(function () { return { status: "Cancelled", message: "" }; });
    }
    var shown = balance === null ? "" : W365.Amount.format(balance);
    return W365.Amount.ask({
      text: "Amount to charge to the account's default card" + (shown ? " (balance " + shown + "; enter less for " +
            "a partial payment):" : ":"),
      defaultText: shown, maxCents: balance
    }).then(function (amount) {
      if (!amount) { return { status: "Cancelled", message: "" }; }
      return W365.Common.runButton(primaryControl, "w365_ChargeInvoice", { Amount: ["Decimal", Number(amount.text)] },
                                   { progressText: "Charging " + amount.text + "\u2026" });
    });
  }

  function refuse(title, text) {
    return Xrm.Navigation.openAlertDialog({ title: title, text: text })
      .then(function () { return { status: "Cancelled", message: text }; });
  }

  /* Enable rule of the Charge button: not on a fully paid (Paid/Complete) or a canceled invoice. */
  function canCharge(primaryControl) {
    var state = value(primaryControl, "statecode");
    var status = value(primaryControl, "statuscode");
    return !(state === CANCELED || (state === PAID && status === COMPLETE));
  }

  return { charge: charge, canCharge: canCharge };
})();

if (typeof module !== "undefined") { module.exports = W365; }
