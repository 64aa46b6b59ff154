/*
 * Local-mode stand-in for Authorize.Net's Accept.js (https://jstest.authorize.net/v1/Accept.js).
 * Same browser API: Accept.dispatchData(secureData, responseHandler), where
 *   secureData = {authData: {clientKey, apiLoginID}, cardData: {cardNumber, month, year, cardCode, zip?, fullName?}}
 * and responseHandler gets {opaqueData: {dataDescriptor, dataValue}, messages: {resultCode: "Ok", message: [...]}}
 * or {messages: {resultCode: "Error", message: [{code: "E_WC_05", text: "..."}]}}.
 * The card goes to the gateway simulator's nonce endpoint on this same origin (accept/nonce beside this file),
 * never to the app's /api routes. Served by standins.authorizenet.AuthorizeNetSimulator.wsgi_app().
 */
(function (global) {
  "use strict";

  var script = global.document && global.document.currentScript;
  var base = script && script.src ? script.src : "/_local/authorizenet/Accept.js";
  var nonceUrl = base.replace(/Accept\.js(\?.*)?$/, "accept/nonce");

  function failure(code, text) {
    return { messages: { resultCode: "Error", message: [{ code: code, text: text }] } };
  }

  function dispatchData(secureData, responseHandler) {
    if (typeof responseHandler !== "function") {
      throw new Error("Accept.dispatchData needs a response handler function");
    }
    var data = secureData || {};
    var auth = data.authData || {};
    if (!auth.clientKey || !auth.apiLoginID) {
      setTimeout(function () { responseHandler(failure("E_WC_10", "Please provide valid apiLoginID.")); }, 0);
      return;
    }
    var body = JSON.stringify({ authData: auth, cardData: data.cardData || {} });
    global.fetch(nonceUrl, { method: "POST", headers: { "Content-Type": "application/json" }, body: body })
      .then(function (response) { return response.text(); })
      .then(function (text) { responseHandler(JSON.parse(text.replace(/^\uFEFF/, ""))); })
      .catch(function () { responseHandler(failure("E_WC_14", "Accept.js encryption failed.")); });
  }

  global.Accept = { dispatchData: dispatchData };
})(typeof window !== "undefined" ? window : globalThis);
