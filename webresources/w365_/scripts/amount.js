/* Asking a person for an amount of money (Charge Invoice, Refund). Needs w365_/scripts/common.js.

   Amounts are handled as text and whole cents here, never as float arithmetic; the number sent to the Custom API is
   the text's exact value (Edm.Decimal), and the service checks it again. */
var W365 = W365 || (typeof require !== "undefined" ? require("./common.js") : {});
W365.Amount = (function () {
  "use strict";

  /* Xrm has no prompt dialog; replaceable (tests, or a dialog page later). Resolves with the text or null. */
  var settings = {
    ask: function (text, defaultText) { return Promise.resolve(globalThis.prompt(text, defaultText)); }
  };

  function cents(text) {
    var parts = text.split(".");
    return parseInt(parts[0], 10) * 100 + parseInt(((parts[1] || "") + "00").slice(0, 2), 10);
  }

  function format(centsValue) {
    var whole = Math.floor(centsValue / 100);
    var rest = String(centsValue % 100);
    return whole + "." + (rest.length < 2 ? "0" + rest : rest);
  }

  /* Text typed by a person -> {cents, text: "40.10"} or {error}. Accepts "1,234.50" and a decimal comma ("40,5").
     maxCents: the most allowed (null: no client-side limit). */
  function parse(input, maxCents) {
    var text = String(input === null || input === undefined ? "" : input).replace(/\s+/g, "");
    if (/^\d{1,3}(,\d{3})+(\.\d*)?$/.test(text)) { text = text.replace(/,/g, ""); }
    else if (/^\d+,\d{1,2}$/.test(text)) { text = text.replace(",", "."); }
    if (!/^\d+(\.\d+)?$/.test(text)) { return { error: "Enter an amount such as 40.00." }; }
    if ((text.split(".")[1] || "").length > 2) { return { error: "Use at most two decimal places." }; }
    var value = cents(text);
    if (value <= 0) { return { error: "The amount must be more than zero." }; }
    if (maxCents !== null && maxCents !== undefined && value > maxCents) {
      return { error: "The amount cannot be more than " + format(maxCents) + "." };
    }
    return { cents: value, text: format(value) };
  }

  /* A money value read from a form (a number) in whole cents, or null. */
  function toCents(value) {
    return typeof value === "number" && isFinite(value) ? Math.round(value * 100) : null;
  }

  /* Ask until the answer is valid or the person cancels. options: {text, defaultText, maxCents, allowEmpty}.
     Resolves with {cents, text}, {empty: true} (allowEmpty and nothing typed) or null (cancelled). */
  function ask(options) {
    function round(problem, previous) {
      var text = problem ? problem + "\n\n" + options.text : options.text;
      return settings.ask(text, previous).then(function (answer) {
        if (answer === null || answer === undefined) { return null; }
        if (options.allowEmpty && String(answer).trim() === "") { return { empty: true }; }
        var parsed = parse(answer, options.maxCents);
        return parsed.error ? round(parsed.error, answer) : parsed;
      });
    }
    return round("", options.defaultText || "");
  }

  return { parse: parse, toCents: toCents, format: format, ask: ask, settings: settings };
})();

if (typeof module !== "undefined") { module.exports = W365; }
