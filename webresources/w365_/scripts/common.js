/*
 * W365 ribbon helpers shared by every button script (paymentprofile.js, account.js, invoice.js, salesorder.js).
 *
 * A button calls a Custom API with Xrm.WebApi.online.execute and a fresh RequestId. Dataverse ignores the webhook's
 * answer, so the service writes the outcome to the w365_operation row with that RequestId; we poll that row and show
 * its message in a dialog (CONTRACT §3).
 *
 *   W365.Common.runButton(primaryControl, "w365_ChargeInvoice", {Amount: ["Decimal", 40.5]})
 *     -> Promise of {status: "Succeeded" | "Failed" | "Pending", message}
 */
var W365 = W365 || {};
W365.Common = (function () {
  "use strict";

  var STATUS = { 100000000: "Succeeded", 100000001: "Failed" };
  var EDM = { Guid: "Edm.Guid", String: "Edm.String", Boolean: "Edm.Boolean", Decimal: "Edm.Decimal",
              DateTime: "Edm.DateTimeOffset" };
  var settings = { pollIntervalMs: 1500, maxPolls: 40, sleep: null };

  function newRequestId() {
    return globalThis.crypto.randomUUID();
  }

  function cleanId(id) {
    return String(id || "").replace(/[{}]/g, "").toLowerCase();
  }

  function sleep(ms) {
    return settings.sleep ? settings.sleep(ms) : new Promise(function (resolve) { setTimeout(resolve, ms); });
  }

  /* The request object Xrm.WebApi.online.execute expects for a Custom API bound to a table.
     parameters: {Name: [type, value]} with type one of Guid, String, Boolean, Decimal, DateTime (an ISO string);
     null values are left out. */
  function buildRequest(message, table, id, requestId, parameters) {
    var request = { entity: { entityType: table, id: cleanId(id) }, RequestId: requestId };
    var types = {
      entity: { typeName: "mscrm." + table, structuralProperty: 5 },
      RequestId: { typeName: "Edm.String", structuralProperty: 1 }
    };
    Object.keys(parameters || {}).forEach(function (name) {
      var typed = parameters[name];
      if (typed[1] === null || typed[1] === undefined || typed[1] === "") { return; }
      if (!EDM[typed[0]]) { throw new Error("Unknown parameter type " + typed[0] + " for " + name); }
      request[name] = typed[1];
      types[name] = { typeName: EDM[typed[0]], structuralProperty: 1 };
    });
    request.getMetadata = function () {
      return { boundParameter: "entity", parameterTypes: types, operationType: 0, operationName: message };
    };
    return request;
  }

  /* Poll the w365_operation row written for requestId. A row without a status is a claim: the service is still
     working (it claims the RequestId before work that must not run twice, such as an email), so keep polling. */
  function waitForOperation(requestId) {
    var query = "?$select=w365_status,w365_message&$filter=w365_requestid eq '" + requestId + "'";
    var attempt = 0;
    function poll() {
      attempt += 1;
      return Xrm.WebApi.retrieveMultipleRecords("w365_operation", query).then(function (result) {
        var row = result && result.entities && result.entities[0];
        if (row && row.w365_status !== null && row.w365_status !== undefined) {
          return { status: STATUS[row.w365_status] || "Failed", message: row.w365_message || "" };
        }
        if (attempt >= settings.maxPolls) {
          return { status: "Pending", message: "The request was sent and is still being processed. " +
                   "Refresh the form in a minute to see the result." };
        }
        return sleep(settings.pollIntervalMs).then(poll);
      });
    }
    return poll();
  }

  function showOutcome(outcome, title) {
    return Xrm.Navigation.openAlertDialog({ title: title || (outcome.status === "Succeeded" ? "Done" : "Not done"),
                                            text: outcome.message }).then(function () { return outcome; });
  }

  function showError(error) {
    var text = (error && error.message) || String(error);
    return Xrm.Navigation.openAlertDialog({ title: "Something went wrong", text: text })
      .then(function () { return { status: "Failed", message: text }; });
  }

  /* Call a Custom API for (table, id), wait for its outcome row, show it. Never rejects. */
  function run(message, table, id, parameters, options) {
    var requestId = newRequestId();
    var opts = options || {};
    var progress = Xrm.Utility && Xrm.Utility.showProgressIndicator;
    if (progress) { Xrm.Utility.showProgressIndicator(opts.progressText || "Working\u2026"); }
    function done() { if (progress) { Xrm.Utility.closeProgressIndicator(); } }
    // Started inside a promise: a request that cannot be built (or an execute that throws) is shown like any error.
    return Promise.resolve()
      .then(function () { return Xrm.WebApi.online.execute(buildRequest(message, table, id, requestId, parameters)); })
      .then(function (response) {
        if (response && response.ok === false) { throw new Error("The request was refused (HTTP " + response.status + ")."); }
        return waitForOperation(requestId);
      })
      .then(function (outcome) { done(); return showOutcome(outcome, opts.title); },
            function (error) { done(); return showError(error); })
      .then(function (outcome) {
        if (opts.refresh !== false && outcome.status === "Succeeded" && opts.formContext) {
          opts.formContext.data.refresh(false);
        }
        return outcome;
      });
  }

  /* A ribbon button on a form: primaryControl is the form context. */
  function runButton(primaryControl, message, parameters, options) {
    var entity = primaryControl.data.entity;
    return run(message, entity.getEntityName(), entity.getId(), parameters,
               Object.assign({ formContext: primaryControl }, options || {}));
  }

  /* Add Accept.js to a document once (the Direct Entry dialog). Resolves with window.Accept. */
  function loadAcceptJs(doc, url) {
    var existing = doc.querySelector("script[data-w365-accept]");
    if (existing && existing.w365Loaded) { return existing.w365Loaded; }
    var script = doc.createElement("script");
    script.src = url;
    script.charset = "utf-8";
    script.setAttribute("data-w365-accept", "1");
    script.w365Loaded = new Promise(function (resolve, reject) {
      script.onload = function () { resolve((doc.defaultView || globalThis).Accept); };
      script.onerror = function () { reject(new Error("Accept.js could not be loaded from " + url)); };
    });
    doc.head.appendChild(script);
    return script.w365Loaded;
  }

  /* Accept.dispatchData as a promise of opaqueData; the card never leaves the browser otherwise. */
  function tokenizeCard(accept, authData, cardData) {
    return new Promise(function (resolve, reject) {
      accept.dispatchData({ authData: authData, cardData: cardData }, function (response) {
        if (!response || !response.messages || response.messages.resultCode === "Error") {
          var list = (response && response.messages && response.messages.message) || [];
          reject(new Error(list.map(function (m) { return m.text; }).join(" ") || "The card could not be checked."));
          return;
        }
        resolve(response.opaqueData);
      });
    });
  }

  return { newRequestId: newRequestId, buildRequest: buildRequest, waitForOperation: waitForOperation, run: run,
           runButton: runButton, cleanId: cleanId, loadAcceptJs: loadAcceptJs, tokenizeCard: tokenizeCard,
           settings: settings, STATUS: STATUS };
})();

if (typeof module !== "undefined") { module.exports = W365; }
