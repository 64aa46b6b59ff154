/* Ribbon button of the W365 configuration form: Run Billing (a billing run now, or as of an earlier day).
   Needs w365_/scripts/common.js. */
var W365 = W365 || (typeof require !== "undefined" ? require("./common.js") : {});
W365.Configuration = (function () {
  "use strict";

  /* asOf (optional): a Date, the run collects what was due by that day (never a future day; the service refuses
     one). The service answers at once; progress and counts are on the Billing Run row. */
  function runBilling(primaryControl, asOf) {
    var day = asOf instanceof Date ? asOf.toISOString().slice(0, 10) : "today";
    return Xrm.Navigation.openConfirmDialog({
      title: "Run Billing",
      text: "Charge every invoice due by " + day + " on the autopay contracts now? Progress and counts appear on " +
            "the new Billing Run."
    }).then(function (answer) {
      if (!answer || !answer.confirmed) { return { status: "Cancelled", message: "" }; }
      var parameters = asOf instanceof Date ? { AsOf: ["DateTime", asOf.toISOString()] } : {};
      return W365.Common.runButton(primaryControl, "w365_RunBilling", parameters,
                                   { progressText: "Starting the billing run\u2026" });
    });
  }

  return { runBilling: runBilling };
})();

if (typeof module !== "undefined") { module.exports = W365; }
